"""Lambda handler ``process_object``: one S3 object (or the rest of it) → rows to the downstream API.

Thin: parse the event, build the collaborators, run :class:`~s3stagger.processor.ObjectProcessor`,
log and emit metrics, shape the answer. Input: an S3 EventBridge "Object Created" event, or
``{"object": <that event or {"bucket", "key", ...}>, "cursor": null | <cursor>}``, optionally with
the dispatcher's ``"deadline"`` (:mod:`s3stagger.domain.deadline`). Output: the summary of
:meth:`~s3stagger.domain.model.RunSummary.as_dict` and ``deadline_reached``. A malformed event, a
bad setting, a transient S3 error or an unreachable downstream raise, so the caller's retry/Catch
handles them.

Logs are JSON lines (Powertools Logger) carrying the bucket and object key on every line; metrics
are CloudWatch EMF (Powertools), one set per invocation. The boto3 endpoint comes from the standard
``AWS_ENDPOINT_URL`` variable, so local mode only sets it.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from s3stagger.adapters.api_setup import ApiSetup, build_api_setup
from s3stagger.adapters.downstream_client import HttpDownstream, build_http_transports
from s3stagger.adapters.failed_rows_sink import S3FailedRowsSink
from s3stagger.adapters.s3_object_source import S3ObjectSource
from s3stagger.config import ConfigError, ProcessorSettings
from s3stagger.definitions import read_json
from s3stagger.domain.deadline import DispatchDeadline, bounded_remaining
from s3stagger.domain.events import parse_process_request
from s3stagger.domain.model import InvalidRequestError, ProcessRequest, RunStatus, RunSummary
from s3stagger.processor import ObjectProcessor, RemainingTime, RunMetrics, SystemicRejectionError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SERVICE = "s3stagger-processor"
METRICS_NAMESPACE_VARIABLE = "POWERTOOLS_METRICS_NAMESPACE"
METRICS_NAMESPACE: str = read_json("processor.json")["environment"][METRICS_NAMESPACE_VARIABLE]
"""The CloudWatch namespace of the processor's metrics (case-sensitive). One source:
``definitions/processor.json``, which Terraform deploys as the function's environment; the code
falls back to the same value when the variable is unset."""
LOG_KEYS = ("bucket", "object_key", "resume_row")

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))

_clients_lock = threading.Lock()
_s3_clients: dict[str | None, S3Client] = {}
_api_setups: dict[tuple[ProcessorSettings, str | None], ApiSetup] = {}


def s3_client() -> S3Client:
    """One S3 client per endpoint (``AWS_ENDPOINT_URL``), reused across invocations; thread-safe."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    with _clients_lock:
        client = _s3_clients.get(endpoint)
        if client is None:
            client = boto3.session.Session().client("s3")
            _s3_clients[endpoint] = client
        return client


def api_setup(settings: ProcessorSettings) -> ApiSetup:
    """One :class:`ApiSetup` per settings and endpoint, reused across invocations (secrets, tokens)."""
    key = (settings, os.environ.get("AWS_ENDPOINT_URL"))
    with _clients_lock:
        setup = _api_setups.get(key)
    if setup is None:
        session = boto3.session.Session()
        setup = build_api_setup(settings, session.client, session.get_credentials)  # type: ignore[arg-type]
        with _clients_lock:
            setup = _api_setups.setdefault(key, setup)
    return setup


def remaining_time_of(context: Any) -> RemainingTime | None:
    """Seconds left in the invocation, from a Lambda context (``None``: no deadline)."""
    get_remaining = getattr(context, "get_remaining_time_in_millis", None)
    if get_remaining is None:
        return None
    return lambda: float(get_remaining()) / 1000.0


async def _process(
    settings: ProcessorSettings, request: ProcessRequest, remaining: RemainingTime | None
) -> tuple[RunSummary, RunMetrics]:
    s3 = s3_client()
    setup = api_setup(settings)
    async with HttpDownstream(
        build_http_transports(settings.max_concurrency, setup.tls()),
        setup.mapping,
        settings.connect_timeout_s,
        settings.read_timeout_s,
        auth=setup.auth,
    ) as downstream:
        processor = ObjectProcessor(
            settings,
            S3ObjectSource(s3),
            S3FailedRowsSink(s3, settings.failed_rows_bucket, settings.failed_rows_prefix),
            downstream,
            mapping=setup.mapping,
        )
        summary, figures = await processor.run(request, remaining)
        summary.auth_refreshes = downstream.auth_refreshes
        return summary, figures


def _emit_metrics(summary: RunSummary, figures: RunMetrics) -> None:
    metrics = EphemeralMetrics(
        namespace=os.environ.get(METRICS_NAMESPACE_VARIABLE) or METRICS_NAMESPACE, service=SERVICE
    )
    count = MetricUnit.Count
    metrics.add_metric(name="RowsApplied", unit=count, value=summary.rows_applied)
    metrics.add_metric(name="RowsFailed", unit=count, value=summary.rows_failed)
    metrics.add_metric(name="RowsRetried", unit=count, value=summary.retries)
    metrics.add_metric(name="Throttled429", unit=count, value=summary.throttled)
    metrics.add_metric(name="DownstreamTimeouts", unit=count, value=summary.timeouts)
    metrics.add_metric(name="AuthRefreshes", unit=count, value=summary.auth_refreshes)
    metrics.add_metric(name=f"Objects{summary.status.value.title()}", unit=count, value=1)
    metrics.add_metric(name="ConcurrencyLimit", unit=count, value=summary.concurrency_limit)
    metrics.add_metric(name="PeakConcurrencyLimit", unit=count, value=figures.peak_limit)
    metrics.add_metric(name="ConcurrencyLimitDecreases", unit=count, value=figures.limit_decreases)
    metrics.add_metric(
        name="DownstreamLatencyAvg", unit=MetricUnit.Milliseconds, value=round(figures.latency_avg_ms, 3)
    )
    metrics.add_metric(
        name="DownstreamLatencyMax", unit=MetricUnit.Milliseconds, value=round(figures.latency_max_ms, 3)
    )
    metrics.add_metric(name="InvocationDuration", unit=MetricUnit.Milliseconds, value=summary.duration_ms)
    metrics.flush_metrics()


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (``s3stagger.handlers.process_object.handler``)."""
    try:
        request = parse_process_request(event)
        deadline = DispatchDeadline.from_event(event)
    except InvalidRequestError as error:
        logger.error("event is not an object reference", extra={"error": str(error)})
        raise
    try:
        settings = ProcessorSettings.from_env()
    except ConfigError as error:
        logger.error("processor settings are invalid", extra={"error": str(error)})
        raise
    logger.thread_safe_append_keys(
        bucket=request.object.bucket,
        object_key=request.object.key,
        resume_row=request.cursor.next_row if request.cursor else None,
    )
    try:
        logger.info("processing object", extra={"version_id": request.object.version_id})
        try:
            remaining = bounded_remaining(remaining_time_of(context), deadline)
            summary, figures = asyncio.run(_process(settings, request, remaining))
        except SystemicRejectionError as error:
            logger.error("object stopped: the downstream refuses its rows", extra={"error": str(error)})
            raise
        except Exception:
            logger.exception("processing failed; the caller retries")
            raise
        answer = summary.as_dict()
        # the dispatcher's slot takes no further message once its execution's deadline is this close
        margin_s = settings.deadline_margin_s
        answer["deadline_reached"] = deadline is not None and deadline.remaining_s() < margin_s
        if summary.status is RunStatus.REJECTED:
            logger.warning("object rejected", extra={"summary": answer})
        else:
            logger.info("object processed", extra={"summary": answer})
        _emit_metrics(summary, figures)
        return answer
    finally:
        logger.thread_safe_remove_keys(LOG_KEYS)
