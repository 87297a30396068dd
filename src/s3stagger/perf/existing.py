"""``perf-test`` against an existing deployment (AWS, or ``s3stagger local up``).

It uploads a workload under the queue's route prefix, samples the queue (and the downstream
simulator's ``/stats`` when it is the downstream) until the queue is drained or the time runs out,
then reads what the deployment offers: the dispatcher's executions and state transitions (Standard;
Express executions are not listed by AWS, so they are left out), and the processor's
``Invocations`` and ``Duration`` from CloudWatch when it has them. It writes the same report as a
local run; figures it cannot observe are ``null`` (per-object latency needs the processor's answers,
which only a local run sees).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from s3stagger.cli.pipeline_report import PipelineObservation, summarize_pipeline_run
from s3stagger.cli.sample_data import sample_objects
from s3stagger.cli.simulate import UploadedObject, upload_objects
from s3stagger.definitions.model import Definitions
from s3stagger.domain.cost import DISPATCHER_NONE, CountedWork, estimate_cost
from s3stagger.domain.perf_metrics import Sample
from s3stagger.errors import S3StaggerError
from s3stagger.local.request_counter import HARNESS_USER_AGENT, USER_USER_AGENT
from s3stagger.perf.report import RunOutcome, write_report
from s3stagger.perf.simulator_process import fetch_stats

SAMPLE_INTERVAL_S = 1.0
SETTLE_SAMPLES = 3


class ExistingDeploymentError(S3StaggerError):
    """The deployment named on the command line cannot be driven (missing queue, no access, ...)."""


@dataclass(frozen=True)
class ExistingDeployment:
    bucket: str
    queue: str
    state_machine_arn: str
    function_name: str
    endpoint_url: str | None = None
    downstream_url: str | None = None


def route_prefix(queue_name: str) -> tuple[str, str]:
    """The priority and key prefix whose objects reach ``queue_name`` (``<prefix>-<priority>``)."""
    routes = Definitions.read().event_rules.routes
    for route in routes:
        if queue_name.endswith(f"-{route.priority}"):
            return route.priority, route.key_prefix
    return routes[-1].priority, routes[-1].key_prefix


def _client(deployment: ExistingDeployment, service: str, agent: str = HARNESS_USER_AGENT) -> Any:
    config = Config(user_agent_extra=agent, retries={"max_attempts": 5, "mode": "standard"})
    return boto3.client(service, endpoint_url=deployment.endpoint_url, config=config)  # type: ignore[call-overload]


def _metric_sum(
    cloudwatch: Any, namespace: str, metric: str, dimension: dict[str, str], since: datetime
) -> float:
    now = datetime.now(UTC)
    answer = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimension.items()],
        StartTime=since - timedelta(minutes=1),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    )
    return float(sum(point.get("Sum", 0.0) for point in answer.get("Datapoints", [])))


def run_existing(
    deployment: ExistingDeployment,
    *,
    files: int,
    rows: int,
    timeout_s: float,
    report_dir: Path,
    console: Console,
) -> dict[str, Any]:
    """Drive the deployment with ``files`` x ``rows``; write the report; return the last JSON line."""
    try:
        return _run(
            deployment, files=files, rows=rows, timeout_s=timeout_s, report_dir=report_dir, console=console
        )
    except (BotoCoreError, ClientError) as error:
        raise ExistingDeploymentError(f"the deployment did not answer as expected: {error}") from error


def _run(
    deployment: ExistingDeployment,
    *,
    files: int,
    rows: int,
    timeout_s: float,
    report_dir: Path,
    console: Console,
) -> dict[str, Any]:
    sqs = _client(deployment, "sqs")
    queue_url = deployment.queue
    if not queue_url.startswith(("http://", "https://")):
        queue_url = sqs.get_queue_url(QueueName=deployment.queue)["QueueUrl"]
    queue_name = queue_url.rstrip("/").rsplit("/", 1)[-1]
    priority, prefix = route_prefix(queue_name)
    stats_before = fetch_stats(deployment.downstream_url) if deployment.downstream_url else None
    started_at = datetime.now(UTC)
    started = time.monotonic()
    uploaded: list[UploadedObject] = []
    console.print(
        f"perf-test: uploading {files} x {rows} rows to s3://{deployment.bucket}/{prefix}", highlight=False
    )
    upload_objects(
        _client(deployment, "s3", USER_USER_AGENT),
        deployment.bucket,
        sample_objects(files, rows, int(time.time()), prefix=prefix),
        min(files, 10),
        uploaded.append,
    )
    samples: list[Sample] = []
    empty_in_a_row = 0
    timed_out = False
    while True:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        visible = int(attributes.get("ApproximateNumberOfMessages", "0"))
        in_flight = int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0"))
        stats = fetch_stats(deployment.downstream_url) if deployment.downstream_url else None
        sample = Sample(
            t=time.monotonic() - started,
            rows_applied=0
            if stats is None or stats_before is None
            else stats.effects_applied - stats_before.effects_applied,
            downstream_requests=0
            if stats is None or stats_before is None
            else stats.requests - stats_before.requests,
            throttled_429=0
            if stats is None or stats_before is None
            else stats.throttled_429 - stats_before.throttled_429,
            downstream_in_flight=0 if stats is None else stats.in_flight,
            downstream_queued=0 if stats is None else stats.queued,
            capacity=0 if stats is None else stats.capacity,
            invocations_in_flight=0,
            slots=None,
            queue_visible={priority: visible},
            queue_in_flight={priority: in_flight},
        )
        samples.append(sample)
        console.print(
            f"  {sample.t:6.1f} s  queue visible {visible}  in flight {in_flight}  "
            f"rows applied {sample.rows_applied}",
            highlight=False,
        )
        empty_in_a_row = empty_in_a_row + 1 if visible + in_flight == 0 else 0
        if empty_in_a_row >= SETTLE_SAMPLES:
            break
        if sample.t > timeout_s:
            timed_out = True
            break
        time.sleep(SAMPLE_INTERVAL_S)
    elapsed = time.monotonic() - started
    last = samples[-1]
    capacity = last.capacity or 1
    latency_s = (stats_before.service_mean_ms or 200.0) / 1000 if stats_before else 0.2
    report = summarize_pipeline_run(
        PipelineObservation(
            objects_total=files,
            rows_total=files * rows,
            elapsed_s=elapsed,
            objects_complete=0,
            objects_rejected=0,
            rows_applied=last.rows_applied,
            duplicate_effects=0,
            duplicate_deliveries=0,
            failed_rows=0,
            rows_quarantined=0,
            dlq_messages=0,
            rows_in_dlq=0,
            downstream_requests=last.downstream_requests,
            downstream_throttled_429=last.throttled_429,
            downstream_errors_5xx=0,
            peak_downstream_concurrency=max((s.downstream_in_flight for s in samples), default=0),
            downstream_capacity=capacity,
            downstream_latency_s=latency_s,
        )
    ).as_dict()
    transitions, executions = _standard_transitions(
        _client(deployment, "stepfunctions"), deployment, started_at
    )
    cost = work = None
    try:
        cloudwatch = _client(deployment, "cloudwatch")
        dimension = {"FunctionName": deployment.function_name}
        invocations = _metric_sum(cloudwatch, "AWS/Lambda", "Invocations", dimension, started_at)
        duration_ms = _metric_sum(cloudwatch, "AWS/Lambda", "Duration", dimension, started_at)
    except (BotoCoreError, ClientError):
        invocations = duration_ms = 0.0
    if invocations > 0:
        function = _client(deployment, "lambda").get_function_configuration(
            FunctionName=deployment.function_name
        )
        work = CountedWork(
            objects=files,
            rows=files * rows,
            capacity=capacity,
            latency_s=latency_s,
            dispatcher_type="STANDARD" if transitions is not None else DISPATCHER_NONE,
            eventbridge_events=files,
            lambda_requests=int(invocations),
            lambda_billed_ms=int(duration_ms),
            lambda_memory_mb=int(function.get("MemorySize", 128)),
            lambda_architecture=str((function.get("Architectures") or ["x86_64"])[0]),
            sfn_transitions=transitions or 0,
            sfn_executions=executions or 0,
            s3_requests={"GetObject": files},
        )
        cost = estimate_cost(work, Definitions.read().prices)
    outcome = RunOutcome(
        scenario="existing",
        dispatcher=deployment.state_machine_arn.rsplit(":", 1)[-1],
        dispatcher_type="STANDARD" if transitions is not None else "unknown",
        capacity=capacity,
        latency_s=latency_s,
        samples=samples,
        latencies={},
        report=report,
        cost=cost,
        work=work,
        transitions=transitions,
        executions=executions,
        timed_out=timed_out,
        requests={},
    )
    context = {
        "mode": "existing deployment",
        "endpoint_url": deployment.endpoint_url or "AWS",
        "bucket": deployment.bucket,
        "queue": queue_url,
        "note": "rows accounting needs the downstream simulator's stats (--downstream-url); latency per "
        "object and SQS request counts are not observable here; cost uses CloudWatch Lambda metrics",
    }
    return write_report([outcome], report_dir, context)


def _standard_transitions(
    sfn: Any, deployment: ExistingDeployment, since: datetime
) -> tuple[int | None, int | None]:
    """States entered by the executions started since ``since``; ``(None, None)`` when the state
    machine does not list executions (Express)."""
    transitions = executions = 0
    try:
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=deployment.state_machine_arn
        ):
            for execution in page["executions"]:
                if execution["startDate"] < since - timedelta(seconds=5):
                    continue
                executions += 1
                for history in sfn.get_paginator("get_execution_history").paginate(
                    executionArn=execution["executionArn"]
                ):
                    transitions += sum(1 for e in history["events"] if e["type"].endswith("StateEntered"))
    except ClientError:
        return None, None
    return transitions, executions
