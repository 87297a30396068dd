"""The stagger policy: how long an item of a dispatched batch waits before its processor call.

The dispatcher state machine computes the same thing with ASL intrinsic functions (it has
addition but no multiplication, so it builds the table ``States.ArrayRange(0, max_delay_s,
spacing_s)`` and picks ``offsets[min(index, len - 1)]``); a test runs the ASL over a grid of
inputs in the emulator and checks that it equals :meth:`StaggerPolicy.delay_s`.

The formula, for item ``index`` (0-based position in the batch) of a batch received from the queue
of ``priority`` when ``queue_depth`` messages were still waiting::

    delay_s = 0                                              if queue_depth >= backlog_depth
            = 0                                              if spacing_s(priority) == 0
            = min(index, max_delay_s // spacing_s) * spacing_s   otherwise

Why: when the queue is shallow a burst of uploads would otherwise hit the downstream all at once,
so starts are spread ``spacing_s`` apart (never longer than ``max_delay_s``). Behind a backlog the
downstream is busy anyway and the concurrency budget is what limits load, so waiting would only
lower throughput. A priority whose spacing is 0 (default: ``high``) is never delayed. Delays are
whole seconds because an ASL Wait state counts whole seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from s3stagger.errors import S3StaggerError

MAX_OFFSETS = 1000
"""``States.ArrayRange`` returns at most 1,000 items, so ``max_delay_s // spacing_s`` must stay below it."""


class StaggerPolicyError(S3StaggerError, ValueError):
    """The stagger settings are not usable; the message says which one and why."""


@dataclass(frozen=True)
class PrioritySpacing:
    """Spacing between starts for one priority, in whole seconds."""

    spacing_s: int
    max_delay_s: int

    def __post_init__(self) -> None:
        for name in ("spacing_s", "max_delay_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise StaggerPolicyError(f"{name}={value!r} must be a whole number of seconds >= 0")
        if self.spacing_s > 0 and self.max_delay_s // self.spacing_s >= MAX_OFFSETS:
            raise StaggerPolicyError(
                f"max_delay_s // spacing_s = {self.max_delay_s // self.spacing_s} must be below "
                f"{MAX_OFFSETS} (States.ArrayRange limit)"
            )


@dataclass(frozen=True)
class StaggerPolicy:
    """Delay before an item's processor call, from its index, the queue depth and its priority."""

    backlog_depth: int
    priorities: Mapping[str, PrioritySpacing] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.backlog_depth, bool) or not isinstance(self.backlog_depth, int):
            raise StaggerPolicyError(f"backlog_depth={self.backlog_depth!r} must be an integer")
        if self.backlog_depth < 0:
            raise StaggerPolicyError(f"backlog_depth={self.backlog_depth} must be >= 0")

    @classmethod
    def from_definition(cls, stagger: Mapping[str, Any]) -> StaggerPolicy:
        """Build from the ``stagger`` object of ``definitions/dispatcher.json``."""
        try:
            priorities = {
                name: PrioritySpacing(spacing_s=spec["spacing_s"], max_delay_s=spec["max_delay_s"])
                for name, spec in stagger["priorities"].items()
            }
            return cls(backlog_depth=stagger["backlog_depth"], priorities=priorities)
        except KeyError as missing:
            raise StaggerPolicyError(f"stagger definition lacks {missing}") from None

    def offsets(self, priority: str) -> list[int]:
        """The delays an item may get, by index: what the ASL's ``States.ArrayRange`` builds."""
        spacing = self._spacing(priority)
        if spacing.spacing_s == 0:
            return [0]
        return list(range(0, spacing.max_delay_s + 1, spacing.spacing_s))

    def delay_s(self, index: int, queue_depth: int, priority: str) -> int:
        """Seconds item ``index`` of a batch from ``priority``'s queue waits, ``queue_depth`` waiting."""
        if index < 0:
            raise StaggerPolicyError(f"index={index} must be >= 0")
        if queue_depth < 0:
            raise StaggerPolicyError(f"queue_depth={queue_depth} must be >= 0")
        spacing = self._spacing(priority)
        if queue_depth >= self.backlog_depth or spacing.spacing_s == 0:
            return 0
        return min(index, spacing.max_delay_s // spacing.spacing_s) * spacing.spacing_s

    def _spacing(self, priority: str) -> PrioritySpacing:
        try:
            return self.priorities[priority]
        except KeyError:
            known = ", ".join(sorted(self.priorities)) or "none"
            raise StaggerPolicyError(f"unknown priority {priority!r} (known: {known})") from None
