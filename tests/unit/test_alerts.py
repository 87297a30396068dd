"""Alerts from the four event kinds, dedupe and digest decisions, and the email they make."""

import json

import pytest

from s3stagger.domain.alerts import (
    HELD_SAMPLES_KEPT,
    Alert,
    AlertEventError,
    AlertGroupState,
    AlertKind,
    Decision,
    EmailSettings,
    RunbookLinks,
    alert_from_event,
    decide,
    flush,
    render_digest,
    render_email,
)

RUNBOOKS = RunbookLinks(
    by_kind={"object_failed": "docs/runbooks/object-processing-failed.md"},
    base_url="https://runbooks.example/s3stagger",
)
EMAIL = EmailSettings(sender="alerts@example.com", recipients=("ops@example.com", "oncall@example.com"))


def alarm_event(value: str = "ALARM", previous: str = "OK", event_id: str = "e-1") -> dict:
    return {
        "id": event_id,
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "region": "eu-west-1",
        "time": "2026-11-30T20:00:00Z",
        "detail": {
            "alarmName": "s3stagger-dlq-not-empty-normal",
            "state": {
                "value": value,
                "reason": "Threshold Crossed: 1 out of the last 1 datapoints [3.0 (30/11/26 19:59:00)] "
                "was greater than the threshold (0.0)",
                "reasonData": json.dumps({"recentDatapoints": [3.0], "threshold": 0.0}),
            },
            "previousState": {"value": previous},
            "configuration": {
                "description": "A dead-letter queue holds messages. Runbook: docs/runbooks/dlq-not-empty.md",
                "metrics": [
                    {
                        "metricStat": {
                            "metric": {
                                "namespace": "AWS/SQS",
                                "name": "ApproximateNumberOfMessagesVisible",
                                "dimensions": {"QueueName": "s3stagger-normal-dlq"},
                            }
                        }
                    }
                ],
            },
        },
    }


def failed_event(event_id: str = "f-1") -> dict:
    lambda_error = {
        "errorType": "DownstreamUnavailableError",
        "errorMessage": "no answer from the downstream",
    }
    return {
        "id": event_id,
        "detail-type": "Object processing failed",
        "source": "s3stagger.dispatcher",
        "time": "2026-11-30T20:00:01Z",
        "detail": {
            "error": {"Error": "DownstreamUnavailableError", "Cause": json.dumps(lambda_error)},
            "messageId": "m-1",
            "queueUrl": "http://127.0.0.1:1/123456789012/s3stagger-normal",
            "execution": "arn:aws:states:us-east-1:123456789012:execution:s3stagger-dispatcher:slot-1",
        },
    }


def test_alarm_event_says_what_where_how_many_and_links_the_runbook() -> None:
    alert = alert_from_event(alarm_event(), RUNBOOKS)
    assert alert is not None
    assert alert.kind is AlertKind.ALARM
    assert alert.group == "alarm:s3stagger-dlq-not-empty-normal"
    assert alert.what == "A dead-letter queue holds messages."
    assert "QueueName=s3stagger-normal-dlq" in alert.where
    assert alert.count == 3.0
    assert alert.runbook == "https://runbooks.example/s3stagger/docs/runbooks/dlq-not-empty.md"
    assert alert.first_error is not None
    assert alert.first_error.startswith("Threshold Crossed")


def test_ok_is_news_only_after_alarm() -> None:
    resolved = alert_from_event(alarm_event("OK", "ALARM"))
    assert resolved is not None
    assert resolved.kind is AlertKind.RESOLVED
    assert alert_from_event(alarm_event("OK", "INSUFFICIENT_DATA")) is None
    assert alert_from_event(alarm_event("INSUFFICIENT_DATA", "OK")) is None


def test_object_failed_event_unwraps_the_lambda_error() -> None:
    alert = alert_from_event(failed_event(), RUNBOOKS)
    assert alert is not None
    assert alert.group == "object-failed:s3stagger-normal"
    assert alert.first_error == "DownstreamUnavailableError: no answer from the downstream"
    assert alert.runbook == "https://runbooks.example/s3stagger/docs/runbooks/object-processing-failed.md"


def test_execution_and_unrouted_events() -> None:
    execution = alert_from_event(
        {
            "id": "x-1",
            "detail-type": "Step Functions Execution Status Change",
            "detail": {
                "status": "FAILED",
                "name": "slot-1",
                "stateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:s3stagger-dispatcher",
                "executionArn": "arn:x",
                "error": "DispatcherFailed",
                "cause": "queue gone",
            },
        }
    )
    assert execution is not None
    assert execution.kind is AlertKind.EXECUTION_FAILED
    assert execution.first_error == "DispatcherFailed — queue gone"
    assert "s3stagger-dispatcher" in execution.where
    unrouted = alert_from_event(
        {
            "id": "u-1",
            "detail-type": "Object Created",
            "detail": {"bucket": {"name": "b"}, "object": {"key": "x/y.csv"}},
        }
    )
    assert unrouted is not None
    assert unrouted.where == "s3://b/x/y.csv"


@pytest.mark.parametrize(
    "event", [{"id": "1", "detail-type": "Something else", "detail": {}}, {"detail": {}}, []]
)
def test_an_event_of_no_known_kind_is_an_error(event: object) -> None:
    with pytest.raises(AlertEventError):
        alert_from_event(event)  # type: ignore[arg-type]


def alert(event_id: str, count: float = 1) -> Alert:
    return Alert(
        event_id=event_id,
        kind=AlertKind.OBJECT_FAILED,
        group="g",
        title="t",
        what="w",
        where="q",
        time="",
        count=count,
        count_unit="objects",
    )


def test_first_alert_goes_at_once_then_the_window_holds_the_rest_for_one_digest() -> None:
    state = AlertGroupState()
    decision, state = decide(state, alert("a"), now=100, interval_s=60)
    assert decision is Decision.SEND_NOW
    assert state.window_ends == 160
    decision, state = decide(state, alert("b"), now=110, interval_s=60)
    assert decision is Decision.HOLD_AND_SCHEDULE
    decision, state = decide(state, alert("c", count=2), now=120, interval_s=60)
    assert decision is Decision.HOLD  # the timer already runs
    digest, state = flush(state, "g", now=160, interval_s=60)
    assert digest is not None
    assert digest.total == 2
    assert digest.count_sum == 3
    assert state.window_ends == 220
    assert state.held_total == 0
    digest, state = flush(state, "g", now=220, interval_s=60)
    assert digest is None
    assert state.window_ends is None
    decision, _ = decide(state, alert("d"), now=230, interval_s=60)
    assert decision is Decision.SEND_NOW


def test_the_same_event_twice_is_a_duplicate_in_every_phase() -> None:
    _, state = decide(AlertGroupState(), alert("a"), now=0, interval_s=60)
    assert decide(state, alert("a"), now=1, interval_s=60)[0] is Decision.DUPLICATE
    _, state = decide(state, alert("b"), now=2, interval_s=60)
    assert decide(state, alert("b"), now=3, interval_s=60)[0] is Decision.DUPLICATE
    _, state = flush(state, "g", now=60, interval_s=60)
    assert decide(state, alert("b"), now=61, interval_s=60)[0] is Decision.DUPLICATE


def test_state_survives_json_and_stays_within_its_size() -> None:
    state = AlertGroupState()
    _, state = decide(state, alert("first"), now=0, interval_s=60)
    for i in range(200):
        _, state = decide(state, alert(f"event-{i}" + "x" * 200), now=1, interval_s=60)
    assert len(state.held) == HELD_SAMPLES_KEPT
    assert state.held_total == 200
    text = state.to_json(1500)
    assert len(text) <= 1500
    again = AlertGroupState.from_json(text)
    assert again.held_total == 200
    assert again.window_ends == state.window_ends
    assert again.has_seen("event-199" + "x" * 200)
    assert AlertGroupState.from_json(None) == AlertGroupState()


def test_email_names_what_where_how_many_first_error_and_runbook() -> None:
    event_alert = alert_from_event(alarm_event(), RUNBOOKS)
    assert event_alert is not None
    message = render_email(event_alert, EMAIL, now=0)
    body = message.get_content()
    assert message["Subject"] == "[s3stagger] ALARM: s3stagger-dlq-not-empty-normal"
    assert message["To"] == "ops@example.com, oncall@example.com"
    assert "QueueName=s3stagger-normal-dlq" in body
    assert "How many:     3 messages visible" in body
    assert "Runbook:      https://runbooks.example/s3stagger/docs/runbooks/dlq-not-empty.md" in body


def test_digest_email_counts_the_held_alerts() -> None:
    state = AlertGroupState()
    _, state = decide(state, alert("a"), now=0, interval_s=60)
    for i in range(7):
        _, state = decide(state, alert(f"b{i}"), now=1, interval_s=60)
    digest, _ = flush(state, "g", now=60, interval_s=60)
    assert digest is not None
    message = render_digest(digest, EMAIL, now=60)
    assert message["Subject"].startswith("[s3stagger] Digest: 7 more alerts")
    body = message.get_content()
    assert "Total: 7 objects." in body
    assert "... and 2 more" in body


def test_events_that_share_an_id_but_differ_are_not_merged() -> None:
    # moto gives every S3 event one fixed id; a redelivery repeats id and detail alike
    def stray(key: str) -> dict:
        detail = {"bucket": {"name": "b"}, "object": {"key": key}}
        return {
            "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": "Object Created",
            "detail": detail,
        }

    first, second, again = (alert_from_event(stray(k)) for k in ("a.csv", "b.csv", "a.csv"))
    assert first is not None
    assert second is not None
    assert again is not None
    _, state = decide(AlertGroupState(), first, now=0, interval_s=60)
    assert decide(state, second, now=1, interval_s=60)[0] is Decision.HOLD_AND_SCHEDULE
    assert decide(state, again, now=1, interval_s=60)[0] is Decision.DUPLICATE
