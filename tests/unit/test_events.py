import json
from pathlib import Path
from typing import Any

import pytest

from s3stagger.domain.events import parse_object_ref, parse_process_request
from s3stagger.domain.model import Cursor, InvalidRequestError, ObjectRef, RunStatus, RunSummary

EVENTS = Path(__file__).parent.parent / "events"


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def test_real_aws_event_with_version_id() -> None:
    ref = parse_object_ref(load("s3_object_created_aws.json"))
    assert ref == ObjectRef(
        bucket="s3stagger-ingest-111122223333",
        key="high/orders-2026-11-12.csv",
        version_id="IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        etag="b1946ac92492d2347c6235b4d2611184",
        size=2048,
    )


def test_real_aws_event_of_an_unversioned_multipart_upload() -> None:
    ref = parse_object_ref(load("s3_object_created_aws_unversioned.json"))
    assert ref.version_id is None
    assert ref.etag == "9b2cf535f27731c974343645a3985328-13"
    assert ref.size == 104857600


def test_moto_event_spells_etag_differently_and_nulls_the_version() -> None:
    ref = parse_object_ref(load("s3_object_created_moto.json"))
    assert ref == ObjectRef(
        "s3stagger-ingest", "normal/demo-0001.csv", None, "0cc175b9c0f1b6a831c399e269772661", 512
    )


def test_dispatcher_envelope_with_a_message_body_string_and_a_cursor() -> None:
    cursor = Cursor(next_row=11, byte_offset=120, header_end=8, etag="abc", version_id=None)
    request = parse_process_request(
        {"object": json.dumps(load("s3_object_created_moto.json")), "cursor": cursor.as_dict()}
    )
    assert request.object.key == "normal/demo-0001.csv"
    assert request.cursor == cursor


def test_a_plain_reference_may_carry_fields_the_processor_does_not_use() -> None:
    request = parse_process_request(
        {
            "object": {"bucket": "b", "key": "k.csv", "etag": '"e"', "size": 3, "priority": "high"},
            "cursor": None,
        }
    )
    assert request.object == ObjectRef("b", "k.csv", None, "e", 3)
    assert request.cursor is None


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "must be a JSON object"),
        ("{not json", "not JSON"),
        ({"key": "k"}, "bucket is missing"),
        ({"bucket": "b", "key": 5}, "key must be a string"),
        ({"bucket": "b", "key": "k", "size": -1}, "size must be a non-negative integer"),
        ({"bucket": "b", "key": "k", "size": True}, "size must be a non-negative integer"),
        ({"detail-type": "Object Deleted", "detail": {}}, "got detail-type 'Object Deleted'"),
        ({"detail-type": "Object Created", "detail": []}, "detail must be an object"),
        ({"detail-type": "Object Created", "detail": {"bucket": {"name": "b"}}}, "lacks bucket or object"),
        ({"object": {"bucket": "b", "key": "k"}, "cursor": 3}, "cursor must be an object"),
        ({"object": {"bucket": "b", "key": "k"}, "cursor": {"next_row": 1}}, "cursor lacks 'byte_offset'"),
    ],
)
def test_malformed_events_say_what_is_wrong(event: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        parse_process_request(event)


GOOD_CURSOR = {"next_row": 2, "byte_offset": 20, "header_end": 10, "etag": "e", "version_id": None}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"next_row": -1}, "next_row must be a non-negative integer"),
        ({"byte_offset": "20"}, "byte_offset must be a non-negative integer"),
        ({"header_end": True}, "header_end must be a non-negative integer"),
        ({"byte_offset": 5}, "inconsistent"),
        ({"next_row": 0}, "inconsistent"),
        ({"etag": ""}, "etag must be a non-empty string"),
        ({"version_id": 4}, "version_id must be a string or null"),
    ],
)
def test_malformed_cursors_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        Cursor.from_dict(GOOD_CURSOR | change)


def test_cursor_round_trips() -> None:
    cursor = Cursor.from_dict(GOOD_CURSOR | {"version_id": "v1"})
    assert Cursor.from_dict(cursor.as_dict()) == cursor


def test_summary_answer_is_json_serialisable() -> None:
    summary = RunSummary(RunStatus.PARTIAL, "b", "k", Cursor(2, 20, 10, "e"), rows_applied=1)
    answer = json.loads(json.dumps(summary.as_dict()))
    assert answer["status"] == "PARTIAL"
    assert answer["cursor"]["next_row"] == 2
    assert set(answer) >= {
        "status",
        "cursor",
        "bucket",
        "key",
        "rows_applied",
        "rows_failed",
        "retries",
        "throttled",
        "duration_ms",
        "error",
    }
