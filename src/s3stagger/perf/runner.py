"""One performance run: a scenario through one dispatcher on a fresh local pipeline and simulator.

The seam to the rest of the project is thin on purpose: :class:`~s3stagger.local.pipeline.
LocalPipeline` (the stack), the accounting helpers of :mod:`s3stagger.cli.pipeline_run` (failed-row
sink, DLQs, the processor's answers) and the emulator's request counter
(:mod:`s3stagger.local.request_counter`). The simulator runs in its own process.

Clients are kept apart by who they stand for: the uploads use a *user* client, the sampling and the
final accounting a *harness* client, so neither is counted as the pattern's work; the dispatcher
(the scheduler and moto's Step Functions interpreter), the stand-ins and the processor are the
pattern's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.config import Config

from s3stagger.cli.pipeline_report import PipelineObservation, PipelineReport, summarize_pipeline_run
from s3stagger.cli.pipeline_run import ProcessorOutcomes, count_sink_rows, dead_letter_keys, rows_of
from s3stagger.cli.sample_data import SampleObject
from s3stagger.cli.simulate import UploadedObject, upload_objects
from s3stagger.domain.cost import DISPATCHER_NONE, estimate_cost
from s3stagger.domain.flight import pinned_processor_environment
from s3stagger.domain.perf_metrics import Sample
from s3stagger.handlers import process_object
from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings
from s3stagger.local.request_counter import (
    HARNESS_USER_AGENT,
    USER_USER_AGENT,
)
from s3stagger.perf.counting import RunShape, WorkSnapshot, counted_work, price_table
from s3stagger.perf.report import RunOutcome
from s3stagger.perf.scenarios import NO_STAGGER, SQS_MAPPING, STATE_MACHINE_TYPES, Scenario
from s3stagger.perf.simulator_process import SimulatorProcess
from s3stagger.perf.stand_ins import NoStaggerDispatcher, SqsMappingStandIn, mapping_caps

SAMPLE_INTERVAL_S = 0.25


def harness_client(stack: LocalPipeline, service: str, agent: str = HARNESS_USER_AGENT) -> Any:
    """A client bound to the stack whose requests the counter files under ``agent``'s origin."""
    config = Config(
        user_agent_extra=agent, retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=20
    )
    return boto3.client(service, config=config, **stack.emulator.client_settings())  # type: ignore[call-overload]


def pattern_client(stack: LocalPipeline, service: str) -> Any:
    """A client of the pattern's own work (the stand-in dispatchers)."""
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=60)
    return boto3.client(service, config=config, **stack.emulator.client_settings())  # type: ignore[call-overload]


def upload(
    s3: Any,
    bucket: str,
    objects: list[SampleObject],
    scenario: Scenario,
    note: Callable[[UploadedObject], None],
) -> None:
    """Upload all at once (parallel workers) or evenly over ``scenario.upload_spread_s``."""
    if scenario.upload_spread_s <= 0 or len(objects) < 2:
        upload_objects(s3, bucket, objects, scenario.upload_workers, note)
        return
    interval = scenario.upload_spread_s / (len(objects) - 1)
    started = time.monotonic()
    for index, item in enumerate(objects):
        delay = started + index * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        upload_objects(s3, bucket, [item], 1, note)


def queue_depths(sqs: Any, queue_urls: Mapping[str, str]) -> tuple[dict[str, int], dict[str, int]]:
    """Visible and in-flight messages of each queue, by name."""
    visible: dict[str, int] = {}
    in_flight: dict[str, int] = {}
    for name, url in queue_urls.items():
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        visible[name] = int(attributes.get("ApproximateNumberOfMessages", "0"))
        in_flight[name] = int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0"))
    return visible, in_flight


def stand_in_for(
    dispatcher: str, stack: LocalPipeline, scenario: Scenario
) -> tuple[NoStaggerDispatcher | SqsMappingStandIn | None, int | None]:
    """The stand-in that plays ``dispatcher`` (``None`` for the pattern's own) and its slots."""
    names = stack.names
    clients = (pattern_client(stack, "sqs"), pattern_client(stack, "lambda"), names.function_name)
    if dispatcher == NO_STAGGER:
        return NoStaggerDispatcher(*clients, [names.queue_urls[p] for p in names.priorities]), None
    if dispatcher == SQS_MAPPING:
        caps = mapping_caps(scenario.budget, list(names.priorities))
        return SqsMappingStandIn(*clients, names.queue_urls, caps), sum(caps.values())
    return None, scenario.budget


def latencies_by_priority(
    uploaded: list[UploadedObject], complete: Mapping[str, float], prefixes: Mapping[str, str]
) -> dict[str, list[float]]:
    """Upload → first COMPLETE of each object, grouped by the priority its key prefix routes to."""
    latencies: dict[str, list[float]] = {priority: [] for priority in prefixes}
    upload_times = {item.key: item.uploaded_at for item in uploaded}
    for key, done_at in complete.items():
        if key in upload_times:
            priority = next(
                (p for p, prefix in prefixes.items() if key.startswith(prefix)), list(prefixes)[-1]
            )
            latencies[priority].append(done_at - upload_times[key])
    return latencies


class ScenarioRun:
    """One scenario through one dispatcher on a started stack and simulator: upload, sample until
    every object is accounted for (or the time limit), then account."""

    def __init__(
        self,
        scenario: Scenario,
        stack: LocalPipeline,
        simulator: SimulatorProcess,
        on_sample: Callable[[Sample, int, int], None] | None,
        seed: int,
    ) -> None:
        self.scenario = scenario
        self.stack = stack
        self.simulator = simulator
        self.on_sample = on_sample
        names = stack.names
        self.outcomes = ProcessorOutcomes(process_object.handler, processor_logger=process_object.logger.name)
        if stack.runtime is None:  # pragma: no cover - LocalPipeline.start sets it or raises
            raise RuntimeError("the local pipeline has no Lambda runtime")
        stack.runtime.register(names.function_name, self.outcomes)
        self.sqs = harness_client(stack, "sqs")
        self.prefixes = {priority: names.key_prefix(priority) for priority in names.priorities}
        self.objects = list(scenario.sample_objects(self.prefixes, seed))
        self.dlqs = [*names.dlq_urls.values(), names.ingest_dlq_url]
        self.uploaded: list[UploadedObject] = []
        self.samples: list[Sample] = []
        self.timed_out = False
        self.rows_pending = 0
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        self._uploader: threading.Thread | None = None
        self._started = 0.0

    def wait_for_dispatcher(self, timeout_s: float = 30.0) -> None:
        """Until a dispatcher execution's slots look at the queues (bounded: then the run goes on).

        A run measures a deployed pipeline whose dispatcher is serving, not the stack's first
        seconds: its first execution only puts the lease token in place, the next one sets up its
        slots (about 2 s on the emulator). The stand-ins poll before the uploads too. From an idle
        pipeline, pickup waits for the next scheduled start (docs/performance.md)."""
        sfn = harness_client(self.stack, "stepfunctions")
        arn = self.stack.names.state_machine_arn
        give_up = time.monotonic() + timeout_s
        while time.monotonic() < give_up:
            for execution in sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
                events = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)
                if any(
                    event.get("stateEnteredEventDetails", {}).get("name") == "Receive"
                    for event in events["events"]
                ):
                    return
            time.sleep(0.1)

    def upload(self) -> None:
        """Start the uploads (the user's) in the background."""
        s3 = harness_client(self.stack, "s3", USER_USER_AGENT)

        def note(item: UploadedObject) -> None:
            with self._lock:
                self.uploaded.append(item)

        def body() -> None:
            try:
                upload(s3, self.stack.names.bucket, self.objects, self.scenario, note)
            except BaseException as error:  # handed to the sampling loop
                self._errors.append(error)

        self._started = time.monotonic()
        self._uploader = threading.Thread(target=body, name="perf-upload", daemon=True)
        self._uploader.start()

    def follow(self, slots: int | None) -> float:
        """Sample until settled or timed out; returns the seconds since the first upload."""
        while True:
            sample = self.take_sample(slots)
            self.samples.append(sample)
            done = len(self.outcomes.complete_keys) + len(self.outcomes.rejected_keys)
            if self.on_sample is not None:
                self.on_sample(sample, done, len(self.objects))
            if self._errors:
                raise self._errors[0]
            if self.settled(sample, done):
                break
            if sample.t > self.scenario.timeout_s:
                self.timed_out = True
                break
            time.sleep(SAMPLE_INTERVAL_S)
        return time.monotonic() - self._started

    def take_sample(self, slots: int | None) -> Sample:
        stats = self.simulator.stats()
        visible, in_flight = queue_depths(self.sqs, self.stack.names.queue_urls)
        return Sample(
            t=time.monotonic() - self._started,
            rows_applied=stats.effects_applied - stats.duplicate_effects,
            downstream_requests=stats.requests,
            throttled_429=stats.throttled_429,
            downstream_in_flight=stats.in_flight,
            downstream_queued=stats.queued,
            capacity=stats.capacity,
            invocations_in_flight=self.stack.processor_counters().in_flight,
            slots=slots,
            queue_visible=visible,
            queue_in_flight=in_flight,
        )

    def settled(self, sample: Sample, done: int) -> bool:
        """Every object uploaded, the queues empty, and every object answered or in a DLQ."""
        with self._lock:
            all_uploaded = len(self.uploaded) == len(self.objects)
        uploading = self._uploader is not None and self._uploader.is_alive()
        if (
            not all_uploaded
            or uploading
            or sum(sample.queue_visible.values()) + sum(sample.queue_in_flight.values())
        ):
            return False
        dlq_visible, _ = queue_depths(self.sqs, {url: url for url in self.dlqs})
        return done + sum(dlq_visible.values()) >= len(self.objects)

    def pending_rows(self, finished: set[str]) -> int:
        """Rows of the objects not finished, when the priority queues still hold at least that many
        messages (visible or in flight): a run cut off by its time limit has not lost them."""
        unfinished = [item for item in self.uploaded if item.key not in finished]
        visible, in_flight = queue_depths(self.sqs, self.stack.names.queue_urls)
        if not unfinished or sum(visible.values()) + sum(in_flight.values()) < len(unfinished):
            return 0
        return sum(item.rows for item in unfinished)

    def account(self, elapsed_s: float) -> PipelineReport:
        """Where every row went: the simulator, the failed-row sink, the DLQs, the answers."""
        if self._uploader is not None:
            self._uploader.join(timeout=30)
        names = self.stack.names
        stats = self.simulator.stats()
        s3 = harness_client(self.stack, "s3")
        failed_rows, quarantined = count_sink_rows(s3, names.failed_rows_bucket, names.failed_rows_prefix)
        dlq_messages, dlq_object_keys = dead_letter_keys(self.sqs, self.dlqs)
        complete = self.outcomes.complete_keys
        rejected = self.outcomes.rejected_keys | quarantined
        in_dlq = [key for key in dlq_object_keys if key not in complete and key not in rejected]
        self.rows_pending = self.pending_rows(set(complete) | rejected | set(in_dlq))
        return summarize_pipeline_run(
            PipelineObservation(
                objects_total=len(self.objects),
                rows_total=self.scenario.rows,
                elapsed_s=elapsed_s,
                objects_complete=len(complete),
                objects_rejected=len(rejected),
                rows_applied=stats.effects_applied - stats.duplicate_effects,
                duplicate_effects=stats.duplicate_effects,
                duplicate_deliveries=stats.duplicate_deliveries,
                failed_rows=failed_rows,
                rows_quarantined=rows_of(self.uploaded, rejected),
                dlq_messages=dlq_messages,
                rows_in_dlq=rows_of(self.uploaded, in_dlq),
                downstream_requests=stats.requests,
                downstream_throttled_429=stats.throttled_429,
                downstream_errors_5xx=stats.errors_5xx,
                peak_downstream_concurrency=stats.peak_concurrency,
                downstream_capacity=self.scenario.capacity,
                downstream_latency_s=self.scenario.latency_s,
            )
        )


def run_scenario(
    scenario: Scenario,
    dispatcher: str,
    log_bytes: Callable[[], int],
    on_sample: Callable[[Sample, int, int], None] | None = None,
    seed: int = 1,
) -> RunOutcome:
    """Run ``scenario`` through ``dispatcher`` on a fresh stack and simulator; ``log_bytes`` reads
    how much the functions logged so far; ``on_sample(sample, objects_done, objects_total)``
    follows the run."""
    dispatcher_type = STATE_MACHINE_TYPES.get(dispatcher, DISPATCHER_NONE)
    prices = price_table()
    with SimulatorProcess(scenario.capacity, scenario.latency_s, seed=seed) as simulator:
        settings = LocalPipelineSettings(
            downstream_url=simulator.rows_url,
            concurrency_budget=scenario.budget,
            processor_environment=pinned_processor_environment(scenario.flight_plan),
            dispatcher_type=STATE_MACHINE_TYPES.get(dispatcher),  # a stand-in leaves the state machine idle
            start_scheduler=dispatcher in STATE_MACHINE_TYPES,
        )
        with LocalPipeline(settings) as stack:
            run = ScenarioRun(scenario, stack, simulator, on_sample, seed)
            stand_in, slots = stand_in_for(dispatcher, stack, scenario)
            if stack.emulator.request_counter is not None:
                stack.emulator.request_counter.reset()  # the run's work, not provisioning
            logged_before = log_bytes()
            if stand_in is not None:
                stand_in.start()
            try:
                if stack.scheduler is not None:
                    run.wait_for_dispatcher()
                run.upload()
                elapsed = run.follow(slots)
                snapshot = WorkSnapshot.take(stack, log_bytes() - logged_before)
            finally:
                if stand_in is not None:
                    stand_in.stop()
                if stack.scheduler is not None:
                    stack.scheduler.stop()
            report = run.account(elapsed)
            shape = RunShape(
                len(run.objects), scenario.rows, scenario.capacity, scenario.latency_s, dispatcher_type
            )
            work, executions, transitions = counted_work(stack, snapshot, shape, prices)
            return RunOutcome(
                scenario=scenario.name,
                dispatcher=dispatcher,
                dispatcher_type=dispatcher_type,
                capacity=scenario.capacity,
                latency_s=scenario.latency_s,
                samples=run.samples,
                latencies=latencies_by_priority(run.uploaded, run.outcomes.complete_keys, run.prefixes),
                report=report.as_dict(),
                cost=estimate_cost(work, prices),
                work=work,
                transitions=transitions,
                executions=executions,
                timed_out=run.timed_out,
                requests=snapshot.pattern_requests,
                rows_pending=run.rows_pending,
            )
