"""`s3stagger demo` end to end: emulator, local Lambda runtime, real handler, real simulator."""

import importlib.util
import json
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

# Imported before the CLI runs so the processor's logger is bound to pytest's stdout, not to the
# runner's: the demo's own stdout must carry the report only.
import s3stagger.handlers.process_object  # noqa: F401
from s3stagger.cli.app import app

pytestmark = pytest.mark.e2e

REQUIRED_KEYS = {
    "objects_total",
    "objects_complete",
    "rows_total",
    "rows_applied",
    "duplicate_effects",
    "failed_rows",
    "dlq_messages",
    "peak_downstream_concurrency",
    "downstream_capacity",
    "utilization",
    "elapsed_s",
}


def _wait_for_lambda_threads(limit_s: float = 300.0) -> None:
    """An invocation cut off by a stopped stack finishes in the background; let it end first."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if not any(thread.name.startswith("lambda-") for thread in threading.enumerate()):
            return
        time.sleep(0.1)


def test_demo_json_applies_every_row_once(tmp_path: Path) -> None:
    log = tmp_path / "processor.log"
    args = ["demo", "--files", "3", "--rows", "5", "--high-share", "0.34", "--json", "--timeout", "300"]
    result = CliRunner().invoke(app, [*args, "--lambda-log", str(log)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, "--json prints one JSON object and nothing else"
    report = json.loads(lines[0])
    assert report.keys() >= REQUIRED_KEYS
    assert report["objects_total"] == report["objects_complete"] == 3
    assert report["rows_total"] == report["rows_applied"] == 15
    assert report["duplicate_effects"] == 0
    assert report["failed_rows"] == 0
    assert report["dlq_messages"] == 0
    assert 1 <= report["peak_downstream_concurrency"] <= report["downstream_capacity"]
    assert 0 < report["utilization"] <= 1
    assert report["processor_invocations"] >= 3
    assert "CloudWatchMetrics" in log.read_text(encoding="utf-8"), "processor output goes to the log file"


def test_rows_the_downstream_refuses_are_accounted_in_the_failed_row_sink() -> None:
    # 500: a server error, retried and then sunk (a 503 would pause the objects until it passes)
    args = ["demo", "--files", "2", "--rows", "3", "--error-rate", "1", "--error-status", "500"]
    args += ["--json", "--timeout", "300"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows_applied"] == 0
    assert report["failed_rows"] == 6
    assert report["downstream_errors_5xx"] >= 6
    assert report["rows_unaccounted"] == 0


def test_the_human_report_ends_with_the_verdict() -> None:
    result = CliRunner(env={"COLUMNS": "160"}).invoke(app, ["demo", "--files", "2", "--rows", "4"])
    assert result.exit_code == 0, result.output
    assert "s3stagger demo report" in result.stdout
    assert "OK: every row applied or accounted for" in result.stdout
    assert "sizing: budget" in result.stderr


def test_rows_still_missing_when_the_run_gives_up_exit_non_zero() -> None:
    args = ["demo", "--files", "2", "--rows", "6", "--latency", "fixed:0.5", "--json", "--timeout", "1"]
    result = CliRunner().invoke(app, args)
    _wait_for_lambda_threads()
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["timed_out"] is True
    assert report["rows_unaccounted"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--latency", "slow"], "--latency"),
        (["--files", "0"], "--files"),
        (["--capacity", "x"], "--capacity"),
    ],
)
def test_wrong_flags_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["demo", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_bench_pipeline_prints_one_json_line_of_figures(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(__file__).parents[2] / "benchmarks" / "bench_pipeline.py"
    spec = importlib.util.spec_from_file_location("bench_pipeline", path)
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--files", "3", "--rows", "4", "--timeout", "300"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[-1])
    assert figures["rows_applied"] == 12
    assert figures["lambda_invocations_per_object"] >= 1.0
    assert figures["state_transitions_per_object"] > 0, "counted from the executions' histories"
    assert figures["upload_to_complete_p50_s"] > 0
    assert figures["upload_to_complete_p95_s"] >= figures["upload_to_complete_p50_s"]
    assert 0 <= figures["throttle_rate_429"] <= 1


def test_an_unwritable_log_file_is_a_clear_error(tmp_path: Path) -> None:
    log = tmp_path / "no-such-directory" / "processor.log"
    result = CliRunner().invoke(app, ["demo", "--files", "1", "--json", "--lambda-log", str(log)])
    assert result.exit_code == 1
    assert "the local pipeline failed: FileNotFoundError" in result.stderr
    assert str(log) in result.stderr
