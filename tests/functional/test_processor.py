"""The processor against objects in moto's S3 and the real downstream simulator on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from _processor_support import (
    BUCKET,
    CountdownContext,
    csv_bytes,
    invoke,
    moto_s3,
    processor_env,
)

from s3stagger.adapters.downstream_client import HttpDownstream, build_http_transports
from s3stagger.adapters.failed_rows_sink import S3FailedRowsSink
from s3stagger.adapters.s3_object_source import S3ObjectSource
from s3stagger.config import ProcessorSettings
from s3stagger.domain.events import parse_process_request
from s3stagger.domain.model import RunStatus, RunSummary
from s3stagger.local.downstream import DownstreamSimulator, LatencySpec, SimulatorSettings
from s3stagger.processor import ObjectProcessor, RunMetrics

FAST = LatencySpec.fixed(0.003)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_s3(monkeypatch) as client:
        yield client


def put(s3: Any, key: str, body: bytes) -> dict[str, Any]:
    etag = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"]
    return {"object": {"bucket": BUCKET, "key": key, "etag": etag, "size": len(body)}, "cursor": None}


def test_every_row_applied_exactly_once_within_the_maximum_concurrency(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = put(s3, "normal/thousand.csv", csv_bytes(1000))
    with DownstreamSimulator(SimulatorSettings(capacity=10, latency=FAST, seed=1)) as sim:
        processor_env(monkeypatch, sim.rows_url, MAX_CONCURRENCY=10)
        answer = invoke(event)
        stats = sim.stats()
    assert answer["status"] == "COMPLETE"
    assert answer["cursor"] is None
    assert answer["rows_applied"] == 1000
    assert answer["rows_failed"] == 0
    assert answer["failed_rows_object"] is None
    assert stats.effects_applied == 1000
    assert stats.duplicate_effects == 0
    assert stats.duplicate_deliveries == 0
    assert stats.peak_concurrency <= 10
    assert answer["concurrency_limit"] <= 10


def test_injected_server_errors_are_retried_until_every_row_is_applied(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = put(s3, "normal/flaky.csv", csv_bytes(500))
    settings = SimulatorSettings(capacity=10, latency=FAST, error_rate=0.2, seed=2, retry_after_s=0.0)
    with DownstreamSimulator(settings) as sim:
        processor_env(monkeypatch, sim.rows_url, MAX_CONCURRENCY=8, MAX_ATTEMPTS=12)
        answer = invoke(event)
        stats = sim.stats()
    assert answer["status"] == "COMPLETE"
    assert answer["rows_applied"] == 500
    assert answer["rows_failed"] == 0
    assert stats.errors_5xx > 0
    assert answer["retries"] == stats.errors_5xx + stats.throttled_429
    assert stats.effects_applied == 500
    assert stats.duplicate_effects == 0


def test_capacity_below_the_maximum_draws_429s_and_the_limit_backs_off(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from s3stagger.handlers import process_object

    event = put(s3, "high/crowded.csv", csv_bytes(400))
    settings = SimulatorSettings(capacity=3, latency=FAST, overload="reject", seed=3, retry_after_s=0.002)
    figures: list[Any] = []
    original = process_object._emit_call_metrics
    monkeypatch.setattr(
        process_object,
        "_emit_call_metrics",
        lambda metrics, refreshes: (figures.append(metrics), original(metrics, refreshes)),
    )
    with DownstreamSimulator(settings) as sim:
        processor_env(monkeypatch, sim.rows_url, MAX_CONCURRENCY=12, INITIAL_CONCURRENCY=12)
        answer = invoke(event)
        stats = sim.stats()
    assert answer["status"] == "COMPLETE"
    assert answer["rows_applied"] == 400
    assert stats.throttled_429 > 0
    assert answer["throttled"] == stats.throttled_429
    assert stats.effects_applied == 400
    assert stats.duplicate_effects == 0
    assert stats.peak_concurrency <= 3
    assert figures[0].limit_decreases > 0
    assert figures[0].lowest_limit < 12


def test_a_row_throttled_past_its_budget_ends_the_invocation_partial_and_never_fails_it(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = put(s3, "normal/busy.csv", csv_bytes(200))
    settings = SimulatorSettings(capacity=1, latency=FAST, overload="reject", seed=5, retry_after_s=0.0)
    with DownstreamSimulator(settings) as sim:
        processor_env(
            monkeypatch, sim.rows_url, MAX_CONCURRENCY=8, INITIAL_CONCURRENCY=8, MAX_THROTTLED_ATTEMPTS=1
        )
        answers = [invoke(event)]
        while answers[-1]["status"] == "PARTIAL":
            assert len(answers) < 400
            answers.append(invoke({"object": event["object"], "cursor": answers[-1]["cursor"]}))
        stats = sim.stats()
    assert answers[0]["status"] == "PARTIAL"
    assert answers[0]["throttled"] > 0
    assert all(answer["rows_failed"] == 0 for answer in answers)
    assert stats.effects_applied == 200
    assert stats.duplicate_effects == 0
    assert stats.peak_concurrency <= 1


def test_retry_after_as_an_http_date_sets_the_wait(s3: Any) -> None:
    event = put(s3, "high/dated.csv", csv_bytes(60))
    # The simulator asks for two minutes as an HTTP-date; the processor caps a Retry-After at
    # backoff_max_s. With a backoff base of 0 the jittered wait is 0, so a wait of exactly the cap
    # can only come from the header having been read.
    simulator = SimulatorSettings(
        capacity=2, latency=FAST, overload="reject", seed=9, retry_after_s=120, retry_after_http_date=True
    )
    waits: list[float] = []

    async def record(delay_s: float) -> None:
        waits.append(delay_s)
        await asyncio.sleep(0.002)  # let the rows in flight finish instead of waiting two minutes

    with DownstreamSimulator(simulator) as sim:
        settings = ProcessorSettings(
            downstream_url=sim.rows_url,
            max_concurrency=6,
            initial_concurrency=6,
            max_throttled_attempts=1000,
            backoff_base_s=0.0,
            backoff_max_s=0.25,
        )

        async def run() -> tuple[RunSummary, RunMetrics]:
            async with HttpDownstream(build_http_transports(6), sim.rows_url) as downstream:
                processor = ObjectProcessor(
                    settings, S3ObjectSource(s3), S3FailedRowsSink(s3, None), downstream, sleep=record
                )
                return await processor.run(parse_process_request(event))

        summary, _ = asyncio.run(run())
        stats = sim.stats()
    assert summary.status is RunStatus.COMPLETE
    assert summary.rows_applied == 60
    assert stats.throttled_429 > 0
    assert len(waits) == summary.retries == stats.throttled_429
    assert waits == [0.25] * len(waits)
    assert stats.effects_applied == 60


def test_a_deadline_gives_partial_and_the_continuation_finishes_without_duplicate_effects(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = put(s3, "normal/long.csv", csv_bytes(600))
    settings = SimulatorSettings(capacity=6, latency=FAST, error_rate=0.1, seed=4, retry_after_s=0.0)
    with DownstreamSimulator(settings) as sim:
        processor_env(monkeypatch, sim.rows_url, MAX_CONCURRENCY=6, MAX_ATTEMPTS=12, DEADLINE_MARGIN_S=5)
        first = invoke(event, CountdownContext(calls=250))
        assert first["status"] == "PARTIAL"
        cursor = first["cursor"]
        assert cursor is not None
        assert 1 < cursor["next_row"] <= 600
        assert first["rows_applied"] >= cursor["next_row"] - 1
        answers = [first]
        while answers[-1]["status"] == "PARTIAL":
            assert len(answers) < 40  # a bound on the loop, not on the pace
            answers.append(
                invoke({"object": event["object"], "cursor": answers[-1]["cursor"]}, CountdownContext(400))
            )
        stats = sim.stats()
    assert answers[-1]["status"] == "COMPLETE"
    assert answers[-1]["cursor"] is None
    assert stats.effects_applied == 600
    assert stats.duplicate_effects == 0
    assert sum(a["rows_failed"] for a in answers) == 0
    # Rows re-sent by a continuation (finished after the cursor's row) are replays, never new effects.
    assert sum(a["rows_applied"] for a in answers) == 600 + stats.duplicate_deliveries


def test_rows_per_invocation_limit_splits_the_object_into_continuations(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = put(s3, "normal/chunked.csv", b"\xef\xbb\xbf" + csv_bytes(250).replace(b"\n", b"\r\n"))
    with DownstreamSimulator(SimulatorSettings(capacity=5, latency=FAST, seed=5)) as sim:
        processor_env(monkeypatch, sim.rows_url, MAX_CONCURRENCY=5, MAX_ROWS_PER_INVOCATION=100)
        answers = [invoke(event)]
        while answers[-1]["status"] == "PARTIAL":
            answers.append(invoke({"object": event["object"], "cursor": answers[-1]["cursor"]}))
        stats = sim.stats()
        applied = sim.applied_keys()
    assert [a["rows_applied"] for a in answers] == [100, 100, 50]
    assert [a["cursor"]["next_row"] for a in answers[:-1]] == [101, 201]
    assert stats.effects_applied == 250
    assert stats.duplicate_deliveries == 0
    assert len(applied) == 250


def test_a_cursor_at_the_very_end_of_the_object_completes_with_nothing_left(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = put(s3, "normal/exact.csv", csv_bytes(40))
    with DownstreamSimulator(SimulatorSettings(capacity=5, latency=FAST, seed=8)) as sim:
        processor_env(monkeypatch, sim.rows_url, MAX_ROWS_PER_INVOCATION=20)
        answers = [invoke(event)]
        while answers[-1]["status"] == "PARTIAL":
            answers.append(invoke({"object": event["object"], "cursor": answers[-1]["cursor"]}))
        stats = sim.stats()
    assert [a["status"] for a in answers] == ["PARTIAL", "PARTIAL", "COMPLETE"]
    assert [a["rows_applied"] for a in answers] == [20, 20, 0]
    assert stats.effects_applied == 40


def test_a_changed_object_rejects_the_continuation(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    event = put(s3, "normal/changing.csv", csv_bytes(50))
    with DownstreamSimulator(SimulatorSettings(capacity=5, latency=FAST, seed=6)) as sim:
        processor_env(monkeypatch, sim.rows_url, MAX_ROWS_PER_INVOCATION=20)
        first = invoke(event)
        s3.put_object(Bucket=BUCKET, Key="normal/changing.csv", Body=csv_bytes(60))
        second = invoke({"object": event["object"], "cursor": first["cursor"]})
    assert first["status"] == "PARTIAL"
    assert second["status"] == "REJECTED"
    assert second["error"]["type"] == "object_changed"
    assert second["failed_rows_object"].startswith(f"s3://{BUCKET}/failed-rows/quarantine/")


def test_handler_logs_carry_the_object_key_and_metrics_are_emf(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import json
    import logging

    from s3stagger.handlers import process_object

    log_lines = io.StringIO()
    capture = logging.StreamHandler(log_lines)
    capture.setFormatter(process_object.logger.registered_formatter)
    process_object.logger.addHandler(capture)
    try:
        event = put(s3, "high/logged.csv", csv_bytes(20))
        with DownstreamSimulator(SimulatorSettings(capacity=5, latency=FAST, seed=7)) as sim:
            processor_env(monkeypatch, sim.rows_url)
            invoke(
                {
                    "version": "0",
                    "detail-type": "Object Created",
                    "source": "aws.s3",
                    "detail": {
                        "bucket": {"name": BUCKET},
                        "object": {
                            "key": "high/logged.csv",
                            "eTag": event["object"]["etag"].strip('"'),
                            "version-id": None,
                        },
                    },
                }
            )
    finally:
        process_object.logger.removeHandler(capture)
    logs = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert logs
    assert all(line["object_key"] == "high/logged.csv" for line in logs)
    assert len(emf) == 2  # the object's, then the call's own figures
    assert emf[0]["RowsApplied"] == [20.0]
    names = {m["Name"] for line in emf for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {
        "RowsApplied",
        "RowsFailed",
        "RowsRetried",
        "Throttled429",
        "DownstreamLatencyAvg",
        "ConcurrencyLimit",
    } <= names


def test_a_call_with_a_chain_serves_the_queued_objects_and_answers_about_the_last_it_took(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import boto3

    from s3stagger.handlers import process_object

    process_object._sqs_clients.clear()
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="normal")["QueueUrl"]
    first, second = put(s3, "normal/one.csv", csv_bytes(30)), put(s3, "normal/two.csv", csv_bytes(30))
    for body in (json.dumps(first["object"]), json.dumps(second["object"]), "not an event"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    [own] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"]
    assert json.loads(own["Body"])["key"] == "normal/one.csv"
    held = {"queue_url": url, "receipt_handle": own["ReceiptHandle"]}
    event = first | {"keepalive": {"visibility_s": 30, "message": held}, "chain": {"queue_urls": [url]}}
    with DownstreamSimulator(SimulatorSettings(capacity=4, latency=FAST, seed=5)) as sim:
        processor_env(monkeypatch, sim.rows_url, MAX_CONCURRENCY=4)
        answer = invoke(event)
        stats = sim.stats()
    process_object._sqs_clients.clear()

    assert stats.effects_applied == 60  # both objects' rows, once each
    assert stats.duplicate_effects == 0
    assert stats.peak_concurrency <= 4  # one pool for the call
    assert answer["objects_served"] == 3
    # the chain ended at the malformed message: the answer is its failure, with the message itself
    assert answer["status"] == "FAILED"
    assert answer["error"]["Error"] == "InvalidRequestError"
    assert answer["message"]["Body"] == "not an event"
    assert answer["queueUrl"] == url
    # the finished objects' messages are gone; the malformed one is still held, for the dispatcher
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"
