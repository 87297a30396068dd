"""What a local run did that AWS bills, read from the emulator's request counter, the local Lambda
runtime and the dispatcher's executions: the :class:`~s3stagger.domain.cost.CountedWork` the cost
model prices. Used by ``perf-test`` for every run and by ``s3stagger demo`` for its cost line
(:class:`CostSection`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from s3stagger.definitions.model import Definitions
from s3stagger.domain.cost import DISPATCHER_NONE, CountedWork, PriceTable, billed_ms, estimate_cost
from s3stagger.local.lambda_runtime import FunctionCounters
from s3stagger.local.request_counter import HARNESS_USER_AGENT, ORIGIN_PATTERN, ORIGIN_USER, client_as

if TYPE_CHECKING:
    from s3stagger.cli.pipeline_run import PipelineRun
    from s3stagger.local.pipeline import LocalPipeline


def dispatcher_type_setting() -> str:
    """The state machine type ``dispatcher.json`` sets (``EXPRESS`` or ``STANDARD``)."""
    return Definitions.read().dispatcher.state_machine_type.upper()


def price_table() -> PriceTable:
    return Definitions.read().prices


@dataclass(frozen=True)
class ExecutionCounts:
    """The dispatcher's executions, states entered and Express-billed milliseconds, in all and for
    the idle ones (executions that invoked no processor)."""

    executions: int = 0
    transitions: int = 0
    billed_ms: int = 0
    idle_executions: int = 0
    idle_transitions: int = 0
    idle_billed_ms: int = 0
    idle_sqs_requests: int = 0
    """Queue calls the idle executions made (the lease look, and for a start that took the lease,
    its receives and the lease's release), all of them counted in the run's SQS requests too."""
    idle_sqs_empty_receives: int = 0
    """Of those, receives that returned no message."""


def invoked_processor(events: list[dict[str, Any]]) -> bool:
    """Whether an execution's history shows a Lambda task scheduled."""
    return any(
        event["type"] == "TaskScheduled"
        and event.get("taskScheduledEventDetails", {}).get("resourceType") == "lambda"
        for event in events
    )


def sqs_calls(events: list[dict[str, Any]]) -> tuple[int, int]:
    """An execution's queue calls (Task states on SQS, each attempt) and, of them, the receives
    that returned no message."""
    calls = empty = 0
    for event in events:
        scheduled = event.get("taskScheduledEventDetails")
        if scheduled is not None and str(scheduled.get("resourceType", "")).endswith("sqs"):
            calls += 1
        succeeded = event.get("taskSucceededEventDetails")
        if (
            succeeded is not None
            and str(succeeded.get("resourceType", "")).endswith("sqs")
            and str(succeeded.get("resource", "")).lower() == "receivemessage"
            and not json.loads(succeeded.get("output") or "{}").get("Messages")
        ):
            empty += 1
    return calls, empty


def execution_histories(
    sfn: Any, state_machine_arn: str
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Every execution of the state machine (the emulator lists both types) with its history."""
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        for execution in page["executions"]:
            events: list[dict[str, Any]] = []
            for history in sfn.get_paginator("get_execution_history").paginate(
                executionArn=execution["executionArn"]
            ):
                events.extend(history["events"])
            yield execution, events


def execution_counts(sfn: Any, state_machine_arn: str, step_ms: int) -> ExecutionCounts:
    """Read every execution of the state machine; each execution's duration is rounded up to
    ``step_ms`` (Express billing)."""
    counts = dict.fromkeys(ExecutionCounts.__dataclass_fields__, 0)
    now = datetime.now().astimezone()
    for execution, events in execution_histories(sfn, state_machine_arn):
        entered = sum(1 for event in events if event["type"].endswith("StateEntered"))
        billed = billed_ms(
            ((execution.get("stopDate") or now) - execution["startDate"]).total_seconds() * 1000, step_ms
        )
        counts["executions"] += 1
        counts["transitions"] += entered
        counts["billed_ms"] += billed
        if not invoked_processor(events):
            counts["idle_executions"] += 1
            counts["idle_transitions"] += entered
            counts["idle_billed_ms"] += billed
            calls, empty = sqs_calls(events)
            counts["idle_sqs_requests"] += calls
            counts["idle_sqs_empty_receives"] += empty
    return ExecutionCounts(**counts)


@dataclass(frozen=True)
class WorkSnapshot:
    """The counters at one moment (when a run settles, before anything else talks to the stack)."""

    pattern_requests: dict[str, dict[str, int]]
    user_requests: dict[str, dict[str, int]]
    function: FunctionCounters
    log_bytes: int

    @classmethod
    def take(cls, stack: LocalPipeline, log_bytes: int) -> WorkSnapshot:
        counter = stack.emulator.request_counter
        if counter is None:  # pragma: no cover - the emulator installs it when it starts
            raise RuntimeError("the emulator counts no requests")
        return cls(
            pattern_requests=counter.snapshot(ORIGIN_PATTERN),
            user_requests=counter.snapshot(ORIGIN_USER),
            function=stack.processor_counters(),
            log_bytes=log_bytes,
        )


@dataclass(frozen=True)
class RunShape:
    """The workload and downstream a run's work is scaled from."""

    objects: int
    rows: int
    capacity: int
    latency_s: float
    dispatcher_type: str


def counted_work(
    stack: LocalPipeline, snapshot: WorkSnapshot, shape: RunShape, prices: PriceTable
) -> tuple[CountedWork, int | None, int | None]:
    """The run's counted work, its dispatcher executions and the state transitions of those that
    invoked the processor (``None`` for a stand-in without a state machine). Reads the executions
    now, through a harness client."""
    runs = ExecutionCounts()
    if shape.dispatcher_type != DISPATCHER_NONE:
        runs = execution_counts(
            client_as(HARNESS_USER_AGENT, "stepfunctions", stack.emulator.client_settings()),
            stack.names.state_machine_arn,
            prices.express_duration_step_ms,
        )
    processor = Definitions.read().processor
    pattern = snapshot.pattern_requests
    uploads = snapshot.user_requests.get("s3", {}).get("PutObject", 0)
    work = CountedWork(
        objects=shape.objects,
        rows=shape.rows,
        capacity=shape.capacity,
        latency_s=shape.latency_s,
        dispatcher_type=shape.dispatcher_type,
        sqs_requests=pattern.get("sqs", {}),
        s3_requests=pattern.get("s3", {}),
        # each upload's Object Created event, and what the dispatcher puts on the bus
        eventbridge_events=uploads + pattern.get("events", {}).get("PutEvents", 0),
        lambda_requests=snapshot.function.invocations,
        lambda_billed_ms=snapshot.function.billed_ms,
        lambda_memory_mb=processor.memory_mb,
        lambda_architecture=processor.architecture,
        sfn_transitions=runs.transitions,
        sfn_executions=runs.executions,
        express_billed_ms=runs.billed_ms,
        sfn_idle_executions=runs.idle_executions,
        sfn_idle_transitions=runs.idle_transitions,
        express_idle_billed_ms=runs.idle_billed_ms,
        sqs_idle_requests=runs.idle_sqs_requests,
        sqs_idle_empty_receives=runs.idle_sqs_empty_receives,
        log_bytes=snapshot.log_bytes,
        user_s3_puts=uploads,
    )
    if shape.dispatcher_type == DISPATCHER_NONE:
        return work, None, None
    return work, runs.executions, runs.transitions - runs.idle_transitions


class CostSection:
    """The ``cost`` section of a demo run's result: dollars per million objects of the reference
    workload, priced from what the run was counted doing (see docs/performance.md)."""

    name = "cost"

    def __init__(self, log_path: Path | None = None) -> None:
        self.log_path = log_path

    def collect(self, run: PipelineRun) -> dict[str, Any]:
        stack = run.stack
        log_bytes = self.log_path.stat().st_size if self.log_path and self.log_path.exists() else 0
        snapshot = WorkSnapshot.take(stack, log_bytes)
        settings = run.settings
        dispatcher_type = str(settings.pipeline_options.get("dispatcher_type") or dispatcher_type_setting())
        shape = RunShape(
            objects=settings.files,
            rows=settings.files * settings.rows,
            capacity=settings.capacity,
            latency_s=run.latency.mean_s * settings.time_scale,
            dispatcher_type=dispatcher_type,
        )
        prices = price_table()
        work, _, _ = counted_work(stack, snapshot, shape, prices)
        estimate = estimate_cost(work, prices)
        return {**estimate.as_dict(), "counters": work.as_dict()}
