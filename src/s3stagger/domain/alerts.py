"""Alerts: from an EventBridge event to an email, without I/O.

The alert queue carries four kinds of event (``definitions/alerting.json`` rules):

- "CloudWatch Alarm State Change" (``aws.cloudwatch``): ALARM, and OK after ALARM (resolved);
- "Step Functions Execution Status Change" (``aws.states``): a dispatcher execution FAILED,
  TIMED_OUT or ABORTED;
- the dispatcher's "Object processing failed";
- S3 "Object Created" for a key no route matches (unrouted).

:func:`alert_from_event` turns one into an :class:`Alert` (or ``None`` for a state change not worth
a message). :class:`AlertGroupState` is the per-group memory that makes the notifier deduplicate
by event id and group a burst: the first alert of a group goes out at once and opens a window of
``digest_interval_s``; alerts of the same group inside the window are held and go out together as
one digest when the window's timer fires. :func:`render_email` writes the message.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from enum import StrEnum
from typing import Any

from s3stagger.errors import S3StaggerError

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
OBJECT_PROCESSING_FAILED = "Object processing failed"
OBJECT_CREATED = "Object Created"
RUNBOOK_MARKER = "Runbook: "
MAX_FIELD_CHARS = 300
SEEN_IDS_KEPT = 60
HELD_SAMPLES_KEPT = 5


class AlertEventError(S3StaggerError):
    """An event on the alert queue that is not one of the four kinds the notifier knows."""


class AlertKind(StrEnum):
    ALARM = "alarm"
    RESOLVED = "resolved"
    EXECUTION_FAILED = "execution_failed"
    OBJECT_FAILED = "object_failed"
    UNROUTED = "unrouted"


@dataclass(frozen=True)
class Alert:
    """One thing an operator must hear about."""

    event_id: str
    kind: AlertKind
    group: str
    """Alerts of one group share a digest: one alarm, one queue's failures, one bucket's strays."""
    title: str
    what: str
    where: str
    time: str
    count: float | None = None
    count_unit: str = ""
    first_error: str | None = None
    runbook: str | None = None
    region: str = ""
    account: str = ""
    dedupe_key: str = ""
    """What makes a delivery the same event again: its id and its detail (see :func:`dedupe_key`)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        return cls(**{**data, "kind": AlertKind(data["kind"])})


@dataclass(frozen=True)
class RunbookLinks:
    """Where the runbooks are: links per alert kind, and a base URL for relative ones."""

    by_kind: Mapping[str, str] = field(default_factory=dict)
    base_url: str = ""

    def link(self, runbook: str | None) -> str | None:
        if not runbook:
            return None
        if "://" in runbook or not self.base_url:
            return runbook
        return self.base_url.rstrip("/") + "/" + runbook.lstrip("/")


def alert_from_event(event: Mapping[str, Any], runbooks: RunbookLinks | None = None) -> Alert | None:
    """The alert an EventBridge event stands for; ``None`` when it needs no message."""
    runbooks = runbooks or RunbookLinks()
    if not isinstance(event, Mapping):
        raise AlertEventError(f"not an EventBridge event: {_clip(json.dumps(event))}")
    detail_type = event.get("detail-type")
    detail = event.get("detail")
    if not isinstance(detail, Mapping) or not isinstance(event.get("id"), str):
        raise AlertEventError(f"not an EventBridge event (no id/detail): {_clip(json.dumps(event))}")
    common = {
        "event_id": str(event["id"]),
        "dedupe_key": dedupe_key(str(event["id"]), detail),
        "time": str(event.get("time", "")),
        "region": str(event.get("region", "")),
        "account": str(event.get("account", "")),
    }
    if detail_type == ALARM_STATE_CHANGE:
        return _alarm_alert(detail, common, runbooks)
    if detail_type == EXECUTION_STATUS_CHANGE:
        return _execution_alert(detail, common, runbooks)
    if detail_type == OBJECT_PROCESSING_FAILED:
        return _object_failed_alert(detail, common, runbooks)
    if detail_type == OBJECT_CREATED:
        return _unrouted_alert(detail, common, runbooks)
    raise AlertEventError(f"unknown alert event detail-type {detail_type!r} (source {event.get('source')!r})")


def dedupe_key(event_id: str, detail: Mapping[str, Any]) -> str:
    """The event id plus a digest of its detail.

    A redelivered event (EventBridge retry, SQS at-least-once) repeats both. Keying on the id alone
    would merge distinct events that share an id — which a custom producer may do, and which moto
    does for every S3 event it emits (one fixed id).
    """
    canonical = json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)
    return f"{event_id}:{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def _alarm_alert(detail: Mapping[str, Any], common: dict[str, str], runbooks: RunbookLinks) -> Alert | None:
    name = str(detail.get("alarmName", "?"))
    state = detail.get("state") or {}
    previous = (detail.get("previousState") or {}).get("value")
    value = state.get("value")
    if value == "OK" and previous != "ALARM":
        return None
    if value not in {"ALARM", "OK"}:
        return None
    configuration = detail.get("configuration") or {}
    description = str(configuration.get("description") or "")
    summary, _, runbook = description.partition(RUNBOOK_MARKER)
    metric = _alarm_metric(configuration)
    latest = _latest_datapoint(state.get("reasonData"))
    resolved = value == "OK"
    return Alert(
        kind=AlertKind.RESOLVED if resolved else AlertKind.ALARM,
        group=f"alarm:{name}",
        title=f"{'OK' if resolved else 'ALARM'}: {name}",
        what=(summary.strip() or name) + (" - back to OK" if resolved else ""),
        where=metric,
        count=latest,
        count_unit=_metric_unit(configuration),
        first_error=_clip(str(state.get("reason") or "")) or None,
        runbook=runbooks.link(runbook.strip() or None),
        **common,
    )


def _alarm_metric(configuration: Mapping[str, Any]) -> str:
    for query in configuration.get("metrics") or []:
        stat = (query or {}).get("metricStat") or {}
        metric = stat.get("metric") or {}
        if metric:
            dimensions = ", ".join(f"{k}={v}" for k, v in sorted((metric.get("dimensions") or {}).items()))
            return f"{metric.get('namespace', '?')} {metric.get('name', '?')} ({dimensions})"
    return "?"


METRIC_UNITS = {
    "ApproximateNumberOfMessagesVisible": "messages visible",
    "ApproximateAgeOfOldestMessage": "s, age of the oldest message",
    "Errors": "errors",
    "Throttles": "throttled invocations",
    "Duration": "ms",
    "ConcurrentExecutions": "concurrent executions",
    "ExecutionsFailed": "executions failed",
    "ExecutionsTimedOut": "executions timed out",
    "ExecutionThrottled": "executions throttled",
    "FailedInvocations": "failed rule invocations",
    "InvocationsSentToDlq": "events sent to the rule's DLQ",
    "RowsFailed": "rows failed",
    "Throttled429": "429 answers",
}
"""How an email words the latest datapoint of an alarm's metric (else the metric's name)."""


def _metric_unit(configuration: Mapping[str, Any]) -> str:
    for query in configuration.get("metrics") or []:
        name = (((query or {}).get("metricStat") or {}).get("metric") or {}).get("name")
        if name:
            return METRIC_UNITS.get(str(name), str(name))
    return ""


def _latest_datapoint(reason_data: Any) -> float | None:
    try:
        data = json.loads(reason_data) if isinstance(reason_data, str) else reason_data
        points = data.get("recentDatapoints") or []
        return float(points[0]) if points else None
    except (ValueError, TypeError, AttributeError):
        return None


def _execution_alert(detail: Mapping[str, Any], common: dict[str, str], runbooks: RunbookLinks) -> Alert:
    machine = str(detail.get("stateMachineArn", "?"))
    status = str(detail.get("status", "?"))
    error = " — ".join(str(detail[k]) for k in ("error", "cause") if detail.get(k))
    return Alert(
        kind=AlertKind.EXECUTION_FAILED,
        group=f"execution:{machine}",
        title=f"Dispatcher execution {status}: {detail.get('name', '?')}",
        what=f"a dispatcher execution ended {status}",
        where=f"{machine.rsplit(':', 1)[-1]} execution {detail.get('executionArn', '?')}",
        count=1,
        count_unit="executions",
        first_error=_clip(error) or None,
        runbook=runbooks.link(runbooks.by_kind.get(AlertKind.EXECUTION_FAILED)),
        **common,
    )


def _object_failed_alert(detail: Mapping[str, Any], common: dict[str, str], runbooks: RunbookLinks) -> Alert:
    queue = str(detail.get("queueUrl", "?")).rsplit("/", 1)[-1]
    return Alert(
        kind=AlertKind.OBJECT_FAILED,
        group=f"object-failed:{queue}",
        title=f"Object processing failed: {queue}",
        what="the dispatcher could not process an object; its message will be retried and, after "
        "max_receive_count receives, moved to the queue's DLQ",
        where=f"queue {queue}, message {detail.get('messageId', '?')}, "
        f"execution {detail.get('execution', '?')}",
        count=1,
        count_unit="objects",
        first_error=_clip(_error_text(detail.get("error"))) or None,
        runbook=runbooks.link(runbooks.by_kind.get(AlertKind.OBJECT_FAILED)),
        **common,
    )


def _error_text(error: Any) -> str:
    """``{"Error", "Cause"}`` of a Step Functions catch, with a Lambda error payload unwrapped."""
    if not isinstance(error, Mapping):
        return "" if error is None else str(error)
    name = str(error.get("Error", ""))
    cause = error.get("Cause", "")
    try:
        payload = json.loads(cause) if isinstance(cause, str) else cause
        if isinstance(payload, Mapping) and "errorMessage" in payload:
            kind = str(payload.get("errorType") or "")
            message = str(payload["errorMessage"])
            cause = message if kind in {"", name} else f"{kind}: {message}"
    except ValueError:
        pass
    return f"{name}: {cause}" if cause else name


def _unrouted_alert(detail: Mapping[str, Any], common: dict[str, str], runbooks: RunbookLinks) -> Alert:
    bucket = str((detail.get("bucket") or {}).get("name", "?"))
    key = str((detail.get("object") or {}).get("key", "?"))
    return Alert(
        kind=AlertKind.UNROUTED,
        group=f"unrouted:{bucket}",
        title=f"Object under no route: s3://{bucket}/{key}",
        what="an uploaded object matches no route (key prefix); it was not processed and its event "
        "waits in the ingest DLQ",
        where=f"s3://{bucket}/{key}",
        count=1,
        count_unit="objects",
        runbook=runbooks.link(runbooks.by_kind.get(AlertKind.UNROUTED)),
        **common,
    )


def _clip(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- dedupe and digest ----------------------------------------------------------------------------
class Decision(StrEnum):
    DUPLICATE = "duplicate"
    """Seen before (the same event delivered again): nothing to send."""
    SEND_NOW = "send_now"
    """The first of its group in a while: mail it now; the window is open from now on."""
    HOLD = "hold"
    """Inside the group's window: held for the digest."""
    HOLD_AND_SCHEDULE = "hold_and_schedule"
    """Held, and no digest timer runs yet: start one (due at ``window_ends``)."""


@dataclass(frozen=True)
class AlertGroupState:
    """What the notifier remembers of one alert group between invocations (small: an SSM value)."""

    window_ends: float | None = None
    flush_scheduled: bool = False
    held: tuple[Alert, ...] = ()
    """The first few held alerts, in full (the digest shows them)."""
    held_total: int = 0
    held_count_sum: float = 0.0
    seen: tuple[str, ...] = ()
    """Short digests of the event ids handled lately, newest last."""

    def to_json(self, max_chars: int) -> str:
        """JSON of at most ``max_chars`` characters (held samples, then old ids, dropped to fit)."""
        state = self
        while True:
            text = json.dumps(
                {
                    "window_ends": state.window_ends,
                    "flush_scheduled": state.flush_scheduled,
                    "held": [alert.as_dict() for alert in state.held],
                    "held_total": state.held_total,
                    "held_count_sum": state.held_count_sum,
                    "seen": list(state.seen),
                },
                separators=(",", ":"),
                ensure_ascii=False,
            )
            if len(text) <= max_chars:
                return text
            if len(state.held) > 1:
                state = replace(state, held=state.held[:-1])
            elif state.seen:
                state = replace(state, seen=state.seen[len(state.seen) // 2 :] if len(state.seen) > 1 else ())
            elif state.held:
                state = replace(state, held=())
            else:
                raise ValueError(f"alert group state cannot fit in {max_chars} characters")

    @classmethod
    def from_json(cls, text: str | None) -> AlertGroupState:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            window_ends=data.get("window_ends"),
            flush_scheduled=bool(data.get("flush_scheduled")),
            held=tuple(Alert.from_dict(item) for item in data.get("held", [])),
            held_total=int(data.get("held_total", 0)),
            held_count_sum=float(data.get("held_count_sum", 0.0)),
            seen=tuple(data.get("seen", [])),
        )

    def has_seen(self, key: str) -> bool:
        return event_id_digest(key) in self.seen


def event_id_digest(event_id: str) -> str:
    """A short, stable stand-in for an event id (keeps the state small)."""
    return hashlib.sha256(event_id.encode("utf-8")).hexdigest()[:16]


def _remember(seen: Sequence[str], event_id: str) -> tuple[str, ...]:
    return (*seen, event_id_digest(event_id))[-SEEN_IDS_KEPT:]


def decide(
    state: AlertGroupState, alert: Alert, now: float, interval_s: float
) -> tuple[Decision, AlertGroupState]:
    """What to do with ``alert`` given its group's state; the state to keep once it is done."""
    key = alert.dedupe_key or alert.event_id
    if state.has_seen(key):
        return Decision.DUPLICATE, state
    seen = _remember(state.seen, key)
    window_open = state.window_ends is not None and now < state.window_ends
    if not window_open and not state.held:
        return Decision.SEND_NOW, AlertGroupState(window_ends=now + interval_s, seen=seen)
    held = state.held if len(state.held) >= HELD_SAMPLES_KEPT else (*state.held, alert)
    after = replace(
        state,
        held=held,
        held_total=state.held_total + 1,
        held_count_sum=state.held_count_sum + (alert.count or 0),
        seen=seen,
        window_ends=state.window_ends if window_open else now,
        flush_scheduled=True,
    )
    return (Decision.HOLD if state.flush_scheduled else Decision.HOLD_AND_SCHEDULE), after


@dataclass(frozen=True)
class Digest:
    """The alerts of one group held during a window, mailed as one message."""

    group: str
    alerts: tuple[Alert, ...]
    total: int
    count_sum: float


def flush(
    state: AlertGroupState, group: str, now: float, interval_s: float
) -> tuple[Digest | None, AlertGroupState]:
    """The digest timer fired: the digest to send (if anything was held) and the state after it.

    After a digest the window stays open for another interval, so a steady trickle is mailed once
    per interval; a window that held nothing closes, and the group's next alert goes out at once.
    """
    if not state.held_total:
        return None, AlertGroupState(seen=state.seen)
    digest = Digest(group, state.held, state.held_total, state.held_count_sum)
    return digest, AlertGroupState(window_ends=now + interval_s, seen=state.seen)


# -- email ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmailSettings:
    sender: str
    recipients: tuple[str, ...]
    subject_prefix: str = "[s3stagger]"


def render_email(alert: Alert, settings: EmailSettings, now: float) -> EmailMessage:
    """The message for one alert sent at once."""
    lines = [
        alert.title,
        "",
        *_alert_lines(alert),
        "",
        "Later alerts of the same kind are gathered into one digest per interval.",
    ]
    return _message(f"{settings.subject_prefix} {alert.title}", "\n".join(lines), settings, now, alert.group)


def render_digest(digest: Digest, settings: EmailSettings, now: float) -> EmailMessage:
    """The message for a digest: how many alerts, the sum of their counts, the first few in full."""
    first = digest.alerts[0] if digest.alerts else None
    label = first.title if first else digest.group
    plural = "s" if digest.total != 1 else ""
    subject = f"{settings.subject_prefix} Digest: {digest.total} more alert{plural} - {label}"
    lines = [
        f"{digest.total} further alert{plural} of the same kind ({digest.group}) "
        "arrived since the last message.",
    ]
    if first is not None and first.count_unit:
        lines.append(f"Total: {digest.count_sum:g} {first.count_unit}.")
    for index, alert in enumerate(digest.alerts, start=1):
        lines += ["", f"--- {index}. {alert.title}", *_alert_lines(alert)]
    if digest.total > len(digest.alerts):
        lines += ["", f"... and {digest.total - len(digest.alerts)} more (see the logs and the queue)."]
    return _message(subject, "\n".join(lines), settings, now, digest.group)


def _alert_lines(alert: Alert) -> list[str]:
    lines = [f"What failed:  {alert.what}", f"Where:        {alert.where}"]
    if alert.count is not None:
        lines.append(f"How many:     {alert.count:g} {alert.count_unit}".rstrip())
    lines.append(f"First error:  {alert.first_error or '-'}")
    lines.append(f"When:         {alert.time or '-'}")
    if alert.account or alert.region:
        lines.append(f"Account:      {alert.account or '-'} {alert.region}".rstrip())
    lines.append(f"Runbook:      {alert.runbook or '-'}")
    lines.append(f"Event id:     {alert.event_id}")
    return lines


_HEADER_SAFE = re.compile(r"[^A-Za-z0-9._:-]+")


def _message(subject: str, body: str, settings: EmailSettings, now: float, group: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = _clip(subject, 200)
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message["Date"] = formatdate(now, usegmt=True)
    message["Message-ID"] = make_msgid(domain="s3stagger.alerts")
    message["X-S3stagger-Alert-Group"] = _HEADER_SAFE.sub("-", group)[:200]
    text = body + "\n"
    message.set_content(text, cte="7bit" if text.isascii() else "8bit")
    return message
