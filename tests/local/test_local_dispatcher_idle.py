"""A dispatcher slot that found the queues empty long-polls the lowest-priority queue: a message
that arrives meanwhile is taken by the same execution, at once. Its own stack: one emulator per
process, and the dispatcher tests run with no idle looks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings

DEADLINE_S = 300
"""One generous deadline for a condition on a loaded machine, never the expected pace."""
NO_STAGGER = {
    "backlog_depth": 20,
    "priorities": {"high": {"spacing_s": 0, "max_delay_s": 0}, "normal": {"spacing_s": 0, "max_delay_s": 0}},
}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalPipeline]:
    settings = LocalPipelineSettings(
        downstream_url="http://127.0.0.1:9/rows",
        start_scheduler=False,
        concurrency_budget=1,
        dispatcher={"idle_polls": 2, "idle_wait_s": 3},
        stagger=NO_STAGGER,
    )
    with LocalPipeline(settings) as running:
        yield running


def states_entered(stack: LocalPipeline, execution_arn: str) -> list[str]:
    events = stack.client("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)
    return [
        e["stateEnteredEventDetails"]["name"] for e in events["events"] if "stateEnteredEventDetails" in e
    ]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_an_idle_slot_takes_a_message_that_arrives_during_its_long_poll(stack: LocalPipeline) -> None:
    calls: list[Any] = []

    def complete(event: Any, context: Any) -> dict[str, Any]:
        calls.append(event)
        return {"status": "COMPLETE", "cursor": None}

    assert stack.runtime is not None
    stack.runtime.register(stack.names.function_name, complete)
    arn = stack.start_dispatcher()
    wait_for(lambda: "IdleLongPoll" in states_entered(stack, arn), "the slot never went idle")
    body = {"bucket": stack.names.bucket, "key": "normal/late.csv"}
    stack.client("sqs").send_message(QueueUrl=stack.names.queue_urls["normal"], MessageBody=json.dumps(body))
    wait_for(lambda: not stack.running_dispatchers(), "the dispatcher did not end")

    assert [call["object"]["key"] for call in calls] == ["normal/late.csv"]
    states = states_entered(stack, arn)
    assert "TookWhileIdle" in states
    assert states.index("TookWhileIdle") < states.index("InvokeProcessor")
    assert stack.queue_depth(stack.names.queue_urls["normal"]).total == 0
