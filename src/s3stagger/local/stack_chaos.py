"""Chaos over the whole local stack: faults of the dispatcher and of the Lambda service.

:mod:`s3stagger.local.chaos` drives the processor directly; the kinds here need what only the local
stack has — the emulator's queues and Step Functions dispatcher, the local Lambda runtime (reserved
concurrency, throttling), the scheduler — with the real processor handler and the downstream
simulator:

* ``dispatcher_stopped``: once rows are being applied, every running dispatcher execution is stopped
  (``StopExecution``) mid-batch. Its processor calls run on to their end (Lambda does not stop them)
  and then no longer renew their message and the lease (:mod:`s3stagger.domain.keepalive`); the
  next scheduled start takes the lease and dispatches; a message a slot had received but not yet
  handed to a call is visible again within the receive's claim. **resume s**: from the stop to the
  first processor call made under a lease taken after it.
* ``lambda_throttling``: once rows are being applied, the processor's reserved concurrency drops to
  1 (an operator or an incident, below the running execution's slots) for ``fault_window_s``, then
  goes back to what was provisioned. The running execution cannot know: its other slots' calls are
  turned away (``TooManyRequestsException``) and retried by the slot's own loop (holding the
  message through each wait) until the window ends; an execution that starts meanwhile clamps its
  slots to 1. **throttles** is the calls Lambda turned away, **peak calls** the most calls the
  handler ran at once.

Accounting as in :mod:`s3stagger.local.chaos`, from the simulator's ledger: rows expected (every
data row), applied once, outstanding in the failed-rows sink, **lost**, **duplicate effects**; what
waits in a DLQ is redriven once the fault is gone. The timeline (rows applied every
``sample_s``) and the fault window feed the report's plot.

The stack is set up so that 1,000 small objects drain in minutes on the emulator, whose Step
Functions interpreter is what costs CPU: the objects go to the high-priority queue (no stagger wait,
no empty higher-priority queue to look at first), the schedule starts an execution every
``SCHEDULE_INTERVAL_S`` rather than every second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from s3stagger.adapters.dlq_redrive import LocalMessageMoveTask
from s3stagger.definitions.model import DEFAULT_NAME_PREFIX, Definitions
from s3stagger.domain.idempotency import object_version_token, row_idempotency_key
from s3stagger.domain.redrive import DeadLetter, RedriveFilter
from s3stagger.handlers import process_object
from s3stagger.local.chaos import applied_over_time, csv_object
from s3stagger.local.downstream import DownstreamSimulator, LatencySpec, SimulatorSettings
from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings

STACK_KINDS = ("dispatcher_stopped", "lambda_throttling")
PROCESSOR_ENVIRONMENT = {
    "S3STAGGER_MAX_CONCURRENCY": "2",
    "S3STAGGER_INITIAL_CONCURRENCY": "2",
    "S3STAGGER_BACKOFF_BASE_S": "0.05",
    "S3STAGGER_BACKOFF_MAX_S": "0.5",
}
BUDGET = 2
"""Slots of the dispatcher (default): fewer than the objects, so some wait in the queue when it dies."""
SCHEDULE_INTERVAL_S = 5.0
"""Scheduled starts (AWS: 1 minute): each one that finds the lease held still costs an execution on
the emulator's CPU, which the dispatcher's own work needs."""
FAULT_WINDOW_S = 5.0
"""How long the reserved concurrency stays throttled (``lambda_throttling``), by default."""
DEADLINE_S = 300.0
"""Each kind's bound by default: work not drained by then is reported as not applied."""
THROTTLED_CONCURRENCY = 1
"""The processor's reserved concurrency while ``lambda_throttling`` is on (the issue's figure)."""
FAULT_AT = 5
"""The fault starts once every object is uploaded and 1/FAULT_AT of the rows are applied (on a loaded
machine the uploads can take longer than that share)."""


@dataclass
class StackKindResult:
    kind: str
    objects: int
    rows_per_object: int
    rows_expected: int = 0
    rows_applied_once: int = 0
    rows_in_sink: int = 0
    objects_in_dlq: int = 0
    recovered_by_redrive: int = 0
    lost_rows: int = 0
    duplicate_effects: int = 0
    duplicate_deliveries: int = 0
    invocations: int = 0
    throttles: int = 0
    peak_calls: int = 0
    reserved_concurrency: int | None = None
    resume_s: float | None = None
    """dispatcher_stopped: from the stop to the first call under a lease taken after it."""
    max_stall_s: float = 0.0
    """The longest time no row was applied after the fault started while rows were still expected
    (from the timeline)."""
    fault_window_s: tuple[float, float] = (0.0, 0.0)
    """When the fault was on, in seconds from the first upload."""
    timeline: list[tuple[float, int]] = field(default_factory=list)
    """(seconds from the first upload, rows applied so far)."""
    seconds: float = 0.0
    completed: bool = True
    """The work drained within the run's deadline (otherwise the accounting shows what is missing)."""


class _CallRecorder:
    """Wraps the real processor handler: when each call ran, under which lease, how many at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self.peak = 0
        self.starts: list[tuple[float, str | None]] = []

    def __call__(self, event: Any, context: Any) -> Any:
        lease = ((event.get("keepalive") or {}).get("lease") or {}).get("receipt_handle")
        with self._lock:
            self._running += 1
            self.peak = max(self.peak, self._running)
            self.starts.append((time.monotonic(), lease))
        try:
            return process_object.handler(event, context)
        finally:
            with self._lock:
                self._running -= 1

    def leases_before(self, moment: float) -> set[str | None]:
        with self._lock:
            return {lease for at, lease in self.starts if at <= moment}

    def first_call_under_a_new_lease(self, after: float, old: set[str | None]) -> float | None:
        with self._lock:
            return next((at for at, lease in self.starts if at > after and lease not in old), None)


class StackChaosRun:
    """One full-stack fault kind (see the module doc)."""

    def __init__(
        self,
        kind: str,
        objects: int,
        *,
        rows_per_object: int = 40,
        budget: int = BUDGET,
        fault_window_s: float = FAULT_WINDOW_S,
        schedule_interval_s: float = SCHEDULE_INTERVAL_S,
        priority: str = "high",
        latency: LatencySpec | None = None,
        deadline_s: float = DEADLINE_S,
        sample_s: float = 0.25,
    ) -> None:
        if kind not in STACK_KINDS:
            raise ValueError(f"unknown stack fault kind {kind!r}; one of {', '.join(STACK_KINDS)}")
        self._kind = kind
        self._budget = budget
        self._window_s = fault_window_s
        self._schedule_interval_s = schedule_interval_s
        self._priority = priority
        self._latency = latency or LatencySpec.uniform(0.02, 0.08)
        self._deadline_s = deadline_s
        self._sample_s = sample_s
        self.result = StackKindResult(kind, objects, rows_per_object)

    def run(self) -> StackKindResult:
        recorder = _CallRecorder()
        with DownstreamSimulator(SimulatorSettings(capacity=8, latency=self._latency, seed=7)) as sim:
            settings = LocalPipelineSettings(
                downstream_url=sim.rows_url,
                concurrency_budget=self._budget,
                schedule_interval_s=self._schedule_interval_s,
                processor_environment=PROCESSOR_ENVIRONMENT,
                start_scheduler=False,  # started with the clock, just before the first upload
                handlers={
                    f"{DEFAULT_NAME_PREFIX}-{Definitions.load().processor.function_name_suffix}": recorder
                },
            )
            with LocalPipeline(settings) as stack:
                self._run_on(stack, sim, recorder)
        return self.result

    def _run_on(self, stack: LocalPipeline, sim: DownstreamSimulator, recorder: _CallRecorder) -> None:
        result = self.result
        if stack.scheduler is not None:
            stack.scheduler.start()
        started = time.monotonic()
        deadline = started + self._deadline_s
        with applied_over_time(sim, started, self._sample_s, result.timeline):
            keys = self._upload(stack)
            self._wait_for_a_share_applied(sim, deadline)
            if self._kind == "dispatcher_stopped":
                self._stop_mid_run(stack, recorder, started, deadline)
            else:
                self._throttle_for_a_window(stack, started)
            result.completed = stack.wait_until_idle(max(1.0, deadline - time.monotonic()))
            result.recovered_by_redrive = self._redrive(stack)
            if result.recovered_by_redrive:
                result.completed = stack.wait_until_idle(max(1.0, deadline - time.monotonic()))
        result.seconds = round(time.monotonic() - started, 2)
        self._account(stack, sim, recorder, keys)

    def _upload(self, stack: LocalPipeline) -> set[str]:
        s3 = stack.client("s3")
        keys: set[str] = set()
        rows = self.result.rows_per_object
        for index in range(self.result.objects):
            key = f"{self._priority}/{self._kind}/{index:04d}.csv"
            put = s3.put_object(
                Bucket=stack.names.bucket, Key=key, Body=csv_object(self._kind, index, rows=rows)
            )
            version = object_version_token(put.get("VersionId"), put["ETag"].strip('"'))
            keys |= {row_idempotency_key(stack.names.bucket, key, version, n) for n in range(1, rows + 1)}
        return keys

    def _wait_for_a_share_applied(self, sim: DownstreamSimulator, deadline: float) -> None:
        """The fault starts mid-run: once some rows (not all) are applied."""
        wanted = max(1, self.result.objects * self.result.rows_per_object // FAULT_AT)
        while sim.stats().effects_applied < wanted and time.monotonic() < deadline:
            time.sleep(0.05)

    def _throttle_for_a_window(self, stack: LocalPipeline, started: float) -> None:
        """Reserved concurrency down to THROTTLED_CONCURRENCY for the window, then as provisioned."""
        lam = stack.client("lambda")
        function = stack.names.function_name
        provisioned = lam.get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions")
        dropped_at = time.monotonic()
        lam.put_function_concurrency(
            FunctionName=function, ReservedConcurrentExecutions=THROTTLED_CONCURRENCY
        )
        self.result.reserved_concurrency = THROTTLED_CONCURRENCY
        time.sleep(self._window_s)
        if provisioned is None:
            lam.delete_function_concurrency(FunctionName=function)
        else:
            lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=provisioned)
        self.result.fault_window_s = (round(dropped_at - started, 2), round(time.monotonic() - started, 2))

    def _stop_mid_run(
        self, stack: LocalPipeline, recorder: _CallRecorder, started: float, deadline: float
    ) -> None:
        """Stop every running dispatcher; measure how soon a new lease dispatches."""
        stopped_at = time.monotonic()
        stack.stop_running_dispatchers()
        old = recorder.leases_before(stopped_at)
        resumed = None
        while resumed is None and time.monotonic() < deadline and stack.pending_messages() > 0:
            resumed = recorder.first_call_under_a_new_lease(stopped_at, old)
            time.sleep(0.1)
        resumed = resumed or recorder.first_call_under_a_new_lease(stopped_at, old)
        end = resumed if resumed is not None else time.monotonic()
        self.result.resume_s = None if resumed is None else round(resumed - stopped_at, 2)
        self.result.fault_window_s = (round(stopped_at - started, 2), round(end - started, 2))

    def _redrive(self, stack: LocalPipeline) -> int:
        """Every priority DLQ back to its queue (as ``s3stagger redrive --from dlqs``); objects moved."""
        mover = LocalMessageMoveTask(stack.client("sqs"))
        names = stack.names
        self.result.objects_in_dlq = sum(stack.queue_depth(url).total for url in names.dlq_urls.values())
        moved = 0
        for priority, dlq_url in names.dlq_urls.items():
            moved += mover.run(dlq_url, _to(names.queue_urls[priority]), RedriveFilter()).moved
        return moved

    def _account(
        self, stack: LocalPipeline, sim: DownstreamSimulator, recorder: _CallRecorder, expected: set[str]
    ) -> None:
        result = self.result
        stats = sim.stats()
        result.rows_expected = len(expected)
        result.rows_applied_once = len(expected & sim.applied_keys())
        result.rows_in_sink = sum(
            len(record["body"]) for record in stack.failed_row_records() if record["key"].endswith(".csv")
        )
        result.lost_rows = max(0, result.rows_expected - result.rows_applied_once - result.rows_in_sink)
        result.max_stall_s = longest_stall(result.timeline, result.rows_expected, result.fault_window_s[0])
        result.duplicate_effects = stats.duplicate_effects
        result.duplicate_deliveries = stats.duplicate_deliveries
        counters = stack.processor_counters()
        result.invocations = len(recorder.starts)
        result.throttles = counters.throttles
        result.peak_calls = recorder.peak


def longest_stall(timeline: list[tuple[float, int]], expected: int, after: float = 0.0) -> float:
    """The longest time, from ``after`` (the fault's start) on, between two samples that saw rows
    applied, until every expected row was (and, if they never all were, up to the last sample)."""
    longest, since = 0.0, after
    applied = max((count for at, count in timeline if at <= after), default=0)
    for at, count in timeline:
        if at <= after:
            continue
        if count > applied:
            longest, since, applied = max(longest, at - since), at, count
        if applied >= expected:
            return round(longest, 2)
    tail = timeline[-1][0] - since if timeline and applied < expected else 0.0
    return round(max(longest, tail), 2)


def _to(queue_url: str) -> Callable[[DeadLetter], str]:
    return lambda _letter: queue_url


def run_stack_chaos(
    objects_per_kind: int,
    *,
    kinds: list[str] | None = None,
    rows_per_object: int = 40,
    budget: int = BUDGET,
    fault_window_s: float = FAULT_WINDOW_S,
    deadline_s: float = DEADLINE_S,
    progress: Callable[[StackKindResult], None] | None = None,
) -> list[StackKindResult]:
    """Run every full-stack fault kind (or ``kinds``), one local stack each."""
    results = []
    for kind in STACK_KINDS:
        if kinds and kind not in kinds:
            continue
        run = StackChaosRun(
            kind,
            objects_per_kind,
            rows_per_object=rows_per_object,
            budget=budget,
            fault_window_s=fault_window_s,
            deadline_s=deadline_s,
        )
        result = run.run()
        results.append(result)
        if progress is not None:
            progress(result)
    return results
