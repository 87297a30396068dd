"""`make chaos`: every fault kind, processor-level and on the whole local stack; lost = 0, duplicates = 0.

The processor-level kinds (s3stagger.local.chaos) run over many small objects; the full-stack kinds
(s3stagger.local.stack_chaos: a dispatcher stopped mid-batch, Lambda throttling at reserved
concurrency 1 for a window) run on the emulator with the dispatcher and the local Lambda runtime.
Live progress (rich) per kind; writes a report (docs/chaos.md), the figures (docs/chaos.json) and a
plot (docs/chaos.png: rows applied over time per kind, the fault window shaded); one JSON line last.

    .venv/bin/python benchmarks/chaos.py --objects-per-kind 1000 --stack-objects 1000
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws
from rich.console import Console
from rich.live import Live
from rich.table import Table

from s3stagger.local.chaos import KindResult, fault_kinds, run_chaos
from s3stagger.local.stack_chaos import STACK_KINDS, StackKindResult, run_stack_chaos

STACK_BUDGET = 8
"""Dispatcher slots of the full-stack kinds at the issue's size: enough that 1,000 small objects
drain in minutes on the local stack, fewer than the objects so most wait in the queue."""

COLUMNS = (
    ("kind", "fault kind"),
    ("objects", "objects"),
    ("rows_expected", "rows expected"),
    ("rows_applied_once", "applied once"),
    ("rows_in_sink", "in sink (reason)"),
    ("objects_quarantined", "quarantined"),
    ("objects_in_dlq", "in DLQ before redrive"),
    ("recovered_by_redrive", "recovered by redrive"),
    ("rows_failed_transient", "failed (transient)"),
    ("lost_rows", "lost"),
    ("duplicate_effects", "duplicate effects"),
    ("max_stall_s", "max stall s"),
    ("resume_s", "resume s"),
    ("throttles", "throttles"),
    ("seconds", "seconds"),
)
TIMELINE_POINTS = 200
"""Points of each kind's timeline kept in the JSON (evenly thinned)."""
Result = KindResult | StackKindResult


def table_of(results: list[Result]) -> Table:
    table = Table(title="chaos")
    for _, title in COLUMNS:
        table.add_column(title)
    for result in results:
        table.add_row(*(str(getattr(result, name, "-")) for name, _ in COLUMNS))
    return table


def thinned(timeline: list[Any], points: int = TIMELINE_POINTS) -> list[Any]:
    if len(timeline) <= points:
        return list(timeline)
    step = len(timeline) / points
    return [timeline[int(i * step)] for i in range(points)] + [timeline[-1]]


def summarise(
    processor: dict[str, Any] | None, stack: list[StackKindResult], stack_objects: int
) -> dict[str, Any]:
    kinds = [dict(kind) for kind in (processor or {}).get("kinds", [])]
    kinds += [{**asdict(result), "full_stack": True} for result in stack]
    for kind in kinds:
        kind["timeline"] = thinned(kind["timeline"])
    stopped = [r.resume_s for r in stack if r.kind == "dispatcher_stopped" and r.resume_s is not None]
    objects = [processor.get("objects_per_kind", 0)] if processor else []
    objects += [result.objects for result in stack]
    return {
        "fault_kinds": len(kinds),
        "objects_per_kind": min(objects, default=0),
        "stack_objects_per_kind": stack_objects if stack else 0,
        "lost_rows": sum(kind["lost_rows"] for kind in kinds),
        "duplicate_effects": sum(kind["duplicate_effects"] for kind in kinds),
        "recovered_by_redrive": sum(kind["recovered_by_redrive"] for kind in kinds),
        "rows_failed_transient": (processor or {}).get("rows_failed_transient", 0),
        "max_stall_s": max((kind["max_stall_s"] for kind in kinds), default=0.0),
        "dispatcher_resume_s": max(stopped, default=None),
        "throttles": sum(r.throttles for r in stack if r.kind == "lambda_throttling"),
        "incomplete_kinds": [r.kind for r in stack if not r.completed],
        "kinds": kinds,
    }


def markdown(summary: dict[str, Any], command: str) -> str:
    lines = [
        "# Chaos suite (as measured)",
        "",
        f"Command: `{command}`; {summary['seconds']} s, load average (1 min) "
        f"{summary['load_average'][0]} at the start, {summary['load_average'][1]} at the end.",
        "",
        "- Processor-level kinds (`src/s3stagger/local/chaos.py`): the real processor, failed-rows sink,",
        "  downstream simulator and outage proxy, S3 on moto, driven as the dispatcher drives it; then the",
        "  dead-lettered objects are redriven and the sink replayed. max stall s: the longest gap between",
        "  two invocations that applied rows.",
        "- Full-stack kinds (`src/s3stagger/local/stack_chaos.py`, marked *): the emulator, the Step",
        "  Functions dispatcher, the local Lambda runtime, the scheduler, the real processor handler and",
        "  the simulator; small objects on the high-priority queue (no stagger wait), the dispatcher's",
        "  budget as given. The fault starts once every object is uploaded and",
        "  at least 1/5 of the rows are applied (the fault window in the plot shows when).",
        "  dispatcher_stopped: every running execution stopped (`StopExecution`); resume s = from the stop",
        "  to the first processor call under a lease taken after it. lambda_throttling: the processor's",
        "  reserved concurrency drops to 1 below the running execution's slots for the fault window, then",
        "  goes back; throttles = calls Lambda turned away (retried by the dispatcher). max stall s: the",
        "  longest time no new row was applied after the fault started while rows were due (sampled every",
        "  0.25 s). The full-stack kinds run in processes of their own, beside the processor-level ones.",
        "",
        "![rows applied over time per kind, fault window shaded](chaos.png)",
        "",
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for kind in summary["kinds"]:
        name = kind["kind"] + (" *" if kind.get("full_stack") else "")
        cells = [name] + [str(kind.get(column, "-")).replace("None", "-") for column, _ in COLUMNS[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    totals = {k: v for k, v in summary.items() if k != "kinds"}
    lines += ["", "```json", json.dumps(totals, sort_keys=True), "```", ""]
    return "\n".join(lines)


def timeline_png(summary: dict[str, Any], path: Path) -> None:
    """Rows applied over time, one panel per kind, the fault window shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = summary["kinds"]
    columns = 3
    rows = max(1, -(-len(kinds) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.6 * rows), squeeze=False)
    for axis, kind in zip(axes.flat, kinds, strict=False):
        points = kind["timeline"]
        if points:
            axis.step([p[0] for p in points], [p[1] for p in points], where="post", color="C0")
        start, end = kind["fault_window_s"]
        if end > start:
            axis.axvspan(start, end, color="C3", alpha=0.15, label="fault")
        if kind["rows_expected"]:
            axis.axhline(kind["rows_expected"], color="grey", linestyle=":", linewidth=1, label="expected")
        else:
            quarantined = kind.get("objects_quarantined", 0)
            axis.text(
                0.5,
                0.5,
                f"no rows expected\n{quarantined} objects quarantined",
                ha="center",
                transform=axis.transAxes,
                fontsize=8,
            )
        extra = f", resume {kind['resume_s']} s" if kind.get("resume_s") is not None else ""
        star = " *" if kind.get("full_stack") else ""
        axis.set_title(
            f"{kind['kind']}{star}\nlost {kind['lost_rows']}, dup {kind['duplicate_effects']}{extra}",
            fontsize=9,
        )
        axis.set_xlabel("s", fontsize=8)
        axis.set_ylabel("rows applied (distinct)", fontsize=8)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(kinds) :]:
        axis.set_visible(False)
    if kinds:
        axes.flat[0].legend(fontsize=7, loc="lower right")
    figure.suptitle("chaos: rows applied over time per fault kind (fault window shaded; * full local stack)")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


@contextmanager
def _stack_kinds_beside(args: argparse.Namespace) -> Iterator[list[Future[list[StackKindResult]]]]:
    """Each full-stack kind in a process of its own, started at once: the local stack is bound to one
    core by the GIL, so they run beside the processor-level kinds rather than after them."""
    if not args.stack_kinds:
        yield []
        return
    spawn = multiprocessing.get_context("spawn")  # this process has threads: no fork
    with ProcessPoolExecutor(len(args.stack_kinds), mp_context=spawn, initializer=_quiet_moto) as pool:
        yield [
            pool.submit(
                run_stack_chaos,
                args.stack_objects,
                kinds=[kind],
                rows_per_object=args.stack_rows,
                budget=args.stack_budget,
                fault_window_s=args.stack_window_s,
                deadline_s=args.stack_deadline_s,
            )
            for kind in args.stack_kinds
        ]


def _quiet_moto() -> None:
    # a stopped execution's states end in errors moto logs at length; the accounting tells the outcome
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects-per-kind", type=int, default=1000)
    parser.add_argument(
        "--window-s", type=float, default=5.0, help="How long an outage or capacity drop lasts."
    )
    parser.add_argument(
        "--kinds",
        nargs="*",
        choices=sorted(fault_kinds(1.0)),
        default=None,
        help="Processor-level kinds (none: skip).",
    )
    parser.add_argument(
        "--stack-kinds",
        nargs="*",
        choices=STACK_KINDS,
        default=list(STACK_KINDS),
        help="Full-stack kinds (none: skip).",
    )
    parser.add_argument("--stack-objects", type=int, default=1000, help="Objects per full-stack kind.")
    parser.add_argument("--stack-rows", type=int, default=5, help="Rows per object of the full-stack kinds.")
    parser.add_argument(
        "--stack-budget", type=int, default=STACK_BUDGET, help="Dispatcher slots of the full-stack kinds."
    )
    parser.add_argument(
        "--stack-window-s",
        type=float,
        default=20.0,
        help="How long the reserved concurrency stays at 1 (lambda_throttling).",
    )
    parser.add_argument(
        "--stack-deadline-s",
        type=float,
        default=1200.0,
        help="Each full-stack kind's bound: work not drained by then is reported as not applied.",
    )
    parser.add_argument("--out-dir", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    for name, value in {"AWS_ACCESS_KEY_ID": "chaos", "AWS_SECRET_ACCESS_KEY": "chaos"}.items():
        os.environ.setdefault(name, value)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    _quiet_moto()
    results: list[Result] = []
    console = Console(stderr=True)
    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    with Live(table_of(results), console=console, refresh_per_second=2) as live:

        def progress(result: Result) -> None:
            results.append(result)
            live.update(table_of(results))
            if not console.is_terminal:  # a log, not a screen: one line per kind
                console.print(f"{result.kind}: {result.seconds} s, lost {result.lost_rows}", highlight=False)

        with _stack_kinds_beside(args) as stack_runs:
            processor = None
            if args.kinds != []:
                with mock_aws():
                    processor = run_chaos(
                        boto3.client("s3", region_name="us-east-1"),
                        args.objects_per_kind,
                        kinds=args.kinds,
                        window_s=args.window_s,
                        progress=progress,
                    )
            stack = []
            for run in stack_runs:
                stack += run.result()
                progress(stack[-1])
    summary = summarise(processor, stack, args.stack_objects)
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["load_average"] = [round(load_at_start, 1), round(os.getloadavg()[0], 1)]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/chaos.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (args.out_dir / "chaos.md").write_text(markdown(summary, command.strip()), encoding="utf-8")
    (args.out_dir / "chaos.json").write_text(
        json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    timeline_png(summary, args.out_dir / "chaos.png")
    print(json.dumps({k: v for k, v in summary.items() if k != "kinds"}, sort_keys=True))
    clean = (
        summary["lost_rows"] == 0 and summary["duplicate_effects"] == 0 and not summary["incomplete_kinds"]
    )
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
