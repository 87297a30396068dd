"""`s3stagger perf-test --scenario one-object`: an autoscaler scenario runs inside perf-test, its
figures land in the last JSON line, report.json and report.md, with its plot and decision lines
(every row accounted for; never a timing threshold)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

# Imported before the CLI runs so the processor's logger is bound to pytest's stdout.
import s3stagger.handlers.process_object  # noqa: F401
from s3stagger.cli.app import app

pytestmark = pytest.mark.e2e

ISSUE_KEYS = {
    "capacity_step_convergence_s",
    "capacity_step_rate_429",
    "unknown_capacity_reach_s",
    "queue_mode_latency_ratio",
    "priority_high_p95_s",
    "object_processing_s",
}


def test_an_autoscaler_scenario_runs_inside_perf_test(tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    args = ["perf-test", "--scenario", "one-object", "--report-dir", str(report_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(line["scenarios"]) == {"one-object"}  # no dispatcher comparison was asked for
    summary = line["summary"]
    assert set(summary) >= ISSUE_KEYS
    assert summary["object_processing_s"] > 0
    assert summary["capacity_step_convergence_s"] is None  # not run
    assert (summary["rows_unaccounted"], summary["duplicate_effects"]) == (0, 0)
    document = json.loads((report_dir / "report.json").read_text())
    assert document["summary"]["object_processing_s"] == summary["object_processing_s"]
    assert "## Autoscaler scenarios (issue 9)" in (report_dir / "report.md").read_text()
    assert (report_dir / "autoscale-one-object.png").stat().st_size > 0
    decisions = (report_dir / "autoscale-one-object-decisions.jsonl").read_text().splitlines()
    assert {"budget", "rows_in_flight_target", "reason"} <= set(json.loads(decisions[0]))
