"""How much is in flight at once: objects (dispatcher slots) and rows per object (processor).

The one place that sizes both, so the downstream's capacity C is shared out and never exceeded by
design: ``objects_in_flight`` x ``rows_in_flight_per_object`` <= C whenever C >= the budget.
:func:`plan_flight` is the pinned sizing (a known C, a fixed budget: ``C // budget`` rows per
object); the autoscaler's control law (:func:`s3stagger.domain.autoscale.decide`) returns the same
:class:`FlightPlan`, adapted every tick to the downstream's answers (docs/autoscaling.md).

Where the figures go: ``objects_in_flight`` is the concurrency budget (the SSM parameter the
dispatcher reads as its number of slots); ``rows_in_flight_per_object`` is the processor's
``S3STAGGER_MAX_CONCURRENCY`` (its environment), the ceiling of its adaptive (AIMD) limit — or,
with the autoscaler, the flight parameter's ``rows_in_flight_per_object``, asked before every
request.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FlightPlan:
    objects_in_flight: int
    """Dispatcher slots: objects processed at once (the concurrency budget)."""
    rows_in_flight_per_object: int
    """Requests one processor invocation keeps in flight at most."""

    @property
    def rows_in_flight(self) -> int:
        """The most requests the downstream can see at once."""
        return self.objects_in_flight * self.rows_in_flight_per_object


def plan_flight(downstream_capacity: int, budget: int) -> FlightPlan:
    """``budget`` objects at once, each with an equal share of ``downstream_capacity`` (at least 1)."""
    if downstream_capacity < 1:
        raise ValueError(f"downstream_capacity={downstream_capacity} must be >= 1")
    if budget < 1:
        raise ValueError(f"budget={budget} must be >= 1")
    share = max(1, downstream_capacity // budget)
    return FlightPlan(objects_in_flight=budget, rows_in_flight_per_object=share)


def execution_share(
    per_object: int | None, rows_target: int | None, execution_slots: int | None, most: int
) -> int | None:
    """Rows in flight for one call of a dispatcher execution of ``execution_slots`` slots.

    The autoscaler's ``per_object`` share divides R (``rows_target``) among the slots of its newest
    budget. An execution runs the slots it started with until it hands over, and executions do not
    overlap (one holds the lease, its continuation starts once its slots have ended), so its calls
    may take R / its own slots: a raised budget's share no longer thins the running calls for the
    seconds before its continuation runs the new slots (measured: one call at 11 of R = 22 for 4 s).
    At most ``most``; None: the autoscaler set no share.
    """
    if per_object is None or rows_target is None or execution_slots is None:
        return per_object
    return min(most, max(per_object, rows_target // execution_slots))


MAX_ROWS_VARIABLE = "S3STAGGER_MAX_CONCURRENCY"
INITIAL_ROWS_VARIABLE = "S3STAGGER_INITIAL_CONCURRENCY"


def pinned_processor_environment(plan: FlightPlan) -> dict[str, str]:
    """The processor's environment for a pinned plan: at most ``rows_in_flight_per_object`` rows in
    flight, and that many from the first request. The budget already shares C out, so the adaptive
    limit need not climb to its share object after object (from 2, each invocation would lose its
    first rounds doing so); it still backs off on a 429."""
    rows = str(plan.rows_in_flight_per_object)
    return {MAX_ROWS_VARIABLE: rows, INITIAL_ROWS_VARIABLE: rows}
