"""Figures of a performance run from its samples; pure, no I/O.

A run is sampled every fraction of a second (:class:`Sample`): cumulative downstream counters (rows
applied, requests, 429s), what is in flight now (downstream requests, processor invocations), the
queue depth by priority and the dispatcher's slots (its budget). The figures:

- **utilization** — rows applied per second over the run ÷ C / L;
- **rate_429** — 429 answers ÷ downstream requests;
- **moments over capacity** — samples with more requests in service (or waiting in the downstream's
  queue) than its capacity;
- **idle_slot_fraction_with_backlog** — of the slot-seconds that passed while messages were visible
  (waiting) in a queue, the share in which a slot was idle although a waiting message could have
  used it. A slot is busy while it holds a message: from its receive to its delete, including its
  stagger wait and the orchestration around each call (each slot holds at most one message, so
  the busy slots are ``min(slots, max(invocations in flight, messages in flight))``). Per sample,
  ``min(slots - busy, visible messages)`` idle slots over ``slots``, weighted by the time to the
  next sample. 0 means no message ever waited for a free slot. Undefined (``None``) for a
  dispatcher without slots (no stagger) or without any backlog. A message released for a retry
  delay after a failure is in flight without a slot and counts as held (failures only);
- **slot_fraction_not_invoking_with_backlog** — the same share with a slot counted busy only while
  its processor invocation runs: the stagger waits and the per-object orchestration (receive,
  visibility, delete) count as idle here. The gap between the two is the dispatcher's overhead.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise


@dataclass(frozen=True)
class Sample:
    """One look at a running pipeline."""

    t: float
    """Seconds since the first upload began."""
    rows_applied: int
    downstream_requests: int
    throttled_429: int
    downstream_in_flight: int
    downstream_queued: int
    capacity: int
    invocations_in_flight: int
    slots: int | None
    """The dispatcher's budget (objects at once); ``None``: unbounded."""
    queue_visible: Mapping[str, int] = field(default_factory=dict)
    queue_in_flight: Mapping[str, int] = field(default_factory=dict)


def utilization(rows: int, elapsed_s: float, capacity: int, latency_s: float) -> float | None:
    """Rows/s ÷ (C / L); ``None`` for an empty run."""
    if elapsed_s <= 0 or capacity <= 0 or latency_s <= 0:
        return None
    return (rows / elapsed_s) / (capacity / latency_s)


def rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def moments_over_capacity(samples: Sequence[Sample]) -> int:
    """Samples in which the downstream had more requests (in service + queued) than its capacity."""
    return sum(1 for s in samples if s.downstream_in_flight + s.downstream_queued > s.capacity)


def idle_slot_fraction_with_backlog(samples: Sequence[Sample]) -> float | None:
    """See the module docstring: a slot holding a message is busy."""
    return _idle_share(samples, lambda s: max(s.invocations_in_flight, sum(s.queue_in_flight.values())))


def slot_fraction_not_invoking_with_backlog(samples: Sequence[Sample]) -> float | None:
    """See the module docstring: a slot is busy only while its invocation runs."""
    return _idle_share(samples, lambda s: s.invocations_in_flight)


def _idle_share(samples: Sequence[Sample], busy: Callable[[Sample], int]) -> float | None:
    idle = 0.0
    total = 0.0
    for current, following in pairwise(samples):
        waiting = sum(current.queue_visible.values())
        if current.slots is None or current.slots <= 0 or waiting <= 0:
            continue
        dt = following.t - current.t
        free = max(0, current.slots - busy(current))
        idle += min(free, waiting) * dt
        total += current.slots * dt
    return idle / total if total > 0 else None


def per_second(samples: Sequence[Sample], value: str) -> list[tuple[float, float]]:
    """The rate of change of a cumulative field between samples, at each interval's end."""
    series: list[tuple[float, float]] = []
    for previous, current in pairwise(samples):
        dt = current.t - previous.t
        if dt > 0:
            series.append((current.t, (getattr(current, value) - getattr(previous, value)) / dt))
    return series


def percentile_by_group(values: Mapping[str, Sequence[float]], pct: int) -> dict[str, float | None]:
    """The ``pct`` percentile of each group, rounded to milliseconds."""
    result: dict[str, float | None] = {}
    for group, group_values in values.items():
        ordered = list(group_values)
        if len(ordered) > 1:
            result[group] = round(statistics.quantiles(ordered, n=100, method="inclusive")[pct - 1], 3)
        else:
            result[group] = round(ordered[0], 3) if ordered else None
    return result


def cdf(values: Sequence[float]) -> list[tuple[float, float]]:
    """Points ``(value, share of values <= it)`` of the empirical distribution."""
    ordered = sorted(values)
    count = len(ordered)
    return [(value, (index + 1) / count) for index, value in enumerate(ordered)]
