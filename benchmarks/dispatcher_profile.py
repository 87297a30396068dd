"""Where a dispatcher slot's time goes: prints ONE JSON line (not a test; no thresholds).

Runs ``objects`` small objects (10 rows each, C = 20, L = 50 ms) through ``budget`` slots of the
Express dispatcher on the local pipeline, then reads every execution's history and sums, per
state, the time from entering it to leaving it, divided by the objects: the per-object cost of
each step of the slot loop (receive, visibility, invoke, delete, the Choice and Pass states),
beside the processor's own billed time. On the emulator every Task state is an HTTP call into moto
from the same process; on AWS a state takes milliseconds.

    .venv/bin/python benchmarks/dispatcher_profile.py [budget] [objects]
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections import Counter, defaultdict
from typing import Any

from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings
from s3stagger.perf.counting import execution_histories, invoked_processor
from s3stagger.perf.runner import ScenarioRun, harness_client
from s3stagger.perf.scenarios import ObjectGroup, Scenario
from s3stagger.perf.simulator_process import SimulatorProcess


def state_times(sfn: Any, state_machine_arn: str) -> tuple[dict[str, float], Counter[str]]:
    """Seconds spent in each state, and how often it was entered, over the executions that
    invoked the processor."""
    seconds: dict[str, float] = defaultdict(float)
    entered: Counter[str] = Counter()
    for _, events in execution_histories(sfn, state_machine_arn):
        if not invoked_processor(events):
            continue
        open_states: dict[str, list[float]] = defaultdict(list)
        for event in events:
            at = event["timestamp"].timestamp()
            if event["type"].endswith("StateEntered"):
                open_states[event["stateEnteredEventDetails"]["name"]].append(at)
            elif event["type"].endswith("StateExited"):
                name = event["stateExitedEventDetails"]["name"]
                if open_states[name]:
                    seconds[name] += at - open_states[name].pop(0)
                    entered[name] += 1
    return seconds, entered


def main() -> None:
    budget = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    objects = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    scenario = Scenario(
        name="profile",
        description="small objects through a few slots",
        groups=(ObjectGroup("normal", objects, 10),),
        latency_s=0.05,
        budget=budget,
    )
    quiet = contextlib.redirect_stdout(io.StringIO())  # the processor's log lines
    with quiet, SimulatorProcess(scenario.capacity, scenario.latency_s) as simulator:
        settings = LocalPipelineSettings(
            downstream_url=simulator.rows_url,
            concurrency_budget=budget,
            processor_environment={
                "S3STAGGER_MAX_CONCURRENCY": "2",
                "S3STAGGER_INITIAL_CONCURRENCY": "2",
            },
            dispatcher_type="EXPRESS",
            start_scheduler=True,
        )
        with LocalPipeline(settings) as stack:
            run = ScenarioRun(scenario, stack, simulator, None, seed=1)
            run.upload()
            elapsed = run.follow(budget)
            if stack.scheduler is not None:
                stack.scheduler.stop()
            seconds, entered = state_times(
                harness_client(stack, "stepfunctions"), stack.names.state_machine_arn
            )
            counters = stack.processor_counters()
    per_object = {
        name: round(1000 * s / objects, 1) for name, s in sorted(seconds.items(), key=lambda i: -i[1])
    }
    print(
        json.dumps(
            {
                "budget": budget,
                "objects": objects,
                "elapsed_s": round(elapsed, 2),
                "processor_billed_ms_per_object": round(counters.billed_ms / objects, 1),
                "state_ms_per_object": per_object,
                "entered": dict(entered),
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
