"""``LocalPipeline``: the whole pattern on the embedded emulator, in one context manager.

``with LocalPipeline(LocalPipelineSettings(downstream_url=sim.rows_url)) as stack:`` starts moto on
127.0.0.1 (free port), installs the local Lambda runtime, provisions everything from
``definitions/`` and starts the local scheduler. ``stack.endpoint_url``, ``stack.names`` and
``stack.client(service)`` let anything (boto3, the ``aws`` CLI) drive it; the progress helpers
report what the CLI shows. Leaving the block stops the scheduler, stops running dispatcher
executions and shuts the emulator down.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from s3stagger.local.alerting import LocalAlerting, LocalAlertingSettings
from s3stagger.local.emulator import DEFAULT_REGION, FAKE_CREDENTIALS, Emulator
from s3stagger.local.lambda_runtime import FunctionCounters, Handler, LocalLambdaRuntime
from s3stagger.local.lifecycle import LocalService
from s3stagger.local.observability import LocalObservability, LocalObservabilitySettings
from s3stagger.local.provision import Provisioner, ProvisionSettings, ResourceNames
from s3stagger.local.request_counter import HARNESS_USER_AGENT, client_as
from s3stagger.local.scheduler import DispatcherScheduler, SchedulerCounters, SlotAlreadyStarted

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalPipelineSettings(ProvisionSettings):
    """Settings of a local stack: what provisioning takes (unset values come from ``definitions/``,
    as on AWS), plus the local runtime's own."""

    region: str = DEFAULT_REGION
    schedule_interval_s: float = 1.0
    """How often the local scheduler starts the dispatcher (AWS: ``rate(1 minute)``)."""
    start_scheduler: bool = True
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    """Handlers to run instead of a function's ``Handler`` setting, by function name (tests)."""
    alerting: LocalAlertingSettings | None = None
    """Alarms, alert rules, notifier and the local SMTP server (:mod:`s3stagger.local.alerting`)."""
    observability: LocalObservabilitySettings | None = None
    """Logs to a local Splunk HEC, metrics to a local Dynatrace (:mod:`s3stagger.local.observability`)."""


@dataclass(frozen=True)
class QueueDepth:
    visible: int
    in_flight: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight


class LocalPipeline(LocalService):
    """The emulator, the local Lambda runtime, the provisioned resources and the scheduler."""

    def __init__(self, settings: LocalPipelineSettings) -> None:
        self.settings = settings
        self.emulator = Emulator(region=settings.region)
        self.runtime: LocalLambdaRuntime | None = None
        self.scheduler: DispatcherScheduler | None = None
        self._names: ResourceNames | None = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self.alerting: LocalAlerting | None = None
        self.observability: LocalObservability | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> LocalPipeline:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.emulator.start()
        try:
            self.runtime = LocalLambdaRuntime(
                self.emulator.endpoint_url, self.settings.region, FAKE_CREDENTIALS
            ).install()
            for function_name, handler in self.settings.handlers.items():
                self.runtime.register(function_name, handler)
            self._names = self._provision()
            if self.settings.alerting is not None:
                self.alerting = LocalAlerting(
                    self.settings.alerting,
                    self.client,
                    self._names,
                    self.runtime.counters,
                    self.settings.load_definitions(),
                    stand_in_client=self.stand_in_client,
                ).start()
            if self.settings.observability is not None:
                functions = [self._names.function_name]
                if self.alerting is not None and self.alerting.names is not None:
                    functions.append(self.alerting.names.notifier_function_name)
                self.observability = LocalObservability(
                    self.settings.observability,
                    self.stand_in_client,
                    self._names,
                    self.runtime.counters,
                    functions,
                ).start()
            self.scheduler = DispatcherScheduler(self._start_dispatcher, self.settings.schedule_interval_s)
            if self.settings.start_scheduler:
                self.scheduler.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _provision(self) -> ResourceNames:
        """Build the resources (local provisioning; ``TerraformPipeline`` applies Terraform)."""
        return Provisioner(self.client, self.settings, self.settings.region).provision()

    def stop(self) -> None:
        # The emulator is one per process: it is stopped whatever else fails or is interrupted here,
        # or every later stack in this process would be refused.
        try:
            if self.observability is not None:
                self.observability.stop()
                self.observability = None
            if self.alerting is not None:
                self.alerting.stop()
            if self.scheduler is not None:
                self.scheduler.stop()
            if self._names is not None:
                try:
                    self.stop_running_dispatchers()
                except Exception:  # the emulator may already be unusable; stopping must go on
                    LOGGER.exception("stopping running dispatcher executions failed")
        finally:
            try:
                if self.runtime is not None:
                    self.runtime.uninstall()
                    self.runtime = None
            finally:
                self.emulator.stop()
                self._clients.clear()

    # -- access ---------------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return self.emulator.endpoint_url

    @property
    def names(self) -> ResourceNames:
        if self._names is None:
            raise RuntimeError("the local stack is not started")
        return self._names

    def stand_in_client(self, service_name: str) -> Any:
        """A client for the stand-ins of AWS's own work (the alarm evaluator): a request counter
        files its requests under the harness, billed to nobody."""
        return client_as(HARNESS_USER_AGENT, service_name, self.emulator.client_settings())

    def client(self, service_name: str) -> Any:
        """A boto3 client for ``service_name`` bound to the emulator (cached; thread-safe)."""
        with self._clients_lock:
            client = self._clients.get(service_name)
            if client is None:
                client = boto3.client(
                    service_name,  # type: ignore[call-overload]
                    config=Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=50),
                    **self.emulator.client_settings(),
                )
                self._clients[service_name] = client
            return client

    def environment(self) -> dict[str, str]:
        """Environment variables that point the ``aws`` CLI or boto3 at this stack."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.settings.region,
            "AWS_REGION": self.settings.region,
            **FAKE_CREDENTIALS,
        }

    # -- dispatching ----------------------------------------------------------------------------
    def start_dispatcher(self, name: str | None = None) -> str:
        """Start a dispatcher execution now (as the schedule would); returns its ARN."""
        execution_name = (
            name or f"manual-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{time.monotonic_ns()}"
        )
        started = self.client("stepfunctions").start_execution(
            stateMachineArn=self.names.state_machine_arn,
            name=execution_name,
            input=self.execution_input(execution_name),
        )
        return str(started["executionArn"])

    def execution_input(self, name: str) -> str:
        """The input of a dispatcher execution the scheduler (or a person) starts."""
        return "{}"

    def _start_dispatcher(self, name: str) -> None:
        try:
            self.start_dispatcher(name)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
                raise SlotAlreadyStarted(name) from error
            raise

    def running_dispatchers(self) -> list[str]:
        sfn = self.client("stepfunctions")
        paginator = sfn.get_paginator("list_executions")
        arns: list[str] = []
        for page in paginator.paginate(stateMachineArn=self.names.state_machine_arn, statusFilter="RUNNING"):
            arns.extend(str(execution["executionArn"]) for execution in page["executions"])
        return arns

    def stop_running_dispatchers(self) -> int:
        sfn = self.client("stepfunctions")
        arns = self.running_dispatchers()
        for arn in arns:
            try:
                sfn.stop_execution(executionArn=arn, cause="local stack stopping")
            except ClientError:
                LOGGER.warning("could not stop %s", arn)
        return len(arns)

    # -- progress -------------------------------------------------------------------------------
    def queue_depth(self, queue_url: str) -> QueueDepth:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return QueueDepth(
            visible=int(attributes["ApproximateNumberOfMessages"]),
            in_flight=int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def queue_depths(self) -> dict[str, QueueDepth]:
        """Depth of every queue by name: the priority queues, their DLQs and the ingest DLQ."""
        names = self.names
        urls = {**names.queue_urls, **{f"{p}-dlq": url for p, url in names.dlq_urls.items()}}
        urls["ingest-dlq"] = names.ingest_dlq_url
        return {name: self.queue_depth(url) for name, url in urls.items()}

    def processor_counters(self) -> FunctionCounters:
        if self.runtime is None:
            return FunctionCounters()
        return self.runtime.counters(self.names.function_name)

    def scheduler_counters(self) -> SchedulerCounters:
        return self.scheduler.counters if self.scheduler is not None else SchedulerCounters()

    def pending_messages(self) -> int:
        """Messages still in the priority queues (visible or being processed)."""
        return sum(self.queue_depth(url).total for url in self.names.queue_urls.values())

    def wait_until_idle(self, timeout_s: float, poll_s: float = 0.2, settle_polls: int = 2) -> bool:
        """Wait until every message of the priority queues is accounted for; False on timeout.

        A message leaves its queue only when its object is COMPLETE or REJECTED (or it moved to its
        DLQ), and one being processed or waiting to be retried counts as in flight, so empty
        priority queues on ``settle_polls`` polls in a row mean the work is done. Dispatchers still
        running then are only checking empty queues.
        """
        deadline = time.monotonic() + timeout_s
        empty_polls = 0
        while time.monotonic() < deadline:
            empty_polls = empty_polls + 1 if self.pending_messages() == 0 else 0
            if empty_polls >= settle_polls:
                return True
            time.sleep(poll_s)
        return False

    def wait_for_dispatchers(self, timeout_s: float, poll_s: float = 0.1) -> bool:
        """Wait until no dispatcher execution runs (stop the scheduler first); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running_dispatchers():
                return True
            time.sleep(poll_s)
        return False

    def failed_row_records(self) -> list[dict[str, Any]]:
        """Every object in the failed-rows location as ``{"key", "body"}``: the sink's row files
        (``.csv``) as a list of rows (dicts by column), its quarantine records (``.json``) parsed,
        anything else as text."""
        s3 = self.client("s3")
        records: list[dict[str, Any]] = []
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(
            Bucket=self.names.failed_rows_bucket, Prefix=self.names.failed_rows_prefix
        ):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=self.names.failed_rows_bucket, Key=item["Key"])["Body"].read()
                records.append({"key": item["Key"], "body": _sink_object(item["Key"], body.decode("utf-8"))})
        return records


def _sink_object(key: str, text: str) -> Any:
    if key.endswith(".json"):
        return json.loads(text)
    if key.endswith(".csv"):
        return [row for row in csv.DictReader(io.StringIO(text)) if row.get("row_number") != "0"]
    return text
