"""The dispatcher's deadline for one processor call: the processor answers before it.

An Express execution lasts at most 5 minutes, so the dispatcher gives every processor call the
end of its execution's time budget. ASL has no date arithmetic, so the invoke payload carries the
moment the budget started and its length, ``{"deadline": {"started_at": <ISO 8601>, "after_s": N}}``,
and the absolute deadline is ``started_at + after_s``. The processor stops taking rows at
``min(Lambda's remaining time, time to the deadline)`` less its margin, answers PARTIAL with a
cursor, and says ``deadline_reached`` once less than its margin is left, so the dispatcher's slot
takes no further message.

The payload also carries the concurrency budget parameter as the execution read it (``"budget": N``;
null when it fell back to its default, and anything but a count, is not known). Once the autoscaler
raised the budget above it, the execution's time is up early (:class:`OutgrownBudget`): its calls
take rows ``grace_s`` more, then answer (PARTIAL with a cursor if rows are left) with
``deadline_reached``, its slots end, and its continuation starts with the new budget's slots. A
raised budget reaches the downstream within a tick and ``grace_s`` instead of at the next execution
(up to ``time_budget_s`` later).

Once the autoscaler lowered the budget below it (:class:`LoweredBudget`), each call finishes its
object, takes no further message and says ``deadline_reached``: the slots end one by one at their
objects' ends, and the continuation starts with the fewer slots. Ending only the surplus slots would
keep the others running, but the execution would still count its first budget, and a budget raised
again to it would leave the slots missing with nothing to end the execution.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from s3stagger.domain.model import InvalidRequestError

Clock = Callable[[], float]
"""Seconds since the epoch (``time.time``)."""
RemainingTime = Callable[[], float | None]


@dataclass(frozen=True)
class DispatchDeadline:
    """An absolute deadline, in seconds since the epoch."""

    at_epoch_s: float
    budget: int | None = None
    """The concurrency budget parameter as the dispatcher's execution read it (None: not known)."""
    started_at_s: float | None = None
    """When the execution's time budget began (seconds since the epoch)."""

    @classmethod
    def from_event(cls, event: Any) -> DispatchDeadline | None:
        """The deadline of an invoke payload; ``None`` when it carries none (a direct invocation)."""
        if not isinstance(event, Mapping) or event.get("deadline") is None:
            return None
        spec = event["deadline"]
        try:
            started = dt.datetime.fromisoformat(str(spec["started_at"]))
            after_s = spec["after_s"]
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidRequestError(
                f"deadline must be {{'started_at': <ISO 8601>, 'after_s': <seconds>}}: {error}"
            ) from None
        if isinstance(after_s, bool) or not isinstance(after_s, int | float) or after_s < 0:
            raise InvalidRequestError(f"deadline after_s must be a number >= 0, got {after_s!r}")
        budget = spec.get("budget")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            budget = None  # the parameter as the dispatcher read it: anything but a count is unknown
        if started.tzinfo is None:
            started = started.replace(tzinfo=dt.UTC)
        return cls(started.timestamp() + float(after_s), budget, started.timestamp())

    def remaining_s(self, clock: Clock = time.time) -> float:
        return self.at_epoch_s - clock()


class LoweredBudget:
    """Whether the autoscaler lowered the budget below the execution's (its slots end at their
    objects' ends). ``current_budget`` is the autoscaler's latest budget (None: unknown). Once
    lowered it stays lowered: the calls stopped taking messages, a budget raised again is the
    continuation's."""

    def __init__(self, execution_budget: int, current_budget: Callable[[], int | None]) -> None:
        self._execution_budget = execution_budget
        self._current_budget = current_budget
        self._lowered = False

    @property
    def lowered(self) -> bool:
        if not self._lowered:
            current = self._current_budget()
            self._lowered = current is not None and current < self._execution_budget
        return self._lowered


class OutgrownBudget:
    """The moment a call learnt that the budget outgrew its execution's, and the time left after it.

    ``current_budget`` is the autoscaler's latest budget (None: unknown); it is asked until it
    exceeds ``execution_budget`` once, and from then the call has ``grace_s`` more seconds than its
    ``margin_s`` (the processor stops taking rows once less than its margin remains).
    """

    def __init__(
        self,
        execution_budget: int,
        current_budget: Callable[[], int | None],
        grace_s: float,
        margin_s: float,
        clock: Clock = time.time,
    ) -> None:
        self._execution_budget = execution_budget
        self._current_budget = current_budget
        self._left_after_s = grace_s + margin_s
        self._clock = clock
        self.noticed_at: float | None = None

    def remaining_s(self) -> float | None:
        """Seconds left to the early end; None while the budget did not outgrow the execution's."""
        if self.noticed_at is None:
            current = self._current_budget()
            if current is None or current <= self._execution_budget:
                return None
            self.noticed_at = self._clock()
        return self.noticed_at + self._left_after_s - self._clock()


def bounded_remaining(
    remaining: RemainingTime | None,
    deadline: DispatchDeadline | None,
    clock: Clock = time.time,
    outgrown: OutgrownBudget | None = None,
) -> RemainingTime | None:
    """Seconds left: the smallest of ``remaining()`` (the invocation's), the time to ``deadline``
    and, once the budget outgrew the execution's, the time to the early end."""
    if deadline is None:
        return remaining

    def left() -> float:
        limits = [deadline.remaining_s(clock)]
        if remaining is not None and (own := remaining()) is not None:
            limits.append(own)
        if outgrown is not None and (early := outgrown.remaining_s()) is not None:
            limits.append(early)
        return min(limits)

    return left
