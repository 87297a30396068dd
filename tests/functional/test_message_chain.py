"""A call's further messages on real SQS (moto server): taken highest priority first and held by the
keep-alive, a finished one deleted, one given back visible at once, a malformed one ends the chain."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from _moto_support import moto_client

from s3stagger.adapters.message_chain import MessageChain, QueuedMessage, chain_queues
from s3stagger.adapters.visibility_keepalive import VisibilityKeepAlive
from s3stagger.domain.keepalive import Hold, KeepAlive
from s3stagger.domain.model import Cursor, InvalidRequestError

EVENT = {
    "detail-type": "Object Created",
    "detail": {"bucket": {"name": "uploads"}, "object": {"key": "normal/a.csv", "etag": "e-1"}},
}


def queues(sqs: Any) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [sqs.create_queue(QueueName=f"chain-{run}-{name}")["QueueUrl"] for name in ("high", "normal")]


def chain_of(sqs: Any, urls: list[str]) -> tuple[MessageChain, VisibilityKeepAlive]:
    own = Hold(urls[1], "own-receipt")
    keepalive = VisibilityKeepAlive(sqs, KeepAlive(30, (), own))
    return MessageChain(sqs, urls, keepalive, own), keepalive


def visible(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_the_high_queue_goes_first_and_a_taken_message_is_held_and_parsed(endpoint_url: str) -> None:
    sqs = moto_client(endpoint_url, "sqs")
    urls = queues(sqs)
    cursor = Cursor(7, 120, 8, "e-1", None)
    sqs.send_message(QueueUrl=urls[1], MessageBody=json.dumps(EVENT))
    sqs.send_message(
        QueueUrl=urls[0],
        MessageBody=json.dumps(EVENT),
        MessageAttributes={"cursor": {"DataType": "String", "StringValue": json.dumps(cursor.as_dict())}},
    )
    chain, keepalive = chain_of(sqs, urls)

    first = asyncio.run(chain.take())
    second = asyncio.run(chain.take())

    assert first is not None
    assert isinstance(first.tag, QueuedMessage)
    assert first.tag.queue_index == first.rank == 0  # its rows go first in the call's pool
    assert chain.own_rank == 1  # the call's own message came from the normal queue
    assert first.request is not None
    assert first.request.cursor == cursor  # a continuation resumes where its attribute says
    assert second is not None
    assert second.tag is not None
    assert second.tag.queue_index == second.rank == 1
    assert visible(sqs, urls[0]) == visible(sqs, urls[1]) == 0  # both held for the keep-alive's 30 s
    assert asyncio.run(chain.take()) is None
    answer = second.tag.as_answer()
    assert answer["queueUrl"] == urls[1]
    assert answer["message"]["Body"] == json.dumps(EVENT)
    keepalive.beat()  # the keep-alive renews what the chain took
    assert keepalive.beats == 1


def test_a_finished_message_is_deleted_and_an_unfinished_one_given_back(endpoint_url: str) -> None:
    sqs = moto_client(endpoint_url, "sqs")
    urls = queues(sqs)
    for _ in range(2):
        sqs.send_message(QueueUrl=urls[1], MessageBody=json.dumps(EVENT))
    chain, _ = chain_of(sqs, urls)
    done, unfinished = asyncio.run(chain.take()), asyncio.run(chain.take())
    assert done is not None
    assert unfinished is not None

    asyncio.run(chain.delete(done))
    asyncio.run(chain.give_back(unfinished))

    [again] = sqs.receive_message(QueueUrl=urls[1], MaxNumberOfMessages=10)["Messages"]
    assert unfinished.tag is not None
    assert again["MessageId"] == unfinished.tag.message["MessageId"]


def test_a_message_that_names_no_object_is_taken_with_its_error(endpoint_url: str) -> None:
    sqs = moto_client(endpoint_url, "sqs")
    urls = queues(sqs)
    sqs.send_message(QueueUrl=urls[1], MessageBody="not json")
    chain, _ = chain_of(sqs, urls)

    link = asyncio.run(chain.take())

    assert link is not None
    assert link.request is None
    assert isinstance(link.error, InvalidRequestError)
    assert "no S3 event" in str(link.error)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, None),
        (
            {"chain": {"queue_urls": ["https://q/high", "https://q/normal"]}},
            ["https://q/high", "https://q/normal"],
        ),
    ],
)
def test_the_payload_names_the_queues_to_chain_from(
    payload: dict[str, Any], expected: list[str] | None
) -> None:
    assert chain_queues(payload) == expected


@pytest.mark.parametrize("spec", [[], {"queue_urls": []}, {"queue_urls": [""]}, {"queue_urls": "q"}])
def test_a_malformed_chain_is_refused(spec: Any) -> None:
    with pytest.raises(InvalidRequestError, match="chain must be"):
        chain_queues({"chain": spec})
