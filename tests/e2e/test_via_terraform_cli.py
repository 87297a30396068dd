"""`--via-terraform` where Terraform cannot run: one clear line and a non-zero exit, nothing left running.

The apply itself is exercised by tests/iac/test_iac_parity.py (where terraform is installed).
"""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from s3stagger.cli.app import app
from s3stagger.cli.console import stderr_console
from s3stagger.cli.local import terraform_progress
from s3stagger.local.emulator import Emulator

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("command", [["local", "up", "--for", "0"], ["demo", "--files", "1", "--rows", "1"]])
def test_via_terraform_without_terraform_says_so_and_fails(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no terraform on it
    result = CliRunner(env={"COLUMNS": "300"}).invoke(app, [*command, "--via-terraform"])
    assert result.exit_code == 1, result.output
    assert "terraform is not installed" in result.stderr
    assert Emulator._running is None  # the emulator started for it was stopped


def test_terraform_progress_shows_finished_resources_and_errors_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show = terraform_progress(stderr_console())
    for line in [
        'module.ingest.aws_sqs_queue.priority["high"]: Creating...',
        'module.ingest.aws_sqs_queue.priority["high"]: Creation complete after 25s [id=x]',
        "Error: validating Step Functions State Machine definition",
        "Apply complete! Resources: 45 added, 0 changed, 0 destroyed.",
    ]:
        show(line)
    shown = capsys.readouterr().err.splitlines()
    assert shown == [
        'terraform: module.ingest.aws_sqs_queue.priority["high"]: Creation complete after 25s [id=x]',
        "terraform: Error: validating Step Functions State Machine definition",
        "terraform: Apply complete! Resources: 45 added, 0 changed, 0 destroyed.",
    ]
