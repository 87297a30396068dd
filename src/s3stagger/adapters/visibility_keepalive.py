"""Renews a processor call's holds (its message, its dispatcher's lease) while the call runs.

A daemon thread sets each hold's visibility to ``visibility_s`` at once and every
:attr:`~s3stagger.domain.keepalive.KeepAlive.beat_interval_s` until the call ends. The call does not
wait for the first beat (two SQS requests): it starts reading its object beside it, and ending the
call waits for the beat in progress, so no beat lands after the caller deleted the message. A hold that
cannot be renewed (its receipt handle no longer holds the message: the lease lapsed and another
dispatcher took it, or the message was deleted) is reported once and left alone; the call goes on.
A call that takes further messages (:mod:`s3stagger.adapters.message_chain`) adds each one's hold
with :meth:`VisibilityKeepAlive.add` and drops it with :meth:`VisibilityKeepAlive.release` before it
deletes or gives the message back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

import botocore.exceptions

from s3stagger.domain.keepalive import Hold, KeepAlive

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

HoldLost = Callable[[Hold, str], None]


class VisibilityKeepAlive:
    """``with VisibilityKeepAlive(sqs, keepalive): <the call>`` (see the module doc)."""

    def __init__(self, sqs: SQSClient, keepalive: KeepAlive, on_lost: HoldLost | None = None) -> None:
        self._sqs = sqs
        self._keepalive = keepalive
        self._on_lost = on_lost or (lambda _hold, _why: None)
        self._live = list(keepalive.holds)
        self._beating = threading.Lock()
        """Held for a whole beat: a released hold is not renewed after :meth:`release` returns."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="visibility-keepalive", daemon=True)
        self.beats = 0

    def __enter__(self) -> VisibilityKeepAlive:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        self.beat()
        while not self._stop.wait(self._keepalive.beat_interval_s):
            self.beat()

    @property
    def visibility_s(self) -> int:
        """What each beat sets a hold's visibility to."""
        return self._keepalive.visibility_s

    def add(self, hold: Hold) -> None:
        """Renew ``hold`` from the next beat on (its receive set its visibility)."""
        with self._beating:
            self._live.append(hold)

    def release(self, hold: Hold) -> None:
        """Stop renewing ``hold``; once this returns no beat touches it (the caller may delete it)."""
        with self._beating:
            if hold in self._live:
                self._live.remove(hold)

    def beat(self) -> None:
        """Renew every hold still held once."""
        with self._beating:
            self._beat_once()

    def _beat_once(self) -> None:
        for hold in list(self._live):
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=hold.queue_url,
                    ReceiptHandle=hold.receipt_handle,
                    VisibilityTimeout=self._keepalive.visibility_s,
                )
            except botocore.exceptions.ClientError as error:
                self._live.remove(hold)
                self._on_lost(hold, str(error))
            except botocore.exceptions.BotoCoreError:
                continue  # a network hiccup: the next beat tries again, before the hold lapses
        self.beats += 1
