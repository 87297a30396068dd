"""The notifier's Lambda handler: batchItemFailures for what failed or no longer fits in the time left."""

from types import SimpleNamespace

import pytest

from s3stagger.adapters.smtp_sender import SmtpSendError
from s3stagger.handlers import notify
from s3stagger.notifier import NotifierConfigError, Outcome


class FakeNotifier:
    def __init__(self) -> None:
        self.settings = SimpleNamespace(smtp=SimpleNamespace(timeout_s=10))
        self.handled: list[str] = []

    def handle(self, body: str) -> Outcome:
        if body == "smtp down":
            raise SmtpSendError("cannot reach SMTP server h:587: refused")
        if body == "bug":
            raise ValueError("unexpected")
        self.handled.append(body)
        return Outcome.SENT


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def records(*bodies: str) -> dict:
    return {"Records": [{"messageId": f"m{i}", "body": body} for i, body in enumerate(bodies)]}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeNotifier:
    notifier = FakeNotifier()
    monkeypatch.setattr(notify, "build_notifier", lambda: notifier)
    return notifier


def test_only_the_records_that_failed_are_retried(fake: FakeNotifier) -> None:
    answer = notify.handler(records("a", "smtp down", "bug", "b"), Context(60_000))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert fake.handled == ["a", "b"]


def test_records_that_no_longer_fit_in_the_time_left_are_handed_back(fake: FakeNotifier) -> None:
    answer = notify.handler(records("a", "b"), Context(14_000))  # needs SMTP timeout 10 s + 5 s margin
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}
    assert fake.handled == []


def test_settings_missing_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("S3STAGGER_SMTP_HOST", "S3STAGGER_SMTP_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(NotifierConfigError, match="S3STAGGER_SMTP_PORT is not set"):
        notify.handler(records("a"), Context(60_000))
