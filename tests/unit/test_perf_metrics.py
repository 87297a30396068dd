"""Figures of a performance run from its samples."""

import pytest

from s3stagger.domain import perf_metrics
from s3stagger.domain.perf_metrics import Sample


def sample(
    t: float,
    *,
    in_flight: int = 0,
    visible: int = 0,
    slots: int | None = 4,
    held: int | None = None,
    **fields: int,
) -> Sample:
    values = {
        "rows_applied": 0,
        "downstream_requests": 0,
        "throttled_429": 0,
        "downstream_in_flight": 0,
        "downstream_queued": 0,
        "capacity": 10,
    }
    values.update(fields)
    return Sample(
        t=t,
        invocations_in_flight=in_flight,
        slots=slots,
        queue_visible={"normal": visible},
        queue_in_flight={"normal": in_flight if held is None else held},
        **values,
    )


def test_idle_slots_count_only_while_messages_wait_and_only_as_many_as_could_be_used() -> None:
    samples = [
        sample(0, in_flight=4, visible=5),  # all 4 slots busy: 0 idle of 4, for 1 s
        sample(1, in_flight=1, visible=2),  # 3 free, 2 waiting: 2 idle of 4, for 1 s
        sample(2, in_flight=0, visible=0),  # nothing waits: not counted
        sample(3, in_flight=0, visible=0),
    ]
    assert perf_metrics.idle_slot_fraction_with_backlog(samples) == pytest.approx(2 / 8)


def test_a_slot_holding_a_message_is_busy_though_it_invokes_nothing() -> None:
    # 4 slots, 1 invoking, 3 holding a message in their stagger wait or between calls; 5 wait
    samples = [
        sample(0, in_flight=1, held=4, visible=5),
        sample(1, in_flight=1, held=2, visible=5),
        sample(2),
    ]
    assert perf_metrics.idle_slot_fraction_with_backlog(samples) == pytest.approx(2 / 8)
    # counted busy only while invoking: 3 idle of 4 in each second
    assert perf_metrics.slot_fraction_not_invoking_with_backlog(samples) == pytest.approx(6 / 8)


def test_idle_slots_are_undefined_without_slots_or_backlog() -> None:
    assert perf_metrics.idle_slot_fraction_with_backlog([sample(0, slots=None, visible=3), sample(1)]) is None
    assert perf_metrics.idle_slot_fraction_with_backlog([sample(0), sample(1)]) is None


def test_moments_over_capacity_count_requests_in_service_and_queued() -> None:
    samples = [
        sample(0, downstream_in_flight=10),
        sample(1, downstream_in_flight=10, downstream_queued=1),
        sample(2, downstream_in_flight=12),
    ]
    assert perf_metrics.moments_over_capacity(samples) == 2


def test_rates_and_utilization() -> None:
    samples = [sample(0, rows_applied=0), sample(2, rows_applied=100), sample(4, rows_applied=100)]
    assert perf_metrics.per_second(samples, "rows_applied") == [(2, 50.0), (4, 0.0)]
    assert perf_metrics.utilization(100, 4.0, capacity=10, latency_s=0.2) == pytest.approx(0.5)
    assert perf_metrics.utilization(100, 0.0, capacity=10, latency_s=0.2) is None
    assert perf_metrics.rate(1, 4) == 0.25
    assert perf_metrics.rate(1, 0) == 0.0


def test_percentiles_by_group_and_cdf() -> None:
    p95 = perf_metrics.percentile_by_group(
        {"high": [1.0], "normal": [float(i) for i in range(1, 101)], "x": []}, 95
    )
    assert p95["high"] == 1.0
    assert p95["normal"] == pytest.approx(95.05)
    assert p95["x"] is None
    assert perf_metrics.cdf([3.0, 1.0]) == [(1.0, 0.5), (3.0, 1.0)]
