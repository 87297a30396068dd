"""The perf-test report: per-run figures, the summary, pending rows of a run cut off, the files."""

import json
from pathlib import Path
from typing import Any

import pytest

from s3stagger.domain.perf_metrics import Sample
from s3stagger.perf.report import LAST_LINE_FIGURES, PLOTS, RunOutcome, last_line, summary, write_report


def accounting(**changes: Any) -> dict[str, Any]:
    report = {
        "objects_total": 4,
        "rows_total": 40,
        "rows_applied": 40,
        "failed_rows": 0,
        "rows_unaccounted": 0,
        "duplicate_effects": 0,
        "dlq_messages": 0,
        "utilization": 0.9,
        "throttle_rate": 0.001,
        "peak_downstream_concurrency": 10,
        "elapsed_s": 4.0,
    }
    report.update(changes)
    return report


def outcome(scenario: str, dispatcher: str, **changes: Any) -> RunOutcome:
    samples = [
        Sample(
            t=t,
            rows_applied=10 * t,
            downstream_requests=10 * t,
            throttled_429=0,
            downstream_in_flight=4,
            downstream_queued=0,
            capacity=10,
            invocations_in_flight=1,
            slots=2,
            queue_visible={"high": 1, "normal": 0},
            queue_in_flight={"high": 1, "normal": 0},
        )
        for t in range(5)
    ]
    fields: dict[str, Any] = {
        "scenario": scenario,
        "dispatcher": dispatcher,
        "dispatcher_type": "EXPRESS",
        "capacity": 10,
        "latency_s": 0.1,
        "samples": samples,
        "latencies": {"high": [1.0, 2.0], "normal": [3.0, 4.0]},
        "report": accounting(),
        "cost": None,
        "work": None,
        "transitions": 8,
        "executions": 1,
        "timed_out": False,
        "requests": {},
    }
    fields.update(changes)
    return RunOutcome(**fields)


def test_figures_and_the_summary_of_v2_express() -> None:
    runs = [
        outcome("demo", "v2-express"),
        outcome("skewed", "v2-express"),
        outcome("demo", "no-stagger", report=accounting(duplicate_effects=1), transitions=None),
    ]
    figures = runs[0].figures()
    assert figures["utilization"] == 0.9
    assert figures["idle_slot_fraction_with_backlog"] == pytest.approx(0.5), (
        "1 of 2 slots idle, 1 message waiting"
    )
    assert figures["transitions_per_object"] == 2.0
    assert figures["p95_upload_to_complete_s"] == {"high": pytest.approx(1.95), "normal": pytest.approx(3.95)}
    result = summary(runs)
    assert result["demo_utilization"] == 0.9
    assert result["skewed_idle_slot_fraction"] == pytest.approx(0.5)
    assert result["duplicate_effects"] == 1, "summed over every dispatcher"
    assert set(result) == {
        "demo_utilization",
        "demo_rate_429",
        "demo_peak_over_capacity",
        "skewed_idle_slot_fraction",
        "cost_per_million_objects_usd",
        "rows_unaccounted",
        "duplicate_effects",
    }, "exactly the issue's keys"
    line = last_line(runs, Path("somewhere"))
    assert line["runs_timed_out"] == []
    assert set(line["scenarios"]["demo"]["v2-express"]) == set(LAST_LINE_FIGURES)
    assert set(line["scenarios"]["demo"]) == {"v2-express", "no-stagger"}
    assert line["scenarios"]["demo"]["no-stagger"]["transitions_per_object"] is None


def test_a_run_cut_off_reports_its_queued_rows_as_pending_not_unaccounted() -> None:
    cut = outcome(
        "demo",
        "no-stagger",
        report=accounting(rows_applied=25, rows_unaccounted=15),
        rows_pending=20,
        timed_out=True,
    )
    lost = outcome("burst", "no-stagger", report=accounting(rows_applied=25, rows_unaccounted=15))
    assert cut.figures()["rows_unaccounted"] == 0
    assert cut.figures()["rows_pending"] == 20
    result = summary([cut, lost])
    assert result["rows_unaccounted"] == 15, "without messages still queued the rows are missing"
    line = last_line([cut, lost], Path("somewhere"))
    assert line["rows_pending"] == 20
    assert line["runs_timed_out"] == ["demo/no-stagger"]


def test_the_report_folder_holds_json_markdown_and_every_plot(tmp_path: Path) -> None:
    runs = [outcome("demo", "v2-express"), outcome("demo", "sqs-mapping")]
    line = write_report(runs, tmp_path, {"mode": "test"})
    document = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert document["summary"] == line["summary"]
    assert [run["dispatcher"] for run in document["runs"]] == ["v2-express", "sqs-mapping"]
    assert len(document["runs"][0]["samples"]) == 5
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| v2-express | EXPRESS | 0.9 |" in markdown
    for name in PLOTS.values():
        assert (tmp_path / name).stat().st_size > 1000, name
        assert f"![{name}]({name})" in markdown
