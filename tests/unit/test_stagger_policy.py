from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3stagger import definitions
from s3stagger.domain.stagger import MAX_OFFSETS, PrioritySpacing, StaggerPolicy, StaggerPolicyError


def policy(spacing: int = 2, max_delay: int = 7, backlog: int = 20) -> StaggerPolicy:
    return StaggerPolicy(
        backlog_depth=backlog,
        priorities={
            "high": PrioritySpacing(spacing_s=0, max_delay_s=0),
            "normal": PrioritySpacing(spacing_s=spacing, max_delay_s=max_delay),
        },
    )


def test_spreads_items_by_spacing_until_the_cap() -> None:
    delays = [policy().delay_s(index, queue_depth=3, priority="normal") for index in range(6)]
    # spacing 2, cap 7 -> the largest multiple of 2 not above 7 is 6
    assert delays == [0, 2, 4, 6, 6, 6]


def test_no_stagger_behind_a_backlog() -> None:
    assert policy().delay_s(5, queue_depth=20, priority="normal") == 0
    assert policy().delay_s(5, queue_depth=19, priority="normal") == 6


def rising(after_s: int | None, backlog: int = 20) -> Callable[[int], int]:
    """A queue of 3 messages that holds ``backlog`` from ``after_s`` seconds on (None: never)."""
    return lambda s: backlog if after_s is not None and s >= after_s else 3


@pytest.mark.parametrize(
    ("slot", "backlog_after_s", "waited"),
    [
        (3, None, 6),  # no backlog: the whole delay, in steps of 2 s
        (3, 2, 2),  # a backlog read after the first step ends the wait
        (3, 3, 4),  # formed between two reads: seen before the next step
        (3, 6, 6),  # formed as the delay ends: nothing to cut
        (0, 1, 0),
        (3, 0, 0),  # there at the receive: no wait (delay_s)
    ],
)
def test_a_backlog_that_forms_during_the_wait_ends_it(
    slot: int, backlog_after_s: int | None, waited: int
) -> None:
    assert policy().waited_s(slot, rising(backlog_after_s), "normal") == waited


def test_the_whole_wait_is_the_delay_when_the_depth_stays() -> None:
    for slot in range(6):
        for depth in (0, 19, 20):
            expected = policy().delay_s(slot, depth, "normal")
            assert policy().waited_s(slot, lambda _s, depth=depth: depth, "normal") == expected
    assert policy().waited_s(3, rising(None), "normal", first_in_slot=False) == 0
    assert policy().waited_s(3, rising(None), "high") == 0


def test_a_priority_with_zero_spacing_is_never_delayed() -> None:
    assert [policy().delay_s(i, 0, "high") for i in range(4)] == [0, 0, 0, 0]
    assert policy().offsets("high") == [0]


def test_offsets_are_what_states_array_range_builds() -> None:
    assert policy(spacing=3, max_delay=10).offsets("normal") == [0, 3, 6, 9]


@given(
    spacing=st.integers(min_value=0, max_value=30),
    max_delay=st.integers(min_value=0, max_value=300),
    backlog=st.integers(min_value=0, max_value=100),
    index=st.integers(min_value=0, max_value=50),
    depth=st.integers(min_value=0, max_value=200),
)
def test_delay_is_bounded_whole_and_monotonic_in_index(
    spacing: int, max_delay: int, backlog: int, index: int, depth: int
) -> None:
    rule = policy(spacing, max_delay, backlog)
    delay = rule.delay_s(index, depth, "normal")
    assert 0 <= delay <= max_delay
    assert delay <= rule.delay_s(index + 1, depth, "normal")
    assert delay in rule.offsets("normal")
    if spacing:
        assert delay % spacing == 0


def test_unknown_priority_names_the_known_ones() -> None:
    with pytest.raises(StaggerPolicyError, match=r"unknown priority 'urgent' \(known: high, normal\)"):
        policy().delay_s(0, 0, "urgent")


@pytest.mark.parametrize(("slot", "depth"), [(-1, 0), (0, -1)])
def test_negative_inputs_are_refused(slot: int, depth: int) -> None:
    with pytest.raises(StaggerPolicyError, match="must be >= 0"):
        policy().delay_s(slot, depth, "normal")


@pytest.mark.parametrize(
    ("spacing", "max_delay", "message"),
    [
        (-1, 5, "spacing_s=-1"),
        (1, -5, "max_delay_s=-5"),
        (1.5, 5, "spacing_s=1.5"),
        (True, 5, "spacing_s=True"),
        (1, MAX_OFFSETS, "States.ArrayRange limit"),
    ],
)
def test_bad_spacing_is_refused_with_the_setting_named(
    spacing: object, max_delay: object, message: str
) -> None:
    with pytest.raises(StaggerPolicyError, match=message):
        PrioritySpacing(spacing_s=spacing, max_delay_s=max_delay)  # type: ignore[arg-type]


@pytest.mark.parametrize("backlog", [-1, "20", 2.0])
def test_bad_backlog_depth_is_refused(backlog: object) -> None:
    with pytest.raises(StaggerPolicyError, match="backlog_depth"):
        StaggerPolicy(backlog_depth=backlog, priorities={})  # type: ignore[arg-type]


def test_built_from_the_shipped_dispatcher_definition() -> None:
    stagger = definitions.read_json("dispatcher.json")["stagger"]
    rule = StaggerPolicy.from_definition(stagger)
    assert set(rule.priorities) == set(definitions.read_json("queues.json")["priorities"])
    assert rule.backlog_depth == stagger["backlog_depth"]


def test_a_definition_missing_a_key_names_it() -> None:
    with pytest.raises(StaggerPolicyError, match="lacks 'backlog_depth'"):
        StaggerPolicy.from_definition({"priorities": {}})
    with pytest.raises(StaggerPolicyError, match="lacks 'max_delay_s'"):
        StaggerPolicy.from_definition({"backlog_depth": 1, "priorities": {"normal": {"spacing_s": 1}}})


def test_only_a_slots_first_message_waits() -> None:
    assert policy().delay_s(3, queue_depth=0, priority="normal") == 6
    assert policy().delay_s(3, queue_depth=0, priority="normal", first_in_slot=False) == 0
