"""The autoscaler's scenarios of ``perf-test`` (issue 9): the closed loop on the local pipeline.

Each scenario is a whole local pipeline with the autoscaler ticking every second (v2 Express
dispatcher, downstream latency L fixed, so C / L is the most rows/s the downstream can serve):

- ``capacity-step``: reject mode, the simulator's capacity schedule 20 -> 10 -> 40;
  ``convergence_s`` after each step = time until the 3-s throughput holds >= 0.90 x C/L with at
  most 1 % of 429s; ``rate_429`` over the run (429 answers / requests, as every perf-test run);
  ``peak_downstream_concurrency`` against the capacity; ``utilization`` = rows applied / the
  capacity-weighted C/L over the run.
- ``unknown-capacity``: starts at budget 1 and 1 row in flight; time until the 3-s throughput first
  reaches >= 0.90 x C/L.
- ``queue-mode``: the downstream queues over capacity; latency ratio = median request latency while
  busy / its no-load latency; throughput / (C/L) over the run.
- ``priority-wait``: >= 100 normal objects waiting, then 5 high ones, one every 3 s; their
  upload->complete p95.
- ``one-object``: one object alone on a running pipeline, ``object_processing_s`` (the priority
  target's yardstick; ``first_object_s``: a fresh stack's first one).

The local time scale: one tick a second; on AWS one tick a minute (CloudWatch's resolution), so a
convergence in N local ticks is about N minutes there (docs/autoscaling.md). Each scenario writes
``autoscale-<name>.png`` (budget, rows-in-flight target, capacity and throughput over time).
"""

from __future__ import annotations

import json
import operator
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from s3stagger.cli.pipeline_report import percentile, summarize_pipeline_run
from s3stagger.cli.pipeline_run import PipelineRun, PipelineRunSettings
from s3stagger.cli.sample_data import sample_objects
from s3stagger.cli.simulate import UploadedObject, upload_objects
from s3stagger.local.autoscaler import autoscaled_processor_environment
from s3stagger.local.downstream.settings import LatencySpec

LATENCY_S = 0.5
TICK_S = 1.0
SAMPLE_S = 0.5
WINDOW_S = 3.0
CAPACITY = 20
CAPACITY_STEPS = ((40.0, 10), (80.0, 40))
"""(seconds after the first upload, capacity from then on): 20 -> 10 -> 40."""
BUDGET_GRACE_S = TICK_S
"""How long a call takes rows after the budget outgrew its execution (AWS: 5 s of a 60-s tick):
a raised budget ends the execution early and its continuation runs the new budget's slots."""
SCHEDULE_INTERVAL_S = 5.0
"""The local scheduler's start cadence (default 1 s). A scheduled start that finds the lease held
ends at once, but each is a whole execution on the emulator's in-process interpreter: measured, 293
executions in a 300-s capacity-step run, 0.4-4 s each under load, on the 2 cores the working one
needs. The working execution hands over to its continuation itself (ASL), so the schedule only
restarts dispatch after an idle exit (AWS: every minute)."""

SCENARIOS = ("one-object", "unknown-capacity", "capacity-step", "queue-mode", "priority-wait")


@dataclass(frozen=True)
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
    """Samples of one run, and the figures the targets are checked on (pure)."""

    samples: list[Sample] = field(default_factory=list)

    def _inside(self, start_s: float, end_s: float) -> list[Sample]:
        return [s for s in self.samples if start_s <= s.at_s <= end_s]

    def throughput(self, start_s: float, end_s: float) -> float | None:
        """Rows applied per second between two moments (None: fewer than two samples)."""
        inside = self._inside(start_s, end_s)
        if len(inside) < 2 or inside[-1].at_s <= inside[0].at_s:
            return None
        return (inside[-1].applied - inside[0].applied) / (inside[-1].at_s - inside[0].at_s)

    def throttle_share(self, start_s: float, end_s: float) -> float:
        inside = self._inside(start_s, end_s)
        if len(inside) < 2:
            return 0.0
        requests = inside[-1].requests - inside[0].requests
        return (inside[-1].throttled - inside[0].throttled) / requests if requests else 0.0

    def holds(self, at_s: float, capacity: int) -> bool:
        """The next WINDOW_S serve >= 0.90 x C/L with at most 1 % of 429s."""
        rate = self.throughput(at_s, at_s + WINDOW_S)
        return (
            rate is not None
            and rate >= 0.9 * capacity / LATENCY_S
            and self.throttle_share(at_s, at_s + WINDOW_S) <= 0.01
        )

    def first_time(self, after_s: float, good: Callable[[float], bool]) -> float | None:
        """Seconds after ``after_s`` until the first sample whose next WINDOW_S is ``good``."""
        end = self.samples[-1].at_s if self.samples else 0.0
        for sample in self.samples:
            if after_s <= sample.at_s <= end - WINDOW_S and good(sample.at_s):
                return round(sample.at_s - after_s, 2)
        return None

    def convergence_s(self, after_s: float, capacity: int) -> float | None:
        """Seconds after ``after_s`` until the throughput holds 0.90 x C/L (:meth:`holds`)."""
        return self.first_time(after_s, lambda at: self.holds(at, capacity))

    def rate_429(self) -> float | None:
        first, last = self.samples[0], self.samples[-1]
        requests = last.requests - first.requests
        return round((last.throttled - first.throttled) / requests, 5) if requests else None

    def utilization(self) -> float | None:
        """Rows applied / what the capacity in force at each moment allowed (C/L, integrated)."""
        ideal = sum(
            (b.at_s - a.at_s) * a.capacity / LATENCY_S
            for a, b in zip(self.samples, self.samples[1:], strict=False)
        )
        applied = self.samples[-1].applied - self.samples[0].applied
        return round(applied / ideal, 3) if ideal else None


def processor_environment() -> dict[str, str]:
    return {
        **autoscaled_processor_environment(TICK_S),
        "S3STAGGER_BUDGET_GRACE_S": str(BUDGET_GRACE_S),
    }


def settings_for(**changes: Any) -> PipelineRunSettings:
    values: dict[str, Any] = {
        "files": 16,
        "rows": 200,
        "workers": 4,
        "high_priority_share": 0.0,
        "capacity": CAPACITY,
        "latency": LatencySpec.fixed(LATENCY_S),
        "timeout_s": 300.0,
        "autoscale_interval_s": TICK_S,
        "pipeline_options": {
            "processor_environment": processor_environment(),
            "schedule_interval_s": SCHEDULE_INTERVAL_S,
        },
    }
    values.update(changes)
    if values.get("autoscale_initial") is not None:  # the budget provisioned = the law's start
        values.setdefault("concurrency_budget", values["autoscale_initial"][0])
    return PipelineRunSettings(**values)


@dataclass
class ScenarioResult:
    run: PipelineRun
    trace: Trace
    busy_s: float
    accounting: dict[str, Any]


def _sample(run: PipelineRun, started: float) -> Sample:
    stats = run.simulator.stats()
    last = run.autoscaler.last if run.autoscaler is not None else None
    decision = last.tick.decision if last is not None else None
    return Sample(
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


def run_scenario(
    name: str,
    settings: PipelineRunSettings,
    out: Path,
    console: Console,
    during: Callable[[PipelineRun], None] | None = None,
) -> ScenarioResult:
    """Run ``settings`` with the autoscaler, sampling every SAMPLE_S; live progress on ``console``."""
    trace = Trace()
    stop = threading.Event()
    with PipelineRun(settings) as run, console.status(f"{name}: starting") as status:
        run.simulator.reset()  # the capacity schedule's clock starts with the upload
        started = time.monotonic()

        def sample_until_stopped() -> None:
            while not stop.wait(SAMPLE_S):
                sample = _sample(run, started)
                trace.samples.append(sample)
                rate = trace.throughput(sample.at_s - WINDOW_S, sample.at_s)
                status.update(
                    f"{name}: {sample.at_s:.0f} s  C {sample.capacity}  budget {sample.budget}  "
                    f"R {sample.rows_target}  in service {sample.in_flight}  "
                    f"rows/s {0.0 if rate is None else rate:.1f}  429s {sample.throttled}"
                )

        sampler = threading.Thread(target=sample_until_stopped, name="perf-autoscale-sampler", daemon=True)
        sampler.start()
        try:
            run.upload()
            if during is not None:
                during(run)
            run.follow(poll_interval_s=1.0)
        finally:
            stop.set()
            sampler.join(5)
        busy_s = time.monotonic() - started
        accounting = summarize_pipeline_run(run.observe()).as_dict()
        ticks = run.autoscaler.history if run.autoscaler is not None else []
        executions = dispatcher_executions(run, started)
    (out / f"autoscale-{name}-executions.json").write_text(json.dumps(executions, indent=1) + "\n")
    with (out / f"autoscale-{name}-decisions.jsonl").open("w", encoding="utf-8") as decisions:
        for timed in ticks:  # the autoscaler's JSON decision lines, as its Lambda logs them on AWS
            decisions.write(
                json.dumps({"at_s": round(timed.at_s, 2), "capacity": timed.capacity, **timed.tick.as_log()})
            )
            decisions.write("\n")
    plot(trace, name, out / f"autoscale-{name}.png")
    return ScenarioResult(run, trace, busy_s, accounting)


def dispatcher_executions(run: PipelineRun, started: float) -> list[dict[str, Any]]:
    """Each dispatcher execution's name, start and stop (seconds after the first upload): the
    hand-overs between an execution and its continuation are the gaps between them."""
    sfn = run.stack.client("stepfunctions")
    arn = run.stack.names.state_machine_arn
    try:  # moto lists Express executions too (AWS does not: there, the CloudWatch Logs)
        found = sfn.list_executions(stateMachineArn=arn, maxResults=1000)["executions"]
    except (ClientError, BotoCoreError):
        return []
    offset = time.time() - (time.monotonic() - started)  # epoch of the first upload

    def seconds(moment: Any) -> float | None:
        return None if moment is None else round(moment.timestamp() - offset, 2)

    rows = [
        {
            "name": e["name"],
            "start_s": seconds(e["startDate"]),
            "stop_s": seconds(e.get("stopDate")),
            "status": e["status"],
        }
        for e in found
    ]
    return sorted(rows, key=lambda row: row["start_s"] or 0.0)


def plot(trace: Trace, title: str, path: Path) -> None:
    """Budget, rows-in-flight target, rows in service and capacity; throughput against C/L."""
    try:
        import matplotlib  # noqa: PLC0415 - the dev extra; the figures stand without the picture
    except ImportError:
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    samples = trace.samples
    times = [s.at_s for s in samples]
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    top.step(times, [s.capacity for s in samples], where="post", label="capacity C", color="black")
    top.plot(times, [s.rows_target for s in samples], label="rows in flight target R")
    top.plot(times, [s.in_flight for s in samples], label="rows in service", alpha=0.5)
    top.plot(times, [s.budget for s in samples], label="budget (objects)")
    top.set_ylabel("concurrency")
    top.legend(loc="upper left", fontsize=8)
    bottom.plot(times, [trace.throughput(t - WINDOW_S, t) for t in times], label="throughput (rows/s, 3 s)")
    bottom.step(times, [s.capacity / LATENCY_S for s in samples], where="post", label="C / L", color="black")
    bottom.set_ylabel("rows/s")
    bottom.set_xlabel("seconds")
    bottom.legend(loc="upper left", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _figures(result: ScenarioResult, **figures: Any) -> dict[str, Any]:
    accounting = result.accounting
    return {
        **figures,
        "busy_s": round(result.busy_s, 1),
        "rows_unaccounted": accounting["rows_unaccounted"],
        "duplicate_effects": accounting["duplicate_effects"],
    }


def capacity_step(out: Path, console: Console) -> dict[str, Any]:
    settings = settings_for(
        files=30,
        simulator_options={"capacity_schedule": CAPACITY_STEPS},
        autoscale_initial=(2, 20),
        timeout_s=600.0,
    )
    result = run_scenario("capacity-step", settings, out, console)
    trace = result.trace
    return _figures(
        result,
        convergence_s=[trace.convergence_s(at, capacity) for at, capacity in CAPACITY_STEPS],
        rate_429=trace.rate_429(),
        peak_downstream_concurrency=max(s.in_flight for s in trace.samples),
        moments_over_capacity=sum(1 for s in trace.samples if s.in_flight > s.capacity),
        utilization=trace.utilization(),
    )


def unknown_capacity(out: Path, console: Console) -> dict[str, Any]:
    result = run_scenario("unknown-capacity", settings_for(autoscale_initial=(1, 1)), out, console)
    return _figures(result, reach_s=result.trace.convergence_s(0.0, CAPACITY))


def queue_latency_ratio(trace: Trace, no_load_ms: float) -> float | None:
    """Median of the busy samples' median latency / the no-load latency."""
    latencies = sorted(
        s.latency_p50_ms for s in trace.samples if s.in_flight > 0 and s.latency_p50_ms is not None
    )
    return round(latencies[len(latencies) // 2] / no_load_ms, 3) if latencies else None


def queue_mode(out: Path, console: Console) -> dict[str, Any]:
    settings = settings_for(simulator_options={"overload": "queue"}, autoscale_initial=(2, 20))
    result = run_scenario("queue-mode", settings, out, console)
    trace = result.trace
    applied = trace.samples[-1].applied - trace.samples[0].applied
    return _figures(
        result,
        latency_ratio=queue_latency_ratio(trace, LATENCY_S * 1000),
        throughput_ratio=round(applied / result.busy_s / (CAPACITY / LATENCY_S), 3),
    )


HIGH_OBJECTS = 5
HIGH_SPACING_S = 3.0
"""The high objects arrive one at a time, this far apart: each meets the normal backlog alone in its
lane. Five uploaded at once need 100 rows of the downstream, 2.5 s of all of C / L, which alone
exceeds twice one object's time: the lane's bound would be lost in the high objects' own queue."""
NORMAL_FILES = 170
NORMAL_DONE = 30
"""The first high object is uploaded once this many normal objects are done and the rest, >= 100,
still wait: past the law's start-up (slow start from the provisioned budget, its first cut and
the budget's hand-overs, about the first 13 s), which the unknown-capacity scenario measures."""


def priority_wait(out: Path, console: Console) -> dict[str, Any]:
    high: list[UploadedObject] = []
    normal_backlog: list[int] = []

    def add_high(run: PipelineRun) -> None:
        deadline, arrived = time.monotonic() + 120, False
        while time.monotonic() < deadline:
            depth = run.stack.queue_depths()["normal"].total
            arrived = arrived or depth > NORMAL_FILES - NORMAL_DONE // 2  # the uploads' events are in
            if arrived and depth <= NORMAL_FILES - NORMAL_DONE:
                break
            time.sleep(0.2)
        names = run.stack.names
        prefix = names.key_prefix(names.priorities[0])
        for index, item in enumerate(sample_objects(HIGH_OBJECTS, 20, 7, prefix=prefix, first_index=10_000)):
            if index:
                time.sleep(HIGH_SPACING_S)
            normal_backlog.append(run.stack.queue_depths()["normal"].total)
            upload_objects(run.stack.client("s3"), names.bucket, [item], 1, high.append)

    settings = settings_for(files=NORMAL_FILES, rows=20, timeout_s=400.0, autoscale_initial=(4, 20))
    result = run_scenario("priority-wait", settings, out, console, during=add_high)
    high_waits = upload_to_complete_s(result, high)
    normal_waits = upload_to_complete_s(result, result.run.uploaded)
    return _figures(
        result,
        high_p95_s=_rounded(percentile(high_waits, 95)),
        high_waits_s=[round(wait, 2) for wait in high_waits],
        high_complete=f"{len(high_waits)}/{len(high)}",
        normal_backlog_at_high=normal_backlog,
        normal_p95_s=_rounded(percentile(normal_waits, 95)),
    )


WARM_GAP_S = 2.0
"""The yardstick object is uploaded this long after the first one completed: the dispatcher's slots
still long-poll the queues, as they do while a backlog drains (the priority scenario's case)."""


def one_object(out: Path, console: Console) -> dict[str, Any]:
    """``object_processing_s``: one object alone on a running pipeline. A fresh stack's first object
    also pays the stack's start (its first execution, cold imports): 1.1-1.94 s from run to run
    against 0.56 s for a later one, and the priority target's yardstick moved with it."""
    measured: list[UploadedObject] = []

    def upload_alone(run: PipelineRun) -> None:
        names, deadline = run.stack.names, time.monotonic() + 60
        while not run.outcomes.complete_keys and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(WARM_GAP_S)
        prefix = names.key_prefix(names.priorities[0])
        files = sample_objects(1, 20, 8, prefix=prefix, first_index=20_000)
        upload_objects(run.stack.client("s3"), names.bucket, files, 1, measured.append)
        while measured and measured[0].key not in run.outcomes.complete_keys and time.monotonic() < deadline:
            time.sleep(0.1)  # the run settles on the first object alone: wait for this one here

    settings = settings_for(files=1, rows=20, high_priority_share=1.0, autoscale_initial=(1, 20))
    result = run_scenario("one-object", settings, out, console, during=upload_alone)
    first = upload_to_complete_s(result, result.run.uploaded)
    waits = upload_to_complete_s(result, measured)
    return _figures(
        result,
        object_processing_s=_rounded(waits[0] if waits else None),
        first_object_s=_rounded(first[0] if first else None),
    )


def upload_to_complete_s(result: ScenarioResult, items: Sequence[UploadedObject]) -> list[float]:
    """Seconds from upload to COMPLETE of each of ``items`` that completed, in their order."""
    complete = result.run.outcomes.complete_keys
    return [complete[item.key] - item.uploaded_at for item in items if item.key in complete]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


RUNNERS: dict[str, Callable[[Path, Console], dict[str, Any]]] = {
    "one-object": one_object,
    "unknown-capacity": unknown_capacity,
    "capacity-step": capacity_step,
    "queue-mode": queue_mode,
    "priority-wait": priority_wait,
}


def summary(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The keys issue 9 names for the perf-test ``summary`` (None: the scenario did not run, or a
    step never converged)."""
    steps = results.get("capacity-step", {}).get("convergence_s", [])
    return {
        "capacity_step_convergence_s": max(steps) if steps and None not in steps else None,
        "capacity_step_rate_429": results.get("capacity-step", {}).get("rate_429"),
        "capacity_step_utilization": results.get("capacity-step", {}).get("utilization"),
        "unknown_capacity_reach_s": results.get("unknown-capacity", {}).get("reach_s"),
        "queue_mode_latency_ratio": results.get("queue-mode", {}).get("latency_ratio"),
        "queue_mode_throughput_ratio": results.get("queue-mode", {}).get("throughput_ratio"),
        "priority_high_p95_s": results.get("priority-wait", {}).get("high_p95_s"),
        "object_processing_s": results.get("one-object", {}).get("object_processing_s"),
    }


def run_autoscale_scenarios(names: Sequence[str], out: Path, console: Console) -> dict[str, Any]:
    """Run the named scenarios (in :data:`SCENARIOS` order); their figures, summary and plots."""
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    for name in [n for n in SCENARIOS if n in names]:
        results[name] = RUNNERS[name](out, console)
        console.print(f"{name}: {results[name]}", highlight=False)
    return {
        "scenarios": results,
        "summary": summary(results),
        "rows_unaccounted": sum(r["rows_unaccounted"] for r in results.values()),
        "duplicate_effects": sum(r["duplicate_effects"] for r in results.values()),
        "plots": [str(out / f"autoscale-{name}.png") for name in results],
    }


TARGETS: dict[str, tuple[str, float]] = {
    "capacity_step_convergence_s": ("<=", 10.0),
    "capacity_step_rate_429": ("<=", 0.005),
    "capacity_step_utilization": (">=", 0.90),
    "unknown_capacity_reach_s": ("<=", 30.0),
    "queue_mode_latency_ratio": ("<=", 1.5),
    "queue_mode_throughput_ratio": (">=", 0.90),
}
"""Issue 9's targets on the summary keys; ``priority_high_p95_s`` is checked against 2 x
``object_processing_s`` (see :func:`targets_met`)."""


def targets_met(summary: dict[str, Any]) -> dict[str, bool | None]:
    """Each target: met, missed, or None (not measured, or never reached)."""
    compare = {"<=": operator.le, ">=": operator.ge}
    met: dict[str, bool | None] = {
        key: None if summary.get(key) is None else bool(compare[op](summary[key], bound))
        for key, (op, bound) in TARGETS.items()
    }
    high, alone = summary.get("priority_high_p95_s"), summary.get("object_processing_s")
    met["priority_high_p95_s"] = None if high is None or alone is None else high <= 2 * alone
    return met


def chosen(scenario_names: Sequence[str] | None) -> tuple[list[str], list[str] | None]:
    """Split ``perf-test --scenario`` names: (autoscale scenarios, the rest for the dispatcher
    comparison; None: all of them). No name: every scenario of both."""
    if not scenario_names:
        return list(SCENARIOS), None
    return [n for n in scenario_names if n in SCENARIOS], [n for n in scenario_names if n not in SCENARIOS]


def add_to_report(line: dict[str, Any], autoscale: dict[str, Any], report_dir: Path) -> dict[str, Any]:
    """Merge the autoscale figures into perf-test's last line, ``report.json`` and ``report.md``."""
    summary = dict(line.get("summary", {}))
    for key in ("rows_unaccounted", "duplicate_effects"):
        summary[key] = int(summary.get(key) or 0) + autoscale[key]
    summary.update(autoscale["summary"])
    met = targets_met(autoscale["summary"])
    merged = {
        **line,
        "scenarios": {**line.get("scenarios", {}), **autoscale["scenarios"]},
        "summary": summary,
    }
    merged["autoscale_targets_met"] = met
    report_json = report_dir / "report.json"
    document = json.loads(report_json.read_text(encoding="utf-8")) if report_json.is_file() else {}
    document.update(summary=summary, autoscale={**autoscale, "targets_met": met})
    report_json.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    report_md = report_dir / "report.md"
    before = report_md.read_text(encoding="utf-8") if report_md.is_file() else "# perf-test\n"
    report_md.write_text(before.rstrip("\n") + "\n\n" + markdown(autoscale, met), encoding="utf-8")
    return merged


def markdown(autoscale: dict[str, Any], met: dict[str, bool | None]) -> str:
    """The report's autoscaler section: each summary key against its target, then the plots."""
    words = {True: "met", False: "missed", None: "not measured"}
    bounds = {key: f"{op} {bound:g}" for key, (op, bound) in TARGETS.items()}
    bounds["priority_high_p95_s"] = "<= 2 x object_processing_s"
    lines = [
        "## Autoscaler scenarios (issue 9)",
        "",
        f"One tick a second locally (a minute on AWS); L = {LATENCY_S} s, C = {CAPACITY} "
        "(capacity step 20 -> 10 -> 40). See docs/autoscaling.md.",
        "",
        "| summary key | measured | target | |",
        "|---|---|---|---|",
    ]
    for key, value in autoscale["summary"].items():
        lines.append(
            f"| `{key}` | {value} | {bounds.get(key, '')} | {words[met[key]] if key in met else ''} |"
        )
    lines += ["", *(f"![{Path(plot).stem}]({Path(plot).name})" for plot in autoscale["plots"]), ""]
    return "\n".join(lines)
