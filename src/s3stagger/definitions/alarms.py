"""The health alarms of ``alarms.json``: typed, validated, and expanded into concrete CloudWatch alarms.

One definition becomes one alarm per resource it applies to (:data:`APPLIES_TO`). The expansion
rules here are the ones ``terraform/modules/monitoring`` writes in HCL; a test holds the two to the
same alarm set. The local alarm evaluator and the notifier read the same :class:`ConcreteAlarm`.

Self-contained on purpose (its own strict reader), so it can be plugged into
``s3stagger.definitions.model`` as one more definition file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from s3stagger import definitions
from s3stagger.errors import S3StaggerError

ALARMS_FILE = "alarms.json"

APPLIES_TO: Mapping[str, str] = MappingProxyType(
    {
        "queues": "AWS/SQS",
        "dlqs": "AWS/SQS",
        "processor": "AWS/Lambda",
        "notifier": "AWS/Lambda",
        "autoscaler": "AWS/Lambda",
        "dispatcher": "AWS/States",
        "rules": "AWS/Events",
        "delivery_streams": "AWS/Firehose",
        "processor_metrics": "",
    }
)
"""Kind of resource -> the namespace its metrics are in. ``processor_metrics`` is the processor's own
EMF namespace (any, but not ``AWS/...``); its dimensions are the ones Powertools adds (``service``)."""

RESOURCE_DIMENSION: Mapping[str, str] = MappingProxyType(
    {
        "queues": "QueueName",
        "dlqs": "QueueName",
        "processor": "FunctionName",
        "notifier": "FunctionName",
        "autoscaler": "FunctionName",
        "dispatcher": "StateMachineArn",
        "rules": "RuleName",
        "delivery_streams": "DeliveryStreamName",
    }
)
"""Kind of AWS resource -> the dimension that names the resource."""

PER_RESOURCE_KINDS = frozenset({"queues", "dlqs", "rules", "delivery_streams"})
"""Kinds with several resources: their alarm names end in ``-<label>``."""

DELIVERY_STREAM_ROLES = frozenset({"splunk", "dynatrace"})
"""The Firehose delivery streams the observability modules deploy, by role (the label of their alarms);
an alarm with ``stream`` is made for that stream only (its metric exists for that destination only)."""

STATISTICS = frozenset({"SampleCount", "Average", "Sum", "Minimum", "Maximum"})
PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d{1,2})?|100)$")
"""An extended statistic (``p90``, ``p99.9``): Terraform's ``extended_statistic``."""
COMPARISONS = frozenset(
    {
        "GreaterThanOrEqualToThreshold",
        "GreaterThanThreshold",
        "LessThanThreshold",
        "LessThanOrEqualToThreshold",
    }
)
MISSING_DATA = frozenset({"missing", "notBreaching", "breaching", "ignore"})
SEVERITIES = ("critical", "warning", "info")
THRESHOLD_BASES = frozenset({"processor_timeout_ms", "processor_reserved_concurrency"})
HIGH_RESOLUTION_PERIODS = frozenset({10, 20, 30})
MAX_EVALUATION_SECONDS = 86_400
"""CloudWatch: evaluation_periods x period_s must not exceed one day."""
ALARM_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
RUNBOOK = re.compile(r"^docs/runbooks/[a-z0-9-]+\.md$")


class AlarmDefinitionError(S3StaggerError, ValueError):
    """``alarms.json`` is malformed or contradicts itself, or an expansion lacks a resource."""


@dataclass(frozen=True)
class AlarmDefinition:
    """One entry of ``alarms.json``: an alarm for every resource of kind ``applies_to``."""

    id: str
    applies_to: str
    namespace: str
    metric_name: str
    statistic: str
    period_s: int
    evaluation_periods: int
    datapoints_to_alarm: int
    comparison: str
    threshold: float
    threshold_of: str | None
    treat_missing_data: str
    severity: str
    summary: str
    runbook: str
    stream: str | None = None
    """``delivery_streams`` alarms only: the one stream role (:data:`DELIVERY_STREAM_ROLES`) it is for."""


@dataclass(frozen=True)
class AlarmDefinitions:
    """Every alarm definition, in file order."""

    alarms: tuple[AlarmDefinition, ...]

    def by_id(self, alarm_id: str) -> AlarmDefinition:
        for alarm in self.alarms:
            if alarm.id == alarm_id:
                return alarm
        raise AlarmDefinitionError(f"{ALARMS_FILE}: no alarm with id {alarm_id!r}")


@dataclass(frozen=True)
class AlarmResources:
    """The deployed resources alarms are made for (the same names Terraform and local mode create).

    ``queues``, ``dlqs`` and ``rules`` map a label (priority, ``ingest-dlq``, ``alert-dlq``, rule
    name without ``<name_prefix>-``) to the resource's name. ``notifier_function_name`` None: no
    notifier alarms (monitoring without the alerting module). ``processor_reserved_concurrency``
    None: alarms relative to it are not made. ``delivery_streams`` maps a role
    (:data:`DELIVERY_STREAM_ROLES`) to the Firehose delivery stream's name; empty (no observability
    module deployed): no Firehose alarms.
    """

    name_prefix: str
    queues: Mapping[str, str]
    dlqs: Mapping[str, str]
    rules: Mapping[str, str]
    processor_function_name: str
    processor_timeout_ms: int
    processor_reserved_concurrency: int | None
    dispatcher_state_machine_arn: str
    processor_metrics_dimensions: Mapping[str, str]
    notifier_function_name: str | None = None
    autoscaler_function_name: str | None = None
    """The autoscaler Lambda (``autoscaler.json``); None: no autoscaler alarms."""
    delivery_streams: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class ConcreteAlarm:
    """One CloudWatch alarm as it is deployed (``aws_cloudwatch_metric_alarm``) and evaluated locally."""

    name: str
    definition_id: str
    label: str | None
    namespace: str
    metric_name: str
    dimensions: Mapping[str, str]
    statistic: str
    period_s: int
    evaluation_periods: int
    datapoints_to_alarm: int
    comparison: str
    threshold: float
    treat_missing_data: str
    severity: str
    summary: str
    runbook: str
    extended_statistic: bool = False
    """``statistic`` is a percentile (Terraform's ``extended_statistic``)."""


# -- strict reading ----------------------------------------------------------------------------

_FIELDS = frozenset(
    {
        "id",
        "applies_to",
        "namespace",
        "metric_name",
        "statistic",
        "period_s",
        "evaluation_periods",
        "datapoints_to_alarm",
        "comparison",
        "threshold",
        "threshold_of",
        "treat_missing_data",
        "severity",
        "summary",
        "runbook",
        "stream",
    }
)
_OPTIONAL_FIELDS = frozenset({"threshold_of", "stream"})


def _fail(where: str, problem: str) -> AlarmDefinitionError:
    return AlarmDefinitionError(f"{ALARMS_FILE}: {where} {problem}")


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry[key]
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{where}.{key}", f"must be a non-empty string, got {value!r}")
    return value


def _integer(entry: Mapping[str, Any], key: str, where: str) -> int:
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(f"{where}.{key}", f"must be a positive integer, got {value!r}")
    return value


def _one_of(entry: Mapping[str, Any], key: str, where: str, allowed: frozenset[str] | tuple[str, ...]) -> str:
    value = _text(entry, key, where)
    if value not in allowed:
        raise _fail(f"{where}.{key}", f"must be one of {', '.join(sorted(allowed))}, got {value!r}")
    return value


def _parse_alarm(entry: object, where: str) -> AlarmDefinition:
    if not isinstance(entry, dict):
        raise _fail(where, f"must be a JSON object, got {type(entry).__name__}")
    unknown = sorted(set(entry) - _FIELDS - {"_comment"})
    if unknown:
        raise _fail(where, f"has unknown field(s) {', '.join(unknown)}")
    missing = sorted(_FIELDS - _OPTIONAL_FIELDS - set(entry))
    if missing:
        raise _fail(where, f"is missing field(s) {', '.join(missing)}")
    threshold = entry["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise _fail(f"{where}.threshold", f"must be a number, got {threshold!r}")
    threshold_of = entry.get("threshold_of")
    if threshold_of is not None:
        threshold_of = _one_of(entry, "threshold_of", where, THRESHOLD_BASES)
    stream = entry.get("stream")
    if stream is not None:
        stream = _one_of(entry, "stream", where, DELIVERY_STREAM_ROLES)
    return AlarmDefinition(
        id=_text(entry, "id", where),
        applies_to=_one_of(entry, "applies_to", where, frozenset(APPLIES_TO)),
        namespace=_text(entry, "namespace", where),
        metric_name=_text(entry, "metric_name", where),
        statistic=_text(entry, "statistic", where),
        period_s=_integer(entry, "period_s", where),
        evaluation_periods=_integer(entry, "evaluation_periods", where),
        datapoints_to_alarm=_integer(entry, "datapoints_to_alarm", where),
        comparison=_one_of(entry, "comparison", where, COMPARISONS),
        threshold=float(threshold),
        threshold_of=threshold_of,
        treat_missing_data=_one_of(entry, "treat_missing_data", where, MISSING_DATA),
        severity=_one_of(entry, "severity", where, SEVERITIES),
        summary=_text(entry, "summary", where),
        runbook=_text(entry, "runbook", where),
        stream=stream,
    )


def parse_alarm_definitions(data: object) -> AlarmDefinitions:
    """Read the parsed JSON of ``alarms.json`` strictly and :func:`validate` it."""
    if not isinstance(data, dict):
        raise _fail("the top level", f"must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - {"alarms", "_comment"})
    if unknown:
        raise _fail("the top level", f"has unknown field(s) {', '.join(unknown)}")
    entries = data.get("alarms")
    if not isinstance(entries, list) or not entries:
        raise _fail("alarms", f"must be a non-empty list of objects, got {entries!r}")
    alarms = AlarmDefinitions(
        tuple(_parse_alarm(entry, f"alarms[{index}]") for index, entry in enumerate(entries))
    )
    validate(alarms)
    return alarms


def load_alarm_definitions(path: Path | None = None) -> AlarmDefinitions:
    """``alarms.json`` shipped in this package, or the file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8") if path is not None else definitions.read_text(ALARMS_FILE)
        data = json.loads(text)
    except (OSError, json.JSONDecodeError) as error:
        raise AlarmDefinitionError(f"{path or ALARMS_FILE}: cannot be read as JSON: {error}") from error
    return parse_alarm_definitions(data)


# -- validation --------------------------------------------------------------------------------


def _validate_one(alarm: AlarmDefinition, where: str) -> None:
    if not ALARM_ID.match(alarm.id):
        raise _fail(f"{where}.id", f"must be lower-case words joined by hyphens, got {alarm.id!r}")
    expected_namespace = APPLIES_TO[alarm.applies_to]
    if expected_namespace and alarm.namespace != expected_namespace:
        raise _fail(
            f"{where}.namespace",
            f"must be {expected_namespace} for applies_to {alarm.applies_to}, got {alarm.namespace!r}",
        )
    if not expected_namespace and alarm.namespace.startswith("AWS/"):
        raise _fail(f"{where}.namespace", f"must be the processor's EMF namespace, not {alarm.namespace!r}")
    if alarm.statistic not in STATISTICS and not PERCENTILE.match(alarm.statistic):
        raise _fail(
            f"{where}.statistic",
            f"must be one of {', '.join(sorted(STATISTICS))} or a percentile (p99), got {alarm.statistic!r}",
        )
    _validate_evaluation(alarm, where)


def _validate_evaluation(alarm: AlarmDefinition, where: str) -> None:
    if alarm.period_s not in HIGH_RESOLUTION_PERIODS and alarm.period_s % 60:
        raise _fail(f"{where}.period_s", f"must be 10, 20, 30 or a multiple of 60, got {alarm.period_s}")
    if alarm.datapoints_to_alarm > alarm.evaluation_periods:
        raise _fail(
            f"{where}.datapoints_to_alarm",
            f"({alarm.datapoints_to_alarm}) must not exceed evaluation_periods ({alarm.evaluation_periods})",
        )
    if alarm.evaluation_periods * alarm.period_s > MAX_EVALUATION_SECONDS:
        raise _fail(where, "evaluation_periods x period_s must not exceed 86400 s (one day)")
    if alarm.threshold_of is not None:
        if alarm.applies_to != "processor":
            raise _fail(f"{where}.threshold_of", f"is for processor alarms only, not {alarm.applies_to}")
        if not 0 < alarm.threshold <= 1:
            raise _fail(f"{where}.threshold", f"is a fraction of {alarm.threshold_of}: must be in (0, 1]")
    if alarm.stream is not None and alarm.applies_to != "delivery_streams":
        raise _fail(f"{where}.stream", f"is for delivery_streams alarms only, not {alarm.applies_to}")
    if not RUNBOOK.match(alarm.runbook):
        raise _fail(f"{where}.runbook", f"must be docs/runbooks/<name>.md, got {alarm.runbook!r}")


def validate(alarms: AlarmDefinitions, runbooks_root: Path | None = None) -> None:
    """Refuse definitions CloudWatch would refuse or that contradict themselves.

    ``runbooks_root``: also check that every runbook exists under it (the repository root; the
    Lambda package carries no docs).
    """
    seen: set[str] = set()
    for index, alarm in enumerate(alarms.alarms):
        where = f"alarms[{index}] ({alarm.id})"
        _validate_one(alarm, where)
        if alarm.id in seen:
            raise _fail(f"{where}.id", "is used twice")
        seen.add(alarm.id)
        if runbooks_root is not None and not (runbooks_root / alarm.runbook).is_file():
            raise _fail(f"{where}.runbook", f"names {alarm.runbook}, which does not exist")


# -- expansion ---------------------------------------------------------------------------------


def _subjects(alarm: AlarmDefinition, resources: AlarmResources) -> list[tuple[str | None, dict[str, str]]]:
    """``(label, dimensions)`` of every resource ``alarm`` is made for."""
    kind = alarm.applies_to
    if kind == "processor_metrics":
        return [(None, dict(resources.processor_metrics_dimensions))]
    dimension = RESOURCE_DIMENSION[kind]
    if kind in PER_RESOURCE_KINDS:
        named = {
            "queues": resources.queues,
            "dlqs": resources.dlqs,
            "rules": resources.rules,
            "delivery_streams": resources.delivery_streams,
        }[kind]
        return [
            (label, {dimension: name})
            for label, name in named.items()
            if alarm.stream is None or alarm.stream == label
        ]
    single = {
        "processor": resources.processor_function_name,
        "notifier": resources.notifier_function_name,
        "autoscaler": resources.autoscaler_function_name,
        "dispatcher": resources.dispatcher_state_machine_arn,
    }[kind]
    return [] if single is None else [(None, {dimension: single})]


def _threshold(alarm: AlarmDefinition, resources: AlarmResources) -> float | None:
    if alarm.threshold_of is None:
        return alarm.threshold
    base = {
        "processor_timeout_ms": resources.processor_timeout_ms,
        "processor_reserved_concurrency": resources.processor_reserved_concurrency,
    }[alarm.threshold_of]
    return None if base is None else alarm.threshold * base


def alarm_name(name_prefix: str, alarm_id: str, label: str | None) -> str:
    """``<name_prefix>-<id>``, plus ``-<label>`` for a per-resource alarm."""
    return f"{name_prefix}-{alarm_id}" if label is None else f"{name_prefix}-{alarm_id}-{label}"


def expand(alarms: AlarmDefinitions, resources: AlarmResources) -> tuple[ConcreteAlarm, ...]:
    """Every concrete alarm, in definition order, then resource order."""
    concrete: list[ConcreteAlarm] = []
    for alarm in alarms.alarms:
        threshold = _threshold(alarm, resources)
        if threshold is None:
            continue
        for label, dimensions in _subjects(alarm, resources):
            concrete.append(
                ConcreteAlarm(
                    name=alarm_name(resources.name_prefix, alarm.id, label),
                    definition_id=alarm.id,
                    label=label,
                    namespace=alarm.namespace,
                    metric_name=alarm.metric_name,
                    dimensions=MappingProxyType(dimensions),
                    statistic=alarm.statistic,
                    period_s=alarm.period_s,
                    evaluation_periods=alarm.evaluation_periods,
                    datapoints_to_alarm=alarm.datapoints_to_alarm,
                    comparison=alarm.comparison,
                    threshold=threshold,
                    treat_missing_data=alarm.treat_missing_data,
                    severity=alarm.severity,
                    summary=alarm.summary,
                    runbook=alarm.runbook,
                    extended_statistic=alarm.statistic not in STATISTICS,
                )
            )
    names = [alarm.name for alarm in concrete]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise AlarmDefinitionError(f"two resources give the same alarm name: {', '.join(duplicates)}")
    return tuple(concrete)


def pipeline_alarm_resources(
    name_prefix: str,
    dispatcher_state_machine_arn: str,
    *,
    alert_dlq_name: str | None = None,
    notifier_function_name: str | None = None,
    alert_rule_names: tuple[str, ...] = (),
) -> AlarmResources:
    """The resources of a deployment made from the shipped definitions, named as both runtimes name them.

    ``queues.json`` (queues and DLQs), ``event_rules.json`` (one rule per route and the unrouted
    rule), ``processor.json`` (function, timeout, reserved concurrency, Powertools service) and
    ``autoscaler.json`` (the autoscaler function, which the dispatcher module always deploys);
    the alerting parts (``alert_*``, ``notifier_function_name``) come from the caller.
    """
    queues = definitions.read_json("queues.json")
    processor = definitions.read_json("processor.json")
    autoscaler = definitions.read_json("autoscaler.json")
    routes = definitions.read_json("event_rules.json")["routes"]
    priorities: list[str] = list(queues["priorities"])
    dlqs = {priority: f"{name_prefix}-{priority}-dlq" for priority in priorities}
    dlqs["ingest-dlq"] = f"{name_prefix}-{queues['ingest_dlq']['name_suffix']}"
    if alert_dlq_name is not None:
        dlqs["alert-dlq"] = alert_dlq_name
    rule_names = [f"{name_prefix}-object-created-{route['priority']}" for route in routes]
    rule_names += [f"{name_prefix}-object-unrouted", *alert_rule_names]
    return AlarmResources(
        name_prefix=name_prefix,
        queues={priority: f"{name_prefix}-{priority}" for priority in priorities},
        dlqs=dlqs,
        rules={name.removeprefix(f"{name_prefix}-"): name for name in rule_names},
        processor_function_name=f"{name_prefix}-{processor['function_name_suffix']}",
        processor_timeout_ms=int(processor["timeout_s"]) * 1000,
        processor_reserved_concurrency=processor["reserved_concurrency"],
        dispatcher_state_machine_arn=dispatcher_state_machine_arn,
        processor_metrics_dimensions={"service": processor["environment"]["POWERTOOLS_SERVICE_NAME"]},
        notifier_function_name=notifier_function_name,
        autoscaler_function_name=f"{name_prefix}-{autoscaler['function_name_suffix']}",
    )
