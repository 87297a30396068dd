"""Shared set-up for the processor's functional tests: moto S3 in-process, the real simulator."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from s3stagger.handlers import process_object

BUCKET = "s3stagger-test-ingest"


def csv_bytes(rows: int, start: int = 1) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "name", "amount"])
    for number in range(start, start + rows):
        writer.writerow([number, f"name {number}", f"{number * 3}.50"])
    return buffer.getvalue().encode("utf-8")


@contextmanager
def moto_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        process_object._s3_clients.clear()
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        try:
            yield client
        finally:
            process_object._s3_clients.clear()


def processor_env(monkeypatch: pytest.MonkeyPatch, rows_url: str, **settings: Any) -> None:
    """Set ``S3STAGGER_*`` variables: fast backoff for tests, then the given overrides."""
    base: dict[str, Any] = {
        "DOWNSTREAM_URL": rows_url,
        "BACKOFF_BASE_S": 0.005,
        "BACKOFF_MAX_S": 0.05,
        "READ_TIMEOUT_S": 5,
        "DEADLINE_MARGIN_S": 2,
    }
    for name, value in (base | settings).items():
        monkeypatch.setenv(f"S3STAGGER_{name}", str(value))


@dataclass
class CountdownContext:
    """A Lambda-like context whose remaining time drops once it has been asked ``calls`` times.

    Deterministic: the deadline depends on how far the processor got, not on the machine's speed.
    """

    calls: int
    before_ms: int = 60_000
    after_ms: int = 1_000
    asked: int = 0

    def get_remaining_time_in_millis(self) -> int:
        self.asked += 1
        return self.before_ms if self.asked <= self.calls else self.after_ms


def read_failed_rows(s3: Any, uri: str) -> list[dict[str, str]]:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    # row 0 is the object's header line, kept for replays
    return [row for row in csv.DictReader(io.StringIO(text)) if row["row_number"] != "0"]


def invoke(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    return process_object.handler(dict(event), context)
