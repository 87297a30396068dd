"""The next messages of a dispatcher slot, taken by the processor call that serves them.

A slot's call gets ``"chain": {"queue_urls": [...]}`` (highest priority first) beside its message.
When its object's last row is taken, the call takes the next message itself
(:meth:`ObjectProcessor.run_chain <s3stagger.processor.ObjectProcessor.run_chain>`): one receive per
queue in order, claimed for the keep-alive's visibility and then renewed by it like the call's own
message. So the downstream does not idle while a slot hands over (delete, receive, claim, invoke,
open) between objects, and a chained object costs no Lambda request nor state transition.

Every message of a call but one is settled here (:func:`~s3stagger.processor.answered_link`): a
clean object's message is deleted once another object followed it; one that did not end clean is
given back to its queue (visible at once; its receive counts toward ``max_receive_count``). The one
left is the call's answer, which the dispatcher settles as it settles any call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from s3stagger.adapters.visibility_keepalive import VisibilityKeepAlive
from s3stagger.domain.events import CURSOR_ATTRIBUTE, parse_queue_message
from s3stagger.domain.keepalive import Hold
from s3stagger.domain.model import InvalidRequestError
from s3stagger.processor import ChainLink

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

CHAIN_KEY = "chain"
MESSAGE_FIELDS = ("MessageId", "ReceiptHandle", "Body", "MessageAttributes")
"""What the answer carries of a chained message: the fields the dispatcher reads of its own."""


@dataclass(frozen=True)
class QueuedMessage:
    """A message a call took: the queue it came from (its index in priority order) and itself."""

    queue_url: str
    queue_index: int
    message: dict[str, Any]

    @property
    def hold(self) -> Hold:
        return Hold(self.queue_url, str(self.message["ReceiptHandle"]))

    def as_answer(self) -> dict[str, Any]:
        """The dispatcher's view: ``message`` (as its receive gives it), ``queueUrl``, ``queueIndex``."""
        message = {name: self.message[name] for name in MESSAGE_FIELDS if name in self.message}
        return {"message": message, "queueUrl": self.queue_url, "queueIndex": self.queue_index}


def chain_queues(event: Any) -> list[str] | None:
    """The queue URLs of the invoke payload's ``chain`` (None: the call serves its message only)."""
    spec = event.get(CHAIN_KEY) if isinstance(event, dict) else None
    if spec is None:
        return None
    urls = spec.get("queue_urls") if isinstance(spec, dict) else None
    if not isinstance(urls, list) or not urls or not all(isinstance(url, str) and url for url in urls):
        raise InvalidRequestError(f"chain must be {{'queue_urls': [<queue URL>, ...]}}, got {spec!r}")
    return urls


class MessageChain:
    """Takes, deletes and gives back the further messages of one call (see the module doc)."""

    def __init__(
        self, sqs: SQSClient, queue_urls: Sequence[str], keepalive: VisibilityKeepAlive, own: Hold
    ) -> None:
        """``own``: the call's own message (a link tagged ``None``)."""
        self._sqs = sqs
        self._own = own
        self._queue_urls = list(queue_urls)
        self._keepalive = keepalive

    @property
    def own_rank(self) -> int:
        """The call's own message's priority: its queue's place in the chain's queues (0 when none)."""
        urls = self._queue_urls
        return urls.index(self._own.queue_url) if self._own.queue_url in urls else 0

    async def take(self) -> ChainLink[QueuedMessage | None] | None:
        """The next message, highest priority first, held from now on; None: every queue is empty.

        A message that names no object is taken too: the chain ends at it and the answer is its
        failure, which the dispatcher records as it records its own malformed messages."""
        queued = await asyncio.to_thread(self._receive)
        if queued is None:
            return None
        self._keepalive.add(queued.hold)
        link: ChainLink[QueuedMessage | None] = ChainLink(queued, None, rank=queued.queue_index)
        try:
            link.request = parse_queue_message(queued.message)
        except InvalidRequestError as error:
            link.error = error
        return link

    def _receive(self) -> QueuedMessage | None:
        for index, url in enumerate(self._queue_urls):
            messages = self._sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=1,
                VisibilityTimeout=self._keepalive.visibility_s,
                WaitTimeSeconds=0,
                MessageAttributeNames=[CURSOR_ATTRIBUTE],
            ).get("Messages", [])
            if messages:
                return QueuedMessage(url, index, dict(messages[0]))
        return None

    async def delete(self, link: ChainLink[QueuedMessage | None]) -> None:
        """The object is done: its message goes (the call's own message too, once one followed it)."""
        await asyncio.to_thread(self._settle, link, None)

    async def give_back(self, link: ChainLink[QueuedMessage | None]) -> None:
        """The object did not end clean and is not the answer's: visible again at once."""
        await asyncio.to_thread(self._settle, link, 0)

    def _settle(self, link: ChainLink[QueuedMessage | None], visibility_s: int | None) -> None:
        hold = self._own if link.tag is None else link.tag.hold
        self._keepalive.release(hold)
        if visibility_s is None:
            self._sqs.delete_message(QueueUrl=hold.queue_url, ReceiptHandle=hold.receipt_handle)
        else:
            self._sqs.change_message_visibility(
                QueueUrl=hold.queue_url, ReceiptHandle=hold.receipt_handle, VisibilityTimeout=visibility_s
            )
