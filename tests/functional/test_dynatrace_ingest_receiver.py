"""The local Dynatrace ingest endpoint over real HTTP: 202/400 with linesOk/linesInvalid, refusals."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from s3stagger.local.dynatrace_ingest import DynatraceIngestReceiver

TOKEN = "dt0c01.TEST.TOKEN"
NOW = 1_764_540_000_000


@pytest.fixture
def receiver() -> Iterator[DynatraceIngestReceiver]:
    with DynatraceIngestReceiver(TOKEN, clock_ms=lambda: NOW) as started:
        yield started


def ingest(
    receiver: DynatraceIngestReceiver,
    body: str,
    token: str | None = TOKEN,
    content_type: str = "text/plain; charset=utf-8",
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Api-Token {token}"
    return httpx.post(receiver.ingest_url, content=body.encode(), headers=headers)


def test_valid_lines_are_202_and_kept_by_series(receiver: DynatraceIngestReceiver) -> None:
    body = (
        f'cloud.aws.sqs.visible,queuename="q" gauge,min=1,max=4,sum=5,count=2 {NOW}\n'
        "#cloud.aws.sqs.visible gauge dt.meta.unit=Count\n"
        "\n"
        f'cloud.aws.sqs.visible,queuename="q" gauge,3 {NOW + 1}\n'
        "s3stagger.rows count,delta=10\n"
    )
    answer = ingest(receiver, body)
    assert answer.status_code == 202
    assert answer.json() == {"linesOk": 3, "linesInvalid": 0, "error": None, "warnings": None}
    series = receiver.series()
    assert [p.line.value for p in series[("cloud.aws.sqs.visible", (("queuename", "q"),))]] == [2.5, 3.0]
    assert [p.timestamp_ms for p in series[("s3stagger.rows", ())]] == [NOW]
    assert receiver.stats().lines_received == 3


def test_invalid_lines_are_400_with_their_numbers_and_the_valid_ones_are_kept(
    receiver: DynatraceIngestReceiver,
) -> None:
    answer = ingest(receiver, "good.metric 1\nab 1\ngood.metric count,7\ndt.reserved 2\n")
    assert answer.status_code == 400
    document = answer.json()
    assert (document["linesOk"], document["linesInvalid"]) == (1, 3)
    assert [item["line"] for item in document["error"]["invalidLines"]] == [2, 3, 4]
    assert "absolute counts" in document["error"]["invalidLines"][1]["error"]
    assert receiver.metric_keys() == {"good.metric"}
    assert receiver.stats().lines_invalid == 3


@pytest.mark.parametrize(
    ("token", "content_type", "body", "status"),
    [
        (None, "text/plain", "a.metric 1", 401),
        ("wrong", "text/plain", "a.metric 1", 401),
        (TOKEN, "application/json", "a.metric 1", 415),
        (TOKEN, "text/plain", "", 400),
        (TOKEN, "text/plain", "a.metric 1\n" * 100_000, 413),
    ],
)
def test_requests_refused_as_a_whole(
    receiver: DynatraceIngestReceiver, token: str | None, content_type: str, body: str, status: int
) -> None:
    answer = ingest(receiver, body, token=token, content_type=content_type)
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == status
    assert receiver.series() == {}


def test_unavailable_is_503_until_it_is_back(receiver: DynatraceIngestReceiver) -> None:
    receiver.unavailable = True
    assert ingest(receiver, "a.metric 1").status_code == 503
    receiver.unavailable = False
    assert ingest(receiver, "a.metric 1").status_code == 202
    assert receiver.stats().requests_refused == 1
