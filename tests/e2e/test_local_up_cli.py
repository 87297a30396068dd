"""`s3stagger local up` starts the stack, prints how to reach it, serves, and stops."""

import json
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from s3stagger.cli.app import app
from s3stagger.cli.local import describe_stack, stop_on_signals

pytestmark = pytest.mark.e2e

STARTUP_LIMIT_S = 60


def test_local_up_prints_endpoint_and_names_then_stops() -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["local", "up", "--for", "0.5"])
    assert result.exit_code == 0, result.output
    assert "endpoint:        http://127.0.0.1:" in result.stdout
    assert "s3 cp file.csv s3://s3stagger-uploads/normal/file.csv" in result.stdout
    assert "s3stagger monitor --endpoint-url" in result.stdout
    assert "local stack stopped" in result.stderr


def test_local_up_serves_the_aws_api_until_sigterm() -> None:
    """As a user runs it: in its own process, driven with boto3, stopped with SIGTERM."""
    command = [str(Path(sys.executable).parent / "s3stagger"), "local", "up", "--json"]
    with subprocess.Popen(  # noqa: S603 - the project's own console script, fixed arguments
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], STARTUP_LIMIT_S)
            assert ready, "local up printed nothing in time"
            info = json.loads(process.stdout.readline())
            s3 = boto3.client(
                "s3",
                endpoint_url=info["endpoint_url"],
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            buckets = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
            names = info["names"]
            assert names["bucket"] in buckets
            assert names["failed_rows_bucket"] in buckets
            assert set(names["queue_urls"]) == {"high", "normal"}
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=STARTUP_LIMIT_S) == 0
        finally:
            if process.poll() is None:
                process.kill()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--latency", "fast"], "--latency"),
        (["--downstream-url", "ftp://x"], "must start with http:// or https://"),
        (["--capacity", "0"], "--capacity"),
    ],
)
def test_local_up_wrong_flags_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["local", "up", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_sigterm_sets_the_stop_event_and_handlers_are_restored() -> None:
    stop = threading.Event()
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
    assert signal.getsignal(signal.SIGTERM) is before


def test_describe_stack_lists_every_queue_and_a_copy_line() -> None:
    names = {
        "bucket": "b-uploads",
        "failed_rows_bucket": "b-failed",
        "failed_rows_prefix": "failed-rows/",
        "queue_urls": {"high": "http://e/q-high", "normal": "http://e/q-normal"},
        "ingest_dlq_url": "http://e/ingest-dlq",
        "state_machine_arn": "arn:aws:states:us-east-1:1:stateMachine:d",
        "function_name": "f",
        "budget_parameter": "/b/budget",
    }
    text = describe_stack("http://e", names, "http://d/rows")
    assert "--queue http://e/q-high --queue http://e/q-normal" in text
    assert "aws --endpoint-url http://e s3 cp file.csv s3://b-uploads/normal/file.csv" in text
    assert "s3://b-failed/failed-rows/" in text
