"""Pipeline benchmark: the demo workload through the whole local pipeline; prints ONE JSON line.

The workload and sizing are ``s3stagger demo``'s defaults (100 files x 50 rows, 10 upload workers,
downstream capacity C = 20 at L = 200 ms, budget 10 objects x C // budget rows in flight): S3
upload -> EventBridge -> SQS -> local scheduler -> dispatcher state machine (moto's Step Functions
interpreter) -> the real processor handler in the local Lambda runtime -> the downstream simulator.

Figures (one run, so read them together, never as an absolute time alone):

- ``utilization`` = achieved rows/s / (C / L), rows counted once (duplicate effects excluded);
- ``throttle_rate_429`` = 429 answers / downstream requests, and ``peak_downstream_concurrency``,
  both from the simulator's stats;
- ``upload_to_complete_p50_s`` / ``_p95_s``: from an object's PUT returning to the processor's first
  ``COMPLETE`` answer for it;
- ``state_transitions_per_object``: states entered across every dispatcher execution's history,
  divided by the objects (Standard workflows bill per transition; the emulator keeps an Express
  execution's history too, so the figure is there for both types);
- ``lambda_invocations_per_object``: the local Lambda runtime's invocation counter / objects.

    make bench-pipeline        # or: .venv/bin/python benchmarks/bench_pipeline.py [--files N] [--rows N]
                               #     [--dispatcher-type EXPRESS|STANDARD]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from s3stagger.cli.demo import lambda_output_to
from s3stagger.cli.local import quiet_emulator_logs
from s3stagger.cli.pipeline_run import PipelineRunSettings, run_pipeline
from s3stagger.definitions.model import Definitions
from s3stagger.local.downstream.settings import LatencySpec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = PipelineRunSettings()
    parser.add_argument("--files", type=int, default=defaults.files)
    parser.add_argument("--rows", type=int, default=defaults.rows)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--capacity", type=int, default=defaults.capacity)
    parser.add_argument("--latency", default="fixed:0.2", help="fixed:SECONDS or uniform:LOW,HIGH")
    parser.add_argument("--budget", type=int, default=None, help="objects at once (default: budget.json)")
    parser.add_argument("--processor-concurrency", type=int, default=None, help="default: capacity // budget")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--dispatcher-type",
        choices=["EXPRESS", "STANDARD"],
        default=None,
        help="dispatcher state machine type (default: dispatcher.json state_machine_type)",
    )
    args = parser.parse_args(argv)

    settings = PipelineRunSettings(
        files=args.files,
        rows=args.rows,
        workers=args.workers,
        capacity=args.capacity,
        latency=LatencySpec.parse(args.latency),
        concurrency_budget=args.budget,
        processor_max_concurrency=args.processor_concurrency,
        timeout_s=args.timeout,
        collect_history=True,
        pipeline_options={"dispatcher_type": args.dispatcher_type} if args.dispatcher_type else {},
    )
    log_path = Path(tempfile.gettempdir()) / f"s3stagger-bench-pipeline-{os.getpid()}.log"
    started = time.monotonic()
    with quiet_emulator_logs(verbose=False), lambda_output_to(log_path):
        result = run_pipeline(settings)
    wall_s = time.monotonic() - started
    report = result.report
    figures: dict[str, Any] = {
        "benchmark": "pipeline",
        **result.benchmark_figures(),
        "peak_downstream_concurrency": report.peak_downstream_concurrency,
        "downstream_capacity": report.downstream_capacity,
        "downstream_latency_s": report.downstream_latency_s,
        "rows_per_s": report.rows_per_s,
        "downstream_limit_rows_per_s": report.downstream_limit_rows_per_s,
        "objects": report.objects_total,
        "objects_complete": report.objects_complete,
        "rows_total": report.rows_total,
        "rows_applied": report.rows_applied,
        "failed_rows": report.failed_rows,
        "rows_unaccounted": report.rows_unaccounted,
        "duplicate_effects": report.duplicate_effects,
        "dlq_messages": report.dlq_messages,
        "downstream_requests": report.downstream_requests,
        "state_transitions": result.state_transitions,
        "dispatcher_executions": result.executions,
        "lambda_invocations": result.processor_invocations,
        "processor_answers": result.answers,
        "dispatcher_type": args.dispatcher_type or Definitions.load().dispatcher.state_machine_type,
        "concurrency_budget": settings.effective_budget(),
        "processor_concurrency": settings.sized_processor_concurrency(),
        "elapsed_s": report.elapsed_s,
        "wall_s": round(wall_s, 2),
        "timed_out": result.timed_out,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    print(json.dumps(figures))
    return 0 if report.all_rows_accounted else 1


if __name__ == "__main__":
    sys.exit(main())
