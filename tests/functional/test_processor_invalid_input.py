"""Invalid input to the processor: a specific error or failed-row entries, valid rows still applied."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from _processor_support import BUCKET, csv_bytes, invoke, moto_s3, processor_env, read_failed_rows

from s3stagger.config import ConfigError
from s3stagger.domain.model import InvalidRequestError
from s3stagger.local.downstream import DownstreamSimulator, LatencySpec, SimulatorSettings
from s3stagger.processor import DownstreamUnavailableError

FAST = LatencySpec.fixed(0.002)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_s3(monkeypatch) as client:
        yield client


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[DownstreamSimulator]:
    with DownstreamSimulator(
        SimulatorSettings(capacity=4, latency=FAST, seed=11, max_body_bytes=400)
    ) as running:
        processor_env(
            monkeypatch, running.rows_url, MAX_CONCURRENCY=4, MAX_FIELD_BYTES=200, MAX_LINE_BYTES=1000
        )
        yield running


def event_for(key: str, **extra: Any) -> dict[str, Any]:
    return {"object": {"bucket": BUCKET, "key": key, **extra}, "cursor": None}


def quarantine_record(s3: Any, uri: str) -> dict[str, Any]:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    record: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return record


def test_bad_rows_go_to_the_sink_neutralised_and_the_valid_rows_are_applied(
    s3: Any, sim: DownstreamSimulator
) -> None:
    body = (
        b"id,name,amount\n"
        b"1,alice,10\n"
        b'2,=HYPERLINK("http://x"),20,extra\n'
        b"3,caf\xe9,30\n"
        b"4,bob\n"
        b"5," + b"x" * 250 + b",50\n"
        b'6,"broken"quote,60\n'
        b"7," + b"y" * 390 + b"\n"
        b"8,@SUM(1),80\n"
        b"9,carol,90\n"
        b"10," + b"z" * 190 + b"," + b"w" * 190 + b"\n"
    )
    s3.put_object(Bucket=BUCKET, Key="normal/mixed.csv", Body=body)
    answer = invoke(event_for("normal/mixed.csv"))
    stats = sim.stats()
    assert answer["status"] == "COMPLETE"
    assert answer["rows_applied"] == 3  # rows 1, 8 and 9
    assert answer["rows_failed"] == 7
    assert answer["rows_applied"] + answer["rows_failed"] == 10
    assert stats.effects_applied == 3
    failed = {int(row["row_number"]): row for row in read_failed_rows(s3, answer["failed_rows_object"])}
    assert sorted(failed) == [2, 3, 4, 5, 6, 7, 10]
    assert failed[2]["reason"] == "row has 4 fields, the header has 3"
    assert failed[2]["name"] == '\'=HYPERLINK("http://x")'
    assert failed[3]["reason"].startswith("field 'name' is not valid UTF-8 (byte 0xE9")
    assert failed[3]["name"] == "caf\ufffd"
    assert failed[4]["reason"] == "row has 2 fields, the header has 3"
    assert failed[5]["reason"] == "field 'name' is 250 bytes, over S3STAGGER_MAX_FIELD_BYTES=200"
    assert failed[6]["reason"].startswith("malformed CSV")
    assert failed[7]["reason"] == "field 'name' is 390 bytes, over S3STAGGER_MAX_FIELD_BYTES=200"
    assert failed[10]["reason"].startswith("downstream rejected the row: HTTP 413")
    assert answer["failed_rows_object"].endswith("/rows-0000000002-0000000010.csv")


@pytest.mark.parametrize(
    ("body", "reason", "message"),
    [
        (b"", "empty_object", "object is empty"),
        (b"\n\n", "no_header", "no header row"),
        (b"id,n\xe4me\n1,x\n", "not_utf8", "header row is not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not_utf8", "header row is not UTF-8"),
        (b"id,,amount\n1,2,3\n", "invalid_header", "empty name"),
    ],
)
def test_unusable_objects_are_rejected_and_quarantined(
    s3: Any, sim: DownstreamSimulator, body: bytes, reason: str, message: str
) -> None:
    s3.put_object(Bucket=BUCKET, Key="normal/bad.csv", Body=body)
    answer = invoke(event_for("normal/bad.csv"))
    assert answer["status"] == "REJECTED"
    assert answer["error"]["type"] == reason
    assert message in answer["error"]["message"]
    record = quarantine_record(s3, answer["failed_rows_object"])
    assert record["reason"] == reason
    assert record["key"] == "normal/bad.csv"
    assert sim.stats().requests == 0


def test_header_mismatch_is_rejected(
    s3: Any, sim: DownstreamSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3STAGGER_EXPECTED_HEADER", "id,name,total")
    s3.put_object(Bucket=BUCKET, Key="normal/header.csv", Body=csv_bytes(3))
    answer = invoke(event_for("normal/header.csv"))
    assert answer["error"]["type"] == "header_mismatch"
    assert "S3STAGGER_EXPECTED_HEADER" in answer["error"]["message"]


def test_object_gone_is_rejected(s3: Any, sim: DownstreamSimulator) -> None:
    answer = invoke(event_for("normal/never-written.csv"))
    assert answer["status"] == "REJECTED"
    assert answer["error"]["type"] == "object_gone"
    assert "no longer exists" in answer["error"]["message"]


def test_a_url_encoded_key_is_read_under_its_decoded_name(s3: Any, sim: DownstreamSimulator) -> None:
    s3.put_object(Bucket=BUCKET, Key="normal/monthly report (1).csv", Body=csv_bytes(5))
    answer = invoke(event_for("normal/monthly+report+%281%29.csv"))
    assert answer["status"] == "COMPLETE"
    assert answer["key"] == "normal/monthly report (1).csv"
    assert answer["rows_applied"] == 5


def test_object_overwritten_since_the_event_is_rejected(s3: Any, sim: DownstreamSimulator) -> None:
    s3.put_object(Bucket=BUCKET, Key="normal/rewritten.csv", Body=csv_bytes(5))
    answer = invoke(event_for("normal/rewritten.csv", etag="0123456789abcdef0123456789abcdef"))
    assert answer["error"]["type"] == "object_changed"


@pytest.mark.parametrize("announced_size", [None, 10])
def test_oversize_object_is_rejected_before_any_row_is_sent(
    s3: Any, sim: DownstreamSimulator, monkeypatch: pytest.MonkeyPatch, announced_size: int | None
) -> None:
    monkeypatch.setenv("S3STAGGER_MAX_OBJECT_BYTES", "100")
    body = csv_bytes(20)
    s3.put_object(Bucket=BUCKET, Key="normal/huge.csv", Body=body)
    extra = {} if announced_size is None else {"size": len(body)}
    answer = invoke(event_for("normal/huge.csv", **extra))
    assert answer["error"]["type"] == "object_too_large"
    assert "S3STAGGER_MAX_OBJECT_BYTES=100" in answer["error"]["message"]
    assert sim.stats().requests == 0


def test_versioned_object_is_read_at_the_event_version(s3: Any, sim: DownstreamSimulator) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=BUCKET, Key="high/versioned.csv", Body=csv_bytes(4))
    s3.put_object(Bucket=BUCKET, Key="high/versioned.csv", Body=csv_bytes(9))
    answer = invoke(event_for("high/versioned.csv", version_id=first["VersionId"]))
    assert answer["status"] == "COMPLETE"
    assert answer["rows_applied"] == 4


def test_other_s3_errors_propagate_for_the_caller_to_retry(s3: Any, sim: DownstreamSimulator) -> None:
    from botocore.exceptions import ClientError

    s3.put_object(Bucket=BUCKET, Key="normal/archived.csv", Body=csv_bytes(2), StorageClass="GLACIER")
    with pytest.raises(ClientError, match="InvalidObjectState"):
        invoke(event_for("normal/archived.csv"))


def test_unreachable_downstream_raises_and_records_no_failed_rows(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with DownstreamSimulator(SimulatorSettings(capacity=1, latency=FAST)) as gone:
        url = gone.rows_url  # the port is closed once the simulator stops
    processor_env(monkeypatch, url, MAX_ATTEMPTS=2, CONNECT_TIMEOUT_S=0.5)
    s3.put_object(Bucket=BUCKET, Key="normal/nowhere.csv", Body=csv_bytes(30))
    with pytest.raises(DownstreamUnavailableError, match="no answer to any request after 2 attempts"):
        invoke(event_for("normal/nowhere.csv"))
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="failed-rows/")


def test_a_downstream_that_never_answers_in_time_is_unavailable(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = SimulatorSettings(capacity=20, latency=LatencySpec.fixed(0.5), seed=12)
    with DownstreamSimulator(slow) as sim:
        processor_env(monkeypatch, sim.rows_url, MAX_ATTEMPTS=2, READ_TIMEOUT_S=0.05, MAX_CONCURRENCY=4)
        s3.put_object(Bucket=BUCKET, Key="normal/slow.csv", Body=csv_bytes(3))
        with pytest.raises(DownstreamUnavailableError, match="timed out: ReadTimeout"):
            invoke(event_for("normal/slow.csv"))
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="failed-rows/")


def test_once_the_downstream_answered_rows_that_time_out_pause_the_object_and_are_not_failed(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = SimulatorSettings(capacity=20, latency=LatencySpec.fixed(0.5), seed=12, max_body_bytes=300)
    with DownstreamSimulator(slow) as sim:
        # One request at a time: row 1 is too large and answered 413 at once; rows 2-3 time out.
        processor_env(
            monkeypatch,
            sim.rows_url,
            MAX_ATTEMPTS=2,
            READ_TIMEOUT_S=0.3,
            MAX_CONCURRENCY=2,
            INITIAL_CONCURRENCY=1,
        )
        body = b"id,name,amount\n1," + b"x" * 400 + b",1\n2,b,2\n3,c,3\n"
        s3.put_object(Bucket=BUCKET, Key="normal/slow.csv", Body=body)
        answer = invoke(event_for("normal/slow.csv"))
    # A slow downstream says nothing about the rows: the object pauses at row 2; only row 1 failed.
    assert answer["status"] == "PARTIAL"
    assert answer["cursor"]["next_row"] == 2
    assert answer["timeouts"] >= 2
    assert answer["throttled"] == 0
    assert answer["rows_failed"] == 1
    reasons = {row["row_number"]: row["reason"] for row in read_failed_rows(s3, answer["failed_rows_object"])}
    assert list(reasons) == ["1"]
    assert reasons["1"].startswith("downstream rejected the row: HTTP 413")


@pytest.mark.parametrize(
    "event",
    [{"detail-type": "Object Deleted", "detail": {}}, {"object": {"key": "k.csv"}, "cursor": None}, "text"],
)
def test_malformed_events_raise_a_clear_error(event: Any, s3: Any, sim: DownstreamSimulator) -> None:
    from s3stagger.handlers import process_object

    with pytest.raises(InvalidRequestError):
        process_object.handler(event, None)


def test_missing_downstream_url_is_a_configuration_error(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("S3STAGGER_DOWNSTREAM_URL", raising=False)
    with pytest.raises(ConfigError, match="S3STAGGER_DOWNSTREAM_URL is required"):
        invoke(event_for("normal/any.csv"))


def test_failed_rows_go_to_a_configured_bucket_and_prefix(
    s3: Any, sim: DownstreamSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.create_bucket(Bucket="s3stagger-test-failures")
    monkeypatch.setenv("S3STAGGER_FAILED_ROWS_BUCKET", "s3stagger-test-failures")
    monkeypatch.setenv("S3STAGGER_FAILED_ROWS_PREFIX", "quarantine-zone")
    s3.put_object(Bucket=BUCKET, Key="normal/one-bad.csv", Body=b"id,name,amount\n1,a,1\n2,b\n")
    answer = invoke(event_for("normal/one-bad.csv"))
    assert answer["failed_rows_object"].startswith(
        f"s3://s3stagger-test-failures/quarantine-zone/rows/{BUCKET}/normal/one-bad.csv/"
    )
    assert [row["row_number"] for row in read_failed_rows(s3, answer["failed_rows_object"])] == ["2"]


def test_deleting_an_object_what_it_means_by_bucket_versioning(s3: Any, sim: DownstreamSimulator) -> None:
    """docs/processor.md, "Deleted objects": an upload is a fact, a delete is not a retraction."""
    # Unversioned: the bytes are gone with the key; the object is quarantined as gone, nothing applied.
    s3.put_object(Bucket=BUCKET, Key="normal/plain.csv", Body=csv_bytes(3))
    s3.delete_object(Bucket=BUCKET, Key="normal/plain.csv")
    gone = invoke(event_for("normal/plain.csv"))
    assert (gone["status"], gone["error"]["type"]) == ("REJECTED", "object_gone")
    assert "quarantine" in gone["failed_rows_object"]
    # Versioned: a delete marker hides the key, but the version the event names still holds its
    # bytes: it is processed in full.
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket=BUCKET, Key="normal/kept.csv", Body=csv_bytes(3))["VersionId"]
    s3.delete_object(Bucket=BUCKET, Key="normal/kept.csv")
    kept = invoke(event_for("normal/kept.csv", version_id=version))
    assert (kept["status"], kept["rows_applied"]) == ("COMPLETE", 3)
    # Deleting the version itself (permanent) is what removes it: then it is gone too.
    version = s3.put_object(Bucket=BUCKET, Key="normal/purged.csv", Body=csv_bytes(3))["VersionId"]
    s3.delete_object(Bucket=BUCKET, Key="normal/purged.csv", VersionId=version)
    purged = invoke(event_for("normal/purged.csv", version_id=version))
    assert (purged["status"], purged["error"]["type"]) == ("REJECTED", "object_gone")
    assert sim.stats().effects_applied == 3
