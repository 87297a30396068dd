"""The local stand-in for CloudWatch: the simulator's counters as differences between two looks."""

from __future__ import annotations

import dataclasses
from typing import Any

from s3stagger.domain.autoscale import Backlog
from s3stagger.local.autoscaler import (
    AutoscalerRunMetrics,
    SimulatorSignals,
    autoscaled_processor_environment,
    autoscaler_function_name,
    autoscaler_progress,
    flight_parameter_name,
)
from s3stagger.local.downstream import SimulatorStats


def stats(**figures: Any) -> SimulatorStats:
    base = {field.name: 0 for field in dataclasses.fields(SimulatorStats)}
    base.update(overload="reject", time_scale=1.0, elapsed_s=0.0, latency_p50_ms=None)
    base.update(latency_p95_ms=None, service_mean_ms=None, capacity=20)
    base.update(figures)
    return SimulatorStats(**base)


def test_signals_are_the_differences_since_the_last_look() -> None:
    before = stats(requests=1000, answered=900, response_time_total_ms=1_350_000.0)
    after = stats(
        requests=1120,
        throttled_429=20,
        errors_5xx=1,
        answered=1000,
        response_time_total_ms=1_400_000.0,
        latency_p50_ms=1500.0,  # the recent window's median still reads an earlier queueing spell
    )
    looks = iter([before, after])
    times = iter([0.0, 2.0])
    signals = SimulatorSignals(lambda: next(looks), clock=lambda: next(times)).read_signals()
    assert (signals.requests, signals.throttled_429, signals.errors_5xx) == (120, 20, 1)
    assert (signals.latency_ms, signals.interval_s) == (500.0, 2.0)  # 50 s over 100 answers
    assert signals.served_concurrency() == (120 - 20 - 1) / 2.0 * 0.5


def test_the_calls_running_come_from_the_runtime() -> None:
    looks = iter([stats(), stats()])
    times = iter([0.0, 1.0])
    signals = SimulatorSignals(lambda: next(looks), clock=lambda: next(times), calls=lambda: 7).read_signals()
    assert signals.calls_in_flight == 7
    assert signals.objects_served(Backlog(visible={}, in_flight={"normal": 12})) == 7


def test_no_request_means_no_latency() -> None:
    looks = iter([stats(latency_p50_ms=500.0), stats(latency_p50_ms=500.0)])
    times = iter([0.0, 1.0])
    signals = SimulatorSignals(lambda: next(looks), clock=lambda: next(times)).read_signals()
    assert (signals.requests, signals.latency_ms) == (0, None)


def test_the_live_view_shows_nothing_without_an_autoscaler() -> None:
    assert autoscaler_progress(None) == {"autoscaler_budget": None, "rows_in_flight_target": None}
    assert flight_parameter_name("/p/concurrency-budget", "flight") == "/p/flight"


@dataclasses.dataclass
class Runs:
    runs: int = 0
    failures: int = 0


def test_the_runners_runs_are_the_autoscaler_lambdas_invocations_and_errors() -> None:
    runner = Runs()
    metrics = AutoscalerRunMetrics(runner, autoscaler_function_name("team"))  # type: ignore[arg-type]
    runner.runs, runner.failures = 3, 1
    first = {key[1]: (value, dict(key[2])) for key, value in metrics.sample(0.0)}
    assert first == {
        "Invocations": (3.0, {"FunctionName": "team-autoscaler"}),
        "Errors": (1.0, {"FunctionName": "team-autoscaler"}),
    }
    runner.runs += 2
    assert {key[1]: value for key, value in metrics.sample(1.0)} == {"Invocations": 2.0, "Errors": 0.0}
    assert list(metrics.sample(2.0)) == []  # it did not run: no datapoint, as CloudWatch


def test_an_autoscaled_processor_may_take_the_laws_largest_share() -> None:
    environment = autoscaled_processor_environment(1.0, "team")
    assert environment["S3STAGGER_FLIGHT_PARAMETER"] == "/team/flight"
    assert environment["S3STAGGER_FLIGHT_CACHE_S"] == "0.5"
    # read-ahead is twice this: a fixed-budget sizing (C // budget) would cap every share
    assert environment["S3STAGGER_MAX_CONCURRENCY"] == "40"
