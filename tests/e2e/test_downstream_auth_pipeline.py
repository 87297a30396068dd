"""Downstream credentials on the local stack (emulator, dispatcher, local Lambda runtime, simulator):
every auth mode applies every row; a rotated secret recovers after one refresh; a wrong secret stops
each object with an alert naming the status and no row in the sink, and once it is fixed the
redriven messages apply every row once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

# Bound to pytest's stdout before the CLI runs (see test_demo_cli.py).
import s3stagger.handlers.process_object  # noqa: F401
from s3stagger.api_config import AuthMode
from s3stagger.cli.app import app
from s3stagger.cli.demo_auth import CREDENTIALS_ID
from s3stagger.cli.pipeline_run import PipelineRun, PipelineRunSettings, count_sink_rows
from s3stagger.local.downstream.settings import LatencySpec

pytestmark = pytest.mark.e2e

FAST = ["--latency", "fixed:0.005", "--timeout", "300"]


def demo(tmp_path: Path, mode: str, files: int, rows: int) -> dict[str, object]:
    log = tmp_path / f"{mode}.log"
    args = ["demo", "--auth", mode, "--files", str(files), "--rows", str(rows), "--json", *FAST]
    result = CliRunner().invoke(app, [*args, "--lambda-log", str(log)])
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_demo_oauth_applies_every_row_and_reports_the_refresh_after_a_rotation(tmp_path: Path) -> None:
    report = demo(tmp_path, "oauth", 4, 30)
    assert report["rows_applied"] == report["rows_total"] == 120
    assert (report["failed_rows"], report["duplicate_effects"], report["dlq_messages"]) == (0, 0, 0)
    auth = report["sections"]["auth"]  # type: ignore[index]
    assert auth["mode"] == "oauth"
    assert auth["rotations"] == 1  # the client secret rotated, tokens revoked, mid-run
    assert auth["auth_refreshes"] >= 1
    assert auth["tokens_issued"] == 2  # the first token, one after the rotation (one refresh fetched it)


@pytest.mark.parametrize("mode", ["api-key", "bearer", "sigv4"])
def test_every_auth_mode_applies_every_row(tmp_path: Path, mode: str) -> None:
    report = demo(tmp_path, mode, 2, 20)
    assert report["rows_applied"] == report["rows_total"] == 40
    assert (report["failed_rows"], report["duplicate_effects"], report["dlq_messages"]) == (0, 0, 0)
    auth = report["sections"]["auth"]  # type: ignore[index]
    if mode == "sigv4":  # nothing to rotate: the role's credentials sign
        assert (auth["rotations"], auth["auth_refused"]) == (0, 0)
    else:  # rotated mid-run: picked up by a refresh, no row refused for good
        assert auth["rotations"] == 1
        assert auth["auth_refreshes"] >= 1


def wait_for(condition: Callable[[], bool], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.2)


def test_a_wrong_secret_stops_each_object_alerts_and_a_fixed_one_redrives_every_row_once() -> None:
    settings = PipelineRunSettings(
        files=3,
        rows=40,
        capacity=8,
        latency=LatencySpec.fixed(0.005),
        auth=AuthMode.API_KEY,
        timeout_s=300,
        pipeline_options={"dispatcher": {"failure_retry_delay_s": 2}, "max_receive_count": 50},
    )
    with PipelineRun(settings) as run:
        stack, names = run.stack, run.stack.names
        secrets, events, sqs = stack.client("secretsmanager"), stack.client("events"), stack.client("sqs")
        secrets.put_secret_value(SecretId=CREDENTIALS_ID, SecretString="not-the-key")
        alerts = sqs.create_queue(QueueName="test-alerts")["QueueUrl"]
        alerts_arn = sqs.get_queue_attributes(QueueUrl=alerts, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name="test-failures", EventPattern=json.dumps({"detail-type": ["Object processing failed"]})
        )
        events.put_targets(Rule="test-failures", Targets=[{"Id": "alerts", "Arn": alerts_arn}])

        run.upload()
        wait_for(lambda: run.outcomes.answers.get("raised", 0) >= settings.files, 300)
        applied_before_fix = run.simulator.stats().effects_applied
        sink_rows_before_fix, _ = count_sink_rows(
            stack.client("s3"), names.failed_rows_bucket, names.failed_rows_prefix
        )
        alert = sqs.receive_message(QueueUrl=alerts, WaitTimeSeconds=5)["Messages"][0]

        assert run.demo_auth is not None
        secrets.put_secret_value(SecretId=CREDENTIALS_ID, SecretString=run.demo_auth.credential)
        assert run.follow()
        result = run.collect()

    assert applied_before_fix == 0
    assert sink_rows_before_fix == 0
    detail = json.loads(alert["Body"])["detail"]
    assert "SystemicRejectionError" in json.dumps(detail)
    assert "HTTP 401" in json.dumps(detail)
    report = result.report
    assert report.rows_applied == report.rows_total == 120
    assert (report.failed_rows, report.duplicate_effects, report.dlq_messages) == (0, 0, 0)
