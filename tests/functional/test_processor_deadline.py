"""The processor honours the dispatcher's deadline (the execution's time budget) as well as its own."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from _processor_support import BUCKET, csv_bytes, invoke, moto_s3, processor_env

from s3stagger.handlers import process_object
from s3stagger.local.downstream import DownstreamSimulator, LatencySpec, SimulatorSettings

MARGIN_S = 5


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_s3(monkeypatch) as client:
        yield client


def deadline_in(seconds: float) -> dict[str, Any]:
    """A dispatcher deadline ``seconds`` from now, as the dispatcher sends it."""
    budget_s = 240
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=budget_s - seconds)
    return {"started_at": started.isoformat(), "after_s": budget_s}


def put_csv(s3: Any, key: str, rows: int) -> dict[str, Any]:
    """Upload a CSV of ``rows`` rows; the object reference the dispatcher would send."""
    body = csv_bytes(rows)
    etag = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"]
    return {"bucket": BUCKET, "key": key, "etag": etag, "size": len(body)}


def test_a_near_deadline_ends_the_invocation_partial_and_says_so(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = put_csv(s3, "normal/late.csv", 50)
    with DownstreamSimulator(SimulatorSettings(capacity=5, latency=LatencySpec.fixed(0.003))) as sim:
        processor_env(monkeypatch, sim.rows_url, DEADLINE_MARGIN_S=MARGIN_S)
        late = invoke({"object": ref, "cursor": None, "deadline": deadline_in(MARGIN_S - 1)})
        assert late["status"] == "PARTIAL"
        assert late["cursor"]["next_row"] == 1  # nothing taken: the next dispatch resumes at row 1
        assert late["deadline_reached"] is True
        early = invoke({"object": ref, "cursor": late["cursor"], "deadline": deadline_in(200)})
        stats = sim.stats()
    assert early["status"] == "COMPLETE"
    assert early["deadline_reached"] is False
    assert stats.effects_applied == 50


def test_an_invocation_without_a_deadline_never_reaches_one(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    body = csv_bytes(3)
    etag = s3.put_object(Bucket=BUCKET, Key="normal/direct.csv", Body=body)["ETag"]
    with DownstreamSimulator(SimulatorSettings(capacity=5, latency=LatencySpec.fixed(0.003))) as sim:
        processor_env(monkeypatch, sim.rows_url)
        answer = invoke(
            {"object": {"bucket": BUCKET, "key": "normal/direct.csv", "etag": etag}, "cursor": None}
        )
    assert answer["status"] == "COMPLETE"
    assert answer["deadline_reached"] is False


def test_a_malformed_deadline_is_refused(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    processor_env(monkeypatch, "http://127.0.0.1:9/rows")
    with pytest.raises(ValueError, match="deadline"):
        invoke({"object": {"bucket": BUCKET, "key": "k.csv"}, "cursor": None, "deadline": {"after_s": 1}})


def with_budget(deadline: dict[str, Any], budget: int | None) -> dict[str, Any]:
    return {**deadline, "budget": budget}


def test_a_budget_the_autoscaler_raised_ends_the_call_after_its_grace(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = put_csv(s3, "normal/grown.csv", 20)
    flight = "/s3stagger-test/flight-outgrown"
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=flight, Value=json.dumps({"budget": 6, "rows_in_flight_per_object": 2}), Type="String"
    )
    process_object._flight_readers.clear()
    with DownstreamSimulator(SimulatorSettings(capacity=5, latency=LatencySpec.fixed(0.003))) as sim:
        env = {"DEADLINE_MARGIN_S": MARGIN_S, "FLIGHT_PARAMETER": flight, "FLIGHT_CACHE_S": 0}
        processor_env(monkeypatch, sim.rows_url, BUDGET_GRACE_S=0, **env)
        outgrown = invoke({"object": ref, "cursor": None, "deadline": with_budget(deadline_in(200), 4)})
        assert outgrown["status"] == "PARTIAL"  # no grace: nothing taken, the continuation resumes
        assert outgrown["cursor"]["next_row"] == 1
        assert outgrown["deadline_reached"] is True
        for budget in (6, None):  # the execution runs the budget the autoscaler set, or does not know
            same = invoke({"object": ref, "cursor": None, "deadline": with_budget(deadline_in(200), budget)})
            assert (same["status"], same["deadline_reached"]) == ("COMPLETE", False)
        # a flight parameter older than the execution: the budget it read was set since, by hand
        started_later = {"started_at": (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)).isoformat()}
        later = {**with_budget(deadline_in(200), 4), **started_later}
        stale = invoke({"object": ref, "cursor": None, "deadline": later})
        assert (stale["status"], stale["deadline_reached"]) == ("COMPLETE", False)
        processor_env(monkeypatch, sim.rows_url, BUDGET_GRACE_S=60, **env)
        graced = invoke({"object": ref, "cursor": None, "deadline": with_budget(deadline_in(200), 4)})
    process_object._flight_readers.clear()
    assert (graced["status"], graced["deadline_reached"]) == ("COMPLETE", True)  # done within grace


def test_a_budget_the_autoscaler_lowered_ends_the_slots_at_their_objects_ends(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="normal-lowered")["QueueUrl"]
    for index in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(put_csv(s3, f"normal/lowered-{index}.csv", 10)))
    flight = "/s3stagger-test/flight-lowered"
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name=flight, Value=json.dumps({"budget": 2, "rows_in_flight_per_object": 2}), Type="String"
    )
    process_object._flight_readers.clear()
    process_object._sqs_clients.clear()
    answers = {}
    with DownstreamSimulator(SimulatorSettings(capacity=5, latency=LatencySpec.fixed(0.003))) as sim:
        processor_env(monkeypatch, sim.rows_url, DEADLINE_MARGIN_S=MARGIN_S, FLIGHT_PARAMETER=flight)
        for execution_budget in (3, 2):  # an execution of 3 slots, then one of the autoscaler's 2
            [own] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"]
            held = {"queue_url": url, "receipt_handle": own["ReceiptHandle"]}
            answers[execution_budget] = invoke(
                {
                    "object": json.loads(own["Body"]),
                    "cursor": None,
                    "deadline": with_budget(deadline_in(200), execution_budget),
                    "keepalive": {"visibility_s": 30, "message": held},
                    "chain": {"queue_urls": [url]},
                }
            )
    process_object._flight_readers.clear()
    process_object._sqs_clients.clear()

    lowered, same = answers[3], answers[2]
    assert (lowered["status"], lowered["deadline_reached"]) == ("COMPLETE", True)  # its object done
    assert "objects_served" not in lowered  # it took no further message: the slot ends
    assert (same["status"], same["deadline_reached"]) == ("COMPLETE", False)
    assert same["objects_served"] == 2  # the continuation's call took the message left
