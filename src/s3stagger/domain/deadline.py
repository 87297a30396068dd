"""The dispatcher's deadline for one processor call: the processor answers before it.

An Express execution lasts at most 5 minutes, so the dispatcher gives every processor call the
end of its execution's time budget. ASL has no date arithmetic, so the invoke payload carries the
moment the budget started and its length, ``{"deadline": {"started_at": <ISO 8601>, "after_s": N}}``,
and the absolute deadline is ``started_at + after_s``. The processor stops taking rows at
``min(Lambda's remaining time, time to the deadline)`` less its margin, answers PARTIAL with a
cursor, and says ``deadline_reached`` once less than its margin is left, so the dispatcher's slot
takes no further message.
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
        if started.tzinfo is None:
            started = started.replace(tzinfo=dt.UTC)
        return cls(started.timestamp() + float(after_s))

    def remaining_s(self, clock: Clock = time.time) -> float:
        return self.at_epoch_s - clock()


def bounded_remaining(
    remaining: RemainingTime | None, deadline: DispatchDeadline | None, clock: Clock = time.time
) -> RemainingTime | None:
    """Seconds left: the smaller of ``remaining()`` (the invocation's) and the time to ``deadline``."""
    if deadline is None:
        return remaining

    def left() -> float:
        own = remaining() if remaining is not None else None
        to_deadline = deadline.remaining_s(clock)
        return to_deadline if own is None else min(own, to_deadline)

    return left
