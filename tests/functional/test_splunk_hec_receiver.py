"""The local Splunk HEC receiver over real HTTP: Splunk's status/code table, batches, acknowledgement."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from s3stagger.local.splunk_hec import SplunkHecReceiver, read_index, search_events

TOKEN = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def hec(tmp_path: Path) -> Iterator[SplunkHecReceiver]:
    with SplunkHecReceiver(
        TOKEN, indexes=("main", "s3stagger"), index_path=tmp_path / "index.jsonl"
    ) as receiver:
        yield receiver


def post(
    hec: SplunkHecReceiver,
    body: str | bytes,
    *,
    token: str | None = TOKEN,
    channel: str | None = "auto",
    scheme: str = "Splunk",
) -> httpx.Response:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    if channel == "auto":
        channel = str(uuid.uuid4())
    if channel is not None:
        headers["X-Splunk-Request-Channel"] = channel
    return httpx.post(hec.event_url, content=body, headers=headers)


def events(*documents: object) -> str:
    return "".join(json.dumps(document) for document in documents)


def test_a_batch_of_concatenated_events_is_indexed_with_its_metadata(hec: SplunkHecReceiver) -> None:
    body = events(
        {
            "time": 1764540000.123,
            "host": "h",
            "source": "/aws/lambda/p",
            "sourcetype": "_json",
            "index": "s3stagger",
            "event": {"message": "one", "object_key": "normal/a.csv"},
        },
        {"event": "two", "fields": {"object_key": "normal/b.csv"}},
    )
    answer = post(hec, body + "\n")
    assert answer.status_code == 200
    assert answer.json() == {"text": "Success", "code": 0, "ackId": 0}
    indexed = hec.events()
    assert [e.event for e in indexed] == [{"message": "one", "object_key": "normal/a.csv"}, "two"]
    assert indexed[0].time == pytest.approx(1764540000.123)
    assert (indexed[0].index, indexed[1].index) == ("s3stagger", "main")
    assert hec.stats().events_received == 2
    stored = read_index(hec.index_path)  # type: ignore[arg-type]
    assert [e.source for e in search_events(stored, object_key="normal/b.csv")] == [None]
    assert [e.event["message"] for e in search_events(stored, object_key="normal/a.csv")] == ["one"]


@pytest.mark.parametrize(
    ("token", "scheme", "status", "code"),
    [
        (None, "Splunk", 401, 2),
        (TOKEN, "Bearer", 401, 3),
        ("wrong-token", "Splunk", 403, 4),
    ],
)
def test_tokens_are_checked(
    hec: SplunkHecReceiver, token: str | None, scheme: str, status: int, code: int
) -> None:
    answer = post(hec, events({"event": "x"}), token=token, scheme=scheme)
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert hec.events() == []
    assert hec.stats().events_rejected == 1


def test_a_disabled_token_is_403_code_1() -> None:
    with SplunkHecReceiver(TOKEN, disabled=True) as receiver:
        answer = post(receiver, events({"event": "x"}))
    assert (answer.status_code, answer.json()) == (403, {"text": "Token disabled", "code": 1})


@pytest.mark.parametrize(
    ("body", "code", "text"),
    [
        ("", 5, "No data"),
        ("   \n", 5, "No data"),
        ("not json", 6, "Invalid data format"),
        ('["an", "array"]', 6, "Invalid data format"),
        ('{"time": "yesterday", "event": "x"}', 6, "Invalid data format"),
        ('{"host": 7, "event": "x"}', 6, "Invalid data format"),
        ('{"index": "secret", "event": "x"}', 7, "Incorrect index"),
        ('{"sourcetype": "_json"}', 12, "Event field is required"),
        ('{"event": ""}', 13, "Event field cannot be blank"),
        ('{"event": null}', 13, "Event field cannot be blank"),
        ('{"event": "x", "fields": {"nested": {"a": 1}}}', 15, "Error in handling indexed fields"),
    ],
)
def test_invalid_data_is_400_with_splunks_code(
    hec: SplunkHecReceiver, body: str, code: int, text: str
) -> None:
    answer = post(hec, body)
    assert answer.status_code == 400
    assert answer.json()["code"] == code
    assert answer.json()["text"] == text
    assert hec.events() == []


def test_an_invalid_event_in_a_batch_is_named_and_those_before_it_are_indexed(hec: SplunkHecReceiver) -> None:
    answer = post(hec, events({"event": "first"}, {"event": "second"}, {"no_event": 1}, {"event": "fourth"}))
    assert answer.status_code == 400
    assert answer.json() == {"text": "Event field is required", "code": 12, "invalid-event-number": 2}
    assert [e.event for e in hec.events()] == ["first", "second"]
    assert hec.stats().events_rejected == 2


def test_busy_on_demand_is_503_code_9_then_it_recovers(hec: SplunkHecReceiver) -> None:
    hec.refuse_next(2)
    assert [post(hec, events({"event": "x"})).status_code for _ in range(3)] == [503, 503, 200]
    assert post(hec, events({"event": "y"})).status_code == 200
    assert hec.stats().refusals[9] == 2
    assert hec.stats().events_rejected == 0
    assert [e.event for e in hec.events()] == ["x", "y"]


def test_acknowledgement_needs_a_guid_channel_and_answers_each_ack_once(hec: SplunkHecReceiver) -> None:
    assert post(hec, events({"event": "x"}), channel=None).json() == {
        "text": "Data channel is missing",
        "code": 10,
    }
    assert post(hec, events({"event": "x"}), channel="not-a-guid").json()["code"] == 11
    channel = str(uuid.uuid4())
    ids = [post(hec, events({"event": n}), channel=channel).json()["ackId"] for n in range(3)]
    assert ids == [0, 1, 2]
    headers = {"Authorization": f"Splunk {TOKEN}"}
    ack_url = f"{hec.url}/services/collector/ack?channel={channel}"
    first = httpx.post(ack_url, json={"acks": [0, 2, 7]}, headers=headers)
    assert first.json() == {"acks": {"0": True, "2": True, "7": False}}
    again = httpx.post(ack_url, json={"acks": [0, 1]}, headers=headers)
    assert again.json() == {"acks": {"0": False, "1": True}}
    assert httpx.post(ack_url, content=b"{}", headers=headers).json()["code"] == 6


def test_without_acknowledgement_no_channel_is_needed_and_no_ack_id_given() -> None:
    with SplunkHecReceiver(TOKEN, acknowledgement=False) as receiver:
        answer = post(receiver, events({"event": "x"}), channel=None)
        ack = httpx.post(
            f"{receiver.url}/services/collector/ack",
            json={"acks": [0]},
            headers={"Authorization": f"Splunk {TOKEN}"},
        )
    assert answer.json() == {"text": "Success", "code": 0}
    assert ack.json() == {"text": "ACK is disabled", "code": 14}


def test_health_and_unknown_paths(hec: SplunkHecReceiver) -> None:
    assert httpx.get(f"{hec.url}/services/collector/health").json()["code"] == 17
    assert httpx.post(f"{hec.url}/elsewhere").status_code == 404
    assert httpx.get(hec.event_url).status_code == 405
