"""The end-of-run report of a pipeline run (``s3stagger demo``, ``benchmarks/bench_pipeline.py``).

Pure: the caller gathers the figures (uploads, the downstream's stats, the failed-row sink, the
DLQs) into a :class:`PipelineObservation`; :func:`summarize_pipeline_run` turns them into a
:class:`PipelineReport` and decides whether every row is accounted for.

Accounting: every uploaded row must end up in exactly one place —

* applied by the downstream (``rows_applied``, distinct rows: duplicate effects are not counted
  twice), or
* written to the failed-row sink (``failed_rows``: rows the downstream refused for good, plus the
  rows of objects quarantined as a whole, ``rows_quarantined``), or
* still described by a message in a dead-letter queue (``rows_in_dlq``: the rows of the objects
  whose message sits in a DLQ, where an operator can redrive it).

``rows_unaccounted`` is what is left; a run is good when it is 0 and ``duplicate_effects`` is 0.

Throughput is reported against the physical limit of the downstream (Little's law): with capacity
C concurrent requests and mean latency L seconds it serves at most C / L rows per second, so
``utilization = (rows_applied / elapsed_s) / (C / L)``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class PipelineObservation:
    """The raw figures of one run, as measured by its driver."""

    objects_total: int
    rows_total: int
    elapsed_s: float
    objects_complete: int
    objects_rejected: int
    rows_applied: int
    """Distinct rows applied by the downstream (effects minus duplicate effects)."""
    duplicate_effects: int
    duplicate_deliveries: int
    failed_rows: int
    """Rows in the failed-row sink that the downstream refused (quarantined objects excluded)."""
    rows_quarantined: int
    """Rows of objects rejected as a whole (their quarantine record is in the failed-row sink)."""
    dlq_messages: int
    rows_in_dlq: int
    downstream_requests: int
    downstream_throttled_429: int
    downstream_errors_5xx: int
    peak_downstream_concurrency: int
    downstream_capacity: int
    downstream_latency_s: float
    """Mean service latency of the downstream in seconds (after its time scale)."""


@dataclass(frozen=True)
class PipelineReport:
    """The report: the observation plus what follows from it."""

    objects_total: int
    objects_complete: int
    objects_rejected: int
    rows_total: int
    rows_applied: int
    failed_rows: int
    rows_quarantined: int
    rows_in_dlq: int
    rows_unaccounted: int
    duplicate_effects: int
    duplicate_deliveries: int
    dlq_messages: int
    downstream_requests: int
    downstream_throttled_429: int
    downstream_errors_5xx: int
    throttle_rate: float
    """429 answers per downstream request."""
    peak_downstream_concurrency: int
    downstream_capacity: int
    downstream_latency_s: float
    rows_per_s: float
    downstream_limit_rows_per_s: float
    """C / L: the most the downstream can serve."""
    utilization: float
    elapsed_s: float
    all_rows_accounted: bool
    """True when no row is missing (applied, in the failed-row sink or in a DLQ)."""
    ok: bool
    """All rows accounted, no duplicate effect, DLQs empty, peak concurrency within capacity."""

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-serialisable dict (stable key names)."""
        return asdict(self)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else 0.0


def summarize_pipeline_run(observation: PipelineObservation) -> PipelineReport:
    """Compute the report of a run from its observation."""
    o = observation
    accounted = o.rows_applied + o.failed_rows + o.rows_quarantined + o.rows_in_dlq
    unaccounted = max(o.rows_total - accounted, 0)
    rows_per_s = _ratio(o.rows_applied, o.elapsed_s)
    limit = _ratio(o.downstream_capacity, o.downstream_latency_s)
    all_accounted = unaccounted == 0
    return PipelineReport(
        objects_total=o.objects_total,
        objects_complete=o.objects_complete,
        objects_rejected=o.objects_rejected,
        rows_total=o.rows_total,
        rows_applied=o.rows_applied,
        failed_rows=o.failed_rows,
        rows_quarantined=o.rows_quarantined,
        rows_in_dlq=o.rows_in_dlq,
        rows_unaccounted=unaccounted,
        duplicate_effects=o.duplicate_effects,
        duplicate_deliveries=o.duplicate_deliveries,
        dlq_messages=o.dlq_messages,
        downstream_requests=o.downstream_requests,
        downstream_throttled_429=o.downstream_throttled_429,
        downstream_errors_5xx=o.downstream_errors_5xx,
        throttle_rate=round(_ratio(o.downstream_throttled_429, o.downstream_requests), 4),
        peak_downstream_concurrency=o.peak_downstream_concurrency,
        downstream_capacity=o.downstream_capacity,
        downstream_latency_s=o.downstream_latency_s,
        rows_per_s=round(rows_per_s, 2),
        downstream_limit_rows_per_s=round(limit, 2),
        utilization=round(_ratio(rows_per_s, limit), 4),
        elapsed_s=round(o.elapsed_s, 3),
        all_rows_accounted=all_accounted,
        ok=(
            all_accounted
            and o.duplicate_effects == 0
            and o.dlq_messages == 0
            and o.peak_downstream_concurrency <= o.downstream_capacity
        ),
    )


def percentile(values: Sequence[float], percent: int) -> float | None:
    """The ``percent``-th percentile (1..99, inclusive method) of ``values``; None when empty."""
    if not 1 <= percent <= 99:
        raise ValueError(f"percent must be within 1..99, got {percent}")
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]
