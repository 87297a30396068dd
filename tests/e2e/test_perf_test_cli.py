"""`s3stagger perf-test --quick` and `s3stagger cost`: the report folder, the last JSON line, and
every row accounted for (never a timing threshold)."""

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

# Imported before the CLI runs so the processor's logger is bound to pytest's stdout.
import s3stagger.handlers.process_object  # noqa: F401
from s3stagger.cli.app import app
from s3stagger.local.downstream import DownstreamSimulator, SimulatorSettings
from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings
from s3stagger.perf.existing import ExistingDeployment, run_existing

pytestmark = pytest.mark.e2e

FIGURE_KEYS = {
    "utilization",
    "rate_429",
    "peak_downstream_concurrency",
    "capacity",
    "p95_upload_to_complete_s",
    "idle_slot_fraction_with_backlog",
    "cost_per_million_objects_usd",
    "transitions_per_object",
}
SUMMARY_KEYS = {
    "demo_utilization",
    "demo_rate_429",
    "demo_peak_over_capacity",
    "skewed_idle_slot_fraction",
    "cost_per_million_objects_usd",
    "rows_unaccounted",
    "duplicate_effects",
}
PLOTS = {
    "throughput.png",
    "downstream_in_flight.png",
    "queue_depth.png",
    "throttled_429.png",
    "latency_cdf.png",
}


def test_quick_perf_test_writes_a_consistent_report(tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    args = ["perf-test", "--quick", "--dispatcher", "v2-express", "--dispatcher", "no-stagger"]
    result = CliRunner().invoke(app, [*args, "--report-dir", str(report_dir)])
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["report_dir"] == str(report_dir)
    assert set(line["scenarios"]) == {"demo"}
    assert set(line["scenarios"]["demo"]) == {"v2-express", "no-stagger"}
    for figures in line["scenarios"]["demo"].values():
        assert figures.keys() == FIGURE_KEYS
        assert set(figures["p95_upload_to_complete_s"]) == {"high", "normal"}
        assert figures["peak_downstream_concurrency"] >= 1
        assert figures["cost_per_million_objects_usd"] > 0
    assert line["scenarios"]["demo"]["no-stagger"]["idle_slot_fraction_with_backlog"] is None
    assert line["scenarios"]["demo"]["no-stagger"]["transitions_per_object"] is None
    assert line["scenarios"]["demo"]["v2-express"]["transitions_per_object"] is not None
    assert line["summary"].keys() == SUMMARY_KEYS
    assert line["summary"]["rows_unaccounted"] == 0
    assert line["summary"]["duplicate_effects"] == 0

    assert {path.name for path in report_dir.iterdir()} >= {"report.json", "report.md", *PLOTS}
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert report["summary"] == line["summary"]
    for run in report["runs"]:
        accounting = run["report"]
        assert accounting["rows_applied"] == accounting["rows_total"] > 0, "every uploaded row applied once"
        assert accounting["objects_complete"] == accounting["objects_total"]
        assert accounting["dlq_messages"] == 0
        assert run["aws_requests"]["s3"]["GetObject"] >= accounting["objects_total"]
        assert run["cost_counters"]["objects"] == accounting["objects_total"]
        assert run["cost_counters"]["user_s3_puts"] == accounting["objects_total"], "uploads are the user's"
        assert sum(len(values) for values in run["latencies_s"].values()) == accounting["objects_total"]
        assert run["samples"], "the run was sampled"
    assert "## Scenario `demo`" in (report_dir / "report.md").read_text(encoding="utf-8")

    priced = CliRunner().invoke(
        app, ["cost", str(report_dir / "report.json"), "--run", "demo/no-stagger", "--json"]
    )
    assert priced.exit_code == 0, priced.output
    estimate = json.loads(priced.stdout)
    no_stagger = line["scenarios"]["demo"]["no-stagger"]["cost_per_million_objects_usd"]
    assert estimate["cost_per_million_objects_usd"] == pytest.approx(no_stagger, abs=0.01)
    assert {i["name"] for i in estimate["line_items"]} >= {"S3 GET requests", "Lambda requests"}


def test_cost_refuses_what_it_cannot_price(tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["cost", str(tmp_path / "none.json")])
    assert missing.exit_code == 2
    assert "cannot read" in missing.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"objects": 0, "rows": 1, "capacity": 1, "latency_s": 1}', encoding="utf-8")
    refused = CliRunner().invoke(app, ["cost", str(bad)])
    assert refused.exit_code == 2
    assert "objects must be >= 1" in refused.output
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps({"objects": 10, "rows": 500, "capacity": 50, "latency_s": 0.2, "sfn_transitions": 30}),
        encoding="utf-8",
    )
    table = CliRunner().invoke(app, ["cost", str(good)])
    assert table.exit_code == 0
    assert "Step Functions Standard transitions" in table.stdout
    assert "75.00" in table.stdout, "3 transitions per object cost $75 per million objects"


def test_perf_test_drives_an_existing_deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        DownstreamSimulator(SimulatorSettings(capacity=10)) as simulator,
        LocalPipeline(LocalPipelineSettings(downstream_url=simulator.rows_url)) as stack,
    ):
        for name, value in stack.environment().items():  # what `s3stagger local up` tells a user to set
            monkeypatch.setenv(name, value)
        names = stack.names
        deployment = ExistingDeployment(
            bucket=names.bucket,
            queue=names.queue_urls["normal"],
            state_machine_arn=names.state_machine_arn,
            function_name=names.function_name,
            endpoint_url=stack.endpoint_url,
            downstream_url=simulator.url,
        )
        line = run_existing(
            deployment, files=3, rows=4, timeout_s=300, report_dir=tmp_path, console=Console(stderr=True)
        )
    figures = line["scenarios"]["existing"][names.state_machine_name]
    assert figures["capacity"] == 10
    assert figures["transitions_per_object"] > 0
    assert line["summary"]["rows_unaccounted"] == 0, "the simulator saw every row"
    assert (tmp_path / "report.json").exists()
    assert (tmp_path / "throughput.png").exists()
