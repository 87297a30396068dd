"""The autoscale scenarios' figures (perf-test): computed from samples, merged into the report."""

from __future__ import annotations

import json
from pathlib import Path

from s3stagger.perf.autoscale import (
    LATENCY_S,
    SCENARIOS,
    Sample,
    Trace,
    add_to_report,
    chosen,
    queue_latency_ratio,
    summary,
    targets_met,
)


def trace_of(points: list[tuple[float, int, int, int, int]]) -> Trace:
    """(at_s, capacity, rows applied so far, requests so far, 429s so far)."""
    return Trace(
        [
            Sample(at, capacity, applied, requests, throttled, 0, None, None, None)
            for at, capacity, applied, requests, throttled in points
        ]
    )


def steady(
    capacity: int, rate: float, start_s: float, end_s: float, applied: float = 0.0
) -> list[tuple[float, int, int, int, int]]:
    points = []
    at = start_s
    while at <= end_s:
        done = round(applied + rate * (at - start_s))
        points.append((at, capacity, done, done, 0))
        at += 0.5
    return points


def test_convergence_is_the_time_until_the_throughput_holds_ninety_percent_of_c_over_l() -> None:
    capacity = 20
    full = capacity / LATENCY_S
    slow = steady(capacity, 0.5 * full, 0.0, 10.0)
    fast = steady(capacity, full, 10.5, 30.0, applied=slow[-1][2])
    trace = trace_of(slow + fast)
    assert trace.convergence_s(0.0, capacity) == 10.5
    assert trace.convergence_s(0.0, 40) is None  # never 0.9 x 40 / L
    utilization = trace.utilization()
    assert utilization is not None
    assert 0.7 < utilization < 0.9


def test_a_window_with_more_than_one_percent_of_429s_does_not_count_as_converged() -> None:
    points = [(t, 20, round(40 * t), round(50 * t), round(10 * t)) for t in (0.5 * i for i in range(20))]
    trace = trace_of(points)
    assert trace.convergence_s(0.0, 20) is None
    assert trace.rate_429() == 0.2


def test_queue_latency_ratio_is_the_median_of_busy_samples_over_no_load() -> None:
    trace = Trace(
        [
            Sample(float(i), 20, 0, 0, 0, in_flight, latency, None, None)
            for i, (in_flight, latency) in enumerate([(0, 9000.0), (5, 500.0), (5, 600.0), (5, 700.0)])
        ]
    )
    assert queue_latency_ratio(trace, 500.0) == 1.2  # the idle sample's latency is not counted


def test_summary_names_the_issues_keys_and_the_worst_step() -> None:
    results = {
        "capacity-step": {"convergence_s": [4.0, 8.5], "rate_429": 0.001, "utilization": 0.92},
        "unknown-capacity": {"reach_s": 12.0},
        "queue-mode": {"latency_ratio": 1.3, "throughput_ratio": 0.8},
        "priority-wait": {"high_p95_s": 9.0},
        "one-object": {"object_processing_s": 5.0},
    }
    found = summary(results)
    assert found["capacity_step_convergence_s"] == 8.5
    assert {
        k: found[k]
        for k in (
            "capacity_step_rate_429",
            "unknown_capacity_reach_s",
            "queue_mode_latency_ratio",
            "priority_high_p95_s",
            "object_processing_s",
        )
    } == {
        "capacity_step_rate_429": 0.001,
        "unknown_capacity_reach_s": 12.0,
        "queue_mode_latency_ratio": 1.3,
        "priority_high_p95_s": 9.0,
        "object_processing_s": 5.0,
    }
    met = targets_met(found)
    assert [
        met["capacity_step_convergence_s"],
        met["capacity_step_rate_429"],
        met["priority_high_p95_s"],
    ] == [
        True,
        True,
        True,
    ]
    assert met["queue_mode_throughput_ratio"] is False
    # a step that never converged is no figure, and so no target met
    never = summary({"capacity-step": {"convergence_s": [4.0, None]}})
    assert never["capacity_step_convergence_s"] is None
    assert targets_met(never)["capacity_step_convergence_s"] is None


def test_perf_test_scenario_names_split_between_the_autoscaler_and_the_dispatcher_comparison() -> None:
    assert chosen(None) == (list(SCENARIOS), None)
    assert chosen(["demo", "capacity-step"]) == (["capacity-step"], ["demo"])
    assert chosen(["capacity-step"]) == (["capacity-step"], [])


def test_the_figures_join_perf_tests_line_report_json_and_report_md(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(json.dumps({"mode": "local", "summary": {"rows_unaccounted": 0}}))
    (tmp_path / "report.md").write_text("# perf-test report\n")
    figures = {
        "scenarios": {"unknown-capacity": {"reach_s": 12.0}},
        "summary": summary({"unknown-capacity": {"reach_s": 12.0}}),
        "rows_unaccounted": 2,
        "duplicate_effects": 0,
        "plots": [str(tmp_path / "autoscale-unknown-capacity.png")],
    }
    line = {"scenarios": {"demo": {}}, "summary": {"rows_unaccounted": 1, "duplicate_effects": 0}}
    merged = add_to_report(line, figures, tmp_path)
    assert merged["summary"]["unknown_capacity_reach_s"] == 12.0
    assert merged["summary"]["rows_unaccounted"] == 3
    assert set(merged["scenarios"]) == {"demo", "unknown-capacity"}
    assert merged["autoscale_targets_met"]["unknown_capacity_reach_s"] is True
    document = json.loads((tmp_path / "report.json").read_text())
    assert document["mode"] == "local"
    assert document["summary"]["unknown_capacity_reach_s"] == 12.0
    assert document["autoscale"]["targets_met"]["unknown_capacity_reach_s"] is True
    text = (tmp_path / "report.md").read_text()
    assert text.startswith("# perf-test report")
    assert "| `unknown_capacity_reach_s` | 12.0 | <= 30 | met |" in text
    assert "![autoscale-unknown-capacity](autoscale-unknown-capacity.png)" in text
