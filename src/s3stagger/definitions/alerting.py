"""``alerting.json``, typed: the alert queue and DLQ, the notifier, the alert rules, digest and SMTP.

Terraform (``terraform/modules/alerting``) reads the JSON file; local mode
(:mod:`s3stagger.local.alerting`) and the notifier read it through :func:`load_alerting_definition`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from s3stagger import definitions
from s3stagger.errors import S3StaggerError

ALERTING_FILE = "alerting.json"
MAX_DIGEST_INTERVAL_S = 900
"""The digest timer is an SQS message delayed by the interval; SQS delays at most 15 minutes."""


class AlertingDefinitionError(S3StaggerError, ValueError):
    """``alerting.json`` is malformed or contradicts itself."""


@dataclass(frozen=True)
class AlertRule:
    name_suffix: str
    kind: str
    description: str
    event_pattern_template: str
    placeholders: tuple[str, ...]
    runbook: str | None
    standard_only: bool = False


@dataclass(frozen=True)
class AlertingDefinition:
    alert_queue: Mapping[str, Any]
    alert_dlq: Mapping[str, Any]
    notifier: Mapping[str, Any]
    rules: tuple[AlertRule, ...]
    digest_interval_s: int
    alarm_description_format: str
    state_parameter_path_suffix: str
    state_max_value_chars: int
    smtp: Mapping[str, Any]

    def alert_queue_name(self, name_prefix: str) -> str:
        return f"{name_prefix}-{self.alert_queue['name_suffix']}"

    def alert_dlq_name(self, name_prefix: str) -> str:
        return f"{name_prefix}-{self.alert_dlq['name_suffix']}"

    def notifier_function_name(self, name_prefix: str) -> str:
        return f"{name_prefix}-{self.notifier['function_name_suffix']}"

    def rule_names(self, name_prefix: str, *, standard_dispatcher: bool = True) -> tuple[str, ...]:
        return tuple(
            f"{name_prefix}-{rule.name_suffix}"
            for rule in self.rules
            if standard_dispatcher or not rule.standard_only
        )

    def smtp_secret_name(self, name_prefix: str) -> str:
        return f"{name_prefix}/{self.smtp['secret_name_suffix']}"

    def state_path(self, name_prefix: str) -> str:
        return f"/{name_prefix}/{self.state_parameter_path_suffix}"

    def alarm_description(self, summary: str, runbook: str) -> str:
        return self.alarm_description_format.format(summary=summary, runbook=runbook)

    def runbook_of(self, kind: str) -> str | None:
        return next((rule.runbook for rule in self.rules if rule.kind == kind), None)


def load_alerting_definition(data: Mapping[str, Any] | None = None) -> AlertingDefinition:
    """Parse and check ``alerting.json`` (or ``data`` in its shape)."""
    raw = definitions.read_json(ALERTING_FILE) if data is None else data
    try:
        rules = tuple(
            AlertRule(
                name_suffix=str(rule["name_suffix"]),
                kind=str(rule["kind"]),
                description=str(rule["description"]),
                event_pattern_template=str(rule["event_pattern_template"]),
                placeholders=tuple(str(p) for p in rule["placeholders"]),
                runbook=rule.get("runbook"),
                standard_only=bool(rule.get("standard_only", False)),
            )
            for rule in raw["rules"]
        )
        loaded = AlertingDefinition(
            alert_queue=raw["alert_queue"],
            alert_dlq=raw["alert_dlq"],
            notifier=raw["notifier"],
            rules=rules,
            digest_interval_s=int(raw["digest_interval_s"]),
            alarm_description_format=str(raw["alarm_description_format"]),
            state_parameter_path_suffix=str(raw["state"]["parameter_path_suffix"]),
            state_max_value_chars=int(raw["state"]["max_value_chars"]),
            smtp=raw["smtp"],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise AlertingDefinitionError(f"{ALERTING_FILE}: missing or malformed field {error}") from error
    _check(loaded)
    return loaded


def _check(d: AlertingDefinition) -> None:
    problems: list[str] = []
    timeout = int(d.notifier["timeout_s"])
    if int(d.alert_queue["visibility_timeout_s"]) < 6 * timeout:
        problems.append(
            f"alert_queue.visibility_timeout_s={d.alert_queue['visibility_timeout_s']} must be at least "
            f"6 x notifier.timeout_s ({6 * timeout}), as AWS advises for an SQS-triggered function"
        )
    if int(d.alert_dlq["message_retention_s"]) <= int(d.alert_queue["message_retention_s"]):
        problems.append("alert_dlq must retain messages longer than alert_queue")
    if not 0 < d.digest_interval_s <= MAX_DIGEST_INTERVAL_S:
        problems.append(f"digest_interval_s must be in (0, {MAX_DIGEST_INTERVAL_S}]")
    if d.smtp.get("security") not in {"starttls", "tls"}:
        problems.append("smtp.security must be starttls or tls")
    if "{summary}" not in d.alarm_description_format or "{runbook}" not in d.alarm_description_format:
        problems.append("alarm_description_format needs {summary} and {runbook}")
    kinds = {rule.kind for rule in d.rules}
    if kinds != {"alarm", "execution_failed", "object_failed", "unrouted"}:
        problems.append(f"rules must have one of each kind, not {sorted(kinds)}")
    if problems:
        raise AlertingDefinitionError(f"{ALERTING_FILE}: " + "; ".join(problems))
