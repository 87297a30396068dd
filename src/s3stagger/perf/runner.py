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
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from s3stagger.cli.pipeline_report import PipelineObservation, summarize_pipeline_run
from s3stagger.cli.pipeline_run import ProcessorOutcomes, count_sink_rows, dead_letter_keys, rows_of
from s3stagger.cli.sample_data import SampleObject
from s3stagger.cli.simulate import UploadedObject, upload_objects
from s3stagger.domain.cost import DISPATCHER_NONE, estimate_cost
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


def run_scenario(
    scenario: Scenario,
    dispatcher: str,
    log_bytes: Callable[[], int],
    on_sample: Callable[[Sample, int, int], None] | None = None,
    seed: int = 1,
) -> RunOutcome:
    """Run ``scenario`` through ``dispatcher``; ``log_bytes`` reads how much the functions logged so
    far; ``on_sample(sample, objects_done, objects_total)`` follows the run."""
    uses_state_machine = dispatcher in STATE_MACHINE_TYPES
    dispatcher_type = STATE_MACHINE_TYPES.get(dispatcher, DISPATCHER_NONE)
    prices = price_table()
    with SimulatorProcess(scenario.capacity, scenario.latency_s, seed=seed) as simulator:
        settings = LocalPipelineSettings(
            downstream_url=simulator.rows_url,
            concurrency_budget=scenario.budget,
            processor_environment={"S3STAGGER_MAX_CONCURRENCY": str(scenario.rows_in_flight_per_object)},
            dispatcher_type=STATE_MACHINE_TYPES.get(dispatcher),  # a stand-in leaves the state machine idle
            start_scheduler=uses_state_machine,
        )
        with LocalPipeline(settings) as stack:
            names = stack.names
            outcomes = ProcessorOutcomes(process_object.handler)
            if stack.runtime is None or stack.emulator.request_counter is None:  # pragma: no cover
                raise RuntimeError("the local pipeline has no Lambda runtime or request counter")
            stack.runtime.register(names.function_name, outcomes)
            counter = stack.emulator.request_counter
            sqs = harness_client(stack, "sqs")
            user_s3 = harness_client(stack, "s3", USER_USER_AGENT)
            priorities = list(names.priorities)
            prefixes = {priority: names.key_prefix(priority) for priority in priorities}
            objects = list(scenario.sample_objects(prefixes, seed))
            dlqs = [*names.dlq_urls.values(), names.ingest_dlq_url]
            stand_in: NoStaggerDispatcher | SqsMappingStandIn | None = None
            slots: int | None = scenario.budget
            if dispatcher == NO_STAGGER:
                stand_in = NoStaggerDispatcher(
                    pattern_client(stack, "sqs"),
                    pattern_client(stack, "lambda"),
                    names.function_name,
                    [names.queue_urls[p] for p in priorities],
                )
                slots = None
            elif dispatcher == SQS_MAPPING:
                caps = mapping_caps(scenario.budget, priorities)
                stand_in = SqsMappingStandIn(
                    pattern_client(stack, "sqs"),
                    pattern_client(stack, "lambda"),
                    names.function_name,
                    names.queue_urls,
                    caps,
                )
                slots = sum(caps.values())
            counter.reset()
            logged_before = log_bytes()
            uploaded: list[UploadedObject] = []
            lock = threading.Lock()

            def note(item: UploadedObject) -> None:
                with lock:
                    uploaded.append(item)

            errors: list[BaseException] = []

            def uploader_body() -> None:
                try:
                    upload(user_s3, names.bucket, objects, scenario, note)
                except BaseException as error:  # handed to the sampling loop
                    errors.append(error)

            if stand_in is not None:
                stand_in.start()
            started = time.monotonic()
            uploader = threading.Thread(target=uploader_body, name="perf-upload", daemon=True)
            uploader.start()
            samples: list[Sample] = []
            timed_out = False
            try:
                while True:
                    stats = simulator.stats()
                    visible: dict[str, int] = {}
                    in_flight: dict[str, int] = {}
                    for priority in priorities:
                        attributes = sqs.get_queue_attributes(
                            QueueUrl=names.queue_urls[priority],
                            AttributeNames=[
                                "ApproximateNumberOfMessages",
                                "ApproximateNumberOfMessagesNotVisible",
                            ],
                        )["Attributes"]
                        visible[priority] = int(attributes.get("ApproximateNumberOfMessages", "0"))
                        in_flight[priority] = int(
                            attributes.get("ApproximateNumberOfMessagesNotVisible", "0")
                        )
                    sample = Sample(
                        t=time.monotonic() - started,
                        rows_applied=stats.effects_applied - stats.duplicate_effects,
                        downstream_requests=stats.requests,
                        throttled_429=stats.throttled_429,
                        downstream_in_flight=stats.in_flight,
                        downstream_queued=stats.queued,
                        capacity=stats.capacity,
                        invocations_in_flight=stack.processor_counters().in_flight,
                        slots=slots,
                        queue_visible=visible,
                        queue_in_flight=in_flight,
                    )
                    samples.append(sample)
                    done = len(outcomes.complete_keys) + len(outcomes.rejected_keys)
                    if on_sample is not None:
                        on_sample(sample, done, len(objects))
                    if errors:
                        raise errors[0]
                    with lock:
                        all_uploaded = len(uploaded) == len(objects)
                    queues_empty = sum(visible.values()) + sum(in_flight.values()) == 0
                    if all_uploaded and not uploader.is_alive() and queues_empty:
                        dlq_depth = sum(
                            int(
                                sqs.get_queue_attributes(
                                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                                )["Attributes"].get("ApproximateNumberOfMessages", "0")
                            )
                            for url in dlqs
                        )
                        if done + dlq_depth >= len(objects):
                            break
                    if sample.t > scenario.timeout_s:
                        timed_out = True
                        break
                    time.sleep(SAMPLE_INTERVAL_S)
                elapsed = time.monotonic() - started
                snapshot = WorkSnapshot.take(stack, log_bytes() - logged_before)
            finally:
                if stand_in is not None:
                    stand_in.stop()
                if stack.scheduler is not None:
                    stack.scheduler.stop()
            uploader.join(timeout=30)

            stats = simulator.stats()
            s3 = harness_client(stack, "s3")
            failed_rows, quarantined = count_sink_rows(s3, names.failed_rows_bucket, names.failed_rows_prefix)
            dlq_messages, dlq_object_keys = dead_letter_keys(sqs, dlqs)
            complete = outcomes.complete_keys
            rejected = outcomes.rejected_keys | quarantined
            shape = RunShape(
                len(objects), scenario.rows, scenario.capacity, scenario.latency_s, dispatcher_type
            )
            work, executions, transitions = counted_work(stack, snapshot, shape, prices)
            report = summarize_pipeline_run(
                PipelineObservation(
                    objects_total=len(objects),
                    rows_total=scenario.rows,
                    elapsed_s=elapsed,
                    objects_complete=len(complete),
                    objects_rejected=len(rejected),
                    rows_applied=stats.effects_applied - stats.duplicate_effects,
                    duplicate_effects=stats.duplicate_effects,
                    duplicate_deliveries=stats.duplicate_deliveries,
                    failed_rows=failed_rows,
                    rows_quarantined=rows_of(uploaded, rejected),
                    dlq_messages=dlq_messages,
                    rows_in_dlq=rows_of(
                        uploaded,
                        [key for key in dlq_object_keys if key not in complete and key not in rejected],
                    ),
                    downstream_requests=stats.requests,
                    downstream_throttled_429=stats.throttled_429,
                    downstream_errors_5xx=stats.errors_5xx,
                    peak_downstream_concurrency=stats.peak_concurrency,
                    downstream_capacity=scenario.capacity,
                    downstream_latency_s=scenario.latency_s,
                )
            )
            latencies: dict[str, list[float]] = {priority: [] for priority in priorities}
            upload_times = {item.key: item.uploaded_at for item in uploaded}
            for key, done_at in complete.items():
                if key in upload_times:
                    priority = next((p for p in priorities if key.startswith(prefixes[p])), priorities[-1])
                    latencies[priority].append(done_at - upload_times[key])
            return RunOutcome(
                scenario=scenario.name,
                dispatcher=dispatcher,
                dispatcher_type=dispatcher_type,
                capacity=scenario.capacity,
                latency_s=scenario.latency_s,
                samples=samples,
                latencies=latencies,
                report=report.as_dict(),
                cost=estimate_cost(work, prices),
                work=work,
                transitions=transitions,
                executions=executions,
                timed_out=timed_out,
                requests=snapshot.pattern_requests,
            )
