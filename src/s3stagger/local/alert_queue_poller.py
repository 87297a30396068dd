"""Stand-in for Lambda's SQS event source mapping on the alert queue (local mode only).

moto's own mapping runs inside ``SendMessage`` (the sender waits for the function), bypasses the
local Lambda runtime and puts a failed batch back at once. :class:`LocalSqsEventSourcePoller`
behaves as the AWS poller does instead: receive up to ``batch_size`` messages, invoke the function
synchronously (through the emulator's ``Invoke``, so the local Lambda runtime and its counters see
it), delete the messages that succeeded — honouring ``batchItemFailures``
(``ReportBatchItemFailures``) — and leave the others to reappear after the visibility timeout, so
SQS's redrive policy moves a message that keeps failing to the DLQ after ``maxReceiveCount``.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

LOGGER = logging.getLogger(__name__)


class LocalSqsEventSourcePoller:
    def __init__(
        self,
        sqs: Any,
        lambda_client: Any,
        *,
        queue_url: str,
        queue_arn: str,
        function_name: str,
        batch_size: int = 10,
        idle_wait_s: float = 0.2,
    ) -> None:
        self._sqs = sqs
        self._lambda = lambda_client
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.function_name = function_name
        self.batch_size = batch_size
        self.idle_wait_s = idle_wait_s
        self.batches = 0
        self.failed_records = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LocalSqsEventSourcePoller:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="local-alert-queue-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                handled = self.poll_once()
            except (ClientError, BotoCoreError):
                LOGGER.exception("polling the alert queue failed")
                handled = 0
            if not handled:
                self._stop.wait(self.idle_wait_s)

    def poll_once(self) -> int:
        """One receive → invoke → delete round; the number of messages received."""
        messages = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        self.batches += 1
        event = {"Records": [self._record(message) for message in messages]}
        answer = self._lambda.invoke(FunctionName=self.function_name, Payload=json.dumps(event).encode())
        payload = answer["Payload"].read()
        if answer.get("FunctionError"):
            LOGGER.warning("notifier failed on a batch of %d: %s", len(messages), payload[:500])
            self.failed_records += len(messages)
            return len(messages)  # every message is retried after its visibility timeout
        failed = {
            item["itemIdentifier"]
            for item in (json.loads(payload or b"{}") or {}).get("batchItemFailures", [])
        }
        self.failed_records += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(messages)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.queue_arn.split(":")[3],
        }
