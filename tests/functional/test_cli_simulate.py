"""`s3stagger simulate` against a moto server on 127.0.0.1."""

import csv
import io
import json
import uuid

import pytest
from _moto_support import moto_client
from typer.testing import CliRunner

from s3stagger.cli.app import app
from s3stagger.cli.sample_data import SAMPLE_HEADER, SampleObject, run_id_for_seed
from s3stagger.cli.simulate import upload_objects


@pytest.fixture
def s3(endpoint_url: str):  # type: ignore[no-untyped-def]
    return moto_client(endpoint_url, "s3")


@pytest.fixture
def bucket(s3) -> str:  # type: ignore[no-untyped-def]
    name = f"sim-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _keys(s3, bucket: str) -> list[str]:  # type: ignore[no-untyped-def]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def test_uploads_the_requested_files_and_rows(endpoint_url: str, s3, bucket: str) -> None:  # type: ignore[no-untyped-def]
    args = ["simulate", "--bucket", bucket, "--files", "12", "--rows", "4", "--workers", "4"]
    args += ["--endpoint-url", endpoint_url, "--prefix", "high/", "--seed", "7", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["objects"] == 12
    assert summary["rows"] == 48
    assert summary["run_id"] == run_id_for_seed(7)
    keys = _keys(s3, bucket)
    assert len(keys) == 12
    assert all(key.startswith(f"high/{run_id_for_seed(7)}/") for key in keys)
    body = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read().decode()
    parsed = list(csv.reader(io.StringIO(body)))
    assert tuple(parsed[0]) == SAMPLE_HEADER
    assert len(parsed) == 5


def test_human_summary_names_the_bucket(endpoint_url: str, bucket: str) -> None:
    args = ["simulate", "--bucket", bucket, "--files", "2", "--endpoint-url", endpoint_url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"uploaded 2 objects (100 rows) to s3://{bucket}/" in result.stdout


def test_a_missing_bucket_is_named_and_exits_non_zero(endpoint_url: str) -> None:
    args = ["simulate", "--bucket", "no-such-bucket-here", "--files", "2", "--endpoint-url", endpoint_url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "bucket 'no-such-bucket-here' does not exist" in result.stderr
    assert "Traceback" not in result.output


def test_an_empty_bucket_name_is_a_usage_error(endpoint_url: str) -> None:
    result = CliRunner().invoke(app, ["simulate", "--bucket", " ", "--endpoint-url", endpoint_url])
    assert result.exit_code == 2
    assert "--bucket must name an existing bucket" in result.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--files", "0"], "--files"),
        (["--workers", "1000"], "--workers"),
        (["--rows", "many"], "--rows"),
        (["--no-such-flag"], "No such option"),
    ],
)
def test_wrong_flags_are_refused_with_a_usage_message(
    endpoint_url: str, flags: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--bucket", "x-bucket", "--endpoint-url", endpoint_url, *flags]
    )
    assert result.exit_code == 2
    assert message in result.output


def test_an_unreachable_endpoint_is_reported_without_a_traceback() -> None:
    args = ["simulate", "--bucket", "some-bucket", "--endpoint-url", "http://127.0.0.1:9"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "http://127.0.0.1:9" in result.stderr


def test_upload_objects_stops_on_the_first_failure_and_raises_it(s3) -> None:  # type: ignore[no-untyped-def]
    objects = (SampleObject(key=f"k{i}.csv", body=b"a\n1\n", rows=1) for i in range(50))
    with pytest.raises(Exception, match="NoSuchBucket"):
        upload_objects(s3, "bucket-that-is-not-there", objects, workers=3)


def test_upload_objects_refuses_a_silly_worker_count(s3, bucket: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="workers"):
        upload_objects(s3, bucket, [], workers=0)
