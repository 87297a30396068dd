"""Alerting end to end on the local stack: alarms evaluated locally, events on the bus, the alert
queue, the notifier and a real SMTP server with STARTTLS and AUTH (periods scaled: 1 minute = 3 s)."""

import json
import mailbox
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from s3stagger.cli.app import app
from s3stagger.local.alerting import LocalAlertingSettings
from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings
from s3stagger.local.request_counter import ORIGIN_HARNESS, ORIGIN_PATTERN

UNREACHABLE = "http://127.0.0.1:9/rows"  # nothing listens: every invocation fails, objects reach the DLQ


def wait_for(condition: Callable[[], bool], timeout_s: float = 300, poll_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return condition()


def messages(mbox: Path) -> list[mailbox.mboxMessage]:
    return list(mailbox.mbox(str(mbox))) if mbox.exists() else []


def stack_settings(tmp_path: Path, **alerting: object) -> LocalPipelineSettings:
    return LocalPipelineSettings(
        downstream_url=UNREACHABLE,
        start_scheduler=False,
        alerting=LocalAlertingSettings(mailbox=tmp_path / "mail.mbox", digest_interval_s=3, **alerting),  # type: ignore[arg-type]
    )


def object_failed_entry(marker: str) -> dict:
    return {
        "Source": "s3stagger.dispatcher",
        "DetailType": "Object processing failed",
        "Detail": json.dumps(
            {
                "error": {"Error": "DownstreamUnavailableError", "Cause": marker},
                "messageId": marker,
                "queueUrl": "http://127.0.0.1/123456789012/s3stagger-normal",
                "execution": "local",
            }
        ),
    }


def test_objects_in_the_dlq_raise_the_dlq_alarm_and_one_email_over_starttls(tmp_path: Path) -> None:
    settings = LocalPipelineSettings(
        downstream_url=UNREACHABLE,
        max_receive_count=2,
        dispatcher={"failure_retry_delay_s": 0},
        processor_environment={"S3STAGGER_MAX_ATTEMPTS": "2", "S3STAGGER_BACKOFF_BASE_S": "0.01"},
        alerting=LocalAlertingSettings(mailbox=tmp_path / "mail.mbox", digest_interval_s=3),
    )
    with LocalPipeline(settings) as stack:
        alerting = stack.alerting
        assert alerting is not None
        for index in range(3):
            stack.client("s3").put_object(
                Bucket=stack.names.bucket, Key=f"normal/poison-{index}.csv", Body=b"id,name\n1,a\n2,b\n"
            )
        dlq_alarm = "s3stagger-dlq-not-empty-normal"
        assert wait_for(lambda: stack.queue_depth(stack.names.dlq_urls["normal"]).visible == 3, 300)
        assert wait_for(lambda: dlq_alarm in alerting.evaluator.fired(), 300)  # type: ignore[union-attr]

        def dlq_emails() -> list[mailbox.mboxMessage]:
            return [m for m in messages(alerting.smtp.mbox_path) if dlq_alarm in str(m["Subject"])]

        assert wait_for(lambda: len(dlq_emails()) >= 1, 300)
        time.sleep(
            3
        )  # more than a digest interval: nothing else may come for this alarm while it stays in ALARM
        args = ["monitor", "--endpoint-url", stack.endpoint_url, "--alarms", "s3stagger-", "--once", "--json"]
        snapshot = json.loads(
            CliRunner().invoke(app, [*args, "--function", stack.names.function_name]).output
        )
        assert {a["name"]: a["state"] for a in snapshot["alarms"]}[dlq_alarm] == "ALARM"
        assert snapshot["function"]["invocations"] >= 3  # Lambda figures, published by the local evaluator
        assert snapshot["function"]["errors"] >= 3

    emails = dlq_emails()
    assert len(emails) == 1  # one email for the alarm, not one per object
    body = emails[0].get_payload()
    assert "QueueName=s3stagger-normal-dlq" in body
    assert "ApproximateNumberOfMessagesVisible" in body
    assert "How many:" in body
    assert "docs/runbooks/" in body
    assert "with ESMTPSA" in emails[0]["Received"]  # STARTTLS + AUTH (RFC 3848)
    assert "authenticated as s3stagger-alerts" in emails[0]["Received"]


def test_smtp_down_for_a_while_the_alert_arrives_once_it_is_back(tmp_path: Path) -> None:
    with LocalPipeline(stack_settings(tmp_path)) as stack:
        alerting = stack.alerting
        assert alerting is not None
        alerting.smtp.stop()
        marker = f"outage-{uuid.uuid4()}"
        stack.client("events").put_events(Entries=[object_failed_entry(marker)])
        assert wait_for(lambda: alerting.poller.failed_records >= 2, 300)  # type: ignore[union-attr]
        assert messages(alerting.smtp.mbox_path) == []
        alerting.smtp.start()
        assert wait_for(
            lambda: any(marker in m.get_payload() for m in messages(alerting.smtp.mbox_path)), 120
        )
        assert stack.queue_depth(alerting.names.alert_dlq_url).visible == 0  # type: ignore[union-attr]
    assert sum(marker in m.get_payload() for m in messages(alerting.smtp.mbox_path)) == 1


def test_wrong_smtp_credentials_log_a_clear_error_and_the_alert_waits_in_the_alert_dlq(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with LocalPipeline(
        stack_settings(tmp_path, secret_password="not-the-password", alert_max_receive_count=2)
    ) as stack:
        alerting = stack.alerting
        assert alerting is not None
        assert alerting.names is not None
        marker = f"credentials-{uuid.uuid4()}"
        stack.client("events").put_events(Entries=[object_failed_entry(marker)])
        dlq = alerting.names.alert_dlq_url
        assert wait_for(lambda: stack.queue_depth(dlq).visible >= 1, 300)
        bodies = [
            m["Body"]
            for m in stack.client("sqs").receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
        ]
        assert any(marker in body for body in bodies)
        assert messages(alerting.smtp.mbox_path) == []
        assert alerting.smtp.counters.auth_failures >= 1
    logged = capfd.readouterr().out + caplog.text  # the notifier's log lines (Powertools JSON on stdout)
    assert "refused the credentials of user 's3stagger-alerts': 535" in logged
    assert "fix the SMTP secret, then redrive the alert DLQ" in logged


def test_the_same_event_delivered_twice_makes_one_email(tmp_path: Path) -> None:
    with LocalPipeline(stack_settings(tmp_path)) as stack:
        alerting = stack.alerting
        assert alerting is not None
        assert alerting.names is not None
        marker = f"twice-{uuid.uuid4()}"
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Object processing failed",
            "source": "s3stagger.dispatcher",
            "account": "123456789012",
            "time": "2026-11-30T20:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": json.loads(object_failed_entry(marker)["Detail"]),
        }
        sqs = stack.client("sqs")
        for _ in range(2):  # SQS and EventBridge deliver at least once
            sqs.send_message(QueueUrl=alerting.names.alert_queue_url, MessageBody=json.dumps(event))
        assert wait_for(
            lambda: any(marker in m.get_payload() for m in messages(alerting.smtp.mbox_path)), 120
        )
        assert wait_for(lambda: stack.queue_depth(alerting.names.alert_queue_url).total == 0, 300)
        time.sleep(4)  # past the digest interval: a held duplicate would have been mailed by now
    assert sum(marker in m.get_payload() for m in messages(alerting.smtp.mbox_path)) == 1


def test_the_alarm_evaluator_stands_in_for_cloudwatch_and_bills_the_pattern_nothing(tmp_path: Path) -> None:
    with LocalPipeline(stack_settings(tmp_path)) as stack:
        counter = stack.emulator.request_counter
        assert counter is not None
        counter.reset()
        assert wait_for(lambda: counter.snapshot(ORIGIN_HARNESS).get("sqs", {}).get("GetQueueAttributes"))
        pattern = counter.snapshot(ORIGIN_PATTERN)
    # AWS bills no request for CloudWatch's own sampling (nor the alarm states and events it emits)
    assert "cloudwatch" not in pattern
    assert "GetQueueAttributes" not in pattern.get("sqs", {})
