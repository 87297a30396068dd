"""The keep-alive renews a call's holds on real SQS (moto server): visibility set, renewed while the
call runs, stopped when it ends, a lost hold reported once and left alone."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from _moto_support import moto_client

from s3stagger.adapters.visibility_keepalive import VisibilityKeepAlive
from s3stagger.domain.keepalive import Hold, KeepAlive
from s3stagger.handlers.process_object import kept_alive

DEADLINE_S = 60.0


def held_message(sqs: Any, visibility_s: int) -> Hold:
    url = sqs.create_queue(QueueName=f"ka-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    [message] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=visibility_s)["Messages"]
    return Hold(url, message["ReceiptHandle"])


def visible_again(sqs: Any, hold: Hold) -> bool:
    """True once the message can be received again (within one overall deadline)."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if sqs.receive_message(QueueUrl=hold.queue_url, WaitTimeSeconds=1).get("Messages"):
            return True
    return False


def test_a_beat_sets_the_holds_visibility_to_the_keepalives(endpoint_url: str) -> None:
    sqs = moto_client(endpoint_url, "sqs")
    hold = held_message(sqs, visibility_s=600)  # held for 10 minutes by the receive
    VisibilityKeepAlive(sqs, KeepAlive(1, (hold,))).beat()
    assert visible_again(sqs, hold)  # the beat's 1 s replaced the 600 s


def test_a_lost_hold_is_reported_once_and_the_others_still_renewed(endpoint_url: str) -> None:
    sqs = moto_client(endpoint_url, "sqs")
    gone, kept = held_message(sqs, 600), held_message(sqs, 600)
    sqs.delete_message(QueueUrl=gone.queue_url, ReceiptHandle=gone.receipt_handle)
    lost: list[Hold] = []
    keepalive = VisibilityKeepAlive(sqs, KeepAlive(1, (gone, kept)), lambda hold, _why: lost.append(hold))
    keepalive.beat()
    keepalive.beat()
    assert lost == [gone]
    assert keepalive.beats == 2
    assert visible_again(sqs, kept)


class RecordingSqs:
    """A fake SQS client: records each renewal."""

    def __init__(self) -> None:
        self.renewals: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def change_message_visibility(self, *, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:
        with self.lock:
            self.renewals.append((ReceiptHandle, VisibilityTimeout))


def test_holds_are_renewed_while_the_call_runs_and_no_longer_after() -> None:
    sqs = RecordingSqs()
    holds = (Hold("q", "message"), Hold("lease-q", "lease"))
    with VisibilityKeepAlive(sqs, KeepAlive(1, holds)) as keepalive:  # type: ignore[arg-type]
        deadline = time.monotonic() + DEADLINE_S
        while keepalive.beats < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert keepalive.beats >= 3
        assert sqs.renewals[:2] == [("message", 1), ("lease", 1)]  # the first beat, at once
    after = len(sqs.renewals)
    assert after == 2 * keepalive.beats
    assert not keepalive._thread.is_alive()


class BlockedSqs(RecordingSqs):
    """A fake SQS client whose renewals wait until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def change_message_visibility(self, *, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:
        self.release.wait(DEADLINE_S)
        super().change_message_visibility(
            QueueUrl=QueueUrl, ReceiptHandle=ReceiptHandle, VisibilityTimeout=VisibilityTimeout
        )


def test_the_call_starts_beside_the_first_beat_and_ends_after_it() -> None:
    sqs = BlockedSqs()
    keepalive = VisibilityKeepAlive(sqs, KeepAlive(60, (Hold("q", "message"), Hold("lease-q", "lease"))))  # type: ignore[arg-type]
    keepalive.__enter__()
    assert sqs.renewals == []  # the call goes on while the first beat waits for SQS
    sqs.release.set()
    keepalive.__exit__(None, None, None)
    assert sqs.renewals == [("message", 60), ("lease", 60)]  # and ends only after it
    assert not keepalive._thread.is_alive()


def test_the_handler_keeps_holds_alive_only_when_the_dispatcher_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with kept_alive(None) as nothing:
        assert nothing is None
    assert isinstance(kept_alive(KeepAlive(5, ())), VisibilityKeepAlive)
