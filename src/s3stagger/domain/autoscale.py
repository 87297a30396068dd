"""The autoscaler's control law: objects in flight (the budget) and rows in flight per object.

Pure: no clock, no I/O. Each tick the autoscaler reads the backlog and the downstream's signals
over the last interval and calls :func:`decide` with the state the previous tick returned.

Two quantities, two loops (docs/autoscaling.md argues the choice):

* **R, the rows in flight the downstream sees in total** — the quantity the downstream's capacity
  C bounds. Loss-based AIMD for a downstream that refuses (429, timeouts, Lambda throttles, a 5xx
  burst): on loss ``R <- max(R/2, min(R·β, β·estimate))`` where the estimate is ``served =
  successes/s x latency`` (Little's law: the concurrency the downstream actually served), or the R
  before the last growth when that is more (``served`` lags a rising R, and a tick that did not
  exercise R, such as a hand-over's, leaves that R standing); with no loss and work
  waiting R grows — x``slow_start_factor`` while no capacity was ever seen, halfway towards the last
  capacity estimate below it, and from the estimate by probes: +1 after ``probe_every_ticks``
  clean ticks there, then twice the last step while each ran clean, at most x``regrowth_factor`` a
  tick (past the estimate by ``ceiling_forget_ratio`` without loss it is forgotten: the capacity
  rose by an unknown amount, found in a few ticks). A gradient
  term handles a downstream that queues instead: latency over its no-load baseline by more than
  ``latency_high_ratio`` sets R to what the downstream serves at that baseline with
  ``latency_target_ratio`` of queueing (``successes/s x baseline x 1.15``, Little), within
  ``[R/2, R]``; no growth above
  ``latency_grow_below_ratio``. One tick of cooldown after every cut: the signals of that tick
  still describe the old R. A loss that the share written last tick explains (the objects held
  now, each at that share, exceed R by a row each: new slots started at the share of fewer
  running ones) keeps R and its estimate: reason ``overshoot``, R is re-shared.
* **B, the objects in flight (the dispatcher's slots)** — KEDA-like ``⌈R / rows_per_object⌉``
  limited by the backlog (``⌈backlog / 1⌉``: one object per slot), clamped to the operator's floor
  and cap. B grows at once and shrinks only after the lower value held ``budget_hold_ticks``
  ticks (hysteresis: a flapping backlog does not flap the budget). When the queues are empty B
  falls to the floor (the dispatcher then idles out: zero executions until the next object), unless
  the oldest message still has an age (SQS's counts are approximate).

Rows in flight per object ``r = ⌊R / B'⌋`` where B' is the new budget, or, while a lowered budget
settles (the dispatcher reads the budget once per execution, so it takes effect up to
``budget_settle_ticks`` later), the old one as long as its slots hold objects; further limited by
the objects there are: B' x r ≤ R, so the downstream never sees more than R by design.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from s3stagger.domain.flight import FlightPlan


@dataclass(frozen=True)
class Backlog:
    """Messages of the priority queues now (one message = one object), and the oldest one's age."""

    visible: Mapping[str, int]
    in_flight: Mapping[str, int]
    oldest_age_s: float = 0.0

    @property
    def held(self) -> int:
        """Messages received and not deleted: objects a slot holds (or a retry delay keeps)."""
        return sum(self.in_flight.values())

    @property
    def objects(self) -> int:
        return sum(self.visible.values()) + self.held

    @property
    def waiting(self) -> int:
        """Objects waiting or in flight; at least 1 while the oldest message has an age.

        SQS's counts are approximate and may read 0 for a moment while a message is there; the
        age of the oldest message (CloudWatch, or the queue) says work is left: no scale to zero.
        """
        return max(self.objects, 1 if self.oldest_age_s > 0 else 0)


@dataclass(frozen=True)
class DownstreamSignals:
    """What the processors saw of the downstream over the last interval (counts, not rates)."""

    requests: int
    """Row requests answered (successes and refusals alike)."""
    throttled_429: int = 0
    timeouts: int = 0
    errors_5xx: int = 0
    lambda_throttles: int = 0
    """Processor invocations Lambda refused (reserved concurrency reached)."""
    latency_ms: float | None = None
    """Mean latency of the row requests as the processor sees it (queueing included)."""
    interval_s: float = 60.0
    calls_in_flight: int | None = None
    """Processor calls running (Lambda's ConcurrentExecutions); None: not known. A call serves one
    object after another from one row pool (its share of R), holding two messages while one
    object's tail drains and the next starts: R is shared among calls, not messages held."""

    def objects_served(self, backlog: Backlog) -> int:
        """The holders of a share of R now: the calls running, else the messages held."""
        return backlog.held if self.calls_in_flight is None else self.calls_in_flight

    @property
    def successes(self) -> int:
        return max(0, self.requests - self.throttled_429 - self.timeouts - self.errors_5xx)

    def served_concurrency(self) -> float | None:
        """Little's law: requests the downstream served at once on average (None: no latency)."""
        if self.latency_ms is None or self.interval_s <= 0:
            return None
        return self.successes / self.interval_s * self.latency_ms / 1000.0


@dataclass(frozen=True)
class AutoscalePolicy:
    """The law's settings (``definitions/autoscaler.json``) and the operator's floor and cap."""

    budget_floor: int = 1
    budget_cap: int = 40
    rows_floor: int = 1
    rows_cap: int = 400
    """Total rows in flight at most (the operator's pin when the downstream's capacity is known)."""
    rows_per_object: int = 10
    """Rows in flight one invocation aims at: B = ⌈R / this⌉."""
    max_rows_per_object: int = 40
    """The most rows in flight one invocation gets (few objects left: each takes a larger share)."""
    backoff_ratio: float = 0.9
    loss_tolerance: float = 0.002
    """Share of 429s + timeouts below which a tick counts as clean (a stray refusal is not a trend)."""
    errors_5xx_tolerance: float = 0.05
    """Share of 5xx above which the downstream is taken as failing under load."""
    slow_start_factor: float = 1.5
    """Growth per tick while the capacity was never seen (a fresh start)."""
    regrowth_factor: float = 1.1
    """The most a probe grows R in a tick (probes double while they run clean): a slow start from
    near the old capacity would overshoot a risen one by up to half."""
    ceiling_forget_ratio: float = 1.1
    probe_every_ticks: int = 1
    """At the capacity estimate, R probes +1 only after this many clean ticks there: each probe
    over the capacity costs a tick of 429s, each tick without one delays finding a risen capacity."""
    latency_high_ratio: float = 1.3
    queueing_ticks: int = 1
    """Ticks in a row the latency must be over ``latency_high_ratio`` x its baseline before R is
    cut for queueing: one slow tick is as often the machine's stall as the downstream's queue."""
    latency_target_ratio: float = 1.15
    latency_grow_below_ratio: float = 1.2
    baseline_drift: float = 1.01
    """The no-load latency baseline creeps up by this factor per tick, so it is re-learnt."""
    budget_hold_ticks: int = 3
    budget_tolerance: float = 0.2
    """B shrinks only when R fits in B - 1 objects of ``rows_per_object`` x (1 - this)."""
    budget_settle_ticks: int = 1
    cooldown_ticks: int = 1
    share_overshoot: float = 1.0
    """How far B x r may exceed R for the tick after a raised budget takes effect. 1: never (r =
    R / B, and the running execution's fewer slots leave R partly unused until its next execution);
    above 1 the slots running now take up to R / (objects held) while the new budget's slots, once
    they start, exceed R by at most this factor until the next tick re-shares R."""

    def __post_init__(self) -> None:
        if not 1 <= self.budget_floor <= self.budget_cap:
            raise ValueError(
                f"need 1 <= budget_floor ({self.budget_floor}) <= budget_cap ({self.budget_cap})"
            )
        if not 1 <= self.rows_floor <= self.rows_cap:
            raise ValueError(f"need 1 <= rows_floor ({self.rows_floor}) <= rows_cap ({self.rows_cap})")
        if self.share_overshoot < 1:
            raise ValueError(f"share_overshoot={self.share_overshoot} must be >= 1")
        if self.queueing_ticks < 1:
            raise ValueError(f"queueing_ticks={self.queueing_ticks} must be >= 1")
        if self.probe_every_ticks < 1:
            raise ValueError(f"probe_every_ticks={self.probe_every_ticks} must be >= 1")
        if not 1 <= self.rows_per_object <= self.max_rows_per_object:
            raise ValueError(
                f"need 1 <= rows_per_object ({self.rows_per_object}) <= max_rows_per_object "
                f"({self.max_rows_per_object})"
            )
        if not 0 < self.backoff_ratio < 1:
            raise ValueError(f"backoff_ratio={self.backoff_ratio} must be within (0, 1)")
        for name in ("slow_start_factor", "regrowth_factor"):
            if getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)} must be > 1")

    @property
    def pinned(self) -> bool:
        """Floor equals cap for both: the operator fixed the figures, the law only follows them."""
        return self.budget_floor == self.budget_cap and self.rows_floor == self.rows_cap


@dataclass(frozen=True)
class AutoscaleState:
    """What the law remembers between ticks."""

    rows_target: float
    budget: int
    ceiling: float | None = None
    """Rows in flight at the last loss (the capacity estimate); None: unknown."""
    capacity_seen: bool = False
    """A loss or queueing was seen once: an unknown ceiling is a forgotten one (regrowth, not
    slow start)."""
    baseline_latency_ms: float | None = None
    cooldown_left: int = 0
    slow_ticks: int = 0
    """Ticks in a row the latency was over ``latency_high_ratio`` x its baseline."""
    grown_from: float | None = None
    """R before the last growth, which ran clean (None: a tick since then cut R, or tested it without
    growing it; ticks that did not exercise R keep it). A loss now puts the capacity between the
    two: above this R, below the new one."""
    share: int = 0
    """Rows in flight per object the last tick wrote (0: none yet)."""
    probe_step: float = 0.0
    """Rows the last growth added as a probe (0: it was none); the next probe, if this one ran
    clean, adds twice as many."""
    ticks_at_ceiling: int = 0
    """Clean ticks in a row at the capacity estimate without a probe (see ``probe_every_ticks``)."""
    lower_budget_ticks: int = 0
    """Ticks in a row the wanted budget was below the current one."""
    settle_budget: int = 0
    """A higher budget that may still be in force (read by a running dispatcher execution)."""
    settle_left: int = 0

    @classmethod
    def initial(
        cls, policy: AutoscalePolicy, budget: int = 1, rows_target: float | None = None
    ) -> AutoscaleState:
        """Start at ``budget`` objects and ``rows_target`` rows (default: ``budget`` x 1 row)."""
        budget = _clamp(budget, policy.budget_floor, policy.budget_cap)
        rows = float(rows_target if rows_target is not None else budget)
        return cls(rows_target=_clampf(rows, policy.rows_floor, policy.rows_cap), budget=budget)


@dataclass(frozen=True)
class Decision:
    """One tick's answer: the plan to write, why, and the state for the next tick."""

    plan: FlightPlan
    rows_in_flight_target: int
    reason: str
    state: AutoscaleState

    def as_dict(self) -> dict[str, object]:
        """The JSON-able form logged and emitted as metrics."""
        return {
            "budget": self.plan.objects_in_flight,
            "rows_in_flight_per_object": self.plan.rows_in_flight_per_object,
            "rows_in_flight_target": self.rows_in_flight_target,
            "reason": self.reason,
            "capacity_estimate": None if self.state.ceiling is None else round(self.state.ceiling, 2),
            "baseline_latency_ms": self.state.baseline_latency_ms,
        }


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _clampf(value: float, low: int, high: int) -> float:
    return max(float(low), min(float(high), value))


def _loss_reason(signals: DownstreamSignals, policy: AutoscalePolicy) -> str | None:
    """Why the downstream (or Lambda) is overloaded, or None."""
    if signals.lambda_throttles > 0:
        return "lambda_throttled"
    requests = max(1, signals.requests)
    if (signals.throttled_429 + signals.timeouts) / requests > policy.loss_tolerance:
        return "throttled" if signals.throttled_429 >= signals.timeouts else "timeouts"
    if signals.errors_5xx / requests > policy.errors_5xx_tolerance:
        return "errors_5xx"
    return None


def _next_rows(
    state: AutoscaleState, backlog: Backlog, signals: DownstreamSignals, policy: AutoscalePolicy
) -> tuple[AutoscaleState, str]:
    """The new total rows in flight R and why."""
    rows = state.rows_target
    baseline = state.baseline_latency_ms
    grown_from, state = state.grown_from, replace(state, grown_from=None)
    latency = signals.latency_ms if signals.requests > 0 else None
    if latency is not None:
        baseline = latency if baseline is None else min(baseline * policy.baseline_drift, latency)
    ratio = None if latency is None or not baseline else latency / baseline
    slow = ratio is not None and ratio > policy.latency_high_ratio
    state = replace(state, baseline_latency_ms=baseline, slow_ticks=state.slow_ticks + 1 if slow else 0)
    if backlog.waiting == 0:
        return state, "idle"
    if state.cooldown_left > 0:
        return replace(state, cooldown_left=state.cooldown_left - 1), "cooldown"
    cut = replace(state, cooldown_left=policy.cooldown_ticks, ticks_at_ceiling=0)
    loss = _loss_reason(signals, policy)
    held = signals.objects_served(backlog)
    if loss is not None and loss != "lambda_throttled" and held * state.share >= rows + held:
        # the objects held now at the share written last tick exceed R (a raised budget's new slots
        # started at the share the fewer running ones had): the loss is the overshoot's, not R's,
        # and this tick re-shares R among them; learning a ceiling from it left R 20 s below C
        return replace(cut, grown_from=grown_from), "overshoot"
    if loss is not None:
        return _cut_on_loss(cut, signals, policy, loss, grown_from), loss
    if slow and baseline and state.slow_ticks >= policy.queueing_ticks:
        # Little: the rows the downstream serves at once at its no-load latency, with the target's
        # queueing on top; a floor that a queue left behind does not lower (its latency stays high
        # for ticks after R was cut: R x 1.15 / ratio every other tick took R from 101 to 1 at C = 20)
        at_target = signals.successes / signals.interval_s * baseline / 1000 * policy.latency_target_ratio
        shrunk = _clampf(max(rows * 0.5, min(rows, at_target)), policy.rows_floor, policy.rows_cap)
        return replace(cut, rows_target=shrunk, ceiling=shrunk, capacity_seen=True, slow_ticks=0), "queueing"
    wanted = backlog.waiting * policy.rows_per_object
    served = signals.served_concurrency()
    # a tick that did not exercise R says nothing of the capacity: the R that last ran clean stands
    # (a hand-over's tick, then the burst of its new slots: cut to R/2 from a depressed figure)
    unexercised = replace(state, grown_from=grown_from)
    if signals.requests == 0:
        return unexercised, "no_signal"  # objects wait (stagger, a new execution)
    # no growth into a rising latency either, but a lone slow tick (630 ms against 500, the
    # machine's hiccup) does not restart the probes from a row per slot
    latency_rising = ratio is not None and ratio > policy.latency_grow_below_ratio
    if latency_rising or _r_not_limiting(state, backlog, held, served):
        return unexercised, "hold"
    if wanted <= rows:
        return state, "hold"
    return _grow(state, served, wanted, policy, grown_from=grown_from, held=held, ratio=ratio)


def _r_not_limiting(state: AutoscaleState, backlog: Backlog, held: int, served: float | None) -> bool:
    """R is not what holds throughput back: less than half of it was served, or slots of the budget
    do not run yet (a raised budget waits for its continuation) and the calls running cannot use R.
    Growing R meanwhile (two slots served 20 of R = 30) took it to 45 for the five slots that
    started next: 253 of 313 requests refused in one tick (capacity step, measured)."""
    rows = state.rows_target
    slots = _slots_that_may_run(state.budget, held, backlog)
    if state.share and held < slots and held * state.share < rows * 0.9:
        return True
    return served is not None and served < rows * 0.5


def _slots_that_may_run(budget: int, held: int, backlog: Backlog) -> int:
    """The budget's slots, or every object held when more; no more than the objects waiting (with
    none waiting, the budget's: the next arrivals may fill them all at once)."""
    return max(1, min(max(budget, held), backlog.waiting or budget))


def _cut_on_loss(
    cut: AutoscaleState,
    signals: DownstreamSignals,
    policy: AutoscalePolicy,
    loss: str,
    grown_from: float | None,
) -> AutoscaleState:
    """R after a loss: x backoff, and just under the capacity estimate (never below R/2)."""
    rows = cut.rows_target
    shrunk = rows * policy.backoff_ratio
    if loss == "lambda_throttled":  # Lambda's limit, not the downstream's: no capacity learnt
        return replace(cut, rows_target=_clampf(shrunk, policy.rows_floor, policy.rows_cap))
    # What the downstream served estimates the capacity, but it lags a rising R (it counts rows that
    # began up to a latency earlier): a loss right after a growth keeps the R that ran clean. Over
    # R it is a miscount (121 requests in a tick at C = 40: an estimate of 50, grown into 6 429s).
    estimate = max(min(signals.served_concurrency() or 0.0, rows), grown_from or 0.0)
    if estimate > 0:
        shrunk = max(rows * 0.5, min(shrunk, estimate * policy.backoff_ratio))
    return replace(
        cut,
        rows_target=_clampf(shrunk, policy.rows_floor, policy.rows_cap),
        ceiling=estimate or shrunk,
        capacity_seen=True,
    )


def _grow(
    state: AutoscaleState,
    served: float | None,
    wanted: int,
    policy: AutoscalePolicy,
    *,
    grown_from: float | None,
    held: int,
    ratio: float | None,
) -> tuple[AutoscaleState, str]:
    """R grown: slow start while C was never seen, halfway to the estimate below it, and probes
    from the estimate (or past a forgotten one), each ``probe_every_ticks`` after the last."""
    rows, ceiling = state.rows_target, state.ceiling
    # R ran clean and was served past the old estimate at about the no-load latency: the capacity
    # rose (the lesser of the two, as one tick's count may read more than the downstream can serve:
    # 12.9 at C = 10, measured). A downstream that queues serves more at once only by queueing
    # more: forgetting its estimate there let R double into a queue (latency 1.8x, queue mode).
    exercised = rows if served is None else min(served, rows)
    quiet = ratio is None or ratio <= (1 + policy.latency_grow_below_ratio) / 2
    if ceiling is not None and quiet and exercised > ceiling * policy.ceiling_forget_ratio:
        ceiling = None
    if ceiling is None and not state.capacity_seen:
        return _grown(state, rows * policy.slow_start_factor, wanted, policy, ceiling), "grow"
    if ceiling is not None and rows < ceiling * policy.backoff_ratio:
        return _grown(state, rows + max(1.0, (ceiling - rows) / 2), wanted, policy, ceiling), "grow"
    if ceiling is not None and state.ticks_at_ceiling + 1 < policy.probe_every_ticks:
        # at the estimate a probe shows its outcome a tick or two late (the processors read R,
        # then their limits climb to it; locally a tick is two round trips): wait for it, keeping
        # the R that ran clean. Past a forgotten one C rose: regrowth does not wait (every other
        # tick took the capacity step's rise 17 s), and the loss that ends it cuts back to the R
        # the growth before it started from
        return replace(state, grown_from=grown_from, ticks_at_ceiling=state.ticks_at_ceiling + 1), "hold"
    # A probe adds a row per slot (less leaves every share as it was). Once the estimate is
    # forgotten (C rose), each probe that ran clean doubles the next, up to x regrowth_factor, so a
    # risen capacity is found in a few probes (+1, then +15 % a tick, took R from 10 to 40 in
    # 15-27 s); at a steady one each probe passes it by a row per slot (doubling past the estimate
    # itself, which the loss tick's count puts a little under C, overshot C = 10 by 2 a cycle).
    # Past what the running calls can take (each at most max_rows_per_object) a row more raises
    # the budget: beyond that R is a blind guess until the continuation's slots run it (R = 48 for
    # a call capped at 40: 10 refusals at the hand-over).
    slots = float(max(1, state.budget))
    last_step = state.probe_step if grown_from is not None and ceiling is None else 0.0
    step = min(max(slots, 2 * last_step), max(slots, rows * (policy.regrowth_factor - 1)))
    # (the continuation's slots then probe afresh: doubling across the hand-over jumped R 41 -> 53)
    most = float(max(1, held) * policy.max_rows_per_object)
    decided = _grown(state, min(rows + step, max(rows, most) + 1.0), wanted, policy, ceiling)
    blind = decided.rows_target > most
    return replace(decided, probe_step=0.0 if blind else decided.rows_target - rows), (
        "probe" if ceiling is not None else "regrow"
    )


def _grown(
    state: AutoscaleState, grown: float, wanted: int, policy: AutoscalePolicy, ceiling: float | None
) -> AutoscaleState:
    """R grown to ``grown`` (at least a row, at most the rows the backlog wants)."""
    rows = state.rows_target
    grown = min(max(grown, rows + 1.0), float(wanted))
    return replace(
        state,
        rows_target=_clampf(grown, policy.rows_floor, policy.rows_cap),
        ceiling=ceiling,
        grown_from=rows,
        ticks_at_ceiling=0,
        probe_step=0.0,
    )


def _next_budget(
    state: AutoscaleState, backlog: Backlog, policy: AutoscalePolicy, lambda_throttled: bool
) -> AutoscaleState:
    """The new objects in flight B: grows at once, shrinks after holding ``budget_hold_ticks``."""
    wanted = min(math.ceil(state.rows_target / policy.rows_per_object), backlog.waiting)
    if wanted < state.budget and not lambda_throttled:
        # shrink only past a tolerance (as the HPA's 10 %): R near a multiple does not flap B
        roomy = math.ceil(state.rows_target / (policy.rows_per_object * (1 - policy.budget_tolerance)))
        wanted = max(wanted, min(roomy, state.budget, backlog.waiting))
    if lambda_throttled:
        wanted = min(wanted, state.budget - 1)
    wanted = _clamp(wanted, policy.budget_floor, policy.budget_cap)
    settle_left = max(0, state.settle_left - 1)
    settle_budget = state.settle_budget if settle_left > 0 else 0
    if wanted >= state.budget:
        return replace(
            state, budget=wanted, lower_budget_ticks=0, settle_left=settle_left, settle_budget=settle_budget
        )
    lower_ticks = state.lower_budget_ticks + 1
    if lower_ticks < policy.budget_hold_ticks and not lambda_throttled:
        return replace(
            state, lower_budget_ticks=lower_ticks, settle_left=settle_left, settle_budget=settle_budget
        )
    return replace(
        state,
        budget=wanted,
        lower_budget_ticks=0,
        settle_budget=state.budget,
        settle_left=policy.budget_settle_ticks,
    )


def decide(
    state: AutoscaleState, backlog: Backlog, signals: DownstreamSignals, policy: AutoscalePolicy
) -> Decision:
    """One tick of the control law (see the module docstring)."""
    state, reason = _next_rows(state, backlog, signals, policy)
    state = _next_budget(state, backlog, policy, reason == "lambda_throttled")
    rows_target = max(policy.rows_floor, math.floor(state.rows_target))
    # R is shared among every slot of the new budget, even before a running execution takes it
    # (at its next one): sharing among the objects held now let the slots a raised budget adds take
    # the same share before the next tick re-shared R (B x r > R: 429s). Until then R is partly
    # unused ("served < R/2" holds it): fewer rows, never more than R. After a lowered budget the
    # old execution's slots may run on (settling): they share R while their objects are held, and
    # once they ended (fewer objects held) the new budget's slots take all of R again.
    # More objects held than the budget (a lowered budget's execution still running, a budget set
    # by hand or provisioned before the first tick): they all share R. Measured: 10 slots from the
    # provisioned budget ran 40 s while the law shared R among its 2, 33 % of requests 429.
    held = signals.objects_served(backlog)
    # nothing waiting: the next arrivals may fill every slot of the budget at once, each at its share
    # (an idle share of all of R let two objects arriving together start at R each: 429s)
    slots = _slots_that_may_run(state.budget, held, backlog)
    running = max(1, min(held, slots)) if held else slots
    # within the allowance the share rounds up: R = 9 over 5 slots is 2 rows each, not 1 (a floor
    # left 44 % of R unused, measured); at share_overshoot 1 it stays ⌊R / slots⌋
    share = min(math.ceil(rows_target / running), math.floor(policy.share_overshoot * rows_target / slots))
    per_object = _clamp(share, 1, policy.max_rows_per_object)
    if policy.pinned:
        reason = "pinned"
    return Decision(
        plan=FlightPlan(objects_in_flight=state.budget, rows_in_flight_per_object=per_object),
        rows_in_flight_target=rows_target,
        reason=reason,
        state=replace(state, share=per_object),
    )
