"""One run of the whole pipeline on the embedded emulator: the engine of ``s3stagger demo`` and of
``benchmarks/bench_pipeline.py``.

:func:`run_pipeline` starts the downstream simulator and the local stack, uploads generated CSV
files in parallel, follows the pipeline until every object is accounted for (or a time limit
passes), then gathers what happened — the simulator's stats, the failed-row sink, the DLQs, the
processor's answers — into a :class:`~s3stagger.domain.pipeline_report.PipelineReport`.

The processor runs unchanged: :class:`ProcessorOutcomes` wraps the real handler
(``s3stagger.handlers.process_object.handler``) in the local Lambda runtime only to note each
answer (status, object key, time), which gives objects done and the time from upload to
``COMPLETE`` without reading execution histories on every refresh.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from s3stagger.cli.simulate import UploadedObject, upload_objects
from s3stagger.definitions.model import Definitions
from s3stagger.domain.pipeline_report import (
    PipelineObservation,
    PipelineReport,
    percentile,
    summarize_pipeline_run,
)
from s3stagger.domain.sample_data import SampleObject, sample_objects
from s3stagger.handlers import process_object
from s3stagger.local.downstream import DownstreamSimulator, SimulatorSettings
from s3stagger.local.downstream_settings import LatencySpec
from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

    from s3stagger.local.downstream import SimulatorStats

HIGH_PREFIX = "high/"
NORMAL_PREFIX = "normal/"
POLL_INTERVAL_S = 0.25


@dataclass(frozen=True)
class PipelineRunSettings:
    """The workload and the simulated downstream of one run."""

    files: int = 100
    rows: int = 50
    workers: int = 10
    high_priority_share: float = 0.1
    """Share of the files uploaded under ``high/`` (the rest under ``normal/``)."""
    capacity: int = 20
    """Downstream capacity C: concurrent requests it serves."""
    latency: LatencySpec | None = None
    """Downstream latency (before time scale); ``None``: :data:`DEFAULT_LATENCY_S` fixed."""
    time_scale: float = 1.0
    error_rate: float = 0.0
    seed: int = 1
    timeout_s: float = 600.0
    """Give up following the pipeline after this long (the report then shows what is missing)."""
    concurrency_budget: int | None = None
    """Objects processed at once (the dispatcher's budget); ``None``: ``budget.json``'s default."""
    processor_max_concurrency: int | None = None
    """Rows in flight per invocation at most (``S3STAGGER_MAX_CONCURRENCY``); ``None``: sized so
    that budget x rows in flight fits the capacity (see :meth:`sized_processor_concurrency`)."""
    collect_history: bool = False
    """Read every dispatcher execution's history at the end (state transitions per object)."""
    via_terraform: bool = False
    """Build the resources with ``terraform apply`` of ``terraform/examples/local`` instead of local
    provisioning (:class:`~s3stagger.local.terraform_stack.TerraformPipeline`)."""

    def effective_budget(self) -> int:
        """The concurrency budget in force: the setting, else ``budget.json``'s default."""
        if self.concurrency_budget is not None:
            return self.concurrency_budget
        return Definitions.load().budget.default

    def sized_processor_concurrency(self) -> int:
        """Rows in flight per invocation: the setting, else ``capacity // budget`` (at least 1).

        Each invocation's adaptive limit reacts to its own 429s only, so invocations running side by
        side can together keep the downstream over its capacity; sizing budget x rows in flight to
        the capacity is what keeps the downstream from being overwhelmed in the first place.
        """
        if self.processor_max_concurrency is not None:
            return self.processor_max_concurrency
        return max(1, self.capacity // self.effective_budget())

    def __post_init__(self) -> None:
        if self.files < 1:
            raise ValueError(f"files must be >= 1, got {self.files}")
        if self.rows < 0:
            raise ValueError(f"rows must be >= 0, got {self.rows}")
        if not 0.0 <= self.high_priority_share <= 1.0:
            raise ValueError(f"high_priority_share must be within 0..1, got {self.high_priority_share}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")


DEFAULT_LATENCY_S = 0.2


def workload(
    settings: PipelineRunSettings, high_prefix: str = HIGH_PREFIX, normal_prefix: str = NORMAL_PREFIX
) -> Iterator[SampleObject]:
    """The files of a run: the first ``high_priority_share`` under ``high_prefix``, the rest under
    ``normal_prefix`` (the key prefixes that route to the two priority queues)."""
    high = round(settings.files * settings.high_priority_share)
    yield from sample_objects(high, settings.rows, settings.seed, prefix=high_prefix)
    yield from sample_objects(
        settings.files - high, settings.rows, settings.seed, prefix=normal_prefix, first_index=high
    )


class ProcessorOutcomes:
    """Wraps the processor handler and notes every answer; thread-safe.

    Call it as the handler. It returns exactly what the handler returns and re-raises what it
    raises.
    """

    def __init__(self, handler: Callable[[Any, Any], Any], clock: Callable[[], float] = time.time) -> None:
        self._handler = handler
        self._clock = clock
        self._lock = threading.Lock()
        self._statuses: Counter[str] = Counter()
        self._complete_at: dict[str, float] = {}
        self._rejected: set[str] = set()
        self._raised = 0

    def __call__(self, event: Any, context: Any) -> Any:
        try:
            answer = self._handler(event, context)
        except BaseException:
            with self._lock:
                self._raised += 1
            raise
        self.note(answer)
        return answer

    def note(self, answer: Any) -> None:
        """Record one answer of the processor."""
        if not isinstance(answer, Mapping):
            return
        status = str(answer.get("status"))
        key = str(answer.get("key"))
        now = self._clock()
        with self._lock:
            self._statuses[status] += 1
            if status == "COMPLETE":
                self._complete_at.setdefault(key, now)
            elif status == "REJECTED":
                self._rejected.add(key)

    @property
    def complete_keys(self) -> dict[str, float]:
        """Objects answered ``COMPLETE``, with the time of their first ``COMPLETE``."""
        with self._lock:
            return dict(self._complete_at)

    @property
    def rejected_keys(self) -> set[str]:
        """Objects answered ``REJECTED`` (quarantined)."""
        with self._lock:
            return set(self._rejected)

    @property
    def answers(self) -> dict[str, int]:
        """Answers by status, plus ``raised`` (invocations that raised)."""
        with self._lock:
            return {**self._statuses, "raised": self._raised}


@dataclass(frozen=True)
class PipelineProgress:
    """One look at a running pipeline (for the live view)."""

    elapsed_s: float
    objects_total: int
    objects_uploaded: int
    objects_complete: int
    objects_rejected: int
    rows_total: int
    rows_applied: int
    queue_visible: dict[str, int]
    queue_in_flight: dict[str, int]
    dlq_messages: int
    downstream_in_flight: int
    downstream_capacity: int
    peak_downstream_concurrency: int
    throttled_429: int
    errors_5xx: int
    processor_invocations: int

    @property
    def objects_done(self) -> int:
        """Objects with a final answer (``COMPLETE`` or ``REJECTED``)."""
        return self.objects_complete + self.objects_rejected


@dataclass
class PipelineRunResult:
    """What a run produced: the report and the figures the benchmark adds to it."""

    report: PipelineReport
    upload_to_complete_s: list[float]
    processor_invocations: int
    state_transitions: int | None
    executions: int | None
    answers: dict[str, int]
    timed_out: bool
    endpoint_url: str
    extra: dict[str, Any] = field(default_factory=dict)

    def benchmark_figures(self) -> dict[str, Any]:
        """The figures of ``make bench-pipeline``: per-object costs and latencies."""
        objects = self.report.objects_total
        p50 = percentile(self.upload_to_complete_s, 50)
        p95 = percentile(self.upload_to_complete_s, 95)
        return {
            "utilization": self.report.utilization,
            "throttle_rate_429": self.report.throttle_rate,
            "upload_to_complete_p50_s": None if p50 is None else round(p50, 3),
            "upload_to_complete_p95_s": None if p95 is None else round(p95, 3),
            "state_transitions_per_object": (
                None if self.state_transitions is None else round(self.state_transitions / objects, 2)
            ),
            "lambda_invocations_per_object": round(self.processor_invocations / objects, 3),
        }


def count_sink_rows(s3: S3Client, bucket: str, prefix: str) -> tuple[int, set[str]]:
    """Failed rows written under ``prefix`` (``rows/...csv`` records) and quarantined object keys.

    The quarantine records (``quarantine/<bucket>/<key>/<version>.json``) name the rejected objects.
    """
    failed_rows = 0
    quarantined: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            relative = key[len(prefix) :]
            if relative.startswith("rows/") and key.endswith(".csv"):
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
                failed_rows += max(len(list(csv.reader(io.StringIO(body)))) - 1, 0)
            elif relative.startswith("quarantine/") and key.endswith(".json"):
                record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                quarantined.add(str(record.get("key")))
    return failed_rows, quarantined


def object_key_of_message(body: str) -> str | None:
    """The S3 object key a queue message is about (S3 event, dispatcher continuation, plain ref)."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    if isinstance(message.get("continuation"), dict):
        message = message["continuation"].get("object", {})
    if isinstance(message.get("object"), dict) and "detail" not in message:
        message = message["object"]
    detail = message.get("detail")
    if isinstance(detail, dict) and isinstance(detail.get("object"), dict):
        key = detail["object"].get("key")
        return str(key) if key is not None else None
    key = message.get("key")
    return str(key) if key is not None else None


def dead_letter_keys(sqs: SQSClient, queue_urls: list[str]) -> tuple[int, list[str]]:
    """Messages in the DLQs and the object keys they name, read without deleting them.

    Messages are held invisible while the queue is scanned (so each is read once), then made
    visible again: the DLQ keeps them for the operator.
    """
    messages = 0
    keys: list[str] = []
    for url in queue_urls:
        depth = int(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ].get("ApproximateNumberOfMessages", "0")
        )
        messages += depth
        receipts: list[str] = []
        for _ in range(depth // 10 + 2):
            batch = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                receipts.append(message["ReceiptHandle"])
                key = object_key_of_message(message.get("Body", ""))
                if key is not None:
                    keys.append(key)
        for start in range(0, len(receipts), 10):
            sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": receipt, "VisibilityTimeout": 0}
                    for index, receipt in enumerate(receipts[start : start + 10])
                ],
            )
    return messages, keys


def count_state_transitions(sfn: SFNClient, state_machine_arn: str) -> tuple[int, int]:
    """States entered across every execution of the state machine, and the number of executions."""
    transitions = 0
    executions = 0
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        for execution in page["executions"]:
            executions += 1
            for history in sfn.get_paginator("get_execution_history").paginate(
                executionArn=execution["executionArn"]
            ):
                transitions += sum(1 for event in history["events"] if event["type"].endswith("StateEntered"))
    return transitions, executions


def simulator_latency_s(latency: LatencySpec, time_scale: float) -> float:
    """Mean service latency seen by clients, in seconds."""
    return latency.mean_s * time_scale


def rows_of(uploaded: list[UploadedObject], keys: list[str] | set[str]) -> int:
    """Rows of the uploaded objects among ``keys`` (each key counted once)."""
    rows = {item.key: item.rows for item in uploaded}
    return sum(rows.get(key, 0) for key in set(keys))


ProgressListener = Callable[[PipelineProgress], None]


def run_pipeline(
    settings: PipelineRunSettings,
    on_progress: ProgressListener | None = None,
    on_terraform_output: Callable[[str], None] | None = None,
) -> PipelineRunResult:
    """Run the workload through the local pipeline and report; see the module docstring.

    ``on_terraform_output`` receives Terraform's lines when ``settings.via_terraform``.
    """
    latency = settings.latency or LatencySpec.fixed(DEFAULT_LATENCY_S)
    with ExitStack() as resources:
        simulator = resources.enter_context(
            DownstreamSimulator(
                SimulatorSettings(
                    capacity=settings.capacity,
                    latency=latency,
                    overload="reject",
                    error_rate=settings.error_rate,
                    time_scale=settings.time_scale,
                    seed=settings.seed,
                )
            )
        )
        environment = {"S3STAGGER_MAX_CONCURRENCY": str(settings.sized_processor_concurrency())}
        stack_settings = LocalPipelineSettings(
            downstream_url=simulator.rows_url,
            concurrency_budget=settings.concurrency_budget,
            processor_environment=environment,
        )
        if settings.via_terraform:
            from s3stagger.local.terraform_stack import TerraformPipeline  # noqa: PLC0415

            stack: LocalPipeline = resources.enter_context(
                TerraformPipeline(stack_settings, on_terraform_output)
            )
        else:
            stack = resources.enter_context(LocalPipeline(stack_settings))
        names = stack.names
        outcomes = ProcessorOutcomes(process_object.handler)
        if stack.runtime is None:  # pragma: no cover - start() sets it or raises
            raise RuntimeError("the local stack has no Lambda runtime")
        stack.runtime.register(names.function_name, outcomes)
        s3 = stack.client("s3")
        sqs = stack.client("sqs")
        queues = dict(names.queue_urls)
        dlqs = list(names.all_dlq_urls)

        # generated lazily as the uploads go, so a large run does not hold every file in memory
        # the high share goes to the first (highest) priority, the rest to the last (lowest)
        files = workload(
            settings, names.key_prefix(names.priorities[0]), names.key_prefix(names.priorities[-1])
        )
        objects_total = settings.files
        rows_total = settings.files * settings.rows
        uploaded: list[UploadedObject] = []
        uploaded_lock = threading.Lock()

        def note_upload(item: UploadedObject) -> None:
            with uploaded_lock:
                uploaded.append(item)

        upload_errors: list[BaseException] = []

        def upload() -> None:
            try:
                upload_objects(s3, names.bucket, files, settings.workers, note_upload)
            except BaseException as error:  # handed to the main thread
                upload_errors.append(error)

        started = time.monotonic()
        uploader = threading.Thread(target=upload, name="s3stagger-pipeline-upload", daemon=True)
        uploader.start()

        def look() -> PipelineProgress:
            stats: SimulatorStats = simulator.stats()
            visible: dict[str, int] = {}
            in_flight: dict[str, int] = {}
            for priority, url in queues.items():
                attributes = sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                visible[priority] = int(attributes.get("ApproximateNumberOfMessages", "0"))
                in_flight[priority] = int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0"))
            dlq_depth = sum(
                int(
                    sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                        "Attributes"
                    ].get("ApproximateNumberOfMessages", "0")
                )
                for url in dlqs
            )
            with uploaded_lock:
                uploaded_count = len(uploaded)
            return PipelineProgress(
                elapsed_s=time.monotonic() - started,
                objects_total=objects_total,
                objects_uploaded=uploaded_count,
                objects_complete=len(outcomes.complete_keys),
                objects_rejected=len(outcomes.rejected_keys),
                rows_total=rows_total,
                rows_applied=stats.effects_applied - stats.duplicate_effects,
                queue_visible=visible,
                queue_in_flight=in_flight,
                dlq_messages=dlq_depth,
                downstream_in_flight=stats.in_flight,
                downstream_capacity=stats.capacity,
                peak_downstream_concurrency=stats.peak_concurrency,
                throttled_429=stats.throttled_429,
                errors_5xx=stats.errors_5xx,
                processor_invocations=stack.processor_counters().invocations,
            )

        timed_out = False
        while True:
            progress = look()
            if on_progress is not None:
                on_progress(progress)
            settled = (
                not uploader.is_alive()
                and progress.objects_uploaded == objects_total
                and sum(progress.queue_visible.values()) == 0
                and sum(progress.queue_in_flight.values()) == 0
                and progress.objects_done + progress.dlq_messages >= objects_total
            )
            if upload_errors:
                raise upload_errors[0]
            if settled:
                break
            if progress.elapsed_s > settings.timeout_s:
                timed_out = True
                break
            time.sleep(POLL_INTERVAL_S)
        elapsed = time.monotonic() - started
        uploader.join(timeout=30)

        stats = simulator.stats()
        failed_rows, quarantined = count_sink_rows(s3, names.failed_rows_bucket, names.failed_rows_prefix)
        dlq_messages, dlq_object_keys = dead_letter_keys(sqs, dlqs)
        rejected = outcomes.rejected_keys | quarantined
        complete = outcomes.complete_keys
        transitions: int | None = None
        executions: int | None = None
        if settings.collect_history:
            transitions, executions = count_state_transitions(
                stack.client("stepfunctions"), names.state_machine_arn
            )
        upload_times = {item.key: item.uploaded_at for item in uploaded}
        latencies = [done - upload_times[key] for key, done in complete.items() if key in upload_times]
        observation = PipelineObservation(
            objects_total=objects_total,
            rows_total=rows_total,
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
                uploaded, [key for key in dlq_object_keys if key not in complete and key not in rejected]
            ),
            downstream_requests=stats.requests,
            downstream_throttled_429=stats.throttled_429,
            downstream_errors_5xx=stats.errors_5xx,
            peak_downstream_concurrency=stats.peak_concurrency,
            downstream_capacity=settings.capacity,
            downstream_latency_s=simulator_latency_s(latency, settings.time_scale),
        )
        return PipelineRunResult(
            report=summarize_pipeline_run(observation),
            upload_to_complete_s=latencies,
            processor_invocations=stack.processor_counters().invocations,
            state_transitions=transitions,
            executions=executions,
            answers=outcomes.answers,
            timed_out=timed_out,
            endpoint_url=stack.endpoint_url,
        )
