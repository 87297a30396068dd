"""The autoscaler's control law, tick by tick (pure: no clock, no I/O)."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from s3stagger.definitions.autoscaler import AutoscalerDefinition
from s3stagger.definitions.model import Definitions
from s3stagger.domain.autoscale import (
    AutoscalePolicy,
    AutoscaleState,
    Backlog,
    Decision,
    DownstreamSignals,
    decide,
)
from s3stagger.domain.flight import FlightPlan

POLICY = AutoscalePolicy(budget_floor=1, budget_cap=40, rows_per_object=10, budget_hold_ticks=3)
BIG_BACKLOG = Backlog(visible={"high": 0, "normal": 100}, in_flight={"high": 0, "normal": 4})
EMPTY = Backlog(visible={"high": 0, "normal": 0}, in_flight={"high": 0, "normal": 0})


def clean(requests: int = 100, latency_ms: float = 200.0) -> DownstreamSignals:
    return DownstreamSignals(requests=requests, latency_ms=latency_ms, interval_s=1.0)


def state(rows: float, budget: int, **fields: object) -> AutoscaleState:
    return AutoscaleState(rows_target=rows, budget=budget, **fields)  # type: ignore[arg-type]


TickCase = tuple[str, AutoscaleState, Backlog, DownstreamSignals, str, int, int]
"""name, state before, backlog, signals, reason, rows in flight target after, budget after"""

TICK_CASES: list[TickCase] = [
    # capacity unknown, work waiting, no loss: multiplicative growth; budget follows ⌈R/10⌉
    ("grow", state(10, 2), BIG_BACKLOG, clean(), "grow", 15, 2),
    # past a forgotten estimate (the capacity rose by an unknown amount): probes of a row per slot
    # (3), not x1.5
    ("regrow", state(30, 3, capacity_seen=True), BIG_BACKLOG, clean(), "regrow", 33, 4),
    # the last probe (+2 from 58) ran clean: twice that
    (
        "regrow doubles a clean probe",
        state(60, 3, capacity_seen=True, grown_from=58.0, probe_step=2.0),
        BIG_BACKLOG,
        clean(requests=300),
        "regrow",
        64,
        7,
    ),
    # ... but no more than x regrowth_factor (1.1) a tick
    (
        "regrow at most x regrowth_factor",
        state(60, 3, capacity_seen=True, grown_from=50.0, probe_step=10.0),
        BIG_BACKLOG,
        clean(requests=300),
        "regrow",
        66,
        7,
    ),
    # ... nor past what the running calls can take (4 x 40) by more than a row: the budget grows
    (
        "regrow at most a row past the running calls",
        state(158, 4, capacity_seen=True, grown_from=140.0, probe_step=18.0),
        BIG_BACKLOG,
        clean(requests=790),
        "regrow",
        161,
        17,
    ),
    # R = 30 over a raised budget of 3, but two slots run (the third waits for the continuation):
    # they cannot use R, and growing it would hand the next execution's slots more than C
    (
        "slots not running yet",
        state(30, 3, share=10),
        Backlog(visible={"high": 0, "normal": 100}, in_flight={"high": 0, "normal": 2}),
        clean(),
        "hold",
        30,
        3,
    ),
    # R = 9 over 5 running slots is 1 row each: the slots all run, so R grows (no deadlock)
    (
        "a share rounded down still grows",
        state(9, 5, share=1, capacity_seen=True),
        Backlog(visible={"high": 0, "normal": 100}, in_flight={"high": 0, "normal": 5}),
        clean(requests=25),
        "regrow",
        14,
        5,
    ),
    # known capacity 20, far below it: halfway there
    ("grow towards the estimate", state(10, 2, ceiling=20.0), BIG_BACKLOG, clean(), "grow", 15, 2),
    # at the estimate: a row per slot
    ("probe", state(19, 4, ceiling=20.0), BIG_BACKLOG, clean(), "probe", 23, 4),
    # the last probe ran clean below the estimate: a row per slot again, no doubling short of it
    (
        "probe on below the estimate",
        state(19, 2, ceiling=20.0, capacity_seen=True, grown_from=17.0, probe_step=2.0),
        BIG_BACKLOG,
        clean(requests=95),
        "probe",
        21,
        3,
    ),
    # a tick's count reads more served (26) than R (20) ran: the estimate stands (+1, no regrowth)
    (
        "served over R does not forget the estimate",
        state(20, 2, ceiling=20.0, capacity_seen=True, grown_from=18.0, probe_step=2.0),
        BIG_BACKLOG,
        clean(requests=130),
        "probe",
        22,
        3,
    ),
    # served past 1.1 x the estimate, but at 1.14 x the no-load latency: the downstream queues
    # more rather than serving more, so the estimate stands (a row per slot, no regrowth)
    (
        "a queue's latency keeps the estimate",
        state(20, 2, ceiling=15.0, capacity_seen=True, baseline_latency_ms=100.0),
        BIG_BACKLOG,
        clean(requests=180, latency_ms=115.0),
        "probe",
        22,
        3,
    ),
    # 429s: cut to β x what the downstream served (Little: 100/s x 0.2 s = 20 at once)
    (
        "shrink on 429s",
        state(30, 6),
        BIG_BACKLOG,
        DownstreamSignals(requests=125, throttled_429=25, latency_ms=200, interval_s=1),
        "throttled",
        18,
        6,  # the budget only drops after holding lower for 3 ticks
    ),
    # the same loss right after R grew from 40: what was served lags a rising R (rows that began a
    # latency earlier), the R that ran clean does not: cut to β x 40, not to 44 / 2
    (
        "shrink on 429s right after a growth",
        state(44, 5, grown_from=40.0, capacity_seen=True),
        BIG_BACKLOG,
        DownstreamSignals(requests=125, throttled_429=25, latency_ms=200, interval_s=1),
        "throttled",
        36,
        5,
    ),
    (
        "timeouts",
        state(20, 4),
        BIG_BACKLOG,
        DownstreamSignals(requests=100, timeouts=10, latency_ms=None, interval_s=1),
        "timeouts",
        18,
        4,
    ),
    (
        "a 5xx burst",
        state(20, 4),
        BIG_BACKLOG,
        DownstreamSignals(requests=100, errors_5xx=20, latency_ms=None, interval_s=1),
        "errors_5xx",
        18,
        4,
    ),
    (
        "a stray 429 is not a trend",
        state(20, 4, ceiling=20.0),
        BIG_BACKLOG,
        DownstreamSignals(requests=1000, throttled_429=1, latency_ms=20, interval_s=1),
        "probe",
        24,
        4,
    ),
    # Lambda refused invocations: fewer objects at once, at once
    (
        "lambda throttled",
        state(20, 4),
        BIG_BACKLOG,
        DownstreamSignals(requests=100, lambda_throttles=3, latency_ms=200, interval_s=1),
        "lambda_throttled",
        18,
        2,
    ),
    # little work: R already covers it (1 object x 10 rows); hold
    (
        "hold",
        state(10, 2),
        Backlog(visible={"normal": 0}, in_flight={"normal": 1}),
        clean(),
        "hold",
        10,
        2,
    ),
    # no message left: the budget keeps the floor after holding; R (the capacity) is remembered
    ("idle", state(20, 1), EMPTY, clean(requests=0), "idle", 20, 1),
    # objects wait (stagger delays, a new execution): no request answered, nothing to learn
    ("no signal", state(10, 2), BIG_BACKLOG, clean(requests=0), "no_signal", 10, 2),
    ("cooldown after a cut", state(18, 4, cooldown_left=1), BIG_BACKLOG, clean(), "cooldown", 18, 4),
    # latency 2x the baseline: the downstream queues; 100/s at the 100-ms baseline is 10 at once,
    # x 1.15 of queueing: 11.5, but never below R / 2 in one tick
    (
        "queueing",
        state(40, 8, baseline_latency_ms=100.0),
        BIG_BACKLOG,
        clean(latency_ms=200.0),
        "queueing",
        20,
        8,
    ),
    # the same tick at R = 20: what the downstream serves at its baseline (11.5)
    (
        "queueing, near the capacity",
        state(20, 4, baseline_latency_ms=100.0),
        BIG_BACKLOG,
        clean(latency_ms=200.0),
        "queueing",
        11,
        4,
    ),
    # latency between 1.2x and 1.3x its baseline: neither grow nor cut (the hysteresis band)
    (
        "latency band",
        state(20, 4, baseline_latency_ms=100.0),
        BIG_BACKLOG,
        clean(latency_ms=125.0),
        "hold",
        20,
        4,
    ),
]


@pytest.mark.parametrize("case", TICK_CASES, ids=[case[0] for case in TICK_CASES])
def test_one_tick(case: TickCase) -> None:
    name, before, backlog, signals, reason, rows_after, budget_after = case
    decision = decide(before, backlog, signals, POLICY)
    assert (decision.reason, decision.rows_in_flight_target, decision.plan.objects_in_flight) == (
        reason,
        rows_after,
        budget_after,
    ), name
    # every slot that may run, each with its share, never exceeds R (at least one row per object)
    held = sum(backlog.in_flight.values())
    in_force = max(decision.plan.objects_in_flight, min(decision.state.settle_budget, held))
    sharing = max(1, min(in_force, backlog.waiting))
    assert sharing * decision.plan.rows_in_flight_per_object <= max(decision.rows_in_flight_target, sharing)


def test_a_tick_that_did_not_exercise_r_keeps_the_r_that_ran_clean() -> None:
    # measured: R grew 39 → 43, the raised budget's hand-over held R a tick (served 15 < 43 / 2),
    # then the new slots' burst: the cut went to 43 / 2 from what that burst let through
    grown = state(43, 5, grown_from=39.0, capacity_seen=True)
    hand_over = DownstreamSignals(requests=31, latency_ms=500, interval_s=1)
    held = decide(grown, BIG_BACKLOG, hand_over, POLICY)
    burst = DownstreamSignals(requests=94, throttled_429=53, latency_ms=500, interval_s=1)
    cut = decide(held.state, BIG_BACKLOG, burst, POLICY)
    assert (held.reason, cut.reason, cut.rows_in_flight_target) == ("hold", "throttled", 35)


def test_a_tick_that_tested_r_without_growing_it_forgets_the_r_it_grew_from() -> None:
    # R covers the backlog and was served in full: a loss now is news about the capacity
    grown = state(43, 5, grown_from=39.0, capacity_seen=True)
    covered = Backlog(visible={"normal": 0}, in_flight={"normal": 4})
    held = decide(grown, covered, DownstreamSignals(requests=86, latency_ms=500, interval_s=1), POLICY)
    burst = DownstreamSignals(requests=94, throttled_429=53, latency_ms=500, interval_s=1)
    cut = decide(held.state, BIG_BACKLOG, burst, POLICY)
    assert (held.reason, cut.reason, cut.rows_in_flight_target) == ("hold", "throttled", 21)


def test_a_loss_the_last_share_explains_re_shares_r_and_learns_no_ceiling() -> None:
    # measured: R 32 over a raised budget of 4 while 2 objects were held, share 12; the new
    # execution's 4 slots started at 12 (48 rows at C = 40) and the law learnt a ceiling of 29
    four_held = Backlog(visible={"normal": 100}, in_flight={"normal": 4})
    burst = DownstreamSignals(requests=48, throttled_429=8, latency_ms=500, interval_s=1)
    after = decide(state(32, 4, share=12, grown_from=29.0, capacity_seen=True), four_held, burst, POLICY)
    assert (after.reason, after.rows_in_flight_target, after.state.ceiling) == ("overshoot", 32, None)
    assert after.plan.rows_in_flight_per_object == 8  # R re-shared among the four
    assert after.state.cooldown_left == POLICY.cooldown_ticks
    # the same loss at a share that fits R among the objects held is R's: cut, ceiling learnt
    cut = decide(state(32, 4, share=8, grown_from=29.0, capacity_seen=True), four_held, burst, POLICY)
    assert (cut.reason, cut.state.ceiling) == ("throttled", 29.0)


def test_budget_shrinks_only_after_holding_lower_then_settles() -> None:
    current = state(40, 8, ceiling=40.0)
    few = Backlog(visible={"normal": 0}, in_flight={"normal": 2})
    budgets = []
    for _ in range(4):
        decision = decide(current, few, clean(), POLICY)
        budgets.append(decision.plan.objects_in_flight)
        current = decision.state
    assert budgets == [8, 8, 2, 2]


def test_after_a_lowered_budget_the_old_slots_share_r_while_they_hold_objects() -> None:
    policy = AutoscalePolicy(rows_per_object=5, budget_hold_ticks=1, budget_settle_ticks=5)
    eight_held = Backlog(visible={"normal": 100}, in_flight={"normal": 8})
    decision = decide(state(10, 8), eight_held, clean(), policy)
    # R grows to 15 → B = 4 (15 / (5 x 0.8)), but the running execution's 8 slots hold objects:
    # R is shared among the 8
    assert decision.plan.objects_in_flight == 4
    assert decision.plan.rows_in_flight_per_object == 15 // 8
    # that execution ended: 4 objects held, the new budget's slots take all of R while settling
    four_held = Backlog(visible={"normal": 100}, in_flight={"normal": 4})
    later = decide(decision.state, four_held, clean(), policy)
    assert later.state.settle_budget == 8
    assert later.plan.rows_in_flight_per_object == later.rows_in_flight_target // later.plan.objects_in_flight


def test_more_objects_held_than_the_budget_share_r() -> None:
    """Measured: the provisioned budget (10) ran 10 slots while the law, at budget 2, gave each
    R / 2: 33 % of requests answered 429 for a whole execution."""
    ten_held = Backlog(visible={"normal": 20}, in_flight={"normal": 10})
    decision = decide(state(20, 2, ceiling=20.0, ticks_at_ceiling=0), ten_held, clean(requests=90), POLICY)
    assert 10 * decision.plan.rows_in_flight_per_object <= decision.rows_in_flight_target


def test_r_is_shared_among_the_calls_running_not_the_messages_they_hold() -> None:
    """A call serves one object after another, holding two messages while one's tail drains and
    the next starts: sharing R among 10 messages held by 5 calls gave each call R / 10 (measured:
    the capacity step's utilization fell from 0.78 to 0.64)."""
    ten_held = Backlog(visible={"normal": 50}, in_flight={"normal": 10})
    by_messages = decide(state(20, 5, ceiling=21.0), ten_held, clean(), POLICY)
    by_calls = decide(
        state(20, 5, ceiling=21.0), ten_held, dataclasses.replace(clean(), calls_in_flight=5), POLICY
    )
    assert by_messages.rows_in_flight_target == by_calls.rows_in_flight_target == 25  # a row per slot
    assert by_messages.plan.rows_in_flight_per_object == 2
    assert by_calls.plan.rows_in_flight_per_object == 5
    assert 5 * by_calls.plan.rows_in_flight_per_object <= by_calls.rows_in_flight_target


def test_the_slots_a_raised_budget_adds_do_not_overshoot_r() -> None:
    """Measured before: r was R / (objects held now), so the slots a raised budget added took the
    same share before the next tick re-shared R (B x r = 45 rows for R = 30: 429s)."""
    two_held = Backlog(visible={"normal": 100}, in_flight={"normal": 2})
    decision = decide(state(20, 2), two_held, clean(), POLICY)
    assert (decision.rows_in_flight_target, decision.plan.objects_in_flight) == (30, 3)
    assert decision.plan.objects_in_flight * decision.plan.rows_in_flight_per_object <= 30


def test_a_share_overshoot_lets_the_running_slots_use_r_and_bounds_the_new_ones() -> None:
    policy = AutoscalePolicy(share_overshoot=1.25)
    one_held = Backlog(visible={"normal": 100}, in_flight={"normal": 1})
    decision = decide(state(20, 2), one_held, clean(), policy)
    assert (decision.rows_in_flight_target, decision.plan.objects_in_flight) == (30, 3)
    # the one slot running takes more than R / 3, and 3 slots at that share stay within 1.25 R
    assert decision.plan.rows_in_flight_per_object == 12
    assert 3 * decision.plan.rows_in_flight_per_object <= 1.25 * 30
    # without the allowance (the default) B x r never exceeds R
    assert decide(state(20, 2), one_held, clean(), POLICY).plan.rows_in_flight_per_object == 10
    # within it the share rounds up: R = 9 over 5 slots holding objects is 2 rows each, not 1
    five_held = Backlog(visible={"normal": 100}, in_flight={"normal": 5})
    hold = state(9, 5, ceiling=9.0, ticks_at_ceiling=0)
    assert decide(
        hold, five_held, clean(requests=45), dataclasses.replace(policy, probe_every_ticks=3)
    ).plan == FlightPlan(objects_in_flight=5, rows_in_flight_per_object=2)


def test_probes_wait_for_their_outcome_and_regrowth_doubles_every_tick() -> None:
    policy = AutoscalePolicy(probe_every_ticks=2, regrowth_factor=1.3, rows_per_object=40)
    current = state(20, 1, ceiling=20.0, capacity_seen=True)
    loss = DownstreamSignals(requests=120, throttled_429=10, latency_ms=200, interval_s=1)
    reasons, rows = [], []
    for tick in range(13):
        # reject mode below the capacity: every row in flight is served (Little: R x 5/s x 0.2 s)
        served_r = DownstreamSignals(requests=int(current.rows_target * 5), latency_ms=200, interval_s=1)
        decision = decide(current, BIG_BACKLOG, loss if tick == 8 else served_r, policy)
        reasons.append(decision.reason)
        rows.append(decision.rows_in_flight_target)
        current = decision.state
    # at the estimate a probe every other tick, a row per slot; once 23 ran clean past 1.1 x the
    # estimate (forgotten: the capacity rose), a growth every tick, twice the last step
    assert reasons[:8] == ["hold", "probe", "hold", "probe", "hold", "probe", "regrow", "regrow"]
    assert rows[:8] == [20, 21, 21, 22, 22, 23, 25, 29]
    # the loss: back to x0.9 of the R that ran clean before the last growth (25; what was served,
    # 22, is less), the cooldown, and probing restarts from a row after waiting again
    assert reasons[8:] == ["throttled", "cooldown", "hold", "probe", "hold"]
    assert rows[8:] == [22, 22, 22, 23, 23]


def test_a_slow_tick_pauses_the_doubling_and_a_hand_over_restarts_it() -> None:
    policy = AutoscalePolicy(rows_per_object=40, regrowth_factor=1.3)
    doubling = state(60, 2, capacity_seen=True, grown_from=58.0, probe_step=2.0, baseline_latency_ms=200.0)
    slow = decide(doubling, BIG_BACKLOG, clean(requests=240, latency_ms=250.0), policy)
    after = decide(slow.state, BIG_BACKLOG, clean(requests=300), policy)
    assert (slow.reason, after.reason, after.rows_in_flight_target) == ("hold", "regrow", 64)
    # two calls running take at most 80: R stops a row past that (the budget grows to 3), and the
    # continuation's probes start again from a row per slot, not from twice the blind jump
    near_most = state(76, 2, capacity_seen=True, grown_from=72.0, probe_step=4.0)
    two_calls = dataclasses.replace(clean(requests=380), calls_in_flight=2)
    blind = decide(near_most, BIG_BACKLOG, two_calls, policy)
    assert (blind.rows_in_flight_target, blind.plan.objects_in_flight) == (81, 3)
    three_calls = dataclasses.replace(clean(requests=405), calls_in_flight=3)
    afresh = decide(blind.state, BIG_BACKLOG, three_calls, policy)
    assert afresh.rows_in_flight_target == 84  # + a row per slot (3)


def test_a_loss_tick_that_counts_more_served_than_r_learns_no_more_than_r() -> None:
    # measured: 121 requests counted in a 1-s tick at C = 40, L = 0.5 s (Little: 60 at once); the
    # estimate of 50 then grew R halfway towards it, into 6 refusals
    miscounted = DownstreamSignals(requests=121, throttled_429=1, latency_ms=500, interval_s=1)
    decision = decide(state(43, 2, capacity_seen=True), BIG_BACKLOG, miscounted, POLICY)
    assert (decision.reason, decision.state.ceiling) == ("throttled", 43.0)


def test_a_lone_slow_tick_is_not_a_queue_when_queueing_needs_two() -> None:
    # measured: a 2-s stall of the machine read as 1,043 ms against a 500-ms baseline, and the
    # queueing cut halved R at C = 40 for the 15 s it took to regrow
    policy = AutoscalePolicy(queueing_ticks=2, rows_per_object=40)
    steady = state(38, 1, ceiling=41.0, capacity_seen=True, baseline_latency_ms=500.0)
    stalled = clean(requests=50, latency_ms=1043.0)
    first = decide(steady, BIG_BACKLOG, stalled, policy)
    assert (first.reason, first.rows_in_flight_target) == ("hold", 38)
    after = decide(first.state, BIG_BACKLOG, clean(requests=76, latency_ms=500.0), policy)
    assert after.state.slow_ticks == 0
    assert after.reason != "queueing"
    # a queue keeps the latency high: the second tick in a row cuts
    second = decide(first.state, BIG_BACKLOG, clean(requests=40, latency_ms=1000.0), policy)
    assert second.reason == "queueing"
    assert second.rows_in_flight_target < 38


def test_an_aged_message_is_work_left_even_when_the_counts_read_zero() -> None:
    zero_counts = Backlog(visible={"normal": 0}, in_flight={"normal": 0}, oldest_age_s=42.0)
    decision = decide(state(20, 2), zero_counts, clean(), POLICY)
    assert decision.reason != "idle"
    assert decision.plan.objects_in_flight == 2  # no scale to zero on a stale zero count
    assert decide(state(20, 2), EMPTY, clean(), POLICY).reason == "idle"


def test_flapping_backlog_does_not_flap_the_budget() -> None:
    current = state(80, 8, ceiling=80.0)
    budgets = []
    for tick in range(12):
        backlog = BIG_BACKLOG if tick % 2 == 0 else EMPTY
        decision = decide(current, backlog, clean(), POLICY)
        budgets.append(decision.plan.objects_in_flight)
        current = decision.state
    # an empty tick between busy ones never lowers the budget (it must hold lower for 3 ticks)
    assert budgets == sorted(budgets)
    assert budgets[0] >= 8


def test_flapping_loss_cuts_at_most_every_other_tick() -> None:
    current = state(40, 8)
    reasons = []
    for tick in range(8):
        loss = tick % 2 == 0
        signals = DownstreamSignals(
            requests=100, throttled_429=20 if loss else 0, latency_ms=None, interval_s=1
        )
        decision = decide(current, BIG_BACKLOG, signals, POLICY)
        reasons.append(decision.reason)
        current = decision.state
    assert reasons.count("throttled") <= 4
    assert all(not (a == "throttled" and b == "throttled") for a, b in itertools.pairwise(reasons))


def test_pinned_policy_keeps_the_pinned_figures() -> None:
    policy = AutoscalePolicy(budget_floor=10, budget_cap=10, rows_floor=20, rows_cap=20)
    current = AutoscaleState.initial(policy)
    for signals in (clean(), DownstreamSignals(requests=100, throttled_429=50, interval_s=1)):
        decision = decide(current, BIG_BACKLOG, signals, policy)
        # the 10 pinned slots share the pinned 20 rows
        assert (decision.plan.objects_in_flight, decision.plan.rows_in_flight_per_object) == (10, 2)
        assert decision.reason == "pinned"


@pytest.mark.parametrize(
    "field",
    [
        "budget_floor",
        "rows_floor",
        "backoff_ratio",
        "rows_per_object",
        "regrowth_factor",
        "probe_every_ticks",
        "queueing_ticks",
        "share_overshoot",
    ],
)
def test_policy_refuses_nonsense(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        AutoscalePolicy(**{field: 0})


def reject_mode_tick(
    rows_in_flight: int, capacity: int, latency_s: float = 0.2, served_when_refused: float = 1.0
) -> DownstreamSignals:
    """A downstream that serves `capacity` at once and refuses the rest (one 1-s interval);
    `served_when_refused`: the share of `capacity` served in an interval with refusals."""
    served = min(rows_in_flight, capacity)
    if rows_in_flight > capacity:
        served = round(capacity * served_when_refused)
    successes = round(served / latency_s)
    refused = max(0, rows_in_flight - capacity) * 5
    return DownstreamSignals(
        requests=successes + refused, throttled_429=refused, latency_ms=latency_s * 1000, interval_s=1
    )


SHIPPED = AutoscalerDefinition.load().policy(Definitions.load().budget)
"""The law as ``definitions/autoscaler.json`` ships it."""


def run_closed_loop(
    capacities: list[int],
    start: AutoscaleState,
    served_when_refused: float = 1.0,
    policy: AutoscalePolicy = POLICY,
) -> list[Decision]:
    decisions: list[Decision] = []
    current = start
    plan = None
    for capacity in capacities:
        # the slots hold `budget` objects (the dispatcher read the budget), each with its share
        held = plan.objects_in_flight if decisions else start.budget
        rows = held * (plan.rows_in_flight_per_object if decisions else 1)
        backlog = Backlog(visible={"normal": 100}, in_flight={"normal": held})
        signals = reject_mode_tick(rows, capacity, served_when_refused=served_when_refused)
        decision = decide(current, backlog, signals, policy)
        decisions.append(decision)
        current, plan = decision.state, decision.plan
    return decisions


def test_closed_loop_finds_an_unknown_capacity_from_one() -> None:
    decisions = run_closed_loop([20] * 30, AutoscaleState.initial(POLICY, budget=1))
    held = [d.plan.rows_in_flight for d in decisions[-10:]]
    assert sum(held) / len(held) >= 0.9 * 20
    assert max(held) <= 22


@pytest.mark.parametrize("policy", [POLICY, SHIPPED], ids=["regrow +10 %, probe every tick", "shipped"])
def test_closed_loop_follows_a_capacity_step_down_then_up(policy: AutoscalePolicy) -> None:
    decisions = run_closed_loop(
        [20] * 20 + [10] * 20 + [40] * 30, AutoscaleState.initial(policy), policy=policy
    )
    after_down = [d.plan.rows_in_flight for d in decisions[25:40]]
    after_up = [d.plan.rows_in_flight for d in decisions[-20:]]
    assert max(after_down) <= 12
    assert sum(after_up) / len(after_up) >= 0.85 * 40
    assert max(after_up) <= 1.25 * 40


@pytest.mark.parametrize("policy", [POLICY, SHIPPED], ids=["regrow +10 %, probe every tick", "shipped"])
def test_closed_loop_regrows_to_a_risen_capacity_without_a_slow_start_overshoot(
    policy: AutoscalePolicy,
) -> None:
    """Measured before: past a forgotten estimate R grew x1.5 a tick and overshot the new capacity
    by up to half (a tick of 429s from every slot); then +1 probes and +15 % a tick took 20 ticks
    to find it. Probes that double once the estimate is forgotten, each at most x regrowth_factor
    and no further than a row past what the running calls take, find it in about a dozen and
    overshoot it by their last step (or a row per slot)."""
    decisions = run_closed_loop([10] * 20 + [40] * 40, AutoscaleState.initial(policy), policy=policy)
    after_up = [d.plan.rows_in_flight for d in decisions[20:]]
    reached = next(tick for tick, rows in enumerate(after_up) if rows >= 0.9 * 40)
    assert reached <= 10  # +1 probes and +15 % a tick took 20
    assert max(after_up) <= 1.25 * 40
    assert sum(after_up[-15:]) / 15 >= 0.85 * 40


@pytest.mark.parametrize("policy", [POLICY, SHIPPED], ids=["regrow +10 %, probe every tick", "shipped"])
def test_closed_loop_holds_a_risen_capacity_when_a_loss_depresses_what_was_served(
    policy: AutoscalePolicy,
) -> None:
    """Measured before (capacity step 10 -> 40, 2026-12-01): in the tick of the first 429s the
    processors' own limiters backed off, the downstream served 25 of its 40, the cut took R from 44
    to 23, that low estimate was soon forgotten again and R regrew into the next loss: a saw tooth
    of 429 bursts well below the capacity."""
    decisions = run_closed_loop(
        [10] * 20 + [40] * 60, AutoscaleState.initial(policy), served_when_refused=0.6, policy=policy
    )
    settled = [d.plan.rows_in_flight for d in decisions[-30:]]
    assert min(settled) >= 0.85 * 40
    assert max(settled) <= 1.15 * 40


def test_closed_loop_queue_mode_does_not_collapse_while_a_queue_drains() -> None:
    # a downstream that queues (C = 20, L = 0.5 s); the processors follow R four ticks late, so the
    # latency of the queue an overshoot left behind outlives the cut that caused it
    capacity, latency_s, lag = 20, 0.5, 4
    current = AutoscaleState(rows_target=100.0, budget=10, baseline_latency_ms=latency_s * 1000)
    in_flight = [100.0] * lag
    targets = []
    for _ in range(40):
        rows = in_flight[-lag]
        served = min(rows, capacity)
        signals = DownstreamSignals(
            requests=round(served / latency_s),
            latency_ms=latency_s * 1000 * max(1.0, rows / capacity),
            interval_s=1,
        )
        current = decide(current, BIG_BACKLOG, signals, POLICY).state
        in_flight.append(current.rows_target)
        targets.append(current.rows_target)
    # R x 1.15 / ratio every other tick on the stale latency went 100 → 6: the downstream idled
    assert min(targets) >= 0.9 * capacity


def test_limiter_follows_a_new_ceiling_down_and_grows_to_a_higher_one() -> None:
    from s3stagger.domain.limiter import AimdLimiter

    limiter = AimdLimiter(initial=8, maximum=10)
    limiter.set_maximum(4)
    assert (limiter.limit, limiter.lowest) == (4, 4)
    limiter.set_maximum(12)
    for _ in range(20):
        limiter.on_success(in_flight=limiter.limit)
    assert limiter.limit == 12


def test_when_idle_r_is_shared_among_the_budget_the_next_arrivals_may_fill() -> None:
    """Measured before: idle, the one slot the backlog allowed took all of R (20), and the two
    objects that then arrived together started at 20 rows each against a capacity of 20."""
    idle = decide(state(20, 2), EMPTY, clean(requests=0), POLICY)
    assert (idle.reason, idle.plan) == ("idle", FlightPlan(objects_in_flight=2, rows_in_flight_per_object=10))
    one_slot = decide(state(20, 1), EMPTY, clean(requests=0), POLICY)
    assert one_slot.plan.rows_in_flight_per_object == 20
