"""The two reference dispatchers a user would otherwise pick, as local pollers (clearly stand-ins).

Neither is the pattern: they exist so ``perf-test`` can show what the pattern buys.

- :class:`NoStaggerDispatcher` — "no stagger": every message is received as soon as it is visible
  and its object invoked at once, with no budget and no spacing. With many objects the downstream
  gets far more requests than its capacity: the overload the pattern prevents.
- :class:`SqsMappingStandIn` — an SQS → Lambda event source mapping with ``MaximumConcurrency``:
  one mapping per priority queue, batch size 1, at most ``cap`` invocations at once per mapping
  (emulated by ``cap`` polling threads; moto has no event source mapping poller). A mapping knows
  nothing of priorities across queues, so each queue gets its own cap.

Both invoke the real processor through the emulator's Lambda API (so the invocation is counted and
runs in the local Lambda runtime), continue a ``PARTIAL`` answer with its cursor at once, delete the
message on ``COMPLETE`` or ``REJECTED``, and leave it to reappear after its visibility timeout on an
error, so SQS's ``maxReceiveCount`` moves a poison message to its DLQ, as with a real mapping.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

LOGGER = logging.getLogger(__name__)

VISIBILITY_S = 600
"""Visibility a received message gets (above the processor's timeout, as AWS advises)."""
RECEIVE_WAIT_S = 1
"""Long-poll wait of one receive: short, so stopping is prompt (a real mapping waits 20 s)."""
MAX_ROUNDS = 1000
"""PARTIAL rounds of one message before the stand-in gives up and lets the message reappear."""
TERMINAL_STATUSES = frozenset({"COMPLETE", "REJECTED"})


def processor_event(body: str) -> dict[str, Any] | None:
    """The processor's input for a queue message: ``{"object", "cursor"}`` (continuations too)."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    continuation = message.get("continuation")
    if isinstance(continuation, dict):
        return {"object": continuation.get("object"), "cursor": continuation.get("cursor")}
    return {"object": message, "cursor": None}


class _Poller:
    """Shared parts: invoke until done, then delete."""

    def __init__(self, sqs: Any, lambda_client: Any, function_name: str) -> None:
        self._sqs = sqs
        self._lambda = lambda_client
        self._function_name = function_name
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors = 0

    def process(self, queue_url: str, message: Mapping[str, Any]) -> None:
        """Run one message's object to a final answer, then delete the message."""
        event = processor_event(str(message.get("Body", "")))
        if event is None:
            return  # left to reappear and, after maxReceiveCount, move to the DLQ
        for _ in range(MAX_ROUNDS):
            try:
                answer = self._lambda.invoke(
                    FunctionName=self._function_name, Payload=json.dumps(event).encode()
                )
                payload = json.loads(answer["Payload"].read() or b"null")
            except ClientError as error:  # Lambda refused it (reserved concurrency): it reappears
                LOGGER.warning("invocation refused: %s", error.response.get("Error", {}).get("Code"))
                self.errors += 1
                return
            except Exception:  # an emulator hiccup: the message reappears, as after a failed invocation
                LOGGER.exception("invocation failed")
                self.errors += 1
                return
            if answer.get("FunctionError") or not isinstance(payload, dict):
                self.errors += 1
                return
            status = payload.get("status")
            if status in TERMINAL_STATUSES:
                self._sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                return
            if status != "PARTIAL":
                self.errors += 1
                return
            event = {"object": event["object"], "cursor": payload.get("cursor")}

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop receiving; wait up to ``timeout_s`` in all for running invocations (those still
        running finish in the background; their messages reappear if they do not)."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> _Poller:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class NoStaggerDispatcher(_Poller):
    """Receives everything as soon as it is visible and invokes every object at once (no budget)."""

    def __init__(self, sqs: Any, lambda_client: Any, function_name: str, queue_urls: list[str]) -> None:
        super().__init__(sqs, lambda_client, function_name)
        self._queue_urls = queue_urls
        self.peak_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        self._spawn("no-stagger-receiver", self._receive_loop)

    def _receive_loop(self) -> None:
        while not self._stop.is_set():
            received = False
            for url in self._queue_urls:  # listed highest priority first
                messages = self._sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=VISIBILITY_S, WaitTimeSeconds=0
                ).get("Messages", [])
                for message in messages:
                    received = True
                    self._spawn("no-stagger-invoke", self._invoke, url, message)
            if not received:
                self._stop.wait(0.2)

    def _invoke(self, url: str, message: Mapping[str, Any]) -> None:
        with self._lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            self.process(url, message)
        finally:
            with self._lock:
                self._in_flight -= 1


class SqsMappingStandIn(_Poller):
    """``caps[priority]`` workers per queue, each receiving one message and invoking it to the end."""

    def __init__(
        self,
        sqs: Any,
        lambda_client: Any,
        function_name: str,
        queue_urls: Mapping[str, str],
        caps: Mapping[str, int],
    ) -> None:
        super().__init__(sqs, lambda_client, function_name)
        self._queue_urls = dict(queue_urls)
        self.caps = dict(caps)

    def start(self) -> None:
        for priority, url in self._queue_urls.items():
            for index in range(self.caps[priority]):
                self._spawn(f"sqs-mapping-{priority}-{index}", self._worker, url)

    def _worker(self, url: str) -> None:
        while not self._stop.is_set():
            messages = self._sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=1,
                VisibilityTimeout=VISIBILITY_S,
                WaitTimeSeconds=RECEIVE_WAIT_S,
            ).get("Messages", [])
            for message in messages:
                self.process(url, message)


def mapping_caps(budget: int, priorities: list[str]) -> dict[str, int]:
    """``MaximumConcurrency`` per queue so the caps add up to the budget (each at least 2, AWS's
    minimum): the highest priority gets a fifth of it, the rest the remainder."""
    if len(priorities) == 1:
        return {priorities[0]: max(2, budget)}
    first = max(2, budget // 5)
    rest = max(2, (budget - first) // (len(priorities) - 1))
    return {priority: first if index == 0 else rest for index, priority in enumerate(priorities)}
