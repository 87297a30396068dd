"""The notifier service behind ``handlers/notify.py``: one alert-queue message → at most one email.

A message is either an EventBridge event (the four kinds of ``domain/alerts.py``) or a digest timer
``{"s3stagger_digest_due": {"group": ...}}`` the notifier sent itself, delayed by the rest of the
group's window. Per alert: look up the group's state (dedupe by event id, window open?), then

- first of its group: send the email, then record the event id and open the window;
- inside the window: start the digest timer if none runs (send it first, then record it), hold;
- seen before: nothing.

State is written only after what it records has happened, so a crash in between repeats an email
or a timer (at least once) but never loses an alert. Any failure raises: the SQS message is
retried and, after ``max_receive_count`` receives, lands in the alert DLQ (which is alarmed).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from s3stagger.adapters.smtp_secret import SmtpSecret
from s3stagger.adapters.smtp_sender import SmtpAuthenticationError, SmtpSender, SmtpServer
from s3stagger.definitions.alerting import load_alerting_definition
from s3stagger.domain.alerts import (
    AlertGroupState,
    Decision,
    EmailSettings,
    RunbookLinks,
    alert_from_event,
    decide,
    flush,
    render_digest,
    render_email,
)
from s3stagger.errors import S3StaggerError

DIGEST_DUE_KEY = "s3stagger_digest_due"
MAX_SQS_DELAY_S = 900


class NotifierConfigError(S3StaggerError):
    """A notifier setting is missing or malformed."""


class Outcome(StrEnum):
    SENT = "sent"
    HELD = "held"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    DIGEST_SENT = "digest_sent"
    DIGEST_EMPTY = "digest_empty"
    DIGEST_RESCHEDULED = "digest_rescheduled"


@dataclass(frozen=True)
class NotifierSettings:
    smtp: SmtpServer
    email: EmailSettings
    secret_id: str
    digest_interval_s: float
    state_path: str
    alert_queue_url: str
    runbook_base_url: str = ""
    max_state_chars: int = 4096

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> NotifierSettings:
        env = os.environ if environ is None else environ

        def need(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise NotifierConfigError(f"notifier setting {name} is not set")
            return value

        try:
            port = int(need("S3STAGGER_SMTP_PORT"))
            interval = float(need("S3STAGGER_ALERT_DIGEST_INTERVAL_S"))
            timeout = float(env.get("S3STAGGER_SMTP_TIMEOUT_S") or 10)
        except ValueError as error:
            raise NotifierConfigError(f"notifier setting is not a number: {error}") from error
        security = need("S3STAGGER_SMTP_SECURITY")
        if security not in {"starttls", "tls"}:
            raise NotifierConfigError(f"S3STAGGER_SMTP_SECURITY={security!r} must be starttls or tls")
        if not 0 < interval <= MAX_SQS_DELAY_S:
            raise NotifierConfigError(
                f"S3STAGGER_ALERT_DIGEST_INTERVAL_S={interval:g} must be in (0, {MAX_SQS_DELAY_S}] "
                "(the digest timer is a delayed SQS message)"
            )
        recipients = tuple(r.strip() for r in need("S3STAGGER_SMTP_TO").split(",") if r.strip())
        return cls(
            smtp=SmtpServer(
                host=need("S3STAGGER_SMTP_HOST"),
                port=port,
                security=security,  # type: ignore[arg-type]
                timeout_s=timeout,
                ca_file=env.get("S3STAGGER_SMTP_CA_FILE") or None,
            ),
            email=EmailSettings(sender=need("S3STAGGER_SMTP_FROM"), recipients=recipients),
            secret_id=need("S3STAGGER_SMTP_SECRET_ID"),
            digest_interval_s=interval,
            state_path=need("S3STAGGER_ALERT_STATE_PATH"),
            alert_queue_url=need("S3STAGGER_ALERT_QUEUE_URL"),
            runbook_base_url=env.get("S3STAGGER_RUNBOOK_BASE_URL", ""),
        )


class AlertStateStore(Protocol):
    def get(self, group: str) -> AlertGroupState: ...
    def put(self, group: str, state: AlertGroupState) -> None: ...


class DigestTimer(Protocol):
    def schedule(self, group: str, delay_s: float) -> None: ...


class SqsDigestTimer:
    """The digest timer: a message to the alert queue itself, delayed (at most 15 minutes)."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def schedule(self, group: str, delay_s: float) -> None:
        self._client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps({DIGEST_DUE_KEY: {"group": group}}),
            DelaySeconds=min(MAX_SQS_DELAY_S, max(0, math.ceil(delay_s))),
        )


def runbooks_from_definitions(base_url: str) -> RunbookLinks:
    """The runbook of each non-alarm alert kind, from ``alerting.json`` (alarms carry their own)."""
    rules = load_alerting_definition().rules
    return RunbookLinks(
        by_kind={rule.kind: rule.runbook for rule in rules if rule.runbook}, base_url=base_url
    )


class Notifier:
    def __init__(
        self,
        settings: NotifierSettings,
        sender: SmtpSender,
        secret: SmtpSecret,
        store: AlertStateStore,
        timer: DigestTimer,
        *,
        runbooks: RunbookLinks | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sender = sender
        self.secret = secret
        self.store = store
        self.timer = timer
        self.runbooks = runbooks or RunbookLinks(base_url=settings.runbook_base_url)
        self.clock = clock

    def handle(self, body: str) -> Outcome:
        message = json.loads(body)
        if isinstance(message, dict) and DIGEST_DUE_KEY in message:
            return self._digest_due(str(message[DIGEST_DUE_KEY]["group"]))
        alert = alert_from_event(message, self.runbooks)
        if alert is None:
            return Outcome.IGNORED
        now = self.clock()
        state = self.store.get(alert.group)
        decision, after = decide(state, alert, now, self.settings.digest_interval_s)
        if decision is Decision.DUPLICATE:
            return Outcome.DUPLICATE
        if decision is Decision.SEND_NOW:
            self._send(render_email(alert, self.settings.email, now))
            self.store.put(alert.group, after)
            return Outcome.SENT
        if decision is Decision.HOLD_AND_SCHEDULE:
            self.timer.schedule(alert.group, (after.window_ends or now) - now)
        self.store.put(alert.group, after)
        return Outcome.HELD

    def _digest_due(self, group: str) -> Outcome:
        now = self.clock()
        state = self.store.get(group)
        if state.window_ends is not None and now < state.window_ends - 0.5 and state.held_total:
            self.timer.schedule(group, state.window_ends - now)  # a delay capped below the window
            return Outcome.DIGEST_RESCHEDULED
        digest, after = flush(state, group, now, self.settings.digest_interval_s)
        if digest is not None:
            self._send(render_digest(digest, self.settings.email, now))
        self.store.put(group, after)
        return Outcome.DIGEST_SENT if digest is not None else Outcome.DIGEST_EMPTY

    def _send(self, message: Any) -> None:
        try:
            self.sender.send(message, self.secret.credentials())
        except SmtpAuthenticationError:
            self.secret.forget()  # a corrected secret is read on the retry
            raise
