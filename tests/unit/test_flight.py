import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3stagger.domain.flight import FlightPlan, pinned_processor_environment, plan_flight


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
