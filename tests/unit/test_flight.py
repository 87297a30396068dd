import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3stagger.domain.flight import FlightPlan, execution_share, pinned_processor_environment, plan_flight


def test_the_demo_sizing_fills_the_capacity_exactly() -> None:
    plan = plan_flight(downstream_capacity=20, budget=10)
    assert plan == FlightPlan(objects_in_flight=10, rows_in_flight_per_object=2)
    assert plan.rows_in_flight == 20


@given(capacity=st.integers(1, 500), budget=st.integers(1, 40))
def test_never_above_capacity_unless_the_budget_is(capacity: int, budget: int) -> None:
    plan = plan_flight(capacity, budget)
    assert plan.objects_in_flight == budget
    assert plan.rows_in_flight_per_object >= 1
    assert plan.rows_in_flight <= max(capacity, budget)


@pytest.mark.parametrize(("capacity", "budget"), [(0, 1), (1, 0)])
def test_nonsense_is_refused(capacity: int, budget: int) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        plan_flight(capacity, budget)


def test_a_pinned_plan_starts_the_processor_at_its_share() -> None:
    assert pinned_processor_environment(plan_flight(20, 4)) == {
        "S3STAGGER_MAX_CONCURRENCY": "5",
        "S3STAGGER_INITIAL_CONCURRENCY": "5",
    }


@pytest.mark.parametrize(
    ("per_object", "rows_target", "slots", "expected"),
    [
        (11, 22, 1, 22),  # a raised budget (2) not running yet: the execution's one call takes all of R
        (14, 44, 2, 22),  # budget 3 on the way: its two running calls share R between them
        (10, 20, 2, 10),  # the budget the execution runs: the autoscaler's share
        (5, 20, 4, 5),  # a lowered budget's execution still runs 4 slots: no more than R / 4 each
        (9, 9, 2, 9),  # fewer calls than slots: the autoscaler's larger share stands
        (30, 100, 1, 40),  # never above the connections a call keeps
        (6, None, 2, 6),  # R unknown
        (6, 20, None, 6),  # not a dispatcher's call
        (None, 20, 2, None),  # no share set: the configured ceiling
    ],
)
def test_a_call_may_take_r_over_its_executions_slots(
    per_object: int | None, rows_target: int | None, slots: int | None, expected: int | None
) -> None:
    assert execution_share(per_object, rows_target, slots, most=40) == expected


@given(
    rows_target=st.integers(1, 400),
    slots=st.integers(1, 40),
    per_object=st.integers(1, 40),
)
def test_an_executions_calls_never_exceed_r_beyond_the_autoscalers_share(
    rows_target: int, slots: int, per_object: int
) -> None:
    share = execution_share(per_object, rows_target, slots, most=40)
    assert share is not None
    assert slots * share <= max(rows_target, slots * per_object)
