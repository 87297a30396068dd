"""The notifier's order of effects, with fakes: send, then record; never record what did not happen."""

import json
from email.message import EmailMessage

import pytest

from s3stagger.adapters.smtp_sender import SmtpAuthenticationError, SmtpCredentials, SmtpSendError, SmtpServer
from s3stagger.domain.alerts import AlertGroupState, EmailSettings
from s3stagger.notifier import (
    DIGEST_DUE_KEY,
    Notifier,
    NotifierConfigError,
    NotifierSettings,
    Outcome,
    runbooks_from_definitions,
)

SETTINGS = NotifierSettings(
    smtp=SmtpServer("127.0.0.1", 1),
    email=EmailSettings("alerts@example.com", ("ops@example.com",)),
    secret_id="s3stagger/alerting/smtp",
    digest_interval_s=60,
    state_path="/s3stagger/alerting/state",
    alert_queue_url="http://q",
)


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.failure: Exception | None = None

    def send(self, message: EmailMessage, credentials: SmtpCredentials) -> None:
        if self.failure is not None:
            raise self.failure
        self.sent.append(message)


class FakeSecret:
    def __init__(self) -> None:
        self.reads = 0
        self.forgotten = 0

    def credentials(self) -> SmtpCredentials:
        self.reads += 1
        return SmtpCredentials("user", "password")

    def forget(self) -> None:
        self.forgotten += 1


class FakeStore:
    def __init__(self) -> None:
        self.states: dict[str, AlertGroupState] = {}
        self.writes = 0

    def get(self, group: str) -> AlertGroupState:
        return self.states.get(group, AlertGroupState())

    def put(self, group: str, state: AlertGroupState) -> None:
        self.writes += 1
        self.states[group] = state


class FakeTimer:
    def __init__(self) -> None:
        self.scheduled: list[tuple[str, float]] = []

    def schedule(self, group: str, delay_s: float) -> None:
        self.scheduled.append((group, delay_s))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def failed(event_id: str) -> str:
    return json.dumps(
        {
            "id": event_id,
            "detail-type": "Object processing failed",
            "detail": {
                "error": {"Error": "Boom", "Cause": "x"},
                "messageId": "m",
                "queueUrl": "http://h/1/q-normal",
            },
        }
    )


@pytest.fixture
def parts() -> tuple[Notifier, FakeSender, FakeSecret, FakeStore, FakeTimer, Clock]:
    sender, secret, store, timer, clock = FakeSender(), FakeSecret(), FakeStore(), FakeTimer(), Clock()
    notifier = Notifier(SETTINGS, sender, secret, store, timer, clock=clock)  # type: ignore[arg-type]
    return notifier, sender, secret, store, timer, clock


def test_a_burst_makes_one_email_then_one_digest(parts) -> None:
    notifier, sender, _, _store, timer, clock = parts
    outcomes = [notifier.handle(failed(f"e{i}")) for i in range(5)]
    assert outcomes == [Outcome.SENT] + [Outcome.HELD] * 4
    assert len(sender.sent) == 1
    assert timer.scheduled == [("object-failed:q-normal", 60.0)]
    clock.now += 60
    assert (
        notifier.handle(json.dumps({DIGEST_DUE_KEY: {"group": "object-failed:q-normal"}}))
        is Outcome.DIGEST_SENT
    )
    assert len(sender.sent) == 2
    assert "Digest: 4 more alerts" in sender.sent[1]["Subject"]
    clock.now += 60
    assert (
        notifier.handle(json.dumps({DIGEST_DUE_KEY: {"group": "object-failed:q-normal"}}))
        is Outcome.DIGEST_EMPTY
    )
    assert len(sender.sent) == 2


def test_an_early_timer_is_put_off_until_the_window_ends(parts) -> None:
    notifier, sender, _, _, timer, clock = parts
    notifier.handle(failed("a"))
    notifier.handle(failed("b"))
    clock.now += 10
    due = json.dumps({DIGEST_DUE_KEY: {"group": "object-failed:q-normal"}})
    assert notifier.handle(due) is Outcome.DIGEST_RESCHEDULED
    assert timer.scheduled[-1] == ("object-failed:q-normal", 50.0)
    assert len(sender.sent) == 1


def test_the_same_event_twice_sends_one_email(parts) -> None:
    notifier, sender, *_ = parts
    assert notifier.handle(failed("same")) is Outcome.SENT
    assert notifier.handle(failed("same")) is Outcome.DUPLICATE
    assert len(sender.sent) == 1


def test_a_send_failure_raises_and_records_nothing(parts) -> None:
    notifier, sender, secret, store, _, _ = parts
    sender.failure = SmtpSendError("cannot reach SMTP server")
    with pytest.raises(SmtpSendError):
        notifier.handle(failed("a"))
    assert store.writes == 0
    assert secret.forgotten == 0
    sender.failure = None
    assert notifier.handle(failed("a")) is Outcome.SENT  # the retry sends it


def test_refused_credentials_are_forgotten_so_the_retry_reads_the_secret_again(parts) -> None:
    notifier, sender, secret, store, _, _ = parts
    sender.failure = SmtpAuthenticationError("535")
    with pytest.raises(SmtpAuthenticationError):
        notifier.handle(failed("a"))
    assert secret.forgotten == 1
    assert store.writes == 0


def test_state_changes_that_need_no_email_are_ignored(parts) -> None:
    notifier, sender, *_ = parts
    event = {
        "id": "1",
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {
            "alarmName": "a",
            "state": {"value": "OK"},
            "previousState": {"value": "INSUFFICIENT_DATA"},
        },
    }
    assert notifier.handle(json.dumps(event)) is Outcome.IGNORED
    assert sender.sent == []


ENVIRONMENT = {
    "S3STAGGER_SMTP_HOST": "email-smtp.eu-west-1.amazonaws.com",
    "S3STAGGER_SMTP_PORT": "587",
    "S3STAGGER_SMTP_SECURITY": "starttls",
    "S3STAGGER_SMTP_FROM": "alerts@example.com",
    "S3STAGGER_SMTP_TO": "a@example.com, b@example.com",
    "S3STAGGER_SMTP_SECRET_ID": "s3stagger/alerting/smtp",
    "S3STAGGER_ALERT_DIGEST_INTERVAL_S": "300",
    "S3STAGGER_ALERT_STATE_PATH": "/s3stagger/alerting/state",
    "S3STAGGER_ALERT_QUEUE_URL": "https://sqs/q",
}


def test_settings_from_the_environment() -> None:
    settings = NotifierSettings.from_environ(ENVIRONMENT)
    assert settings.smtp.port == 587
    assert settings.smtp.ca_file is None
    assert settings.email.recipients == ("a@example.com", "b@example.com")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"S3STAGGER_SMTP_HOST": ""}, "S3STAGGER_SMTP_HOST is not set"),
        ({"S3STAGGER_SMTP_PORT": "x"}, "not a number"),
        ({"S3STAGGER_SMTP_SECURITY": "none"}, "starttls or tls"),
        ({"S3STAGGER_ALERT_DIGEST_INTERVAL_S": "3600"}, "delayed SQS message"),
    ],
)
def test_bad_settings_say_which(change: dict[str, str], message: str) -> None:
    with pytest.raises(NotifierConfigError, match=message):
        NotifierSettings.from_environ({**ENVIRONMENT, **change})


def test_runbooks_of_the_non_alarm_kinds_come_from_alerting_json() -> None:
    links = runbooks_from_definitions("https://wiki.example/")
    assert links.link(links.by_kind["unrouted"]) == "https://wiki.example/docs/runbooks/object-unrouted.md"
