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
import contextlib
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from s3stagger.adapters.api_setup import ApiSetup, build_api_setup
from s3stagger.adapters.downstream_client import HttpDownstream, build_http_transports
from s3stagger.adapters.failed_rows_sink import S3FailedRowsSink
from s3stagger.adapters.flight_parameter import FlightParameterReader
from s3stagger.adapters.message_chain import MessageChain, QueuedMessage, chain_queues
from s3stagger.adapters.s3_object_source import S3ObjectSource
from s3stagger.adapters.visibility_keepalive import VisibilityKeepAlive
from s3stagger.config import ConfigError, ProcessorSettings
from s3stagger.definitions import read_json
from s3stagger.domain.deadline import DispatchDeadline, LoweredBudget, OutgrownBudget, bounded_remaining
from s3stagger.domain.events import parse_process_request
from s3stagger.domain.flight import execution_share
from s3stagger.domain.keepalive import Hold, KeepAlive, keepalive_of
from s3stagger.domain.model import InvalidRequestError, ProcessRequest, RunStatus, RunSummary
from s3stagger.processor import (
    ChainLink,
    ObjectProcessor,
    RemainingTime,
    RunMetrics,
    SystemicRejectionError,
    answered_link,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

SERVICE = "s3stagger-processor"
METRICS_NAMESPACE_VARIABLE = "POWERTOOLS_METRICS_NAMESPACE"
METRICS_NAMESPACE: str = read_json("processor.json")["environment"][METRICS_NAMESPACE_VARIABLE]
"""The CloudWatch namespace of the processor's metrics (case-sensitive). One source:
``definitions/processor.json``, which Terraform deploys as the function's environment; the code
falls back to the same value when the variable is unset."""
FAILED = "FAILED"
"""Answer status of a message the call took itself whose object raised (the dispatcher records it)."""

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))

_clients_lock = threading.Lock()
ClientT = TypeVar("ClientT")
_s3_clients: dict[str | None, S3Client] = {}
_sqs_clients: dict[str | None, SQSClient] = {}
_api_setups: dict[tuple[ProcessorSettings, str | None], ApiSetup] = {}


def s3_client() -> S3Client:
    """One S3 client per endpoint (``AWS_ENDPOINT_URL``), reused across invocations; thread-safe."""
    return _cached_client(_s3_clients, "s3")


def sqs_client() -> SQSClient:
    """One SQS client per endpoint, reused across invocations; thread-safe."""
    return _cached_client(_sqs_clients, "sqs")


def _cached_client(clients: dict[str | None, ClientT], service: str) -> ClientT:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    with _clients_lock:
        client = clients.get(endpoint)
        if client is None:
            client = cast(ClientT, boto3.session.Session().client(service))  # type: ignore[call-overload]
            clients[endpoint] = client
        return client


def kept_alive(keepalive: KeepAlive | None) -> contextlib.AbstractContextManager[VisibilityKeepAlive | None]:
    """Renews the call's message and its dispatcher's lease while it runs (see domain/keepalive.py)."""
    if keepalive is None:
        return contextlib.nullcontext()

    def lost(hold: Hold, why: str) -> None:
        logger.warning("a hold is no longer renewed", extra={"queue_url": hold.queue_url, "error": why})

    return VisibilityKeepAlive(sqs_client(), keepalive, lost)


FLIGHT_PARAMETER_VARIABLE = "S3STAGGER_FLIGHT_PARAMETER"
FLIGHT_CACHE_VARIABLE = "S3STAGGER_FLIGHT_CACHE_S"
ROWS_IN_FLIGHT_KEY = "rows_in_flight_per_object"
"""Invoke-payload key: rows in flight for this invocation (the dispatcher may pass the autoscaler's)."""
_flight_readers: dict[tuple[str | None, str], FlightParameterReader] = {}


def autoscaled_rows_in_flight(event: Any) -> int | None:
    """Rows in flight per object the autoscaler set (:mod:`s3stagger.domain.flight`'s seam): the
    invoke payload's ``rows_in_flight_per_object``, else the flight parameter named by
    ``S3STAGGER_FLIGHT_PARAMETER`` (cached ``S3STAGGER_FLIGHT_CACHE_S``); None: neither is set."""
    if isinstance(event, dict):
        rows = event.get(ROWS_IN_FLIGHT_KEY)
        if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 1:
            return rows
    reader = flight_reader()
    return None if reader is None else reader.rows_in_flight_per_object()


def rows_in_flight_ceiling(event: Any, execution_slots: int | None = None) -> Callable[[], int | None] | None:
    """What the processor asks before every request for its rows in flight (the autoscaler's figure
    may change mid-invocation); a figure in the invoke payload holds for the whole invocation. A call
    of a dispatcher execution of ``execution_slots`` slots may take R / those slots
    (:func:`~s3stagger.domain.flight.execution_share`)."""
    if isinstance(event, dict) and ROWS_IN_FLIGHT_KEY in event:
        rows = autoscaled_rows_in_flight(event)
        return lambda: rows
    reader = flight_reader()
    if reader is None:
        return None
    return lambda: execution_share(
        reader.rows_in_flight_per_object(),
        reader.rows_in_flight_target(),
        execution_slots,
        AUTOSCALED_POOL_SIZE,
    )


def outgrown_budget(deadline: DispatchDeadline | None, settings: ProcessorSettings) -> OutgrownBudget | None:
    """Watches the autoscaler's budget against the execution's (None: either is not known)."""
    reader = flight_reader()
    if deadline is None or deadline.budget is None or reader is None:
        return None
    return OutgrownBudget(
        deadline.budget,
        lambda: reader.budget(written_after=deadline.started_at_s),
        settings.budget_grace_s,
        settings.deadline_margin_s,
    )


def lowered_budget(deadline: DispatchDeadline | None) -> LoweredBudget | None:
    """Watches the autoscaler's budget against the execution's (None: either is not known)."""
    reader = flight_reader()
    if deadline is None or deadline.budget is None or reader is None:
        return None
    return LoweredBudget(deadline.budget, lambda: reader.budget(written_after=deadline.started_at_s))


def flight_reader() -> FlightParameterReader | None:
    """The cached reader of the flight parameter ``S3STAGGER_FLIGHT_PARAMETER`` (None: unset)."""
    name = os.environ.get(FLIGHT_PARAMETER_VARIABLE)
    if not name:
        return None
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    with _clients_lock:
        reader = _flight_readers.get((endpoint, name))
        if reader is None:
            ttl_s = float(os.environ.get(FLIGHT_CACHE_VARIABLE) or 10)
            reader = FlightParameterReader(boto3.session.Session().client("ssm"), name, ttl_s)
            _flight_readers[(endpoint, name)] = reader
    return reader


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


AUTOSCALED_POOL_SIZE = 40
"""Connections kept when the autoscaler may raise the ceiling mid-invocation
(``autoscaler.json`` ``law.max_rows_per_object``)."""


Link = ChainLink[QueuedMessage | None]


class _CallHooks:
    """The handler's side of a call's chain: each object is logged and measured as it ends; with a
    :class:`MessageChain`, further messages are taken (none once the budget was lowered) and the
    finished ones deleted."""

    def __init__(self, chain: MessageChain | None, lowered: LoweredBudget | None = None) -> None:
        self._chain = chain
        self._lowered = lowered

    async def take(self) -> Link | None:
        if self._chain is None or (self._lowered is not None and self._lowered.lowered):
            return None
        return await self._chain.take()

    async def ended(self, link: Link) -> None:
        _report(link)
        if link.summary is not None:
            _emit_metrics(link.summary)

    async def superseded(self, link: Link) -> None:
        if self._chain is not None:
            await self._chain.delete(link)


async def _process(
    settings: ProcessorSettings,
    request: ProcessRequest,
    remaining: RemainingTime | None,
    ceiling: Callable[[], int | None] | None = None,
    chain: MessageChain | None = None,
    *,
    lowered: LoweredBudget | None = None,
) -> tuple[list[Link], RunMetrics]:
    """Run the call's object (and, with a ``chain``, the messages after it); settle every message
    of the call but the answered one (see :mod:`s3stagger.adapters.message_chain`)."""
    s3 = s3_client()
    setup = api_setup(settings)
    pool = settings.max_concurrency
    if ceiling is not None:
        pool = max(pool, AUTOSCALED_POOL_SIZE)
    async with HttpDownstream(
        build_http_transports(pool, setup.tls()),
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
            ceiling=ceiling,
            most_in_flight=pool,
        )
        first: Link = ChainLink(None, request, rank=0 if chain is None else chain.own_rank)
        links, figures = await processor.run_chain(first, remaining, _CallHooks(chain, lowered))
        answered = answered_link(links)
        for link in links:
            if chain is None or link is answered or link.superseded:
                continue
            if link.clean:
                await chain.delete(link)
            else:
                await chain.give_back(link)
                logger.warning("its message was given back to its queue", extra=_object_keys(link.request))
        answered_summary = answered.summary
        if answered_summary is not None:
            answered_summary.auth_refreshes = downstream.auth_refreshes
        return links, figures


def _metrics() -> EphemeralMetrics:
    return EphemeralMetrics(
        namespace=os.environ.get(METRICS_NAMESPACE_VARIABLE) or METRICS_NAMESPACE, service=SERVICE
    )


def _emit_metrics(summary: RunSummary) -> None:
    """One object's metrics (EMF), as it ends."""
    metrics = _metrics()
    count = MetricUnit.Count
    metrics.add_metric(name="RowsApplied", unit=count, value=summary.rows_applied)
    metrics.add_metric(name="RowsFailed", unit=count, value=summary.rows_failed)
    metrics.add_metric(name="RowsRetried", unit=count, value=summary.retries)
    metrics.add_metric(name="Throttled429", unit=count, value=summary.throttled)
    metrics.add_metric(name="DownstreamTimeouts", unit=count, value=summary.timeouts)
    metrics.add_metric(name=f"Objects{summary.status.value.title()}", unit=count, value=1)
    metrics.add_metric(name="ConcurrencyLimit", unit=count, value=summary.concurrency_limit)
    metrics.add_metric(name="InvocationDuration", unit=MetricUnit.Milliseconds, value=summary.duration_ms)
    metrics.flush_metrics()


def _emit_call_metrics(figures: RunMetrics, auth_refreshes: int) -> None:
    """The call's own figures (its limiter, its requests' latency), once per call."""
    metrics = _metrics()
    count, ms = MetricUnit.Count, MetricUnit.Milliseconds
    metrics.add_metric(name="AuthRefreshes", unit=count, value=auth_refreshes)
    metrics.add_metric(name="PeakConcurrencyLimit", unit=count, value=figures.peak_limit)
    metrics.add_metric(name="ConcurrencyLimitDecreases", unit=count, value=figures.limit_decreases)
    metrics.add_metric(name="DownstreamLatencyAvg", unit=ms, value=round(figures.latency_avg_ms, 3))
    metrics.add_metric(name="DownstreamLatencyMax", unit=ms, value=round(figures.latency_max_ms, 3))
    metrics.flush_metrics()


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (``s3stagger.handlers.process_object.handler``)."""
    try:
        request = parse_process_request(event)
        deadline = DispatchDeadline.from_event(event)
        keepalive = keepalive_of(event)
        queues = chain_queues(event)
    except InvalidRequestError as error:
        logger.error("event is not an object reference", extra={"error": str(error)})
        raise
    try:
        settings = ProcessorSettings.from_env()
    except ConfigError as error:
        logger.error("processor settings are invalid", extra={"error": str(error)})
        raise
    logger.info("processing object", extra=_object_keys(request) | {"version_id": request.object.version_id})
    outgrown = outgrown_budget(deadline, settings)
    lowered = lowered_budget(deadline)
    remaining = bounded_remaining(remaining_time_of(context), deadline, outgrown=outgrown)
    ceiling = rows_in_flight_ceiling(event, None if deadline is None else deadline.budget)
    try:
        with kept_alive(keepalive) as alive:
            chain = None
            if queues and alive is not None and keepalive is not None and keepalive.message is not None:
                chain = MessageChain(sqs_client(), queues, alive, keepalive.message)
            call = _process(settings, request, remaining, ceiling, chain, lowered=lowered)
            links, figures = asyncio.run(call)
    except Exception:
        logger.exception("processing failed; the caller retries", extra=_object_keys(request))
        raise
    answered = answered_link(links)
    _emit_call_metrics(figures, answered.summary.auth_refreshes if answered.summary else 0)
    if answered.error is not None and answered.tag is None:
        raise answered.error
    # the dispatcher's slot takes no further message once its execution's deadline is this close,
    # or once the budget differs from its execution's (the continuation runs the new budget's slots)
    reached = deadline is not None and (
        deadline.remaining_s() < settings.deadline_margin_s
        or (outgrown is not None and outgrown.noticed_at is not None)
        or (lowered is not None and lowered.lowered)
    )
    answer = _answer(answered) | {"deadline_reached": reached}
    if len(links) > 1:
        answer["objects_served"] = len(links)
    return answer


def _object_keys(request: ProcessRequest | None) -> dict[str, Any]:
    if request is None:
        return {}
    resume = request.cursor.next_row if request.cursor else None
    return {"bucket": request.object.bucket, "object_key": request.object.key, "resume_row": resume}


def _report(link: Link) -> None:
    """Log how one object of the call ended (a JSON line with its bucket and key)."""
    keys = _object_keys(link.request)
    if link.summary is not None:
        summary = link.summary.as_dict()
        if link.summary.status is RunStatus.REJECTED:
            logger.warning("object rejected", extra=keys | {"summary": summary})
        else:
            logger.info("object processed", extra=keys | {"summary": summary})
        return
    error = link.error
    if isinstance(error, SystemicRejectionError):
        logger.error("object stopped: the downstream refuses its rows", extra=keys | {"error": str(error)})
    elif isinstance(error, InvalidRequestError):
        logger.error("message is not an object reference", extra=keys | {"error": str(error)})
    else:
        logger.error(
            "processing failed; the caller retries", extra=keys | {"error": repr(error)}, exc_info=error
        )


def _answer(link: Link) -> dict[str, Any]:
    """The answer about ``link``; a message the call took itself travels with it (the dispatcher
    settles that one instead of its own), and so does its error (status FAILED)."""
    answer: dict[str, Any] = {}
    if link.summary is not None:
        answer = link.summary.as_dict()
    elif link.error is not None:
        answer = {"status": FAILED, "error": {"Error": type(link.error).__name__, "Cause": str(link.error)}}
    if link.tag is not None:
        answer |= link.tag.as_answer()
    return answer
