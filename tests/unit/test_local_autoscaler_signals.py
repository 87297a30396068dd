"""The local stand-in for CloudWatch: the simulator's counters as differences between two looks."""

from __future__ import annotations

import dataclasses
from typing import Any

from s3stagger.local.autoscaler import SimulatorSignals, autoscaler_progress, flight_parameter_name
from s3stagger.local.downstream import SimulatorStats


def stats(**figures: Any) -> SimulatorStats:
    base = {field.name: 0 for field in dataclasses.fields(SimulatorStats)}
    base.update(overload="reject", time_scale=1.0, elapsed_s=0.0, latency_p50_ms=None)
    base.update(latency_p95_ms=None, service_mean_ms=None, capacity=20)
    base.update(figures)
    return SimulatorStats(**base)


def test_signals_are_the_differences_since_the_last_look() -> None:
    looks = iter([stats(), stats(requests=120, throttled_429=20, errors_5xx=1, latency_p50_ms=500.0)])
    times = iter([0.0, 2.0])
    signals = SimulatorSignals(lambda: next(looks), clock=lambda: next(times)).read_signals()
    assert (signals.requests, signals.throttled_429, signals.errors_5xx) == (120, 20, 1)
    assert (signals.latency_ms, signals.interval_s) == (500.0, 2.0)
    assert signals.served_concurrency() == (120 - 20 - 1) / 2.0 * 0.5


def test_no_request_means_no_latency() -> None:
    looks = iter([stats(latency_p50_ms=500.0), stats(latency_p50_ms=500.0)])
    times = iter([0.0, 1.0])
    signals = SimulatorSignals(lambda: next(looks), clock=lambda: next(times)).read_signals()
    assert (signals.requests, signals.latency_ms) == (0, None)


def test_the_live_view_shows_nothing_without_an_autoscaler() -> None:
    assert autoscaler_progress(None) == {"autoscaler_budget": None, "rows_in_flight_target": None}
    assert flight_parameter_name("/p/concurrency-budget", "flight") == "/p/flight"
