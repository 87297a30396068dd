import json
from dataclasses import replace

import pytest

from s3stagger.cli.pipeline_report import PipelineObservation, percentile, summarize_pipeline_run

CLEAN_RUN = PipelineObservation(
    objects_total=10,
    rows_total=500,
    elapsed_s=10.0,
    objects_complete=10,
    objects_rejected=0,
    rows_applied=500,
    duplicate_effects=0,
    duplicate_deliveries=2,
    failed_rows=0,
    rows_quarantined=0,
    dlq_messages=0,
    rows_in_dlq=0,
    downstream_requests=520,
    downstream_throttled_429=13,
    downstream_errors_5xx=0,
    peak_downstream_concurrency=8,
    downstream_capacity=8,
    downstream_latency_s=0.1,
)

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


def test_a_clean_run_is_ok_and_its_utilization_is_against_little_s_law() -> None:
    report = summarize_pipeline_run(CLEAN_RUN)
    # 500 rows in 10 s = 50 rows/s against a limit of 8 / 0.1 = 80 rows/s
    assert report.rows_per_s == 50.0
    assert report.downstream_limit_rows_per_s == 80.0
    assert report.utilization == 0.625
    assert report.throttle_rate == 0.025
    assert report.rows_unaccounted == 0
    assert report.all_rows_accounted
    assert report.ok


def test_utilization_of_a_half_speed_run() -> None:
    report = summarize_pipeline_run(replace(CLEAN_RUN, elapsed_s=12.5))
    assert report.rows_per_s == 40.0
    assert report.utilization == 0.5


def test_rows_in_the_sink_quarantine_and_dlq_are_accounted_for() -> None:
    observation = replace(
        CLEAN_RUN,
        rows_applied=400,
        failed_rows=30,
        rows_quarantined=50,
        rows_in_dlq=20,
        dlq_messages=1,
        objects_complete=8,
        objects_rejected=1,
    )
    report = summarize_pipeline_run(observation)
    assert report.rows_unaccounted == 0
    assert report.all_rows_accounted
    assert not report.ok, "a message in a DLQ is accounted for, but the run is not clean"


def test_a_missing_row_is_unaccounted_and_not_ok() -> None:
    report = summarize_pipeline_run(replace(CLEAN_RUN, rows_applied=497))
    assert report.rows_unaccounted == 3
    assert not report.all_rows_accounted
    assert not report.ok


@pytest.mark.parametrize(
    "change",
    [{"duplicate_effects": 1}, {"peak_downstream_concurrency": 9}],
)
def test_duplicate_effects_or_capacity_overrun_make_the_run_not_ok(change: dict[str, int]) -> None:
    report = summarize_pipeline_run(replace(CLEAN_RUN, **change))
    assert report.all_rows_accounted
    assert not report.ok


def test_zero_elapsed_or_requests_do_not_divide_by_zero() -> None:
    report = summarize_pipeline_run(
        replace(CLEAN_RUN, elapsed_s=0.0, downstream_requests=0, downstream_latency_s=0.0)
    )
    assert report.rows_per_s == 0.0
    assert report.utilization == 0.0
    assert report.throttle_rate == 0.0


def test_the_report_dict_is_json_and_has_the_documented_keys() -> None:
    as_dict = summarize_pipeline_run(CLEAN_RUN).as_dict()
    assert as_dict.keys() >= REQUIRED_KEYS
    assert json.loads(json.dumps(as_dict)) == as_dict


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([4.0], 95) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([float(v) for v in range(101)], 95) == pytest.approx(95.0)
    with pytest.raises(ValueError, match=r"1\.\.99"):
        percentile([1.0], 100)
