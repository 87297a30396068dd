"""`s3stagger demo --scenario failures`: poison messages, stray uploads and a downstream outage; the
alarms fire, the emails arrive over STARTTLS with AUTH, and every row is still accounted for."""

import json
import mailbox
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import s3stagger.handlers.notify
import s3stagger.handlers.process_object
from s3stagger.cli.app import app
from s3stagger.cli.demo_failures import failures_exit_status, render_alerting

pytestmark = pytest.mark.e2e

assert s3stagger.handlers.notify  # imported for its logger, as the processor's above


def _wait_for_lambda_threads(limit_s: float = 300.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and any(t.name.startswith("lambda-") for t in threading.enumerate()):
        time.sleep(0.1)


@pytest.mark.timeout(1200)  # the demo's own bound is 240 s of run plus the alert settling; loaded CI is slow
def test_failures_scenario_reports_alarms_and_emails_and_accounts_every_row(tmp_path: Path) -> None:
    mbox = tmp_path / "mail.mbox"
    args = ["demo", "--scenario", "failures", "--files", "8", "--rows", "10", "--json", "--timeout", "240"]
    result = CliRunner().invoke(
        app, [*args, "--lambda-log", str(tmp_path / "lambda.log"), "--mailbox", str(mbox)]
    )
    _wait_for_lambda_threads()
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["rows_unaccounted"] == 0
    assert report["duplicate_effects"] == 0
    assert report["emails_received"] >= 1
    assert report["emails_via_starttls"] == report["emails_received"]
    assert "s3stagger-dlq-not-empty-normal" in report["alarms_fired"], report  # the poison messages
    assert "s3stagger-dlq-not-empty-ingest-dlq" in report["alarms_fired"]  # the stray uploads
    assert len(mailbox.mbox(str(mbox))) == report["emails_received"]


def test_exit_status_and_text_of_the_alerting_section() -> None:
    class Report:
        all_rows_accounted = True
        duplicate_effects = 0

    figures = {"alarms_fired": ["a"], "emails_received": 2, "emails_via_starttls": 2, "mailbox": "m"}
    assert failures_exit_status(Report(), figures) == 0  # type: ignore[arg-type]
    assert failures_exit_status(Report(), {**figures, "emails_received": 0}) == 3  # type: ignore[arg-type]
    Report.all_rows_accounted = False
    assert failures_exit_status(Report(), figures) == 1  # type: ignore[arg-type]
    text = render_alerting(figures)
    assert "alarms fired (1): a" in text
    assert "emails received: 2 (2 over STARTTLS with AUTH)" in text
