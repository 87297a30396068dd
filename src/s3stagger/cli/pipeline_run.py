"""One run of the whole pipeline on the embedded emulator: the engine of ``s3stagger demo`` and of
``benchmarks/bench_pipeline.py``.

:class:`PipelineRun` goes in steps: ``start`` the downstream simulator and the local stack,
``upload`` generated CSV files in parallel, ``follow`` the pipeline until every object is accounted
for (or a time limit passes), ``collect`` what happened — the simulator's stats, the failed-row
sink, the DLQs, the processor's answers — into a :class:`~s3stagger.cli.pipeline_report.PipelineReport`,
plus any named section a :class:`SectionCollector` adds. :func:`run_pipeline` does them all.

The processor runs unchanged: :class:`ProcessorOutcomes` wraps the real handler
(``s3stagger.handlers.process_object.handler``) in the local Lambda runtime only to note each
answer (status, object key, time), which gives objects done and the time from upload to
``COMPLETE`` without reading execution histories on every refresh.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from s3stagger.api_config import AuthMode
from s3stagger.cli.demo_auth import DemoAuth
from s3stagger.cli.pipeline_report import (
    PipelineObservation,
    PipelineReport,
    percentile,
    summarize_pipeline_run,
)
from s3stagger.cli.sample_data import SampleObject, sample_objects
from s3stagger.cli.simulate import UploadedObject, upload_objects
from s3stagger.definitions.model import DEFAULT_NAME_PREFIX, Definitions
from s3stagger.domain.flight import MAX_ROWS_VARIABLE, pinned_processor_environment, plan_flight
from s3stagger.domain.redrive import object_key_of_message
from s3stagger.errors import S3StaggerError
from s3stagger.handlers import process_object
from s3stagger.local.autoscaler import (
    LocalAutoscalerRunner,
    autoscaled_processor_environment,
    autoscaler_progress,
    start_local_autoscaler,
)
from s3stagger.local.downstream import DownstreamSimulator, SimulatorSettings
from s3stagger.local.downstream.settings import LatencySpec
from s3stagger.local.emulator import DEFAULT_REGION
from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings
from s3stagger.local.request_counter import HARNESS_USER_AGENT, USER_USER_AGENT, client_as

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

    from s3stagger.local.downstream import SimulatorStats

HIGH_PREFIX = "high/"
NORMAL_PREFIX = "normal/"
POLL_INTERVAL_S = 0.25


class PipelineRunSettingsError(S3StaggerError, ValueError):
    """A run setting is out of range; the message names it."""


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
    error_status: int = 503
    """The simulator's injected answer (see ``SimulatorSettings.error_status``)."""
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
    autoscale_interval_s: float | None = None
    """Run the autoscaler (:mod:`s3stagger.local.autoscaler`) at this interval; ``None``: the
    budget and rows in flight stay as set (pinned)."""
    autoscale_initial: tuple[int, int] | None = None
    """(budget, total rows in flight) the autoscaler starts from; ``None``: ``autoscaler.json``'s."""
    simulator_options: Mapping[str, Any] = field(default_factory=dict)
    """More :class:`~s3stagger.local.downstream.SimulatorSettings` fields (``overload``,
    ``capacity_schedule``)."""
    via_terraform: bool = False
    """Build the resources with ``terraform apply`` of ``terraform/examples/local`` instead of local
    provisioning (:class:`~s3stagger.local.terraform_stack.TerraformPipeline`)."""
    pipeline_options: Mapping[str, Any] = field(default_factory=dict)
    auth: AuthMode = AuthMode.NONE
    """Credentials the simulated API requires (``demo --auth``; :mod:`s3stagger.cli.demo_auth`)."""
    """More :class:`~s3stagger.local.pipeline.LocalPipelineSettings` fields (e.g. ``dispatcher``,
    ``stagger``): what a comparison of dispatcher settings varies between runs."""

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
        return plan_flight(self.capacity, self.effective_budget()).rows_in_flight_per_object

    def __post_init__(self) -> None:
        if self.files < 1:
            raise PipelineRunSettingsError(f"files must be >= 1, got {self.files}")
        if self.rows < 0:
            raise PipelineRunSettingsError(f"rows must be >= 0, got {self.rows}")
        if not 0.0 <= self.high_priority_share <= 1.0:
            raise PipelineRunSettingsError(
                f"high_priority_share must be within 0..1, got {self.high_priority_share}"
            )
        if self.timeout_s <= 0:
            raise PipelineRunSettingsError(f"timeout_s must be > 0, got {self.timeout_s}")


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
    """Wraps the processor handler and notes how every object ended; thread-safe.

    Call it as the handler. It returns exactly what the handler returns and re-raises what it
    raises. An object ends in the handler's answer or, when a call served several objects
    (:mod:`s3stagger.adapters.message_chain`), in the processor's ``object processed`` /
    ``object rejected`` log line, as CloudWatch Logs would show it; either is noted at once.
    """

    def __init__(
        self,
        handler: Callable[[Any, Any], Any],
        clock: Callable[[], float] = time.time,
        processor_logger: str | None = None,
    ) -> None:
        """``processor_logger``: the logger whose records carry each object's ``summary``."""
        self._handler = handler
        self._clock = clock
        self._lock = threading.Lock()
        self._statuses: Counter[str] = Counter()
        self._complete_at: dict[str, float] = {}
        self._rejected: set[str] = set()
        self._raised = 0
        self._auth_refreshes = 0
        if processor_logger is not None:
            logging.getLogger(processor_logger).addHandler(_ObjectEnds(self))

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
        with self._lock:
            self._statuses[str(answer.get("status"))] += 1
            self._auth_refreshes += int(answer.get("auth_refreshes") or 0)
        self.note_object(answer)

    def note_object(self, summary: Mapping[str, Any]) -> None:
        """Record how one object ended (its summary: ``status``, ``key``)."""
        status = summary.get("status")
        key = str(summary.get("key"))
        now = self._clock()
        with self._lock:
            if status == "COMPLETE":
                self._complete_at.setdefault(key, now)
            elif status == "REJECTED":
                self._rejected.add(key)

    @property
    def auth_refreshes(self) -> int:
        """Credential refreshes the answers report (a rotated secret picked up)."""
        with self._lock:
            return self._auth_refreshes

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


class _ObjectEnds(logging.Handler):
    """Hands each log record's ``summary`` to its :class:`ProcessorOutcomes` while that lives."""

    def __init__(self, outcomes: ProcessorOutcomes) -> None:
        super().__init__()
        self._outcomes = weakref.ref(outcomes)

    def emit(self, record: logging.LogRecord) -> None:
        outcomes = self._outcomes()
        if outcomes is None:
            logging.getLogger(record.name).removeHandler(self)
            return
        summary = getattr(record, "summary", None)
        if isinstance(summary, Mapping):
            outcomes.note_object(summary)


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
    autoscaler_budget: int | None = None
    """The autoscaler's last budget (None: no autoscaler)."""
    rows_in_flight_target: int | None = None

    @property
    def objects_done(self) -> int:
        """Objects with a final answer (``COMPLETE`` or ``REJECTED``)."""
        return self.objects_complete + self.objects_rejected


@dataclass
class PipelineRunResult:
    """What a run produced: the report, the figures the benchmark adds to it, and named sections."""

    report: PipelineReport
    upload_to_complete_s: list[float]
    processor_invocations: int
    state_transitions: int | None
    executions: int | None
    answers: dict[str, int]
    timed_out: bool
    endpoint_url: str
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Figures a :class:`SectionCollector` added, by section name (e.g. ``"alarms"``)."""

    def section(self, name: str) -> dict[str, Any]:
        """The figures of section ``name``; raise ``KeyError`` naming the sections there are."""
        try:
            return self.sections[name]
        except KeyError:
            raise KeyError(f"no section {name!r} in this result; there are {sorted(self.sections)}") from None

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
    """Failed rows written under ``prefix`` (``rows/...csv`` records; row 0, the object's header line
    kept for replays, is not one) and quarantined object keys.

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
                failed_rows += sum(1 for row in list(csv.reader(io.StringIO(body)))[1:] if row[:1] != ["0"])
            elif relative.startswith("quarantine/") and key.endswith(".json"):
                record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                quarantined.add(str(record.get("key")))
    return failed_rows, quarantined


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


class SectionCollector(Protocol):
    """Adds one named section of figures to a run's result (e.g. alarms raised, mail sent).

    Called once the pipeline is settled (or timed out), while the emulator and the simulator still
    run, so it can read them through :class:`PipelineRun`'s ``stack`` and ``simulator``.
    """

    name: str

    def collect(self, run: PipelineRun) -> dict[str, Any]: ...


class PipelineRun:
    """One run, in steps: :meth:`start`, :meth:`upload`, :meth:`follow`, :meth:`collect`.

    ``with PipelineRun(settings) as run:`` starts the simulator and the local stack and stops both on
    the way out; :meth:`run` does every step. A caller that needs more than the report passes
    ``collectors`` (each adds a named section to the result) or reads ``run.stack`` and
    ``run.simulator`` between the steps.
    """

    def __init__(
        self,
        settings: PipelineRunSettings,
        on_progress: ProgressListener | None = None,
        collectors: Sequence[SectionCollector] = (),
        on_terraform_output: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_terraform_output = on_terraform_output
        """Receives Terraform's lines when ``settings.via_terraform``."""
        self.latency = settings.latency or LatencySpec.fixed(DEFAULT_LATENCY_S)
        self.on_progress = on_progress
        self.demo_auth: DemoAuth | None = None
        if settings.auth is not AuthMode.NONE:
            region = str(settings.pipeline_options.get("region", DEFAULT_REGION))
            self.demo_auth = DemoAuth(settings.auth, region)
        self.collectors = tuple(collectors) + ((self.demo_auth,) if self.demo_auth else ())
        self.outcomes = ProcessorOutcomes(process_object.handler, processor_logger=process_object.logger.name)
        self._resources = ExitStack()
        self._simulator: DownstreamSimulator | None = None
        self._stack: LocalPipeline | None = None
        self._uploaded: list[UploadedObject] = []
        self._uploaded_lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._upload_errors: list[BaseException] = []
        self._uploader: threading.Thread | None = None
        self._started = 0.0
        self._elapsed_s: float | None = None
        self.timed_out = False
        self.autoscaler: LocalAutoscalerRunner | None = None

    # -- steps ------------------------------------------------------------------------------------

    def start(self) -> PipelineRun:
        """Start the downstream simulator and the local stack; note the processor's answers."""
        settings = self.settings
        try:
            self._simulator = self._resources.enter_context(
                DownstreamSimulator(
                    SimulatorSettings(
                        **{
                            "capacity": settings.capacity,
                            "latency": self.latency,
                            "overload": "reject",
                            "error_rate": settings.error_rate,
                            "error_status": settings.error_status,
                            "time_scale": settings.time_scale,
                            "seed": settings.seed,
                            **settings.simulator_options,
                        }
                    ),
                    auth=self.demo_auth.simulator_auth if self.demo_auth else None,
                )
            )
            self._stack = self._resources.enter_context(self._pipeline())
            if self.demo_auth is not None:
                secretsmanager = self._stack.client("secretsmanager")
                self.demo_auth.store(secretsmanager)
                self.demo_auth.rotate_after(max(1, settings.files * settings.rows // 3), secretsmanager)
            self._started = time.monotonic()
            if self._stack.runtime is None:  # pragma: no cover - start() sets it or raises
                raise RuntimeError("the local stack has no Lambda runtime")
            self._stack.runtime.register(self._stack.names.function_name, self.outcomes)
            if settings.autoscale_interval_s is not None:
                self.autoscaler = start_local_autoscaler(
                    self._stack, self._simulator, settings.autoscale_interval_s, settings.autoscale_initial
                )
                self._resources.callback(self.autoscaler.stop)
            if self._stack.emulator.request_counter is not None:  # count the run's work, not provisioning
                self._stack.emulator.request_counter.reset()
        except BaseException:
            self.stop()
            raise
        return self

    def _pipeline(self) -> LocalPipeline:
        if self.settings.via_terraform:
            from s3stagger.local.terraform_stack import TerraformPipeline  # noqa: PLC0415

            return TerraformPipeline(self.pipeline_settings(), self.on_terraform_output)
        return LocalPipeline(self.pipeline_settings())

    def pipeline_settings(self) -> LocalPipelineSettings:
        """The local stack's settings: the simulator's URL, the sizing, then ``pipeline_options``."""
        settings = self.settings
        if settings.processor_max_concurrency is None:  # sized from the plan: start at the share
            environment = pinned_processor_environment(
                plan_flight(settings.capacity, settings.effective_budget())
            )
        else:
            environment = {MAX_ROWS_VARIABLE: str(settings.processor_max_concurrency)}
        if settings.autoscale_interval_s is not None:
            environment |= autoscaled_processor_environment(
                settings.autoscale_interval_s,
                settings.pipeline_options.get("name_prefix", DEFAULT_NAME_PREFIX),
            )
        if self.demo_auth is not None:
            environment |= self.demo_auth.processor_environment(self.simulator.token_url)
        options: dict[str, Any] = {
            "concurrency_budget": settings.concurrency_budget,
            "processor_environment": environment,
            **settings.pipeline_options,
        }
        return LocalPipelineSettings(downstream_url=self.simulator.rows_url, **options)

    def upload(self) -> None:
        """Start uploading the workload in the background (files are generated as they go)."""
        names = self.stack.names
        # the high share goes to the first (highest) priority, the rest to the last (lowest)
        files = workload(
            self.settings, names.key_prefix(names.priorities[0]), names.key_prefix(names.priorities[-1])
        )
        s3 = self.client_as(USER_USER_AGENT, "s3")

        def note(item: UploadedObject) -> None:
            with self._uploaded_lock:
                self._uploaded.append(item)

        def upload() -> None:
            try:
                upload_objects(s3, names.bucket, files, self.settings.workers, note)
            except BaseException as error:  # handed to the thread that follows the run
                self._upload_errors.append(error)

        self._started = time.monotonic()
        self._uploader = threading.Thread(target=upload, name="s3stagger-pipeline-upload", daemon=True)
        self._uploader.start()

    def follow(self, poll_interval_s: float = POLL_INTERVAL_S) -> bool:
        """Look at the pipeline until every object is accounted for or the time limit passes;
        True when it settled. An upload failure is raised here."""
        while True:
            progress = self.progress()
            if self.on_progress is not None:
                self.on_progress(progress)
            if self._upload_errors:
                raise self._upload_errors[0]
            if self._settled(progress):
                break
            if progress.elapsed_s > self.settings.timeout_s:
                self.timed_out = True
                break
            time.sleep(poll_interval_s)
        self._elapsed_s = time.monotonic() - self._started
        if self._uploader is not None:
            self._uploader.join(timeout=30)
        return not self.timed_out

    def collect(self) -> PipelineRunResult:
        """Gather the report (simulator stats, failed-row sink, DLQs, answers) and every section."""
        stack, names = self.stack, self.stack.names
        transitions: int | None = None
        executions: int | None = None
        if self.settings.collect_history:
            transitions, executions = count_state_transitions(
                self.client_as(HARNESS_USER_AGENT, "stepfunctions"), names.state_machine_arn
            )
        complete = self.outcomes.complete_keys
        upload_times = {item.key: item.uploaded_at for item in self.uploaded}
        return PipelineRunResult(
            report=summarize_pipeline_run(self.observe()),
            upload_to_complete_s=[
                done - upload_times[key] for key, done in complete.items() if key in upload_times
            ],
            processor_invocations=stack.processor_counters().invocations,
            state_transitions=transitions,
            executions=executions,
            answers=self.outcomes.answers,
            timed_out=self.timed_out,
            endpoint_url=stack.endpoint_url,
            sections={collector.name: collector.collect(self) for collector in self.collectors},
        )

    def stop(self) -> None:
        """Stop the local stack and the simulator (safe to call twice)."""
        self._resources.close()
        self._simulator = self._stack = None

    def run(self) -> PipelineRunResult:
        """Every step: start, upload, follow, collect, stop."""
        with self:
            self.upload()
            self.follow()
            return self.collect()

    def __enter__(self) -> PipelineRun:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what the steps read ----------------------------------------------------------------------

    def client_as(self, agent: str, service: str) -> Any:
        """A client of the stack whose requests the emulator's request counter files under ``agent``
        (the uploads are the user's, following and accounting the harness's: not the pattern's work)."""
        with self._uploaded_lock:
            key = f"{agent}/{service}"
            if key not in self._clients:
                self._clients[key] = client_as(agent, service, self.stack.emulator.client_settings())
            return self._clients[key]

    @property
    def simulator(self) -> DownstreamSimulator:
        """The running downstream simulator."""
        if self._simulator is None:
            raise RuntimeError("the run is not started")
        return self._simulator

    @property
    def stack(self) -> LocalPipeline:
        """The running local stack."""
        if self._stack is None:
            raise RuntimeError("the run is not started")
        return self._stack

    @property
    def uploaded(self) -> list[UploadedObject]:
        """The objects uploaded so far."""
        with self._uploaded_lock:
            return list(self._uploaded)

    def dead_letter_queue_urls(self) -> list[str]:
        """Every DLQ of the stack: one per priority queue, and the ingest DLQ."""
        return list(self.stack.names.all_dlq_urls)

    def progress(self) -> PipelineProgress:
        """One look at the run (queues, DLQs, downstream, answers) for the live view."""
        stats: SimulatorStats = self.simulator.stats()
        sqs = self.client_as(HARNESS_USER_AGENT, "sqs")
        depths = {
            priority: _queue_attributes(sqs, url) for priority, url in self.stack.names.queue_urls.items()
        }
        dlq_depth = sum(_queue_attributes(sqs, url)[0] for url in self.dead_letter_queue_urls())
        return PipelineProgress(
            elapsed_s=time.monotonic() - self._started,
            objects_total=self.settings.files,
            objects_uploaded=len(self.uploaded),
            objects_complete=len(self.outcomes.complete_keys),
            objects_rejected=len(self.outcomes.rejected_keys),
            rows_total=self.settings.files * self.settings.rows,
            rows_applied=stats.effects_applied - stats.duplicate_effects,
            queue_visible={priority: visible for priority, (visible, _) in depths.items()},
            queue_in_flight={priority: in_flight for priority, (_, in_flight) in depths.items()},
            dlq_messages=dlq_depth,
            downstream_in_flight=stats.in_flight,
            downstream_capacity=stats.capacity,
            peak_downstream_concurrency=stats.peak_concurrency,
            throttled_429=stats.throttled_429,
            errors_5xx=stats.errors_5xx,
            processor_invocations=self.stack.processor_counters().invocations,
            **autoscaler_progress(self.autoscaler),
        )

    def _settled(self, progress: PipelineProgress) -> bool:
        uploading = self._uploader is not None and self._uploader.is_alive()
        return (
            not uploading
            and progress.objects_uploaded == progress.objects_total
            and sum(progress.queue_visible.values()) == 0
            and sum(progress.queue_in_flight.values()) == 0
            and progress.objects_done + progress.dlq_messages >= progress.objects_total
        )

    def observe(self) -> PipelineObservation:
        """The figures of the report, read from the simulator, the failed-row sink and the DLQs."""
        settings, names = self.settings, self.stack.names
        stats = self.simulator.stats()
        failed_rows, quarantined = count_sink_rows(
            self.client_as(HARNESS_USER_AGENT, "s3"), names.failed_rows_bucket, names.failed_rows_prefix
        )
        dlq_messages, dlq_object_keys = dead_letter_keys(
            self.client_as(HARNESS_USER_AGENT, "sqs"), self.dead_letter_queue_urls()
        )
        rejected = self.outcomes.rejected_keys | quarantined
        complete = self.outcomes.complete_keys
        uploaded = self.uploaded
        elapsed = self._elapsed_s if self._elapsed_s is not None else time.monotonic() - self._started
        return PipelineObservation(
            objects_total=settings.files,
            rows_total=settings.files * settings.rows,
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
            downstream_latency_s=simulator_latency_s(self.latency, settings.time_scale),
        )


def _queue_attributes(sqs: SQSClient, url: str) -> tuple[int, int]:
    """Visible and in-flight messages of a queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes.get("ApproximateNumberOfMessages", "0")),
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0")),
    )


def run_pipeline(
    settings: PipelineRunSettings,
    on_progress: ProgressListener | None = None,
    collectors: Sequence[SectionCollector] = (),
    on_terraform_output: Callable[[str], None] | None = None,
) -> PipelineRunResult:
    """Run the workload through the local pipeline and report: :meth:`PipelineRun.run`."""
    return PipelineRun(settings, on_progress, collectors, on_terraform_output).run()
