"""The dispatcher state machine on the emulator, with small test handlers for the processor.

Every test runs against both state machine types (``dispatcher.json`` ``state_machine_type``):
EXPRESS (the default) and STANDARD run the same ASL.
"""

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.utils import unix_time_millis
from moto.sqs.models import sqs_backends

from s3stagger import definitions
from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings
from s3stagger.local.provision import LEASE_GROUP, LEASE_MESSAGE_BODY

WAIT_S = 60
DEADLINE_S = 300
"""One generous deadline for a condition on a loaded machine, never the expected pace."""
ZERO_STAGGER = {
    "backlog_depth": 20,
    "priorities": {"high": {"spacing_s": 0, "max_delay_s": 0}, "normal": {"spacing_s": 0, "max_delay_s": 0}},
}


@pytest.fixture(scope="module", params=["EXPRESS", "STANDARD"])
def stack(request: pytest.FixtureRequest) -> Iterator[LocalPipeline]:
    settings = LocalPipelineSettings(
        downstream_url="http://127.0.0.1:9/rows",
        start_scheduler=False,
        max_receive_count=2,
        dispatcher_type=request.param,
        dispatcher={
            "max_calls_per_slot": {"EXPRESS": 3, "STANDARD": 3},
            "max_partials_per_object": 2,
            "failure_retry_delay_s": 1,
            "idle_polls": 0,
        },
        stagger=ZERO_STAGGER,
    )
    with LocalPipeline(settings) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_queues(stack: LocalPipeline) -> Iterator[None]:
    yield
    sqs = stack.client("sqs")
    deadline = time.monotonic() + 120
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


def seconds_until_visible(stack: LocalPipeline, queue_url: str) -> list[float]:
    """How long each in-flight message of the queue stays hidden from now on. The SQS API does not
    tell, so this reads the emulator's SQS state (moto runs in this process)."""
    queue = sqs_backends[DEFAULT_ACCOUNT_ID][stack.settings.region].queues[queue_url.rsplit("/", 1)[1]]
    now_ms = unix_time_millis()
    return [(message.visible_at - now_ms) / 1000 for message in list(queue._messages) if not message.visible]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def put_back_a_lease_token(stack: LocalPipeline) -> None:
    """A stopped execution's token stays in flight until lease_s lapses; the next test needs one now."""
    sqs = stack.client("sqs")
    sqs.purge_queue(QueueUrl=stack.names.lease_queue_url)
    sqs.send_message(
        QueueUrl=stack.names.lease_queue_url,
        MessageBody=LEASE_MESSAGE_BODY,
        MessageGroupId=LEASE_GROUP,
        MessageDeduplicationId=uuid.uuid4().hex,
    )


def set_budget(stack: LocalPipeline, value: str) -> None:
    stack.client("ssm").put_parameter(
        Name=stack.names.budget_parameter, Value=value, Overwrite=True, Type="String"
    )


def test_completes_every_message_and_continues_as_a_new_execution(stack: LocalPipeline) -> None:
    recorder = use(stack, complete)
    set_budget(stack, "1")
    for i in range(4):
        send(stack, "normal", f"normal/k{i}.csv")
    executions = dispatch(stack)
    assert sorted(call["object"]["key"] for call in recorder.calls) == [f"normal/k{i}.csv" for i in range(4)]
    assert all(call["cursor"] is None for call in recorder.calls)
    assert depth(stack, stack.names.queue_urls["normal"]) == 0
    # one slot x 3 calls per slot and execution: the fourth object needs the continuation
    first, continuation = executions
    assert continuation["name"] == f"{first['name']}-g1"
    assert [e["status"] for e in executions] == ["SUCCEEDED", "SUCCEEDED"]
    assert "ContinueAsNewExecution" in states_entered(stack, first["executionArn"])
    handed_on = states_entered(stack, continuation["executionArn"])
    assert "LeaseQueueState" not in handed_on  # the continuation takes the lease given back at once
    assert "AnotherDispatcherRunning" not in handed_on
    assert "ReleaseLease" in handed_on
    assert stack.queue_depth(stack.names.lease_queue_url).visible == 1


def test_high_priority_is_served_first(stack: LocalPipeline) -> None:
    recorder = use(stack, complete)
    set_budget(stack, "1")
    send(stack, "normal", "normal/later.csv")
    send(stack, "high", "high/first.csv")
    send(stack, "high", "high/second.csv")
    dispatch(stack)
    assert [call["object"]["key"] for call in recorder.calls] == [
        "high/first.csv",
        "high/second.csv",
        "normal/later.csv",
    ]


def test_a_long_object_holds_one_slot_while_the_others_refill(stack: LocalPipeline) -> None:
    """Two slots: the small objects all pass through one slot while the other holds the long one."""
    small = [f"normal/small{i}.csv" for i in range(3)]  # the module allows 3 calls per slot
    small_done = threading.Event()
    released_by_small_objects: list[bool] = []

    def answer(event: Any) -> dict[str, Any]:
        key = event["object"]["key"]
        if key == "normal/long.csv":
            released_by_small_objects.append(small_done.wait(WAIT_S / 2))
            return complete(event)
        with recorder.lock:
            if {call["object"]["key"] for call in recorder.calls} >= set(small):
                small_done.set()
        return complete(event)

    recorder = use(stack, answer)
    set_budget(stack, "2")
    send(stack, "normal", "normal/long.csv")
    for key in small:
        send(stack, "normal", key)
    dispatch(stack)
    assert released_by_small_objects == [True]
    assert sorted(call["object"]["key"] for call in recorder.calls) == sorted([*small, "normal/long.csv"])
    assert depth(stack, stack.names.queue_urls["normal"]) == 0


def test_the_processor_gets_the_deadline_and_a_reached_deadline_continues_at_the_cursor(
    stack: LocalPipeline,
) -> None:
    def stop_at_the_deadline_once(event: Any) -> dict[str, Any]:
        if event["cursor"] is None:
            return {"status": "PARTIAL", "cursor": {"row": 7}, "deadline_reached": True}
        return {"status": "COMPLETE", "cursor": None, "deadline_reached": False}

    recorder = use(stack, stop_at_the_deadline_once)
    set_budget(stack, "1")
    send(stack, "normal", "normal/timed.csv")
    executions = dispatch(stack)
    assert [call["cursor"] for call in recorder.calls] == [None, {"row": 7}]
    deadline = recorder.calls[0]["deadline"]
    assert deadline["after_s"] == definitions.read_json("dispatcher.json")["time_budget_s"]
    assert deadline["budget"] == 1  # the budget the execution read: a higher one ends it early
    assert dt.datetime.fromisoformat(deadline["started_at"]).tzinfo is not None
    # the cursor travelled in a continuation message, resumed by the continuation execution
    assert [e["name"] for e in executions[1:]] == [f"{executions[0]['name']}-g1"]
    assert "HandOnCursor" in states_entered(stack, executions[0]["executionArn"])
    assert depth(stack, stack.names.queue_urls["normal"]) == 0


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


def chaining(stack: LocalPipeline, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> Recorder:
    """A processor stand-in that serves one further message the way the real one does: it takes the
    next message from the queues it is given, deletes its own and answers about the one it took."""
    sqs = stack.client("sqs")

    def serve(event: Any) -> Any:
        own = event["keepalive"]["message"]
        for index, url in enumerate(event["chain"]["queue_urls"]):
            taken = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30).get("Messages")
            if taken:
                sqs.delete_message(QueueUrl=own["queue_url"], ReceiptHandle=own["receipt_handle"])
                message = {"message": taken[0], "queueUrl": url, "queueIndex": index}
                return answer(message) | message
        return complete(event)

    return use(stack, serve)


def test_the_slot_settles_the_message_a_call_took_itself(stack: LocalPipeline) -> None:
    recorder = chaining(stack, lambda _taken: {"status": "COMPLETE", "cursor": None})
    set_budget(stack, "1")
    send(stack, "normal", "normal/first.csv")
    send(stack, "normal", "normal/second.csv")
    (execution,) = dispatch(stack)
    assert execution["status"] == "SUCCEEDED"
    assert [call["object"]["key"] for call in recorder.calls] == ["normal/first.csv"]
    entered = states_entered(stack, execution["executionArn"])
    assert "TakeChainedMessage" in entered
    assert depth(stack, stack.names.queue_urls["normal"]) == 0  # the one it took was deleted too


def test_a_failed_message_the_call_took_is_recorded_and_released_for_retry(stack: LocalPipeline) -> None:
    failed = {"status": "FAILED", "error": {"Error": "SystemicRejectionError", "Cause": "HTTP 403"}}
    chaining(stack, lambda _taken: failed)
    set_budget(stack, "1")
    send(stack, "normal", "normal/first.csv")
    send(stack, "normal", "normal/refused.csv")
    (execution,) = dispatch(stack)
    entered = states_entered(stack, execution["executionArn"])
    assert entered.index("ChainedFailure") < entered.index("RecordFailure") < entered.index("ReleaseForRetry")
    assert "DeleteMessage" not in entered
    assert depth(stack, stack.names.queue_urls["normal"]) == 1  # kept for its retry, not deleted
    # released with the receipt handle the answer named: hidden failure_retry_delay_s (1 s) at most,
    # not the 30 s the call's receive claimed
    assert all(left <= 1 for left in seconds_until_visible(stack, stack.names.queue_urls["normal"]))


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


@pytest.mark.parametrize(("stored", "used"), [("0", 1), ("abc", 5), ("99", 40), ("7", 7)])
def test_the_budget_is_read_and_clamped(stack: LocalPipeline, stored: str, used: int) -> None:
    use(stack, complete)
    stack.client("ssm").put_parameter(
        Name=stack.names.budget_parameter, Value=stored, Overwrite=True, Type="String"
    )
    (execution,) = dispatch(stack)
    slots = next(
        e
        for e in history(stack, execution["executionArn"])
        if e.get("stateEnteredEventDetails", {}).get("name") == "RunSlots"
    )
    state = json.loads(slots["stateEnteredEventDetails"]["input"])
    assert state["budget"]["value"] == used
    # what every processor call gets to tell whether the autoscaler outgrew it: the value as read
    assert state["budget"]["read"] == (None if stored == "abc" else int(stored))
    assert state["budget"]["slotIds"] == list(range(used))


def test_the_dispatcher_starts_no_more_calls_than_the_reserved_concurrency(stack: LocalPipeline) -> None:
    lam = stack.client("lambda")
    name = stack.names.function_name
    reserved = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    throttled_before = stack.processor_counters().throttles
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
    # the budget (10 slots) is clamped to the reserved concurrency read at the start: no call throttled
    assert stack.processor_counters().throttles == throttled_before
    assert depth(stack, stack.names.queue_urls["normal"]) == 0


def test_a_dispatcher_that_ends_while_lambda_refuses_the_call_hides_its_message_no_longer_than_the_claim(
    stack: LocalPipeline,
) -> None:
    """Lambda refuses the call (its one reserved concurrency is busy) and the execution ends in the
    retry (stopped here; on AWS also the Express 5-minute limit or a failed state): no processor
    runs to renew the message, so no hold the dispatcher set may outlast the claim (it used to be
    the 600 s ceiling set before every call, which hid the message ten minutes)."""
    lam, sfn, sqs = stack.client("lambda"), stack.client("stepfunctions"), stack.client("sqs")
    name, queue_url = stack.names.function_name, stack.names.queue_urls["normal"]
    reserved = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    busy = threading.Event()
    release = threading.Event()

    def answer(event: Any) -> dict[str, Any]:
        if event["object"]["key"] == "busy.csv":
            busy.set()
            release.wait(DEADLINE_S)
        return complete(event)

    recorder = use(stack, answer)
    try:
        busy_call = json.dumps({"object": {"key": "busy.csv"}})
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=busy_call)
        assert busy.wait(DEADLINE_S), "the call that keeps Lambda busy never started"
        throttled_before = stack.processor_counters().throttles
        send(stack, "normal", "normal/refused.csv")
        execution = stack.start_dispatcher()
        wait_for(lambda: stack.processor_counters().throttles > throttled_before, "no call was refused")
        sfn.stop_execution(executionArn=execution, cause="ended while Lambda refused its call")
        wait_for(lambda: not stack.running_dispatchers(), "the stopped execution kept running")
        hidden = seconds_until_visible(stack, queue_url)
        # the receive's claim, or a retry wait (at most 17 s this early) and the claim after it
        claim = stack.settings.load_definitions().dispatcher.receive_claim_s
        assert len(hidden) == 1
        assert hidden[0] <= claim + 17, hidden
        assert [call["object"]["key"] for call in recorder.calls] == ["busy.csv"]
    finally:
        release.set()
        if reserved is None:
            lam.delete_function_concurrency(FunctionName=name)
        else:
            lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
        sqs.purge_queue(QueueUrl=queue_url)
        put_back_a_lease_token(stack)
        wait_for(lambda: stack.processor_counters().in_flight == 0, "the busy call did not end")


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


def test_the_shipped_settings_keep_the_worst_case_standard_history_below_25000_events(
    stack: LocalPipeline,
) -> None:
    """Measure events per execution, per empty slot, per object and per PARTIAL round (Standard keeps a
    history; Express does not), then apply the shipped settings."""
    if stack.names.state_machine_type != "STANDARD":
        pytest.skip("an Express execution keeps no history")

    def partial_once(event: Any) -> dict[str, Any]:
        if event["cursor"] is None and event["object"]["key"].startswith("normal/p"):
            return {"status": "PARTIAL", "cursor": {"row": 1}}
        return {"status": "COMPLETE", "cursor": None}

    def events_of_one_run(keys: list[str], slots: int = 1) -> int:
        set_budget(stack, str(slots))
        for key in keys:
            send(stack, "normal", key)
        (execution,) = dispatch(stack)  # fewer calls than max_calls_per_slot: one execution
        return len(history(stack, execution["executionArn"]))

    use(stack, partial_once)
    empty = events_of_one_run([])
    per_empty_slot = events_of_one_run([], slots=2) - empty
    one = events_of_one_run(["normal/a.csv"])
    per_object = events_of_one_run(["normal/b.csv", "normal/c.csv"]) - one
    per_partial = events_of_one_run(["normal/p1.csv"]) - one
    assert min(per_empty_slot, per_object, per_partial) > 0

    shipped = definitions.read_json("dispatcher.json")
    slots = definitions.read_json("budget.json")["maximum"]
    calls = shipped["max_calls_per_slot"]["STANDARD"]
    # an idle round looks at every queue like an empty slot, plus its Pass (2 events), the long
    # poll (a Task: 5) and its Choice (2)
    per_idle_round = per_empty_slot + 9
    # a slot's first message may stagger (this stack's spacing is 0, the shipped one is not): the
    # first depth read and its decision (QueueDepth: a Task, 5 events; Backlog, StaggerDelay,
    # StaggerOver: 2 each), the hold (5), per step of the wait its Wait, StaggerWaited and
    # StaggerOver (6) and, before each step but the first, the depth read again (QueueDepth, Backlog: 7)
    spacings = shipped["stagger"]["priorities"].values()
    steps = max(p["max_delay_s"] // p["spacing_s"] for p in spacings if p["spacing_s"])
    per_stagger = 11 + 5 + steps * 6 + max(0, steps - 1) * 7
    worst = (
        empty
        + (slots - 1) * per_empty_slot
        + slots * calls * max(per_object, per_partial)
        + slots * shipped["idle_polls"] * per_idle_round
        + slots * per_stagger
    )
    assert worst < 25_000 * 0.9, (empty, per_empty_slot, per_object, per_partial, per_stagger, worst)
