"""Moving dead-lettered messages back to work: SQS message move tasks, and a message-by-message mover.

* :class:`SqsMessageMoveTasks` is SQS's own redrive (``StartMessageMoveTask`` from a DLQ to the
  queue that feeds it, at a rate; ``ListMessageMoveTasks`` for status; ``CancelMessageMoveTask``).
  It moves every message and cannot filter.
* :class:`LocalMessageMoveTask` is the stand-in for it where the emulator lacks the API (moto), and
  the mover for every redrive that filters (by key prefix, reason, age), routes each message to a
  destination of its own (the ingest DLQ), or is a dry run. It has the move task's semantics: each
  message is sent to its destination with its body and attributes, then deleted from the DLQ — a
  message is never deleted before it was sent; a crash in between leaves a copy in both, which the
  pipeline's idempotency keys make harmless. Running it twice moves nothing the second time.

A dry run receives each message once (held invisible while the queue is scanned, so each is seen
once), reports what would move where and why, and makes them visible again.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from s3stagger.domain.redrive import (
    DeadLetter,
    RedriveFilter,
    Unroutable,
    dead_letter_reason,
    object_key_of_message,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

Destination = Callable[[DeadLetter], "str | Unroutable"]
"""Where a message goes (a queue URL), or why it cannot go anywhere."""

SCAN_HOLD_S = 60
"""How long a dry run or a filtered move holds the messages it looked at (and left) invisible."""


@dataclass
class RedriveReport:
    """What one redrive of one DLQ moved (or, dry, would move), left, and why."""

    queue_url: str
    dry_run: bool
    moved: int = 0
    skipped_by_filter: int = 0
    unroutable: int = 0
    by_destination: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    """The recorded reasons of the messages taken (moved or unroutable)."""
    unroutable_reasons: Counter[str] = field(default_factory=Counter)
    keys: list[str] = field(default_factory=list)
    """Object keys moved (or that would move), in order."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue_url": self.queue_url,
            "dry_run": self.dry_run,
            "moved": self.moved,
            "skipped_by_filter": self.skipped_by_filter,
            "unroutable": self.unroutable,
            "by_destination": dict(self.by_destination),
            "reasons": dict(self.reasons),
            "unroutable_reasons": dict(self.unroutable_reasons),
        }


def dead_letter_of(message: MessageTypeDef, now_s: float) -> DeadLetter:
    attributes = message.get("Attributes", {})
    custom = {
        name: value.get("StringValue", "") for name, value in message.get("MessageAttributes", {}).items()
    }
    sent_ms = int(attributes.get("SentTimestamp", "0") or 0)
    receives = int(attributes.get("ApproximateReceiveCount", "0") or 0)
    return DeadLetter(
        key=object_key_of_message(message.get("Body", "")),
        reason=dead_letter_reason(custom, receives),
        age_s=max(0.0, now_s - sent_ms / 1000) if sent_ms else 0.0,
    )


class LocalMessageMoveTask:
    """Moves messages out of one DLQ, one by one, where ``destination`` says (see the module doc).

    The stand-in for SQS ``StartMessageMoveTask`` where the emulator lacks it, and the mover for
    filtered, routed or dry redrives.
    """

    def __init__(self, sqs: SQSClient, clock: Callable[[], float] = time.time) -> None:
        self._sqs = sqs
        self._clock = clock

    def run(
        self,
        dlq_url: str,
        destination: Destination,
        selection: RedriveFilter,
        *,
        limit: int | None = None,
        dry_run: bool = False,
    ) -> RedriveReport:
        report = RedriveReport(dlq_url, dry_run)
        held: list[str] = []  # receipt handles of messages looked at and left in the DLQ
        try:
            while limit is None or report.moved < limit:
                batch = self._receive(dlq_url)
                if not batch:
                    break
                for message in batch:
                    if limit is not None and report.moved >= limit:
                        held.append(message["ReceiptHandle"])
                        continue
                    if not self._take(dlq_url, message, destination, selection, report):
                        held.append(message["ReceiptHandle"])
        finally:
            self._release(dlq_url, held)
        return report

    def _receive(self, dlq_url: str) -> list[MessageTypeDef]:
        answer = self._sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=SCAN_HOLD_S,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(answer.get("Messages", []))

    def _take(
        self,
        dlq_url: str,
        message: MessageTypeDef,
        destination: Destination,
        selection: RedriveFilter,
        report: RedriveReport,
    ) -> bool:
        """Move one message (or count it, dry); ``False`` when it stays in the DLQ."""
        letter = dead_letter_of(message, self._clock())
        if not selection.matches(letter):
            report.skipped_by_filter += 1
            return False
        report.reasons[letter.reason] += 1
        target = destination(letter)
        if isinstance(target, Unroutable):
            report.unroutable += 1
            report.unroutable_reasons[target.reason] += 1
            return False
        report.moved += 1
        report.by_destination[target] += 1
        report.keys.append(letter.key or "")
        if report.dry_run:
            return False
        attributes = message.get("MessageAttributes", {})
        self._sqs.send_message(
            QueueUrl=target,
            MessageBody=message["Body"],
            **({"MessageAttributes": attributes} if attributes else {}),  # type: ignore[arg-type]
        )
        self._sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        return True

    def _release(self, dlq_url: str, handles: list[str]) -> None:
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for index, handle in enumerate(handles[start : start + 10])
            ]
            self._sqs.change_message_visibility_batch(QueueUrl=dlq_url, Entries=entries)  # type: ignore[arg-type]


@dataclass(frozen=True)
class MoveTask:
    """One SQS message move task as ``ListMessageMoveTasks`` reports it."""

    handle: str
    status: str
    moved: int
    to_move: int | None
    failure: str


class SqsMessageMoveTasks:
    """SQS's own redrive of a DLQ to its source queue (AWS only; moto lacks these calls)."""

    def __init__(self, sqs: SQSClient) -> None:
        self._sqs = sqs

    def queue_arn(self, queue_url: str) -> str:
        attributes = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return attributes["Attributes"]["QueueArn"]

    def start(self, dlq_url: str, destination_url: str, rate_per_s: int | None) -> str:
        """Start moving every message of ``dlq_url`` to ``destination_url``; returns the task handle."""
        extra = {"MaxNumberOfMessagesPerSecond": rate_per_s} if rate_per_s else {}
        answer = self._sqs.start_message_move_task(
            SourceArn=self.queue_arn(dlq_url), DestinationArn=self.queue_arn(destination_url), **extra
        )
        return answer["TaskHandle"]

    def list(self, dlq_url: str) -> list[MoveTask]:
        answer = self._sqs.list_message_move_tasks(SourceArn=self.queue_arn(dlq_url), MaxResults=10)
        return [
            MoveTask(
                handle=task.get("TaskHandle", ""),
                status=task.get("Status", ""),
                moved=int(task.get("ApproximateNumberOfMessagesMoved", 0)),
                to_move=task.get("ApproximateNumberOfMessagesToMove"),
                failure=task.get("FailureReason", ""),
            )
            for task in answer.get("Results", [])
        ]

    def cancel(self, handle: str) -> int:
        """Cancel a running task; returns how many messages it had moved."""
        return int(self._sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"])
