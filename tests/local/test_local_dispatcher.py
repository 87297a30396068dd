"""The dispatcher state machine on the emulator, with small test handlers for the processor."""

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from s3stagger import definitions
from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings

WAIT_S = 60
ZERO_STAGGER = {
    "backlog_depth": 20,
    "priorities": {"high": {"spacing_s": 0, "max_delay_s": 0}, "normal": {"spacing_s": 0, "max_delay_s": 0}},
}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalPipeline]:
    settings = LocalPipelineSettings(
        downstream_url="http://127.0.0.1:9/rows",
        start_scheduler=False,
        max_receive_count=2,
        dispatcher={
            "receive_batch_size": 2,
            "max_iterations_per_execution": 2,
            "max_partials_per_object": 2,
            "failure_retry_delay_s": 1,
        },
        stagger=ZERO_STAGGER,
    )
    with LocalPipeline(settings) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_queues(stack: LocalPipeline) -> Iterator[None]:
    yield
    sqs = stack.client("sqs")
    deadline = time.monotonic() + 10
    for url in [*stack.names.queue_urls.values(), *stack.names.dlq_urls.values()]:
        while stack.queue_depth(url).total and time.monotonic() < deadline:
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            time.sleep(0.1)
    stack.client("ssm").put_parameter(
        Name=stack.names.budget_parameter, Value="10", Overwrite=True, Type="String"
    )


class Recorder:
    """A processor stand-in: records each call and answers with ``answer(event)``."""

    def __init__(self, answer: Callable[[Any], Any]) -> None:
        self.answer = answer
        self.calls: list[Any] = []
        self.lock = threading.Lock()

    def __call__(self, event: Any, context: Any) -> Any:
        with self.lock:
            self.calls.append(event)
        return self.answer(event)


def use(stack: LocalPipeline, answer: Callable[[Any], Any]) -> Recorder:
    recorder = Recorder(answer)
    assert stack.runtime is not None
    stack.runtime.register(stack.names.function_name, recorder)
    return recorder


def complete(event: Any) -> dict[str, Any]:
    return {"status": "COMPLETE", "cursor": None}


def send(stack: LocalPipeline, priority: str, key: str) -> None:
    body = {"bucket": stack.names.bucket, "key": key}
    stack.client("sqs").send_message(QueueUrl=stack.names.queue_urls[priority], MessageBody=json.dumps(body))


def dispatch(stack: LocalPipeline) -> list[dict[str, Any]]:
    """Run one dispatcher (and its continuations) to the end; the executions started, oldest first."""
    sfn = stack.client("stepfunctions")
    before = {
        e["executionArn"]
        for e in sfn.list_executions(stateMachineArn=stack.names.state_machine_arn)["executions"]
    }
    stack.start_dispatcher()
    deadline = time.monotonic() + WAIT_S
    while stack.running_dispatchers():
        assert time.monotonic() < deadline, "dispatcher did not finish"
        time.sleep(0.1)
    executions = sfn.list_executions(stateMachineArn=stack.names.state_machine_arn)["executions"]
    started = [e for e in executions if e["executionArn"] not in before]
    return sorted(started, key=lambda e: e["startDate"])


def history(stack: LocalPipeline, execution_arn: str) -> list[dict[str, Any]]:
    sfn = stack.client("stepfunctions")
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


def states_entered(stack: LocalPipeline, execution_arn: str) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"]
        for e in history(stack, execution_arn)
        if "stateEnteredEventDetails" in e
    ]


def depth(stack: LocalPipeline, url: str) -> int:
    return stack.queue_depth(url).total


def test_completes_every_message_and_continues_as_a_new_execution(stack: LocalPipeline) -> None:
    recorder = use(stack, complete)
    for i in range(3):
        send(stack, "normal", f"normal/k{i}.csv")
    executions = dispatch(stack)
    assert sorted(call["object"]["key"] for call in recorder.calls) == [
        "normal/k0.csv",
        "normal/k1.csv",
        "normal/k2.csv",
    ]
    assert all(call["cursor"] is None for call in recorder.calls)
    assert depth(stack, stack.names.queue_urls["normal"]) == 0
    # batch size 2 x 2 iterations per execution: the third object needs the continuation
    first, continuation = executions
    assert continuation["name"] == f"{first['name']}-g1"
    assert [e["status"] for e in executions] == ["SUCCEEDED", "SUCCEEDED"]
    assert "ContinueAsNewExecution" in states_entered(stack, first["executionArn"])
    assert "AcquireLease" not in states_entered(
        stack, continuation["executionArn"]
    )  # the lease was handed on
    assert "ReleaseLease" in states_entered(stack, continuation["executionArn"])
    assert stack.queue_depth(stack.names.lease_queue_url).visible == 1


def test_high_priority_is_served_first(stack: LocalPipeline) -> None:
    recorder = use(stack, complete)
    send(stack, "normal", "normal/later.csv")
    send(stack, "high", "high/first.csv")
    dispatch(stack)
    assert [call["object"]["key"] for call in recorder.calls] == ["high/first.csv", "normal/later.csv"]


def test_partial_answers_continue_from_the_cursor_even_across_messages(stack: LocalPipeline) -> None:
    def partial_until_five(event: Any) -> dict[str, Any]:
        position = (event["cursor"] or {}).get("row", 0)
        if position < 4:
            return {"status": "PARTIAL", "cursor": {"row": position + 1}}
        return {"status": "COMPLETE", "cursor": None}

    recorder = use(stack, partial_until_five)
    send(stack, "normal", "normal/big.csv")
    dispatch(stack)
    assert [call["cursor"] for call in recorder.calls] == [
        None,
        {"row": 1},
        {"row": 2},
        {"row": 3},
        {"row": 4},
    ]
    assert {call["object"]["key"] for call in recorder.calls} == {"normal/big.csv"}
    assert depth(stack, stack.names.queue_urls["normal"]) == 0


def test_a_failure_is_recorded_retried_and_after_max_receive_count_moved_to_the_dlq(
    stack: LocalPipeline,
) -> None:
    events, sqs = stack.client("events"), stack.client("sqs")
    capture_url = sqs.create_queue(QueueName="captured-failures")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="capture-failures", EventPattern=json.dumps({"source": ["s3stagger.dispatcher"]}))
    events.put_targets(Rule="capture-failures", Targets=[{"Id": "q", "Arn": capture_arn}])
    try:

        def crash(event: Any) -> Any:
            raise RuntimeError("downstream exploded")

        recorder = use(stack, crash)
        send(stack, "normal", "normal/poison.csv")
        deadline = time.monotonic() + WAIT_S
        while depth(stack, stack.names.dlq_urls["normal"]) == 0:
            assert time.monotonic() < deadline, "the message never reached the DLQ"
            dispatch(stack)
            time.sleep(0.5)
        assert len(recorder.calls) == 2  # maxReceiveCount
        moved = sqs.receive_message(QueueUrl=stack.names.dlq_urls["normal"], VisibilityTimeout=0)["Messages"][
            0
        ]
        assert json.loads(moved["Body"])["key"] == "normal/poison.csv"
        captured = sqs.receive_message(QueueUrl=capture_url, MaxNumberOfMessages=10)["Messages"]
    finally:  # the module's stack outlives this test: leave no rule or queue behind
        events.remove_targets(Rule="capture-failures", Ids=["q"])
        events.delete_rule(Name="capture-failures")
        sqs.delete_queue(QueueUrl=capture_url)
    failure = json.loads(captured[0]["Body"])
    assert failure["detail-type"] == "Object processing failed"
    assert failure["detail"]["error"]["Error"] == "RuntimeError"
    assert "downstream exploded" in failure["detail"]["error"]["Cause"]
    assert failure["detail"]["queueUrl"] == stack.names.queue_urls["normal"]


def test_an_answer_that_is_not_a_status_is_a_failure_and_the_message_stays(stack: LocalPipeline) -> None:
    use(stack, lambda event: {"status": "MAYBE", "cursor": None})
    send(stack, "normal", "normal/odd.csv")
    (execution,) = dispatch(stack)
    entered = states_entered(stack, execution["executionArn"])
    assert "UnexpectedAnswer" in entered
    assert "DeleteMessage" not in entered
    assert depth(stack, stack.names.queue_urls["normal"]) == 1


def test_a_dispatcher_that_finds_the_lease_held_ends_without_touching_the_queues(
    stack: LocalPipeline,
) -> None:
    recorder = use(stack, complete)
    send(stack, "normal", "normal/waiting.csv")
    sqs = stack.client("sqs")
    token = sqs.receive_message(QueueUrl=stack.names.lease_queue_url, VisibilityTimeout=60)["Messages"][0]
    try:
        (blocked,) = dispatch(stack)
        assert states_entered(stack, blocked["executionArn"])[-1] == "AnotherDispatcherRunning"
        assert recorder.calls == []
    finally:
        sqs.change_message_visibility(
            QueueUrl=stack.names.lease_queue_url, ReceiptHandle=token["ReceiptHandle"], VisibilityTimeout=0
        )
    dispatch(stack)
    assert [call["object"]["key"] for call in recorder.calls] == ["normal/waiting.csv"]


def test_a_lost_lease_token_is_put_back(stack: LocalPipeline) -> None:
    use(stack, complete)
    sqs = stack.client("sqs")
    token = sqs.receive_message(QueueUrl=stack.names.lease_queue_url)["Messages"][0]
    sqs.delete_message(QueueUrl=stack.names.lease_queue_url, ReceiptHandle=token["ReceiptHandle"])
    (execution,) = dispatch(stack)
    assert "RestoreLeaseToken" in states_entered(stack, execution["executionArn"])
    assert stack.queue_depth(stack.names.lease_queue_url).visible == 1


@pytest.mark.parametrize(("stored", "used"), [("0", 1), ("abc", 10), ("99", 40), ("7", 7)])
def test_the_budget_is_read_and_clamped(stack: LocalPipeline, stored: str, used: int) -> None:
    use(stack, complete)
    stack.client("ssm").put_parameter(
        Name=stack.names.budget_parameter, Value=stored, Overwrite=True, Type="String"
    )
    (execution,) = dispatch(stack)
    receive = next(
        e
        for e in history(stack, execution["executionArn"])
        if e.get("stateEnteredEventDetails", {}).get("name") == "ReceiveHigh"
    )
    state = json.loads(receive["stateEnteredEventDetails"]["input"])
    assert state["budget"]["value"] == used
    # never more messages than run at once (the module's receive_batch_size is 2)
    assert state["batchSize"]["size"] == min(used, 2)


def test_lambda_throttles_get_the_recommended_retrier(stack: LocalPipeline) -> None:
    lam = stack.client("lambda")
    name = stack.names.function_name
    reserved = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    try:
        release = threading.Event()

        def slow(event: Any) -> dict[str, Any]:
            release.wait(0.5)
            return complete(event)

        recorder = use(stack, slow)
        send(stack, "normal", "normal/t1.csv")
        send(stack, "normal", "normal/t2.csv")
        dispatch(stack)
    finally:  # restore what provisioning set, whatever it is
        if reserved is None:
            lam.delete_function_concurrency(FunctionName=name)
        else:
            lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
    assert sorted(call["object"]["key"] for call in recorder.calls) == ["normal/t1.csv", "normal/t2.csv"]
    assert stack.processor_counters().throttles >= 1
    assert depth(stack, stack.names.queue_urls["normal"]) == 0


def test_a_body_that_is_not_json_is_a_recorded_failure_not_a_failed_execution(stack: LocalPipeline) -> None:
    recorder = use(stack, complete)
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.names.queue_urls["normal"], MessageBody="not json at all")
    send(stack, "normal", "normal/fine.csv")
    deadline = time.monotonic() + WAIT_S
    executions: list[dict[str, Any]] = []
    while depth(stack, stack.names.dlq_urls["normal"]) == 0:
        assert time.monotonic() < deadline, "the malformed message never reached the DLQ"
        executions += dispatch(stack)
        time.sleep(0.5)
    assert {e["status"] for e in executions} == {"SUCCEEDED"}
    assert any("MalformedMessage" in states_entered(stack, e["executionArn"]) for e in executions)
    assert [call["object"]["key"] for call in recorder.calls] == ["normal/fine.csv"]
    moved = sqs.receive_message(QueueUrl=stack.names.dlq_urls["normal"], VisibilityTimeout=0)["Messages"][0]
    assert moved["Body"] == "not json at all"


def test_the_shipped_settings_keep_the_worst_case_history_below_25000_events(stack: LocalPipeline) -> None:
    """Measure events per batch, per object and per PARTIAL round, then apply the shipped settings."""

    def partial_once(event: Any) -> dict[str, Any]:
        if event["cursor"] is None and event["object"]["key"].startswith("normal/p"):
            return {"status": "PARTIAL", "cursor": {"row": 1}}
        return {"status": "COMPLETE", "cursor": None}

    def events_of_one_run(keys: list[str]) -> int:
        for key in keys:
            send(stack, "normal", key)
        (execution,) = dispatch(stack)  # up to 2 objects: one batch, one execution
        return len(history(stack, execution["executionArn"]))

    use(stack, partial_once)
    one = events_of_one_run(["normal/a.csv"])
    two = events_of_one_run(["normal/b.csv", "normal/c.csv"])
    two_with_partials = events_of_one_run(["normal/p1.csv", "normal/p2.csv"])
    per_object = two - one
    per_partial = (two_with_partials - two) / 2
    per_execution_and_batch = one - per_object  # start, lease, one batch, the empty receive, release
    assert per_object > 0
    assert per_partial > 0

    shipped = definitions.read_json("dispatcher.json")
    batch, iterations, partials = (
        shipped["receive_batch_size"],
        shipped["max_iterations_per_execution"],
        shipped["max_partials_per_object"],
    )
    worst = per_execution_and_batch + iterations * (
        per_execution_and_batch + batch * (per_object + partials * per_partial)
    )
    assert worst < 25_000 * 0.9, (per_execution_and_batch, per_object, per_partial, worst)
