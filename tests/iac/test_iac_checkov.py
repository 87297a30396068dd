"""checkov over terraform/: no failed check, and every skip carries its reason on its own line."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from _iac_support import REPO_ROOT, TERRAFORM_ROOT, TF_FILES

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=([^:\s]+)(?::(.*))?$")
CHECK_ID = re.compile(r"^CKV2?_AWS_\d+$")


def skip_comments() -> list[tuple[Path, int, str, str]]:
    found = []
    for path in TF_FILES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = SKIP_COMMENT.search(line)
            if match:
                found.append((path, number, match.group(1), (match.group(2) or "").strip()))
    return found


def test_every_skip_names_a_check_and_justifies_it_on_its_line() -> None:
    skips = skip_comments()
    assert skips, "expected the documented skips (e.g. CKV_AWS_116 on the synchronously invoked Lambda)"
    for path, number, check, reason in skips:
        where = f"{path.relative_to(REPO_ROOT)}:{number}"
        assert CHECK_ID.match(check), f"{where}: {check} is not a checkov AWS check id"
        assert len(reason.split()) >= 6, f"{where}: skip of {check} needs a reason after the colon"


def test_no_check_is_skipped_outside_the_tf_files() -> None:
    """A skip list in the config would hide a skip from the resource it excuses."""
    config = (REPO_ROOT / ".checkov.yaml").read_text(encoding="utf-8")
    assert "skip-check" not in config
    assert "soft-fail" not in config


@pytest.mark.skipif(
    not CHECKOV.exists(),
    reason="checkov's own venv .venv-checkov is absent: run `make checkov` to install it",
)
def test_checkov_reports_no_failed_check() -> None:
    result = subprocess.run(  # noqa: S603
        [
            str(CHECKOV),
            "-d",
            str(TERRAFORM_ROOT.relative_to(REPO_ROOT)),
            "--compact",
            "--quiet",
            "-o",
            "json",
        ],
        cwd=REPO_ROOT,
        # checkov gives up on a file it cannot parse in 10 s, and a busy CI machine gets there:
        # a parse timeout must not pass for a clean scan (parsing_errors is asserted below).
        env={**os.environ, "HCL_PARSE_TIMEOUT_SEC": "180"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.stdout.strip(), (
        f"checkov printed nothing (exit {result.returncode}): {result.stderr[-2000:]}"
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    terraform = [report for report in reports if report.get("check_type") == "terraform"]
    assert terraform, f"checkov ran no terraform checks: {result.stdout[:500]}"
    summary = terraform[0]["summary"]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}"
        for report in terraform
        for check in report["results"].get("failed_checks", [])
    ]
    assert failed == []
    assert summary["failed"] == 0
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100, "checkov found far fewer resources than the modules hold"
    assert result.returncode == 0
