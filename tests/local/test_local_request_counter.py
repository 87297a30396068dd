"""The emulator's request counter: every AWS call counted by origin, service and action."""

import io
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from s3stagger.local import request_counter
from s3stagger.local.emulator import Emulator
from s3stagger.local.request_counter import (
    HARNESS_USER_AGENT,
    ORIGIN_HARNESS,
    ORIGIN_PATTERN,
    ORIGIN_USER,
    USER_USER_AGENT,
    RequestCounter,
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


def client(emulator: Emulator, service: str, agent: str | None = None) -> Any:
    config = Config(user_agent_extra=agent) if agent else Config()
    return boto3.client(service, config=config, **emulator.client_settings())  # type: ignore[call-overload]


def test_calls_are_counted_by_origin_service_and_action_with_empty_receives(emulator: Emulator) -> None:
    counter = emulator.request_counter
    assert isinstance(counter, RequestCounter)
    sqs = client(emulator, "sqs")
    url = sqs.create_queue(QueueName="counted")["QueueUrl"]
    s3_user = client(emulator, "s3", USER_USER_AGENT)
    s3_user.create_bucket(Bucket="counted-bucket")
    counter.reset()

    sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)  # empty
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)  # one message
    s3_user.put_object(Bucket="counted-bucket", Key="a.csv", Body=b"x")
    client(emulator, "s3").get_object(Bucket="counted-bucket", Key="a.csv")
    client(emulator, "sqs", HARNESS_USER_AGENT).get_queue_attributes(QueueUrl=url, AttributeNames=["All"])

    assert counter.snapshot(ORIGIN_PATTERN) == {
        "s3": {"GetObject": 1},
        "sqs": {"ReceiveMessage": 2, "ReceiveMessage.empty": 1, "SendMessage": 1},
    }
    assert counter.snapshot(ORIGIN_USER) == {"s3": {"PutObject": 1}}
    assert counter.snapshot(ORIGIN_HARNESS) == {"sqs": {"GetQueueAttributes": 1}}
    assert counter.snapshot()["sqs"]["ReceiveMessage"] == 2


def test_query_protocol_and_rest_requests_are_named() -> None:
    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ)
        start_response("200 OK", [])
        return [b"<ReceiveMessageResponse></ReceiveMessageResponse>"]

    counter = RequestCounter(app)
    body = b"Action=ReceiveMessage&QueueUrl=x"
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=k/20261130/us-east-1/sqs/aws4_request, Signed",
        "wsgi.input": io.BytesIO(body),
    }
    assert list(counter(environ, lambda *_: None)) == [b"<ReceiveMessageResponse></ReceiveMessageResponse>"]
    assert seen[0]["wsgi.input"].read() == body, "the application still reads the body"
    assert counter.snapshot() == {"sqs": {"ReceiveMessage": 1, "ReceiveMessage.empty": 1}}
    assert request_counter.s3_action("GET", "/bucket", "list-type=2") == "ListObjects"
    assert request_counter.s3_action("HEAD", "/bucket/key", "") == "HeadObject"
    assert request_counter.s3_action("POST", "/bucket", "delete") == "DeleteObjects"
    assert (
        request_counter.action_of("lambda", {"PATH_INFO": "/2015-03-31/functions/f/invocations"}, b"")
        == "Invoke"
    )
    assert (
        request_counter.service_of({"HTTP_X_AMZ_TARGET": "AWSStepFunctions.StartExecution"})
        == "stepfunctions"
    )
    assert request_counter.is_empty_receive(b'{"Messages": [{"Body": "x"}]}') is False
