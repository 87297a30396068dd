"""The breaker for systemic rejections: when one permanent status refuses most recent rows, stop.

A rotated API key, a wrong URL or a revoked permission refuses every row the same way (401, 403,
404, 410, 413...). Sending each of those rows to the failed-rows sink turns one configuration error
into as many failed rows as the object has. The breaker watches the last ``window`` settled rows of
an object: once at least ``min_rows`` of them are in the window and one permanent status refuses
``ratio`` of them or more, the processor stops the object (:attr:`RowAction.STOP
<s3stagger.domain.delivery.RowAction.STOP>`) and the rows stay unsent for a redrive.

So that a stopped object leaves nothing in the sink for that cause, a refused row is *held* while
it is in the window: it is released to the sink (:meth:`RejectionWindow.settle` returns it) only
when enough later rows have settled to push it out of the window without the breaker tripping, or
when the object ends (:meth:`RejectionWindow.release_all`). Memory stays bounded by ``window``.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass
from typing import Generic, TypeVar

Held = TypeVar("Held")


@dataclass(frozen=True)
class BreakerSettings:
    window: int = 20
    """How many of the most recently settled rows are looked at."""
    ratio: float = 0.8
    """The share of the window one status must refuse to trip the breaker."""
    min_rows: int = 5
    """No trip before this many rows have settled (a tiny object's single refusal is isolated)."""

    def __post_init__(self) -> None:
        if self.window < 1 or not 1 <= self.min_rows <= self.window:
            raise ValueError(f"breaker needs 1 <= min_rows <= window, got {self.min_rows} and {self.window}")
        if not 0 < self.ratio <= 1:
            raise ValueError(f"breaker ratio must be in (0, 1], got {self.ratio}")


class RejectionWindow(Generic[Held]):
    """The last ``window`` settled rows of an object and the refusals among them."""

    def __init__(self, settings: BreakerSettings) -> None:
        self._settings = settings
        self._recent: deque[tuple[int | None, Held | None]] = deque()
        self._refusals: Counter[int] = Counter()

    def would_trip(self, status: int) -> bool:
        """Whether one more row refused with ``status`` would make ``status`` refuse most recent rows."""
        settings = self._settings
        rows = min(len(self._recent) + 1, settings.window)
        dropped = self._recent[0][0] if len(self._recent) + 1 > settings.window else None
        refused = self._refusals[status] + 1 - (dropped == status)
        return rows >= settings.min_rows and refused >= math.ceil(settings.ratio * rows)

    def settle(self, refused_status: int | None, held: Held | None = None) -> list[Held]:
        """Count one settled row (``refused_status`` when refused, holding ``held``); return the
        held rows pushed out of the window, which are isolated refusals now."""
        self._recent.append((refused_status, held))
        if refused_status is not None:
            self._refusals[refused_status] += 1
        released: list[Held] = []
        while len(self._recent) > self._settings.window:
            status, item = self._recent.popleft()
            if status is not None:
                self._refusals[status] -= 1
            if item is not None:
                released.append(item)
        return released

    def release_all(self) -> list[Held]:
        """The rows still held (the object ended without a trip): isolated refusals."""
        held = [item for _, item in self._recent if item is not None]
        self._recent.clear()
        self._refusals.clear()
        return held
