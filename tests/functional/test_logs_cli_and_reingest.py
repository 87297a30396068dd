"""`s3stagger logs` on an index file, where local telemetry lives, and the transform's re-ingestion
into a real (emulated) Firehose stream."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from s3stagger.cli.app import app
from s3stagger.handlers.transform_logs import firehose_reingest
from s3stagger.local.splunk_hec import IndexedEvent
from s3stagger.local.telemetry_location import default_telemetry_dir


def write_index(path: Path) -> None:
    events = [
        IndexedEvent(
            2.0,
            "h",
            "/aws/lambda/p",
            "s",
            "main",
            {"level": "INFO", "message": "object processed", "object_key": "a.csv"},
            {"object_key": "a.csv"},
        ),
        IndexedEvent(
            1.0,
            "h",
            "/aws/lambda/p",
            "s",
            "main",
            {"level": "INFO", "message": "processing object", "object_key": "a.csv"},
            {"object_key": "a.csv"},
        ),
        IndexedEvent(
            3.0,
            "h",
            "/aws/lambda/p",
            "s",
            "main",
            {"_aws": {"CloudWatchMetrics": [{"Metrics": [{"Name": "RowsApplied"}]}]}, "RowsApplied": 1},
        ),
    ]
    path.write_text("".join(json.dumps(asdict(e)) + "\n" for e in events))


def test_logs_lists_an_objects_events_in_time_order(tmp_path: Path) -> None:
    index = tmp_path / "index.jsonl"
    write_index(index)
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["logs", "--object", "a.csv", "--index", str(index)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.index("processing object") < result.stdout.index("object processed")
    every = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["logs", "--source", "/aws/lambda/p", "--index", str(index)]
    )
    assert "EMF metrics: RowsApplied" in every.stdout


def test_logs_without_an_index_says_what_to_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["logs", "--object", "a.csv", "--index", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2
    assert "run `s3stagger demo` or `s3stagger local up` first" in result.output


def test_the_telemetry_dir_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("S3STAGGER_TELEMETRY_DIR", str(tmp_path / "t"))
    assert default_telemetry_dir() == tmp_path / "t"
    monkeypatch.delenv("S3STAGGER_TELEMETRY_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_telemetry_dir() == tmp_path / "state" / "s3stagger" / "telemetry"


def test_the_overflow_is_put_back_into_the_delivery_stream(
    endpoint_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3").create_bucket(Bucket="backup")
    firehose = boto3.client("firehose")
    arn = firehose.create_delivery_stream(
        DeliveryStreamName="s3stagger-splunk-logs",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/f",
            "BucketARN": "arn:aws:s3:::backup",
        },
    )["DeliveryStreamARN"]
    firehose_reingest(arn, [b"one", b"two"])
    s3 = boto3.client("s3")
    (stored,) = s3.list_objects_v2(Bucket="backup")["Contents"]
    assert s3.get_object(Bucket="backup", Key=stored["Key"])["Body"].read() == b"onetwo"
    with pytest.raises(ClientError) as missing:
        firehose_reingest(arn.replace("s3stagger-splunk-logs", "missing"), [b"x"])
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
