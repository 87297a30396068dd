"""Autoscaler benchmark: the closed loop on the local pipeline; prints ONE JSON line last.

Scenarios (each a whole local pipeline with the autoscaler ticking every second; downstream
latency L fixed, so C / L is the most rows/s the downstream can serve):

- ``capacity_step``: reject mode, the simulator's capacity schedule 20 -> 10 -> 40;
  ``convergence_s`` after each step = time until the 3-s throughput holds >= 0.90 x C/L with at
  most 1 % of 429s; ``rate_429`` over the run; ``peak_downstream_concurrency`` vs the capacity;
  ``utilization`` = rows applied / the capacity-weighted C/L over the busy time.
- ``unknown_capacity``: starts at budget 1 and 1 row in flight; time until the 3-s throughput first
  reaches >= 0.90 x C/L.
- ``queue_mode``: the downstream queues over capacity; latency ratio = median request latency while
  busy / its no-load latency; throughput / (C/L).
- ``priority``: >= 100 normal objects waiting, then high objects; their upload->complete p95, and
  ``object_processing_s`` (one object alone).

A PNG per scenario (budget, rows-in-flight target, capacity and throughput over time) goes beside
the JSON in ``--out`` (default ``benchmarks/results/``). The local time scale: one tick a second;
on AWS one tick a minute (CloudWatch's resolution), so a convergence in N local ticks is about
N minutes there (docs/autoscaling.md).

    make bench-autoscale    # or: .venv/bin/python benchmarks/bench_autoscale.py [--scenarios a,b]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from s3stagger.cli.demo import lambda_output_to
from s3stagger.cli.local import quiet_emulator_logs
from s3stagger.cli.pipeline_report import percentile
from s3stagger.cli.pipeline_run import PipelineRun, PipelineRunSettings
from s3stagger.cli.sample_data import sample_objects
from s3stagger.cli.simulate import UploadedObject, upload_objects
from s3stagger.local.downstream.settings import LatencySpec

LATENCY_S = 0.5
TICK_S = 1.0
SAMPLE_S = 0.5
WINDOW_S = 3.0
DISPATCHER = {"time_budget_s": 30}
"""A lowered budget reaches the dispatcher at its next execution: short executions locally (the
processor stops taking rows S3STAGGER_DEADLINE_MARGIN_S = 10 s before the execution's deadline)."""

console = Console(stderr=True)


@dataclass
class Sample:
    at_s: float
    capacity: int
    applied: int
    requests: int
    throttled: int
    in_flight: int
    latency_p50_ms: float | None
    budget: int | None
    rows_target: int | None


@dataclass
class Trace:
    samples: list[Sample] = field(default_factory=list)

    def throughput(self, start_s: float, end_s: float) -> float | None:
        inside = [s for s in self.samples if start_s <= s.at_s <= end_s]
        if len(inside) < 2 or inside[-1].at_s <= inside[0].at_s:
            return None
        return (inside[-1].applied - inside[0].applied) / (inside[-1].at_s - inside[0].at_s)

    def throttle_share(self, start_s: float, end_s: float) -> float:
        inside = [s for s in self.samples if start_s <= s.at_s <= end_s]
        if len(inside) < 2:
            return 0.0
        requests = inside[-1].requests - inside[0].requests
        return (inside[-1].throttled - inside[0].throttled) / requests if requests else 0.0

    def first_time(self, after_s: float, until_s: float, good: Callable[[float], bool]) -> float | None:
        """First sample time >= after_s whose next WINDOW_S is good; seconds after ``after_s``."""
        for sample in self.samples:
            if after_s <= sample.at_s <= until_s - WINDOW_S and good(sample.at_s):
                return round(sample.at_s - after_s, 2)
        return None


def sample_run(run: PipelineRun, trace: Trace, started: float, stop: threading.Event) -> None:
    while not stop.wait(SAMPLE_S):
        stats = run.simulator.stats()
        last = run.autoscaler.last if run.autoscaler is not None else None
        decision = last.tick.decision if last is not None else None
        trace.samples.append(
            Sample(
                at_s=time.monotonic() - started,
                capacity=stats.capacity,
                applied=stats.effects_applied - stats.duplicate_effects,
                requests=stats.requests,
                throttled=stats.throttled_429,
                in_flight=stats.in_flight,
                latency_p50_ms=stats.latency_p50_ms,
                budget=None if decision is None else decision.plan.objects_in_flight,
                rows_target=None if decision is None else decision.rows_in_flight_target,
            )
        )


def plot(trace: Trace, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [s.at_s for s in trace.samples]
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    top.step(times, [s.capacity for s in trace.samples], where="post", label="capacity C", color="black")
    top.plot(times, [s.rows_target for s in trace.samples], label="rows in flight target R")
    top.plot(times, [s.in_flight for s in trace.samples], label="rows in service", alpha=0.5)
    top.plot(times, [s.budget for s in trace.samples], label="budget (objects)")
    top.set_ylabel("concurrency")
    top.legend(loc="upper left", fontsize=8)
    rates = [trace.throughput(t - WINDOW_S, t) for t in times]
    bottom.plot(times, [None if r is None else r for r in rates], label="throughput (rows/s, 3 s)")
    bottom.step(
        times, [s.capacity / LATENCY_S for s in trace.samples], where="post", label="C / L", color="black"
    )
    bottom.set_ylabel("rows/s")
    bottom.set_xlabel("seconds")
    bottom.legend(loc="upper left", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def run_scenario(
    name: str,
    settings: PipelineRunSettings,
    out: Path,
    during: Callable[[PipelineRun, float], None] | None = None,
) -> tuple[PipelineRun, Trace, float]:
    """Run ``settings`` with the autoscaler; the trace, the run (stopped) and its busy time."""
    trace = Trace()
    stop = threading.Event()
    run = PipelineRun(settings)
    with run:
        run.simulator.reset()  # the capacity schedule's clock starts with the upload
        started = time.monotonic()
        sampler = threading.Thread(target=sample_run, args=(run, trace, started, stop), daemon=True)
        sampler.start()
        run.upload()
        if during is not None:
            during(run, started)
        run.follow(poll_interval_s=1.0)
        busy_s = time.monotonic() - started
        stop.set()
        sampler.join(5)
    plot(trace, name, out / f"autoscale-{name}.png")
    console.print(f"{name}: {busy_s:.1f} s, {len(trace.samples)} samples", highlight=False)
    return run, trace, busy_s


def base_settings(**changes: Any) -> PipelineRunSettings:
    values: dict[str, Any] = {
        "files": 16,
        "rows": 200,
        "workers": 4,
        "high_priority_share": 0.0,
        "capacity": 20,
        "latency": LatencySpec.fixed(LATENCY_S),
        "timeout_s": 300.0,
        "autoscale_interval_s": TICK_S,
        "pipeline_options": {"dispatcher": DISPATCHER},
    }
    values.update(changes)
    return PipelineRunSettings(**values)


def capacity_step(out: Path) -> dict[str, Any]:
    steps = ((40.0, 10), (80.0, 40))
    settings = base_settings(
        files=30, simulator_options={"capacity_schedule": steps}, autoscale_initial=(2, 20)
    )
    _, trace, busy_s = run_scenario("capacity_step", settings, out)
    end = trace.samples[-1].at_s if trace.samples else 0.0

    def converged(capacity: int) -> Callable[[float], bool]:
        def good(at: float) -> bool:
            rate = trace.throughput(at, at + WINDOW_S)
            return (
                rate is not None
                and rate >= 0.9 * capacity / LATENCY_S
                and trace.throttle_share(at, at + WINDOW_S) <= 0.01
            )

        return good

    convergence = [trace.first_time(at, end, converged(capacity)) for at, capacity in steps]
    first = trace.samples[0], trace.samples[-1]
    requests = first[1].requests - first[0].requests
    ideal = sum(
        (b.at_s - a.at_s) * a.capacity / LATENCY_S
        for a, b in zip(trace.samples, trace.samples[1:], strict=False)
    )
    return {
        "convergence_s": convergence,
        "rate_429": round((first[1].throttled - first[0].throttled) / requests, 5) if requests else None,
        "peak_downstream_concurrency": max(s.in_flight for s in trace.samples),
        "capacity_max": max(s.capacity for s in trace.samples),
        "utilization": round((first[1].applied - first[0].applied) / ideal, 3) if ideal else None,
        "busy_s": round(busy_s, 1),
    }


def unknown_capacity(out: Path) -> dict[str, Any]:
    settings = base_settings(autoscale_initial=(1, 1))
    _, trace, busy_s = run_scenario("unknown_capacity", settings, out)
    end = trace.samples[-1].at_s

    def good(at: float) -> bool:
        rate = trace.throughput(at, at + WINDOW_S)
        return rate is not None and rate >= 0.9 * 20 / LATENCY_S

    return {"reach_s": trace.first_time(0.0, end, good), "busy_s": round(busy_s, 1)}


def queue_mode(out: Path) -> dict[str, Any]:
    settings = base_settings(simulator_options={"overload": "queue"}, autoscale_initial=(2, 20))
    _, trace, busy_s = run_scenario("queue_mode", settings, out)
    busy = [s for s in trace.samples if s.in_flight > 0 and s.latency_p50_ms is not None]
    no_load = LATENCY_S * 1000
    latencies = sorted(s.latency_p50_ms for s in busy if s.latency_p50_ms is not None)
    median = latencies[len(latencies) // 2] if latencies else None
    applied = trace.samples[-1].applied - trace.samples[0].applied
    return {
        "latency_ratio": None if median is None else round(median / no_load, 3),
        "throughput_ratio": round(applied / busy_s / (20 / LATENCY_S), 3),
        "busy_s": round(busy_s, 1),
    }


def priority(out: Path) -> dict[str, Any]:
    high: list[UploadedObject] = []

    def add_high(run: PipelineRun, started: float) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            depths = run.stack.queue_depths()
            if depths["normal"].total >= 100 or len(run.uploaded) >= run.settings.files:
                break
            time.sleep(0.5)
        names = run.stack.names
        files = sample_objects(5, 20, 7, prefix=names.key_prefix(names.priorities[0]), first_index=10_000)
        upload_objects(run.stack.client("s3"), names.bucket, files, 5, high.append)

    settings = base_settings(files=110, rows=20, timeout_s=400.0, autoscale_initial=(4, 20))
    run, _, busy_s = run_scenario("priority", settings, out, during=add_high)
    complete = run.outcomes.complete_keys
    high_waits = [complete[item.key] - item.uploaded_at for item in high if item.key in complete]
    normal_waits = [complete[item.key] - item.uploaded_at for item in run.uploaded if item.key in complete]
    p95 = percentile(high_waits, 95)
    normal_p95 = percentile(normal_waits, 95)
    return {
        "high_p95_s": None if p95 is None else round(p95, 2),
        "high_complete": f"{len(high_waits)}/{len(high)}",
        "normal_p95_s": None if normal_p95 is None else round(normal_p95, 2),
        "busy_s": round(busy_s, 1),
    }


def object_processing(out: Path) -> dict[str, Any]:
    settings = base_settings(files=1, rows=20, high_priority_share=1.0, autoscale_initial=(1, 20))
    run, _, _ = run_scenario("one_object", settings, out)
    complete = run.outcomes.complete_keys
    waits = [complete[item.key] - item.uploaded_at for item in run.uploaded if item.key in complete]
    return {"object_processing_s": round(waits[0], 2) if waits else None}


SCENARIOS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "object_processing": object_processing,
    "unknown_capacity": unknown_capacity,
    "capacity_step": capacity_step,
    "queue_mode": queue_mode,
    "priority": priority,
}


def summary(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    step = results.get("capacity_step", {})
    convergence = [c for c in step.get("convergence_s", []) if c is not None]
    return {
        "capacity_step_convergence_s": (
            max(convergence)
            if convergence and len(convergence) == len(step.get("convergence_s", []))
            else None
        ),
        "capacity_step_rate_429": step.get("rate_429"),
        "unknown_capacity_reach_s": results.get("unknown_capacity", {}).get("reach_s"),
        "queue_mode_latency_ratio": results.get("queue_mode", {}).get("latency_ratio"),
        "priority_high_p95_s": results.get("priority", {}).get("high_p95_s"),
        "object_processing_s": results.get("object_processing", {}).get("object_processing_s"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated, of: " + ", ".join(SCENARIOS)
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        print(
            f"bench-autoscale: unknown scenarios {unknown}; choose from {sorted(SCENARIOS)}", file=sys.stderr
        )
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    log_path = Path(tempfile.gettempdir()) / f"s3stagger-bench-autoscale-{os.getpid()}.log"
    with quiet_emulator_logs(False), lambda_output_to(log_path):
        for name in chosen:
            console.print(f"scenario {name} ...", highlight=False)
            results[name] = SCENARIOS[name](args.out)
            console.print(json.dumps(results[name]), highlight=False)
            (args.out / "autoscale.json").write_text(json.dumps({"scenarios": results}, indent=2))
    payload = {
        "scenarios": results,
        "summary": summary(results),
        "plots": sorted(str(p) for p in args.out.glob("autoscale-*.png")),
    }
    (args.out / "autoscale.json").write_text(json.dumps(payload, indent=2))
    print(json.dumps(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
