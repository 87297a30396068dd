"""Lambda handler ``autoscale``: one run of the autoscaler (EventBridge Scheduler, every minute).

Thin: read the settings, build the adapters (SQS, CloudWatch, SSM), run one
:meth:`~s3stagger.autoscaler.Autoscaler.tick`, log the decision as one JSON line and emit it as EMF
metrics (``budget``, ``rows_in_flight_target``, ``rows_in_flight_per_object``, with ``reason`` as a
dimension). A failure raises: the function's Errors alarm fires, the parameters keep their values.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from s3stagger.adapters.autoscaler_inputs import CloudWatchSignals, SqsBacklog
from s3stagger.adapters.flight_parameter import SsmFlightStore
from s3stagger.autoscaler import Autoscaler, AutoscalerSettings, Tick, initial_state

SERVICE = "s3stagger-autoscaler"
PROCESSOR_SERVICE = "s3stagger-processor"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))


def build_autoscaler(settings: AutoscalerSettings, session: Any) -> Autoscaler:
    """The autoscaler with its AWS adapters (clients from ``session``)."""
    policy = settings.policy()
    signals = CloudWatchSignals(
        session.client("cloudwatch"),
        settings.metrics_namespace,
        PROCESSOR_SERVICE,
        settings.processor_function_name,
        queue_names=[url.rsplit("/", 1)[-1] for url in settings.queue_urls.values()],
        interval_s=settings.interval_s,
    )
    return Autoscaler(
        policy,
        SqsBacklog(session.client("sqs"), settings.queue_urls, lambda: signals.oldest_age_s),
        signals,
        SsmFlightStore(session.client("ssm"), settings.budget_parameter, settings.flight_parameter),
        initial_state(policy),
    )


def emit_decision(tick: Tick, namespace: str) -> None:
    """The decision as EMF metrics (``reason`` as a dimension, so each reason is its own series)."""
    metrics = EphemeralMetrics(namespace=namespace, service=SERVICE)
    metrics.add_dimension(name="reason", value=tick.decision.reason)
    count = MetricUnit.Count
    metrics.add_metric(name="budget", unit=count, value=tick.decision.plan.objects_in_flight)
    metrics.add_metric(name="rows_in_flight_target", unit=count, value=tick.decision.rows_in_flight_target)
    metrics.add_metric(
        name="rows_in_flight_per_object", unit=count, value=tick.decision.plan.rows_in_flight_per_object
    )
    metrics.flush_metrics()


def handler(event: Any, context: Any) -> dict[str, object]:
    """Lambda entry point (``s3stagger.handlers.autoscale.handler``)."""
    settings = AutoscalerSettings.from_env(os.environ)
    tick = build_autoscaler(settings, boto3.session.Session()).tick()
    decision = tick.as_log()
    logger.info("autoscaler decision", extra={"decision": decision})
    emit_decision(tick, settings.metrics_namespace)
    return decision
