"""The Splunk transform Lambda on real-shaped Firehose records of CloudWatch Logs subscriptions."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest

from s3stagger.domain.log_records import (
    MAX_RESPONSE_BYTES,
    HecEventSettings,
    RecordResult,
    answer_record,
    decode_subscription_data,
    encode_subscription_data,
    mark_failed,
    transform_records,
)
from s3stagger.handlers import transform_logs

GROUP = "/aws/lambda/s3stagger-processor"
STREAM = "2026/11/30/[$LATEST]0123456789abcdef0123456789abcdef"
SETTINGS = HecEventSettings(index="s3stagger", sourcetype="s3stagger:lambda")
STREAM_ARN = "arn:aws:firehose:us-east-1:123456789012:deliverystream/s3stagger-splunk"


def data_message(*messages: str, first_ms: int = 1_764_540_000_123) -> dict[str, Any]:
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": GROUP,
        "logStream": STREAM,
        "subscriptionFilters": ["s3stagger-splunk"],
        "logEvents": [
            {"id": f"3{n:055d}", "timestamp": first_ms + n, "message": message}
            for n, message in enumerate(messages)
        ],
    }


CONTROL_MESSAGE = {
    "messageType": "CONTROL_MESSAGE",
    "owner": "CloudwatchLogs",
    "logGroup": "",
    "logStream": "",
    "subscriptionFilters": [],
    "logEvents": [
        {
            "id": "",
            "timestamp": 1_764_540_000_000,
            "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose.",
        }
    ],
}


def record(n: int, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "recordId": f"49546986683135544286507457936321625675700192471156785154{n:04d}",
        "approximateArrivalTimestamp": 1_764_540_001_000,
        "data": encode_subscription_data(payload),
    }


def firehose_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {
        "invocationId": "00540a87-5050-496a-84e4-e7d92bbaf5e2",
        "deliveryStreamArn": STREAM_ARN,
        "region": "us-east-1",
        "records": list(records),
    }


def hec_events_of(answer: dict[str, str]) -> list[dict[str, Any]]:
    body = base64.b64decode(answer["data"]).decode()
    decoder, position, events = json.JSONDecoder(), 0, []
    while position < len(body):
        event, position = decoder.raw_decode(body, position)
        events.append(event)
    return events


def test_each_log_event_becomes_a_hec_event_with_the_object_key_as_a_field() -> None:
    powertools = json.dumps(
        {
            "level": "INFO",
            "message": "object processed",
            "service": "s3stagger-processor",
            "object_key": "normal/data-0001.csv",
            "bucket": "uploads",
        }
    )
    answer = transform_logs.transform(
        firehose_event(record(1, data_message(powertools + "\n", "START RequestId: 1 Version: $LATEST"))),
        SETTINGS,
        reingest=None,
    )
    (only,) = answer["records"]
    assert only["result"] == "Ok"
    first, second = hec_events_of(only)
    assert first == {
        "time": 1_764_540_000.123,
        "host": STREAM,
        "source": GROUP,
        "sourcetype": "s3stagger:lambda",
        "index": "s3stagger",
        "event": json.loads(powertools),
        "fields": {"object_key": "normal/data-0001.csv"},
    }
    assert second["event"] == {"message": "START RequestId: 1 Version: $LATEST"}
    assert second["time"] == 1_764_540_000.124
    assert "fields" not in second


def test_control_messages_are_dropped_and_garbage_is_processing_failed() -> None:
    garbage = {"recordId": "r-garbage", "data": base64.b64encode(b"plain text, not gzip").decode()}
    not_base64 = {"recordId": "r-not-base64", "data": "%%%"}
    not_subscription = {"recordId": "r-json", "data": base64.b64encode(gzip.compress(b"[1, 2]")).decode()}
    empty = record(4, data_message())
    answer = transform_logs.transform(
        firehose_event(record(0, CONTROL_MESSAGE), garbage, not_base64, not_subscription, empty),
        SETTINGS,
        None,
    )
    assert [(a["recordId"], a["result"]) for a in answer["records"]] == [
        (record(0, CONTROL_MESSAGE)["recordId"], "Dropped"),
        ("r-garbage", "ProcessingFailed"),
        ("r-not-base64", "ProcessingFailed"),
        ("r-json", "ProcessingFailed"),
        (empty["recordId"], "Dropped"),
    ]
    assert answer["records"][1]["data"] == garbage["data"]


def test_an_oversize_batch_stays_under_6_mb_and_puts_the_rest_back_into_the_stream() -> None:
    # Log lines compress well: 12 records of ~0.9 MB each once decompressed, ~1.2 MB of base64 each.
    line = json.dumps({"message": "row retried " + "x" * 900_000, "object_key": "normal/big.csv"})
    records = [record(n, data_message(line)) for n in range(12)]
    assert all(len(r["data"]) < 10_000 for r in records)
    reingested: list[tuple[str, list[bytes]]] = []
    answer = transform_logs.transform(
        firehose_event(*records), SETTINGS, lambda arn, data: reingested.append((arn, list(data)))
    )
    response_size = len(json.dumps(answer))
    assert response_size <= MAX_RESPONSE_BYTES
    results = [a["result"] for a in answer["records"]]
    ok = results.count("Ok")
    assert 0 < ok < 12
    assert sorted(a["recordId"] for a in answer["records"]) == sorted(r["recordId"] for r in records)
    ((arn, data),) = reingested
    assert arn == STREAM_ARN
    assert len(data) == 12 - ok
    assert decode_subscription_data(base64.b64encode(data[0]).decode())["logEvents"][0]["message"] == line


def test_without_a_way_to_reingest_the_overflow_is_processing_failed_with_its_data() -> None:
    records = [record(n, data_message("y" * 2000)) for n in range(5)]
    one_answer = answer_record(records[0], SETTINGS)[0].size
    transformation = transform_records(records, SETTINGS, max_response_bytes=2 * one_answer + 100)
    assert [a.result for a in transformation.answers] == [RecordResult.OK, RecordResult.OK]
    assert transformation.events == 2
    mark_failed(transformation)
    assert [a.result for a in transformation.answers][2:] == [RecordResult.PROCESSING_FAILED] * 3
    assert [a.data for a in transformation.answers][2:] == [r["data"] for r in records[2:]]


def test_a_record_too_large_to_fit_alone_is_processing_failed() -> None:
    big = record(0, data_message("z" * 10_000))
    transformation = transform_records(
        [big, record(1, data_message("small"))], SETTINGS, max_response_bytes=5000
    )
    assert [a.result for a in transformation.answers] == [RecordResult.PROCESSING_FAILED, RecordResult.OK]
    assert transformation.overflow == []


def test_the_handler_reads_index_and_sourcetype_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3STAGGER_SPLUNK_INDEX", "lambda_logs")
    monkeypatch.delenv("S3STAGGER_SPLUNK_SOURCETYPE", raising=False)
    answer = transform_logs.handler(firehose_event(record(0, data_message('{"message": "hi"}'))), None)
    (event,) = hec_events_of(answer["records"][0])
    assert (event["index"], event["sourcetype"]) == ("lambda_logs", "s3stagger:lambda")
