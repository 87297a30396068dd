"""Lambda handler ``notify``: alert-queue messages → email through the central SMTP server.

Thin: build the :class:`~s3stagger.notifier.Notifier` once per execution environment (settings
from ``S3STAGGER_*``, see ``definitions/alerting.json``), hand it each SQS record, and answer with
``batchItemFailures`` (the event source mapping has ``ReportBatchItemFailures``) so only the
records that failed are retried — and, after ``max_receive_count`` receives, land in the alert DLQ.
Every failure is one log line that says what to fix (wrong SMTP credentials included).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from s3stagger.adapters.alert_state_store import SsmAlertStateStore
from s3stagger.adapters.smtp_secret import SmtpSecret
from s3stagger.adapters.smtp_sender import SmtpSender
from s3stagger.errors import S3StaggerError
from s3stagger.notifier import Notifier, NotifierSettings, Outcome, SqsDigestTimer, runbooks_from_definitions

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "s3stagger-notifier"))

RECORD_MARGIN_S = 5
_lock = threading.Lock()
_notifiers: dict[tuple[str, ...], Notifier] = {}


def build_notifier() -> Notifier:
    """The notifier for the current environment (cached: the secret is read once per environment)."""
    key = tuple(
        f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith(("S3STAGGER_", "AWS_ENDPOINT"))
    )
    with _lock:
        notifier = _notifiers.get(key)
        if notifier is None:
            settings = NotifierSettings.from_environ()
            session = boto3.session.Session()
            notifier = Notifier(
                settings,
                SmtpSender(settings.smtp),
                SmtpSecret(session.client("secretsmanager"), settings.secret_id),
                SsmAlertStateStore(session.client("ssm"), settings.state_path, settings.max_state_chars),
                SqsDigestTimer(session.client("sqs"), settings.alert_queue_url),
                runbooks=runbooks_from_definitions(settings.runbook_base_url),
            )
            _notifiers[key] = notifier
        return notifier


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (``s3stagger.handlers.notify.handler``), SQS batch in."""
    try:
        notifier = build_notifier()
    except S3StaggerError as error:
        logger.error(f"notifier cannot start: {error}")
        raise
    failures: list[dict[str, str]] = []
    # one record may take up to the SMTP timeout: stop taking new ones while that still fits, and hand
    # the rest back (retried), rather than time out with the whole batch
    needed_ms = (notifier.settings.smtp.timeout_s + RECORD_MARGIN_S) * 1000
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    for record in event.get("Records", []):
        message_id = str(record.get("messageId", "?"))
        if remaining is not None and remaining() < needed_ms:
            failures.append({"itemIdentifier": message_id})
            continue
        try:
            outcome = notifier.handle(str(record["body"]))
            log = logger.debug if outcome is Outcome.IGNORED else logger.info
            log("alert message handled", extra={"message_id": message_id, "outcome": outcome.value})
        except S3StaggerError as error:
            logger.error(f"alert not delivered, will be retried: {error}", extra={"message_id": message_id})
            failures.append({"itemIdentifier": message_id})
        except Exception:
            logger.exception("alert not delivered, will be retried", extra={"message_id": message_id})
            failures.append({"itemIdentifier": message_id})
    if failures:
        logger.info("records handed back for a retry", extra={"count": len(failures)})
    return {"batchItemFailures": failures}
