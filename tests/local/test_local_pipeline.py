"""LocalPipeline as the CLI uses it: start, drive, watch progress, stop."""

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from s3stagger.local.emulator import Emulator, EmulatorError
from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings
from s3stagger.local.scheduler import SlotAlreadyStarted

ZERO_STAGGER = {
    "backlog_depth": 20,
    "priorities": {"high": {"spacing_s": 0, "max_delay_s": 0}, "normal": {"spacing_s": 0, "max_delay_s": 0}},
}
release = threading.Event()
processed: list[str] = []


def hold_then_complete(event: Any, context: Any) -> dict[str, Any]:
    key = event["object"]["detail"]["object"]["key"]
    processed.append(key)
    if key.endswith("hold.csv"):
        release.wait(30)
    return {"status": "COMPLETE", "cursor": None}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalPipeline]:
    settings = LocalPipelineSettings(
        downstream_url="http://127.0.0.1:9/rows",
        schedule_interval_s=0.3,
        stagger=ZERO_STAGGER,
        handlers={"s3stagger-processor": hold_then_complete},
    )
    with LocalPipeline(settings) as running:
        yield running


def test_the_scheduler_dispatches_uploads_and_progress_is_reported(stack: LocalPipeline) -> None:
    s3 = stack.client("s3")
    processed.clear()
    before = stack.processor_counters().invocations
    keys = [f"normal/p{i}.csv" for i in range(3)]
    for key in keys:
        s3.put_object(Bucket=stack.names.bucket, Key=key, Body=b"a\n1\n")
    assert stack.wait_until_idle(timeout_s=300)  # no dispatcher started by hand: the scheduler did it
    assert sorted(processed) == keys, "each upload processed once, by the dispatchers the scheduler started"
    assert stack.processor_counters().invocations - before == len(keys)
    depths = stack.queue_depths()
    assert set(depths) == {"high", "normal", "high-dlq", "normal-dlq", "ingest-dlq"}
    assert all(depth.total == 0 for depth in depths.values())


def quiet(stack: LocalPipeline) -> None:
    assert stack.scheduler is not None
    stack.scheduler.stop()
    assert stack.wait_for_dispatchers(300)


def test_a_slot_starts_once(stack: LocalPipeline) -> None:
    quiet(stack)
    first = stack.start_dispatcher("slot-test-once")
    assert (
        stack.start_dispatcher("slot-test-once") == first
    )  # while it runs: the same execution (AWS semantics)
    assert stack.wait_for_dispatchers(300)
    with pytest.raises(SlotAlreadyStarted):
        stack._start_dispatcher("slot-test-once")  # once it ended: refused
    executions = stack.client("stepfunctions").list_executions(stateMachineArn=stack.names.state_machine_arn)
    assert [e["name"] for e in executions["executions"]].count("slot-test-once") == 1


def test_running_dispatchers_can_be_stopped(stack: LocalPipeline) -> None:
    quiet(stack)
    release.clear()
    stack.client("s3").put_object(Bucket=stack.names.bucket, Key="normal/hold.csv", Body=b"a\n1\n")
    stack.start_dispatcher()
    deadline = time.monotonic() + 300
    while stack.processor_counters().in_flight == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert stack.stop_running_dispatchers() == 1
    release.set()
    assert stack.wait_for_dispatchers(300)
    assert not stack.wait_until_idle(timeout_s=0.5)  # the message was not deleted: it will be retried


def test_failed_row_records_read_the_sinks_csv_rows_and_json_quarantine_records(stack: LocalPipeline) -> None:
    s3 = stack.client("s3")
    bucket, prefix = stack.names.failed_rows_bucket, stack.names.failed_rows_prefix
    keys = [f"{prefix}quarantine/a.json", f"{prefix}rows/b.csv", f"{prefix}notes.txt"]
    s3.put_object(Bucket=bucket, Key=keys[0], Body=b'{"reason": "empty"}')
    s3.put_object(Bucket=bucket, Key=keys[1], Body=b'row_number,reason,id\n2,http 422,"a,b"\n5,http 400,c\n')
    s3.put_object(Bucket=bucket, Key=keys[2], Body=b"plain")
    try:
        records = {record["key"]: record["body"] for record in stack.failed_row_records()}
        assert records[keys[0]] == {"reason": "empty"}
        assert records[keys[1]] == [
            {"row_number": "2", "reason": "http 422", "id": "a,b"},
            {"row_number": "5", "reason": "http 400", "id": "c"},
        ]
        assert records[keys[2]] == "plain"
    finally:
        for key in keys:
            s3.delete_object(Bucket=bucket, Key=key)


def test_only_one_emulator_per_process(stack: LocalPipeline) -> None:
    with pytest.raises(EmulatorError, match="already running"):
        Emulator().start()


def test_names_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = LocalPipeline(LocalPipelineSettings(downstream_url="http://127.0.0.1:9/rows")).names
    with pytest.raises(EmulatorError, match="not running"):
        _ = Emulator().endpoint_url
