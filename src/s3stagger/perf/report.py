"""The perf-test report: figures per scenario and dispatcher, ``report.json``, ``report.md`` and the
PNG plots (matplotlib, drawn off-screen)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s3stagger.domain import perf_metrics
from s3stagger.domain.cost import CostEstimate, CountedWork
from s3stagger.domain.perf_metrics import Sample
from s3stagger.perf.scenarios import EXPRESS

PLOTS = {
    "throughput": "throughput.png",
    "downstream_in_flight": "downstream_in_flight.png",
    "queue_depth": "queue_depth.png",
    "throttled_429": "throttled_429.png",
    "latency_cdf": "latency_cdf.png",
}
RATE_WINDOW_S = 2.0


@dataclass(frozen=True)
class RunOutcome:
    """What the report needs of one run (a local run or an existing deployment's)."""

    scenario: str
    dispatcher: str
    dispatcher_type: str
    capacity: int
    latency_s: float
    samples: Sequence[Sample]
    latencies: Mapping[str, Sequence[float]]
    report: Mapping[str, Any]
    """:meth:`PipelineReport.as_dict`."""
    cost: CostEstimate | None
    work: CountedWork | None
    """The counted work the cost was priced from (``s3stagger cost`` reads it back)."""
    transitions: int | None
    executions: int | None
    timed_out: bool
    requests: Mapping[str, Mapping[str, int]]
    rows_pending: int = 0
    """Rows of objects whose message was still in its queue when the run hit its time limit: not
    lost (SQS holds them), not done either."""

    @property
    def rows_unaccounted(self) -> int:
        """Rows neither applied, recorded, in a DLQ nor still pending in a queue."""
        return max(0, int(self.report["rows_unaccounted"]) - self.rows_pending)

    def figures(self) -> dict[str, Any]:
        """The per-run figures of the last JSON line."""
        r = self.report
        objects = int(r["objects_total"])
        idle = perf_metrics.idle_slot_fraction_with_backlog(self.samples)
        not_invoking = perf_metrics.slot_fraction_not_invoking_with_backlog(self.samples)
        return {
            "dispatcher_type": self.dispatcher_type,
            "utilization": _round(r["utilization"]),
            "rate_429": _round(r["throttle_rate"], 4),
            "peak_downstream_concurrency": r["peak_downstream_concurrency"],
            "capacity": self.capacity,
            "moments_over_capacity": perf_metrics.moments_over_capacity(self.samples),
            "p95_upload_to_complete_s": perf_metrics.percentile_by_group(self.latencies, 95),
            "idle_slot_fraction_with_backlog": None if idle is None else round(idle, 4),
            "slot_fraction_not_invoking_with_backlog": None
            if not_invoking is None
            else round(not_invoking, 4),
            "cost_per_million_objects_usd": None if self.cost is None else round(self.cost.total_usd, 2),
            "transitions_per_object": None
            if self.transitions is None
            else round(self.transitions / objects, 2),
            "executions": self.executions,
            "objects": objects,
            "rows_total": r["rows_total"],
            "rows_applied": r["rows_applied"],
            "failed_rows": r["failed_rows"],
            "rows_pending": self.rows_pending,
            "rows_unaccounted": self.rows_unaccounted,
            "duplicate_effects": r["duplicate_effects"],
            "dlq_messages": r["dlq_messages"],
            "elapsed_s": _round(r["elapsed_s"], 2),
            "timed_out": self.timed_out,
        }


def _round(value: Any, digits: int = 3) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def summary(outcomes: Sequence[RunOutcome]) -> dict[str, Any]:
    """The top-level summary for v2 Express, exactly the issue's keys; the accounting figures
    (rows unaccounted, duplicate effects) are summed over every run."""
    by_key = {(o.scenario, o.dispatcher): o for o in outcomes}
    demo = by_key.get(("demo", EXPRESS))
    skewed = by_key.get(("skewed", EXPRESS))
    demo_figures = demo.figures() if demo else {}
    skewed_figures = skewed.figures() if skewed else {}
    return {
        "demo_utilization": demo_figures.get("utilization"),
        "demo_rate_429": demo_figures.get("rate_429"),
        "demo_peak_over_capacity": demo_figures.get("moments_over_capacity"),
        "skewed_idle_slot_fraction": skewed_figures.get("idle_slot_fraction_with_backlog"),
        "cost_per_million_objects_usd": demo_figures.get("cost_per_million_objects_usd"),
        "rows_unaccounted": sum(o.rows_unaccounted for o in outcomes),
        "duplicate_effects": sum(int(o.report["duplicate_effects"]) for o in outcomes),
    }


LAST_LINE_FIGURES = (
    "utilization",
    "rate_429",
    "peak_downstream_concurrency",
    "capacity",
    "p95_upload_to_complete_s",
    "idle_slot_fraction_with_backlog",
    "cost_per_million_objects_usd",
    "transitions_per_object",
)
"""The per scenario and dispatcher keys of the last JSON line, as the issue names them."""


def last_line(outcomes: Sequence[RunOutcome], report_dir: Path) -> dict[str, Any]:
    """The one JSON object printed last: the figures per scenario and dispatcher, the summary (of
    v2 Express), the runs cut off by their time limit and their rows still queued, the report folder."""
    scenarios: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        figures = outcome.figures()
        scenarios.setdefault(outcome.scenario, {})[outcome.dispatcher] = {
            key: figures[key] for key in LAST_LINE_FIGURES
        }
    return {
        "scenarios": scenarios,
        "summary": summary(outcomes),
        "summary_dispatcher": EXPRESS,
        "runs_timed_out": [f"{o.scenario}/{o.dispatcher}" for o in outcomes if o.timed_out],
        "rows_pending": sum(o.rows_pending for o in outcomes),
        "report_dir": str(report_dir),
    }


def write_report(
    outcomes: Sequence[RunOutcome], report_dir: Path, context: Mapping[str, Any]
) -> dict[str, Any]:
    """Write ``report.json``, ``report.md`` and the plots into ``report_dir``; return the last line."""
    report_dir.mkdir(parents=True, exist_ok=True)
    try:
        plots = write_plots(outcomes, report_dir)
    except ImportError:  # matplotlib is in the dev extra; the figures stand without the pictures
        plots = []
        context = {**context, "plots": "not drawn: matplotlib is not installed (pip install matplotlib)"}
    line = last_line(outcomes, report_dir)
    document = {
        **context,
        "summary": line["summary"],
        "runs": [
            {
                "scenario": o.scenario,
                "dispatcher": o.dispatcher,
                "figures": o.figures(),
                "cost": None if o.cost is None else o.cost.as_dict(),
                "cost_counters": None if o.work is None else o.work.as_dict(),
                "aws_requests": o.requests,
                "report": dict(o.report),
                "latencies_s": {k: [round(v, 3) for v in vs] for k, vs in o.latencies.items()},
                "samples": [_sample_dict(s) for s in o.samples],
            }
            for o in outcomes
        ],
        "plots": plots,
    }
    (report_dir / "report.json").write_text(json.dumps(document, indent=1), encoding="utf-8")
    (report_dir / "report.md").write_text(markdown(outcomes, line, plots, context), encoding="utf-8")
    return line


def _sample_dict(sample: Sample) -> dict[str, Any]:
    data = dict(sample.__dict__)
    data["t"] = round(sample.t, 3)
    data["queue_visible"] = dict(sample.queue_visible)
    data["queue_in_flight"] = dict(sample.queue_in_flight)
    return data


def markdown(
    outcomes: Sequence[RunOutcome], line: Mapping[str, Any], plots: Sequence[str], context: Mapping[str, Any]
) -> str:
    """``report.md``: a table per scenario, the cost line items of each run, the plots."""
    lines = ["# s3stagger perf-test", ""]
    lines += [f"- {key}: {value}" for key, value in context.items() if not isinstance(value, (dict, list))]
    lines += ["", "## Summary (v2 Express)", "", "```json", json.dumps(line["summary"], indent=1), "```", ""]
    header = (
        "| dispatcher | type | utilization | 429 rate | peak / C | moments > C | p95 upload→complete s "
        "| idle slots w/ backlog | $ / M objects | transitions / object | rows unaccounted | dup. effects |"
    )
    by_scenario: dict[str, list[RunOutcome]] = {}
    for outcome in outcomes:
        by_scenario.setdefault(outcome.scenario, []).append(outcome)
    for scenario, runs in by_scenario.items():
        lines += [f"## Scenario `{scenario}`", "", header, "|" + "---|" * 12]
        for run in runs:
            f = run.figures()
            p95 = ", ".join(f"{k} {v}" for k, v in f["p95_upload_to_complete_s"].items())
            lines.append(
                f"| {run.dispatcher} | {f['dispatcher_type']} | {f['utilization']} | {f['rate_429']} "
                f"| {f['peak_downstream_concurrency']} / {f['capacity']} | {f['moments_over_capacity']} "
                f"| {p95} "
                f"| {f['idle_slot_fraction_with_backlog']} | {f['cost_per_million_objects_usd']} "
                f"| {f['transitions_per_object']} | {f['rows_unaccounted']} | {f['duplicate_effects']} |"
            )
        lines.append("")
    lines += ["## Cost per million objects (reference workload), by line item", ""]
    for run in outcomes:
        if run.cost is None:
            continue
        lines += [
            f"### {run.scenario} / {run.dispatcher}: ${run.cost.total_usd:.2f} "
            f"(time scale {run.cost.time_scale:.2f})",
            "",
            "| item | quantity | unit | $ |",
            "|---|---|---|---|",
        ]
        lines += [f"| {i.name} | {i.quantity:,.1f} | {i.unit} | {i.usd:.2f} |" for i in run.cost.items]
        lines += [
            f"| *excluded:* {i.name} | {i.quantity:,.1f} | {i.unit} | {i.usd:.2f} |"
            for i in run.cost.excluded
        ]
        lines.append("")
    lines += ["## Plots", ""] + [f"![{name}]({name})" for name in plots] + [""]
    return "\n".join(lines)


def _rate_series(samples: Sequence[Sample], value: str) -> tuple[list[float], list[float]]:
    """A cumulative field's rate over windows of about :data:`RATE_WINDOW_S`."""
    picked: list[Sample] = []
    for sample in samples:
        if not picked or sample.t - picked[-1].t >= RATE_WINDOW_S:
            picked.append(sample)
    series = perf_metrics.per_second(picked, value)
    return [t for t, _ in series], [v for _, v in series]


STYLES = ("-", ":", "--", "-.")
"""Line style by priority (first priority solid)."""


class _Figures:
    """One figure per plot, one row of axes per scenario, one colour per dispatcher."""

    def __init__(self, outcomes: Sequence[RunOutcome], report_dir: Path, plt: Any) -> None:
        self.outcomes = outcomes
        self.report_dir = report_dir
        self.plt = plt
        self.scenarios = list(dict.fromkeys(o.scenario for o in outcomes))
        self.colors = {d: f"C{i}" for i, d in enumerate(dict.fromkeys(o.dispatcher for o in outcomes))}

    def draw(self, name: str, title: str, ylabel: str, plot_run: Any, note: str = "") -> None:
        """``plot_run(axis, outcome)`` draws one run; the figure is saved as ``PLOTS[name]``."""
        figure, axes = self.plt.subplots(
            len(self.scenarios), 1, figsize=(10, 3.2 * len(self.scenarios)), squeeze=False
        )
        figure.suptitle(title)
        for row, scenario in zip(axes, self.scenarios, strict=True):
            axis = row[0]
            for outcome in (o for o in self.outcomes if o.scenario == scenario):
                plot_run(axis, outcome)
            axis.set_title(f"{scenario}{note}")
            axis.set_ylabel(ylabel)
            if axis.get_legend_handles_labels()[0]:  # a run without data draws no labelled line
                axis.legend(fontsize="x-small", ncol=2)
        axes[-1][0].set_xlabel("seconds since the first upload" if name != "latency_cdf" else "seconds")
        figure.tight_layout()
        figure.savefig(self.report_dir / PLOTS[name], dpi=90)
        self.plt.close(figure)


def write_plots(outcomes: Sequence[RunOutcome], report_dir: Path) -> list[str]:
    """Draw the five figures; returns their file names."""
    import matplotlib  # noqa: PLC0415 - only perf-test needs it; the CLI starts without it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - after choosing the off-screen backend

    figures = _Figures(outcomes, report_dir, plt)
    colors = figures.colors

    def throughput(axis: Any, o: RunOutcome) -> None:
        t, v = _rate_series(o.samples, "rows_applied")
        axis.plot(t, v, label=o.dispatcher, color=colors[o.dispatcher])
        axis.axhline(o.capacity / o.latency_s, color="grey", linestyle="--")

    def in_service(axis: Any, o: RunOutcome) -> None:
        t = [s.t for s in o.samples]
        level = [s.downstream_in_flight + s.downstream_queued for s in o.samples]
        axis.plot(t, level, label=o.dispatcher, color=colors[o.dispatcher])
        axis.axhline(o.capacity, color="grey", linestyle="--")

    def queue_depth(axis: Any, o: RunOutcome) -> None:
        t = [s.t for s in o.samples]
        priorities = list(o.samples[0].queue_visible) if o.samples else []
        for style, priority in zip(STYLES, priorities, strict=False):
            depth = [s.queue_visible.get(priority, 0) + s.queue_in_flight.get(priority, 0) for s in o.samples]
            axis.plot(t, depth, style, color=colors[o.dispatcher], label=f"{o.dispatcher} {priority}")

    def throttled(axis: Any, o: RunOutcome) -> None:
        t, v = _rate_series(o.samples, "throttled_429")
        axis.plot(t, v, label=o.dispatcher, color=colors[o.dispatcher])

    def latency_cdf(axis: Any, o: RunOutcome) -> None:
        for style, (priority, values) in zip(STYLES, o.latencies.items(), strict=False):
            points = perf_metrics.cdf(values)
            if points:
                x, y = [p[0] for p in points], [p[1] for p in points]
                axis.step(
                    x, y, style, where="post", color=colors[o.dispatcher], label=f"{o.dispatcher} {priority}"
                )

    figures.draw(
        "throughput", "rows applied per second against C / L", "rows/s", throughput, " (dashed: C / L)"
    )
    figures.draw(
        "downstream_in_flight",
        "downstream requests in service against capacity",
        "in service",
        in_service,
        " (dashed: capacity C)",
    )
    figures.draw("queue_depth", "queue depth (visible + in flight) by priority", "messages", queue_depth)
    figures.draw("throttled_429", "429 answers per second", "429/s", throttled)
    figures.draw("latency_cdf", "upload → complete latency CDF by priority", "share of objects", latency_cdf)
    return list(PLOTS.values())
