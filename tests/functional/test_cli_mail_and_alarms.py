"""`s3stagger mail` on a mailbox the local SMTP server wrote; `s3stagger monitor --alarms` on moto."""

import json
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest
from _moto_support import moto_client
from typer.testing import CliRunner

from s3stagger.adapters.smtp_sender import SmtpCredentials, SmtpSender, SmtpServer
from s3stagger.cli.app import app
from s3stagger.local.smtp_server import LocalSmtpServer

runner = CliRunner()


@pytest.fixture(scope="module")
def mbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mail") / "mail.mbox"
    with LocalSmtpServer(path) as server:
        sender = SmtpSender(SmtpServer(server.host, server.port, "starttls", 5, str(server.ca_file)))
        for subject in (
            "[s3stagger] ALARM: s3stagger-dlq-not-empty-normal",
            "[s3stagger] Digest: 2 more alerts",
        ):
            message = EmailMessage()
            message["Subject"], message["From"], message["To"] = (
                subject,
                "alerts@example.com",
                "ops@example.com",
            )
            message.set_content(f"What failed:  {subject}\n")
            sender.send(message, SmtpCredentials(server.username, server.password))
    return path


def test_mail_lists_the_messages(mbox: Path) -> None:
    result = runner.invoke(app, ["mail", "--mbox", str(mbox)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "STARTTLS+AUTH" in lines[0]
    assert "ALARM: s3stagger-dlq-not-empty-normal" in lines[0]
    assert "Digest: 2 more alerts" in lines[1]
    assert lines[2].startswith("2 message(s) in")


def test_mail_shows_one_with_its_headers(mbox: Path) -> None:
    result = runner.invoke(app, ["mail", "--mbox", str(mbox), "--show", "2"])
    assert result.exit_code == 0, result.output
    assert "Received: from" in result.output
    assert "with ESMTPSA" in result.output
    assert "What failed:  [s3stagger] Digest: 2 more alerts" in result.output
    shown = json.loads(runner.invoke(app, ["mail", "--mbox", str(mbox), "--show", "1", "--json"]).output)
    assert shown["headers"]["Subject"] == "[s3stagger] ALARM: s3stagger-dlq-not-empty-normal"
    listed = [
        json.loads(line)
        for line in runner.invoke(app, ["mail", "--mbox", str(mbox), "--json"]).output.splitlines()
    ]
    assert [row["n"] for row in listed] == [1, 2]
    assert all(row["starttls_auth"] for row in listed)


def test_mail_says_what_is_wrong(mbox: Path, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["mail", "--mbox", str(tmp_path / "none.mbox")])
    assert missing.exit_code == 2
    assert "no mailbox at" in missing.output
    beyond = runner.invoke(app, ["mail", "--mbox", str(mbox), "--show", "9"])
    assert beyond.exit_code == 2
    assert "holds 2 message(s)" in beyond.output


def test_monitor_shows_alarm_states_alarm_first(endpoint_url: str) -> None:
    prefix = f"mon-{uuid.uuid4().hex[:6]}-"
    cloudwatch = moto_client(endpoint_url, "cloudwatch")
    for name in ("dlq-not-empty-normal", "processor-errors"):
        cloudwatch.put_metric_alarm(
            AlarmName=prefix + name,
            Namespace="AWS/SQS",
            MetricName="ApproximateNumberOfMessagesVisible",
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )
    cloudwatch.set_alarm_state(AlarmName=prefix + "processor-errors", StateValue="OK", StateReason="fine")
    cloudwatch.set_alarm_state(
        AlarmName=prefix + "dlq-not-empty-normal", StateValue="ALARM", StateReason="3 visible"
    )
    result = runner.invoke(
        app, ["monitor", "--endpoint-url", endpoint_url, "--alarms", prefix, "--once", "--json"]
    )
    assert result.exit_code == 0, result.output
    alarms = json.loads(result.output)["alarms"]
    assert [(a["name"], a["state"]) for a in alarms] == [
        (prefix + "dlq-not-empty-normal", "ALARM"),
        (prefix + "processor-errors", "OK"),
    ]
    table = runner.invoke(app, ["monitor", "--endpoint-url", endpoint_url, "--alarms", prefix, "--once"])
    assert "alarms (1 of 2 in ALARM)" in table.output
