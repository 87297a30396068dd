"""End to end on one machine: S3 upload → EventBridge → SQS → scheduler → dispatcher state machine →
the real processor handler → the real downstream simulator. Small workloads, so the file stays quick.
"""

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from s3stagger.handlers.process_object import handler as process_object
from s3stagger.local.downstream import DownstreamSimulator, LatencySpec, SimulatorSettings
from s3stagger.local.emulator import free_port
from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings

pytestmark = pytest.mark.e2e

WAIT_S = 300  # an upper bound on a loaded CI machine, not the expected pace
MAX_RECEIVE_COUNT = 2
ZERO_STAGGER = {
    "backlog_depth": 20,
    "priorities": {"high": {"spacing_s": 0, "max_delay_s": 0}, "normal": {"spacing_s": 0, "max_delay_s": 0}},
}


@pytest.fixture(scope="module")
def simulator() -> Iterator[DownstreamSimulator]:
    settings = SimulatorSettings(
        capacity=10,
        latency=LatencySpec.fixed(0.005),
        overload="reject",
        error_rate=0.0,
        time_scale=1.0,
        seed=1,
    )
    with DownstreamSimulator(settings) as running:
        yield running


@pytest.fixture(scope="module")
def stack(simulator: DownstreamSimulator) -> Iterator[LocalPipeline]:
    settings = LocalPipelineSettings(
        downstream_url=simulator.rows_url,
        start_scheduler=False,
        schedule_interval_s=0.5,
        max_receive_count=MAX_RECEIVE_COUNT,
        dispatcher={"failure_retry_delay_s": 1},
        stagger=ZERO_STAGGER,
        processor_environment={"S3STAGGER_BACKOFF_BASE_S": "0.01", "S3STAGGER_BACKOFF_MAX_S": "0.2"},
    )
    with LocalPipeline(settings) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh(stack: LocalPipeline, simulator: DownstreamSimulator) -> Iterator[None]:
    simulator.reset()
    assert stack.runtime is not None
    stack.runtime.register(stack.names.function_name, process_object)
    lam = stack.client("lambda")
    original = lam.get_function_configuration(FunctionName=stack.names.function_name)["Environment"]
    yield
    if stack.scheduler is not None:
        stack.scheduler.stop()
    lam.update_function_configuration(FunctionName=stack.names.function_name, Environment=original)


class Recording:
    """Wraps the real handler: records every cursor and answer; ``after`` may replace an answer or raise."""

    def __init__(self, after: Callable[[Any, int], Any] | None = None) -> None:
        self.answers: list[Any] = []
        self.cursors: list[Any] = []
        self.after = after
        self.lock = threading.Lock()

    def __call__(self, event: Any, context: Any) -> Any:
        with self.lock:
            self.cursors.append(event.get("cursor"))
        answer = process_object(event, context)
        with self.lock:
            self.answers.append(answer)
            number = len(self.answers)
        return self.after(answer, number) if self.after else answer


def use(stack: LocalPipeline, handler: Any) -> None:
    assert stack.runtime is not None
    stack.runtime.register(stack.names.function_name, handler)


def set_env(stack: LocalPipeline, **variables: str) -> None:
    lam = stack.client("lambda")
    env = lam.get_function_configuration(FunctionName=stack.names.function_name)["Environment"]["Variables"]
    env.update(variables)
    lam.update_function_configuration(FunctionName=stack.names.function_name, Environment={"Variables": env})


def csv_body(name: str, rows: int) -> bytes:
    return ("id,name,amount\n" + "".join(f"{name}-{i},row {i},{i}\n" for i in range(rows))).encode()


def upload(stack: LocalPipeline, key: str, body: bytes) -> None:
    stack.client("s3").put_object(Bucket=stack.names.bucket, Key=key, Body=body)


def run_until_idle(stack: LocalPipeline, until: Callable[[], bool] | None = None) -> None:
    assert stack.scheduler is not None
    stack.scheduler.start()
    try:
        deadline = time.monotonic() + WAIT_S
        while True:  # the whole wait is one deadline: a slow poll under load does not restart it
            idle = stack.wait_until_idle(timeout_s=max(0.0, deadline - time.monotonic()))
            assert idle, f"pipeline not idle: {stack.queue_depths()}"
            if until is None or until():
                break
            assert time.monotonic() < deadline, "the pipeline went idle, but the condition did not hold"
            time.sleep(0.2)
    finally:
        stack.scheduler.stop()
    assert stack.wait_for_dispatchers(WAIT_S)


def dlq_total(stack: LocalPipeline) -> int:
    return sum(stack.queue_depth(url).total for url in stack.names.dlq_urls.values())


def test_a_malformed_file_is_quarantined_while_the_others_complete(
    stack: LocalPipeline, simulator: DownstreamSimulator
) -> None:
    for i in range(3):
        upload(stack, f"normal/good-{i}.csv", csv_body(f"good{i}", 20))
    upload(stack, "high/empty.csv", b"")
    upload(stack, "normal/binary.csv", b"\x00\xff\x00 not a csv at all \xfe")
    run_until_idle(stack)
    stats = simulator.stats()
    assert stats.effects_applied == 60
    assert stats.duplicate_effects == 0
    assert dlq_total(stack) == 0
    quarantined = {record["key"] for record in stack.failed_row_records() if "quarantine" in record["key"]}
    assert any("high/empty.csv" in key for key in quarantined)
    assert any("normal/binary.csv" in key for key in quarantined)
    reasons = json.dumps([r["body"] for r in stack.failed_row_records() if "empty.csv" in r["key"]])
    assert "empty" in reasons.lower()


def test_a_duplicated_s3_event_causes_no_duplicate_effects(
    stack: LocalPipeline, simulator: DownstreamSimulator
) -> None:
    recording = Recording()
    use(stack, recording)
    upload(stack, "normal/twice.csv", csv_body("twice", 30))
    sqs = stack.client("sqs")
    (event,) = sqs.receive_message(QueueUrl=stack.names.queue_urls["normal"], VisibilityTimeout=0)["Messages"]
    sqs.send_message(
        QueueUrl=stack.names.queue_urls["normal"], MessageBody=event["Body"]
    )  # EventBridge redelivered it
    run_until_idle(stack)
    stats = simulator.stats()
    assert len(recording.answers) == 2
    assert [answer["status"] for answer in recording.answers] == ["COMPLETE", "COMPLETE"]
    assert stats.effects_applied == 30
    assert stats.duplicate_effects == 0
    # The second run delivered every row again: each replay answered 200 and not applied, and every
    # request is an applied row, a replay or a refusal the processor retried.
    assert stats.duplicate_deliveries == 30
    assert stats.requests == 60 + stats.throttled_429 + stats.errors_5xx


def test_a_crash_mid_object_is_retried_and_completes_without_duplicate_effects(
    stack: LocalPipeline, simulator: DownstreamSimulator
) -> None:
    set_env(stack, S3STAGGER_MAX_ROWS_PER_INVOCATION="15")

    def crash_once(answer: Any, number: int) -> Any:
        if number == 1:
            assert answer["status"] == "PARTIAL"
            assert answer["rows_applied"] > 0
            raise RuntimeError("injected crash after some rows were applied")
        return answer

    recording = Recording(after=crash_once)
    use(stack, recording)
    upload(stack, "normal/crashy.csv", csv_body("crashy", 40))
    run_until_idle(stack)
    stats = simulator.stats()
    assert recording.answers[-1]["status"] == "COMPLETE"
    assert recording.cursors[1] is None  # the retry started over: the crash lost the cursor
    assert stats.effects_applied == 40
    assert stats.duplicate_effects == 0
    assert stats.duplicate_deliveries >= 15  # the rows applied before the crash were replayed, not applied
    assert dlq_total(stack) == 0


def test_a_large_object_completes_across_several_partial_invocations(
    stack: LocalPipeline, simulator: DownstreamSimulator
) -> None:
    set_env(stack, S3STAGGER_MAX_ROWS_PER_INVOCATION="15")
    recording = Recording()
    use(stack, recording)
    upload(stack, "normal/large.csv", csv_body("large", 50))
    run_until_idle(stack)
    statuses = [answer["status"] for answer in recording.answers]
    assert statuses == ["PARTIAL", "PARTIAL", "PARTIAL", "COMPLETE"]
    assert recording.cursors[0] is None
    assert recording.cursors[1:] == [answer["cursor"] for answer in recording.answers[:-1]]
    assert sum(answer["rows_applied"] for answer in recording.answers) == 50
    stats = simulator.stats()
    assert stats.effects_applied == 50
    assert stats.duplicate_effects == 0


def test_a_message_that_keeps_failing_reaches_the_dlq_after_max_receive_count(
    stack: LocalPipeline, simulator: DownstreamSimulator
) -> None:
    set_env(
        stack,
        S3STAGGER_DOWNSTREAM_URL=f"http://127.0.0.1:{free_port()}/rows",  # nothing listens there
        S3STAGGER_MAX_ATTEMPTS="1",
        S3STAGGER_CONNECT_TIMEOUT_S="0.5",
    )
    before = stack.processor_counters()
    upload(stack, "normal/unlucky.csv", csv_body("unlucky", 5))
    run_until_idle(stack, until=lambda: stack.queue_depth(stack.names.dlq_urls["normal"]).visible == 1)
    after = stack.processor_counters()
    assert after.invocations - before.invocations == MAX_RECEIVE_COUNT
    assert after.errors - before.errors == MAX_RECEIVE_COUNT
    moved = stack.client("sqs").receive_message(QueueUrl=stack.names.dlq_urls["normal"], VisibilityTimeout=0)[
        "Messages"
    ]
    assert json.loads(moved[0]["Body"])["detail"]["object"]["key"] == "normal/unlucky.csv"
    assert simulator.stats().effects_applied == 0
    stack.client("sqs").delete_message(
        QueueUrl=stack.names.dlq_urls["normal"], ReceiptHandle=moved[0]["ReceiptHandle"]
    )
