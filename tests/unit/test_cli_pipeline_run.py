"""Pure parts of the pipeline run: workload split, message parsing, outcome recording, figures."""

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from s3stagger.cli import pipeline_run
from s3stagger.cli.app import app
from s3stagger.cli.demo import (
    EXIT_NOT_CLEAN,
    EXIT_ROWS_MISSING,
    exit_status,
    render_progress,
    render_report,
    sizing_note,
)
from s3stagger.cli.pipeline_report import PipelineObservation, summarize_pipeline_run
from s3stagger.cli.pipeline_run import (
    PipelineProgress,
    PipelineRunResult,
    PipelineRunSettings,
    ProcessorOutcomes,
    object_key_of_message,
    rows_of,
    workload,
)
from s3stagger.cli.simulate import UploadedObject
from s3stagger.definitions.model import Definitions


def _observation(**changes: Any) -> PipelineObservation:
    values: dict[str, Any] = {
        "objects_total": 4,
        "rows_total": 40,
        "elapsed_s": 2.0,
        "objects_complete": 4,
        "objects_rejected": 0,
        "rows_applied": 40,
        "duplicate_effects": 0,
        "duplicate_deliveries": 0,
        "failed_rows": 0,
        "rows_quarantined": 0,
        "dlq_messages": 0,
        "rows_in_dlq": 0,
        "downstream_requests": 40,
        "downstream_throttled_429": 0,
        "downstream_errors_5xx": 0,
        "peak_downstream_concurrency": 4,
        "downstream_capacity": 4,
        "downstream_latency_s": 0.1,
    }
    values.update(changes)
    return PipelineObservation(**values)


def test_workload_splits_by_priority_share_with_distinct_rows() -> None:
    settings = PipelineRunSettings(files=10, rows=3, high_priority_share=0.3, seed=5)
    objects = list(workload(settings, "high/", "normal/"))
    assert [item.key.split("/")[0] for item in objects] == ["high"] * 3 + ["normal"] * 7
    rows = [line for item in objects for line in item.body.decode().splitlines()[1:]]
    assert len(rows) == 30
    assert len(set(rows)) == 30


@pytest.mark.parametrize(
    "change",
    [{"files": 0}, {"rows": -1}, {"high_priority_share": 1.5}, {"timeout_s": 0}],
)
def test_run_settings_refuse_nonsense(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(change))):
        PipelineRunSettings(**change)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"detail": {"bucket": {"name": "b"}, "object": {"key": "normal/a.csv"}}}, "normal/a.csv"),
        ({"object": {"detail": {"object": {"key": "high/b.csv"}}}, "cursor": None}, "high/b.csv"),
        ({"object": {"bucket": "b", "key": "normal/c.csv"}, "cursor": {"row": 3}}, "normal/c.csv"),
        (
            {"continuation": {"object": {"detail": {"object": {"key": "normal/d.csv"}}}, "cursor": {}}},
            "normal/d.csv",
        ),
        ({"bucket": "b", "key": "plain.csv"}, "plain.csv"),
        ({"something": "else"}, None),
        ([1, 2], None),
    ],
)
def test_object_key_of_message(body: Any, key: str | None) -> None:
    assert object_key_of_message(json.dumps(body)) == key


def test_object_key_of_a_non_json_message_is_none() -> None:
    assert object_key_of_message("not json") is None


def test_processor_outcomes_records_answers_and_passes_them_through() -> None:
    answers = iter(
        [
            {"status": "PARTIAL", "key": "a.csv"},
            {"status": "COMPLETE", "key": "a.csv"},
            {"status": "COMPLETE", "key": "a.csv"},
            {"status": "REJECTED", "key": "b.csv"},
            "not a mapping",
        ]
    )
    clock = iter([10.0, 11.0, 12.0, 13.0, 14.0])
    outcomes = ProcessorOutcomes(lambda event, context: next(answers), clock=lambda: next(clock))
    returned = [outcomes({}, None) for _ in range(5)]
    assert returned[1] == {"status": "COMPLETE", "key": "a.csv"}
    assert returned[4] == "not a mapping"
    assert outcomes.complete_keys == {"a.csv": 11.0}, "the first COMPLETE counts"
    assert outcomes.rejected_keys == {"b.csv"}
    assert outcomes.answers == {"PARTIAL": 1, "COMPLETE": 2, "REJECTED": 1, "raised": 0}


def test_processor_outcomes_counts_and_reraises_exceptions() -> None:
    def crash(event: Any, context: Any) -> Any:
        raise ConnectionError("downstream unreachable")

    outcomes = ProcessorOutcomes(crash)
    with pytest.raises(ConnectionError, match="unreachable"):
        outcomes({}, None)
    assert outcomes.answers["raised"] == 1


def test_rows_of_counts_each_key_once() -> None:
    uploaded = [UploadedObject("a", 5, 0.0), UploadedObject("b", 7, 0.0)]
    assert rows_of(uploaded, ["a", "a", "b", "unknown"]) == 12


def test_benchmark_figures() -> None:
    result = PipelineRunResult(
        report=summarize_pipeline_run(_observation(downstream_requests=50, downstream_throttled_429=10)),
        upload_to_complete_s=[1.0, 2.0, 3.0, 4.0],
        processor_invocations=6,
        state_transitions=100,
        executions=2,
        answers={},
        timed_out=False,
        endpoint_url="http://127.0.0.1:1",
    )
    figures = result.benchmark_figures()
    assert figures["throttle_rate_429"] == 0.2
    assert figures["upload_to_complete_p50_s"] == 2.5
    assert figures["state_transitions_per_object"] == 25.0
    assert figures["lambda_invocations_per_object"] == 1.5
    assert figures["utilization"] == result.report.utilization


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({}, 0),
        ({"rows_applied": 39}, EXIT_ROWS_MISSING),
        ({"duplicate_effects": 1}, EXIT_NOT_CLEAN),
        ({"peak_downstream_concurrency": 5}, EXIT_NOT_CLEAN),
        ({"rows_applied": 30, "rows_in_dlq": 10, "dlq_messages": 1}, EXIT_NOT_CLEAN),
    ],
)
def test_exit_status_follows_the_verdict(changes: dict[str, Any], status: int) -> None:
    report = summarize_pipeline_run(_observation(**changes))
    assert exit_status(report) == status
    verdict = _text(render_report(report))
    expected_verdict = {0: "OK:", EXIT_ROWS_MISSING: "FAILED:", EXIT_NOT_CLEAN: "NOT CLEAN:"}[status]
    assert expected_verdict in verdict


def _text(renderable: Any) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


@pytest.mark.parametrize(
    ("changes", "verdict"),
    [
        ({}, "OK:"),
        ({"duplicate_effects": 2}, "NOT CLEAN"),
        ({"rows_applied": 35}, "FAILED: 5 rows"),
    ],
)
def test_report_rendering_states_the_verdict(changes: dict[str, Any], verdict: str) -> None:
    text = _text(render_report(summarize_pipeline_run(_observation(**changes))))
    assert verdict in text
    assert "utilization" in text


def test_progress_rendering_shows_queues_rows_and_downstream() -> None:
    progress = PipelineProgress(
        elapsed_s=3.0,
        objects_total=10,
        objects_uploaded=10,
        objects_complete=4,
        objects_rejected=1,
        rows_total=500,
        rows_applied=200,
        queue_visible={"high": 0, "normal": 3},
        queue_in_flight={"high": 0, "normal": 2},
        dlq_messages=0,
        downstream_in_flight=7,
        downstream_capacity=8,
        peak_downstream_concurrency=8,
        throttled_429=12,
        errors_5xx=0,
        processor_invocations=6,
    )
    text = _text(render_progress(progress))
    assert "5 / 10 (1 rejected)" in text
    assert "200 / 500" in text
    assert "normal 3 (+2 in flight)" in text
    assert "7 / 8 (peak 8)" in text
    assert "12 / 0" in text


def test_processor_concurrency_is_sized_to_the_capacity_unless_given() -> None:
    assert PipelineRunSettings(capacity=20, concurrency_budget=10).sized_processor_concurrency() == 2
    assert PipelineRunSettings(capacity=5, concurrency_budget=10).sized_processor_concurrency() == 1
    given = PipelineRunSettings(capacity=20, concurrency_budget=10, processor_max_concurrency=7)
    assert given.sized_processor_concurrency() == 7
    budget_default = Definitions.load().budget.default
    assert PipelineRunSettings(concurrency_budget=None).effective_budget() == budget_default
    assert PipelineRunSettings(concurrency_budget=3).effective_budget() == 3


def test_sizing_note_warns_when_demand_exceeds_capacity() -> None:
    assert "over capacity" in sizing_note(10, 4, 20).plain
    fits = sizing_note(10, 2, 20).plain
    assert "= 20 requests at most" in fits
    assert "over capacity" not in fits


def _result(**changes: Any) -> PipelineRunResult:
    return PipelineRunResult(
        report=summarize_pipeline_run(_observation(**changes)),
        upload_to_complete_s=[1.0],
        processor_invocations=4,
        state_transitions=None,
        executions=None,
        answers={"COMPLETE": 4, "raised": 0},
        timed_out=False,
        endpoint_url="http://127.0.0.1:1",
        sections={"alarms": {"raised": 2}},
    )


def test_a_result_carries_named_sections() -> None:
    result = _result()
    assert result.section("alarms") == {"raised": 2}
    with pytest.raises(KeyError, match=r"no section 'mail'.*\['alarms'\]"):
        result.section("mail")


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({}, 0),
        ({"rows_applied": 30, "rows_in_dlq": 10, "dlq_messages": 1}, EXIT_NOT_CLEAN),
        ({"rows_applied": 30}, EXIT_ROWS_MISSING),
    ],
)
@pytest.mark.parametrize("as_json", [True, False])
def test_the_demo_command_exits_with_its_verdict(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, changes: dict[str, Any], status: int, as_json: bool
) -> None:
    """A run that leaves messages in a DLQ says NOT CLEAN and exits 3, as the README promises."""
    monkeypatch.setattr(
        pipeline_run, "run_pipeline", lambda settings, on_progress=None, **_: _result(**changes)
    )
    args = ["demo", "--files", "4", "--rows", "10", "--lambda-log", str(tmp_path / "log")]
    result = CliRunner().invoke(app, [*args, "--json"] if as_json else args)
    assert result.exit_code == status, result.output
    if as_json:
        payload = json.loads(result.stdout)
        assert payload["dlq_messages"] == changes.get("dlq_messages", 0)
        assert payload["sections"] == {"alarms": {"raised": 2}}, "collectors' sections reach the JSON report"
