"""The stagger policy: how long a dispatcher slot waits before the processor call of its first message.

The dispatcher runs ``budget`` slots at once; each takes one message after another. Only a slot's
first message of a scheduled execution waits, offset by the slot's index, so the slots' first
starts are spread; afterwards a slot takes its next message the moment the previous object is done
(the budget is what limits the load then). A continuation message (one carrying a cursor) is never
delayed again, nor is any message of a continuation execution (generation > 0): it carries on
slots that were running a moment before, so the downstream is not starting cold.

The dispatcher state machine computes the same thing with ASL intrinsic functions (it has
addition but no multiplication, so it builds the table ``States.ArrayRange(0, max_delay_s,
spacing_s)`` and picks ``offsets[min(slot, len - 1)]``) and waits in steps of ``spacing_s``; a test
runs the shipped states over a grid of inputs in the emulator and checks that they equal
:meth:`StaggerPolicy.waited_s`.

The formula, for the first message of slot ``slot`` (0-based), received from the queue of
``priority`` when ``queue_depth`` messages were still waiting::

    delay_s = 0                                              if not its slot's first message
                                                             of a scheduled execution
            = 0                                              if queue_depth >= backlog_depth
            = 0                                              if spacing_s(priority) == 0
            = min(slot, max_delay_s // spacing_s) * spacing_s    otherwise

The slot waits that long in steps of ``spacing_s`` and reads the queue's depth again before each
further step: the wait ends early once ``queue_depth >= backlog_depth`` (:meth:`waited_s`).

Why: when the queue is shallow a burst of uploads would otherwise hit the downstream all at once,
so first starts are spread ``spacing_s`` apart (never longer than ``max_delay_s``). Behind a
backlog the downstream is busy anyway and the concurrency budget is what limits load, so waiting
would only lower throughput — also when the backlog forms during the wait: the first slots of a
batch upload receive while the rest of it is still arriving (measured on the demo workload: 90 of
its 100 messages queued 0.8 s after the first upload, while slots 2 to 4 waited 2 to 4 s). A
priority whose spacing is 0 (default: ``high``) is never delayed. Delays are whole seconds because
an ASL Wait state counts whole seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    """Delay before a slot's first processor call, from the slot index, the queue depth and the priority."""

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
        """The delays a slot may get, by slot index: what the ASL's ``States.ArrayRange`` builds."""
        spacing = self._spacing(priority)
        if spacing.spacing_s == 0:
            return [0]
        return list(range(0, spacing.max_delay_s + 1, spacing.spacing_s))

    def delay_s(self, slot: int, queue_depth: int, priority: str, *, first_in_slot: bool = True) -> int:
        """Seconds slot ``slot`` waits before calling the processor for a message from ``priority``'s
        queue, ``queue_depth`` messages waiting; only a slot's first message of a scheduled
        execution waits (``first_in_slot``; a continuation execution's are never first)."""
        if slot < 0:
            raise StaggerPolicyError(f"slot={slot} must be >= 0")
        if queue_depth < 0:
            raise StaggerPolicyError(f"queue_depth={queue_depth} must be >= 0")
        spacing = self._spacing(priority)
        if not first_in_slot or queue_depth >= self.backlog_depth or spacing.spacing_s == 0:
            return 0
        return min(slot, spacing.max_delay_s // spacing.spacing_s) * spacing.spacing_s

    def waited_s(
        self,
        slot: int,
        depth_after: Callable[[int], int],
        priority: str,
        *,
        first_in_slot: bool = True,
    ) -> int:
        """Seconds slot ``slot`` waits when ``depth_after(s)`` messages wait in ``priority``'s queue
        after ``s`` seconds of its wait (``s = 0``: at the receive): :meth:`delay_s` of the depth
        at the receive, in steps of ``spacing_s``, ended early by a backlog read before a step."""
        planned = self.delay_s(slot, depth_after(0), priority, first_in_slot=first_in_slot)
        spacing = self._spacing(priority).spacing_s
        waited = 0
        while waited < planned:
            waited += spacing
            if waited < planned and depth_after(waited) >= self.backlog_depth:
                break
        return waited

    def _spacing(self, priority: str) -> PrioritySpacing:
        try:
            return self.priorities[priority]
        except KeyError:
            known = ", ".join(sorted(self.priorities)) or "none"
            raise StaggerPolicyError(f"unknown priority {priority!r} (known: {known})") from None
