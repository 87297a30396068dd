"""The reference dispatchers (stand-ins) against fake SQS and Lambda clients."""

import io
import json
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from s3stagger.perf.stand_ins import NoStaggerDispatcher, SqsMappingStandIn


class FakeSqs:
    """Queues of message bodies; a received message stays out until deleted (no redelivery)."""

    def __init__(self, queues: dict[str, list[str]]) -> None:
        self.queues = {url: list(bodies) for url, bodies in queues.items()}
        self.deleted: list[str] = []
        self.receives: dict[str, int] = dict.fromkeys(queues, 0)
        self.lock = threading.Lock()

    def receive_message(self, QueueUrl: str, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:
        with self.lock:
            self.receives[QueueUrl] += 1
            taken = self.queues[QueueUrl][:MaxNumberOfMessages]
            del self.queues[QueueUrl][:MaxNumberOfMessages]
        if not taken:
            time.sleep(0.01)
        return {"Messages": [{"Body": body, "ReceiptHandle": body} for body in taken]}

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:
        with self.lock:
            self.deleted.append(ReceiptHandle)


class FakeLambda:
    """Answers PARTIAL once per object (with a cursor), then COMPLETE; ``bad`` keys raise."""

    def __init__(self, bad: frozenset[str] = frozenset(), refused: frozenset[str] = frozenset()) -> None:
        self.calls: list[dict[str, Any]] = []
        self.bad = bad
        self.refused = refused
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        event = json.loads(Payload)
        key = event["object"]["key"]
        if key in self.refused:
            error = {"Error": {"Code": "TooManyRequestsException", "Message": "Rate Exceeded."}}
            raise ClientError(error, "Invoke")
        with self.lock:
            self.calls.append(event)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(0.02)
        with self.lock:
            self.in_flight -= 1
        if key in self.bad:
            return {"FunctionError": "Unhandled", "Payload": io.BytesIO(b'{"errorType": "Boom"}')}
        status = "COMPLETE" if event["cursor"] else "PARTIAL"
        answer = {"status": status, "key": key, "cursor": None if event["cursor"] else {"next_row": 2}}
        return {"Payload": io.BytesIO(json.dumps(answer).encode())}


def bodies(prefix: str, count: int) -> list[str]:
    return [json.dumps({"key": f"{prefix}{index}"}) for index in range(count)]


def wait_for(condition: Any, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and not condition():
        time.sleep(0.01)


def test_the_mapping_stand_in_keeps_to_its_caps_and_continues_partial_answers() -> None:
    sqs = FakeSqs({"high": bodies("h", 4), "normal": bodies("n", 12)})
    lam = FakeLambda()
    with SqsMappingStandIn(
        sqs, lam, "processor", {"high": "high", "normal": "normal"}, {"high": 2, "normal": 3}
    ):
        wait_for(lambda: len(sqs.deleted) == 16)
    assert sorted(sqs.deleted) == sorted(bodies("h", 4) + bodies("n", 12)), "each message deleted once"
    assert len(lam.calls) == 32, "one PARTIAL and one continuation per object"
    assert all(call["cursor"] == {"next_row": 2} for call in lam.calls if call["cursor"])
    assert lam.peak <= 5, "never more invocations than the caps added up"


def test_no_stagger_invokes_everything_at_once_and_leaves_failures_to_reappear() -> None:
    sqs = FakeSqs({"high": bodies("h", 2), "normal": [*bodies("n", 20), "not json"]})
    lam = FakeLambda(bad=frozenset({"n3"}))
    dispatcher = NoStaggerDispatcher(sqs, lam, "processor", ["high", "normal"])
    with dispatcher:
        wait_for(lambda: len(sqs.deleted) == 21)
        time.sleep(0.1)
    assert json.dumps({"key": "n3"}) not in sqs.deleted, "a failed invocation leaves its message"
    assert "not json" not in sqs.deleted, "an unreadable body is left for the DLQ"
    assert len(sqs.deleted) == 21
    assert dispatcher.errors == 1
    assert dispatcher.peak_in_flight > 5, "no budget: many objects in flight at once"


def test_an_invocation_lambda_refuses_is_one_log_line_and_its_message_reappears(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sqs = FakeSqs({"high": [], "normal": bodies("n", 3)})
    lam = FakeLambda(refused=frozenset({"n1"}))
    dispatcher = NoStaggerDispatcher(sqs, lam, "processor", ["high", "normal"])
    with caplog.at_level("WARNING"), dispatcher:
        wait_for(lambda: len(sqs.deleted) == 2)
        time.sleep(0.1)
    assert json.dumps({"key": "n1"}) not in sqs.deleted
    assert dispatcher.errors == 1
    (record,) = [r for r in caplog.records if r.name == "s3stagger.perf.stand_ins"]
    assert record.getMessage() == "invocation refused: TooManyRequestsException"
    assert record.exc_info is None, "an expected refusal logs no traceback"
