"""The Dynatrace dashboard as code: every metric key a tile uses is one the pipeline emits, and the
tiles evaluate the way the local page draws them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s3stagger.domain.dashboard_tiles import SelectorError, dashboard_tiles, evaluate, parse_expression
from s3stagger.domain.dynatrace_lines import Summary
from s3stagger.domain.emf import parse_emf_line
from s3stagger.domain.metric_stream_naming import metric_stream_key
from s3stagger.domain.model import RunStatus, RunSummary
from s3stagger.handlers import process_object
from s3stagger.local.dashboard_page import dashboard_document, render_dashboard
from s3stagger.processor import RunMetrics

AWS_METRICS = {
    # What AWS publishes for the pipeline's resources (CloudWatch's documented metric and dimension names).
    "AWS/SQS": (
        ("QueueName",),
        (
            "ApproximateNumberOfMessagesVisible",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateAgeOfOldestMessage",
            "NumberOfMessagesSent",
            "NumberOfMessagesReceived",
            "NumberOfMessagesDeleted",
        ),
    ),
    "AWS/Lambda": (
        ("FunctionName",),
        (
            "Invocations",
            "Errors",
            "Throttles",
            "Duration",
            "ConcurrentExecutions",
        ),
    ),
    "AWS/States": (
        ("StateMachineArn",),
        (
            "ExecutionsStarted",
            "ExecutionsSucceeded",
            "ExecutionsFailed",
            "ExecutionsTimedOut",
            "ExecutionsAborted",
            "ExecutionThrottled",
            "ExecutionTime",
        ),
    ),
    "AWS/Events": (
        ("RuleName",),
        ("Invocations", "FailedInvocations", "TriggeredRules", "InvocationsSentToDlq"),
    ),
}


def processor_emf_keys(capsys: pytest.CaptureFixture[str]) -> set[str]:
    """The keys of the metrics the processor really emits: run its EMF code and read its output."""
    summary = RunSummary(RunStatus.COMPLETE, "b", "k", rows_applied=3, duration_ms=5, concurrency_limit=2)
    process_object._emit_metrics(summary)
    process_object._emit_call_metrics(RunMetrics(1.0, 2.0, 1, 2, 1, 0), auth_refreshes=0)
    points = [point for line in capsys.readouterr().out.splitlines() for point in parse_emf_line(line)]
    assert points, "the processor wrote no EMF line"
    return {metric_stream_key(p.namespace, p.name, p.dimensions) for p in points}


def tiles() -> list:  # type: ignore[type-arg]
    return dashboard_tiles(dashboard_document("s3stagger", "s3stagger pipeline"))


def test_every_metric_key_a_tile_uses_is_one_the_pipeline_emits(capsys: pytest.CaptureFixture[str]) -> None:
    emitted = processor_emf_keys(capsys) | {
        metric_stream_key(namespace, metric, dimensions)
        for namespace, (dimensions, metrics) in AWS_METRICS.items()
        for metric in metrics
    }
    used = {query.metric_key for tile in tiles() for query in tile.queries}
    assert used - emitted == set()
    assert any(key.startswith("cloud.aws.s3stagger.") for key in used), (
        "the EMF namespace is on the dashboard"
    )


def test_the_dashboard_has_the_tiles_the_operators_asked_for() -> None:
    names = " | ".join(tile.name for tile in tiles()).lower()
    for wanted in (
        "backlog",
        "age",
        "dead-letter",
        "rows applied per second",
        "429",
        "errors and throttles",
        "duration",
        "dispatcher executions",
        "concurrency decisions",
        "alarm states",
    ):
        assert wanted in names


def test_the_rendered_document_is_what_terraform_deploys() -> None:
    document = dashboard_document("acme-s3", "acme pipeline")
    text = json.dumps(document)
    assert "${" not in text
    assert document["dashboardMetadata"]["name"] == "acme pipeline"
    assert '\\"acme-s3-processor\\"' in text


def test_conditions_split_and_aggregations() -> None:
    query = parse_expression(
        "A",
        'resolution=null&(k.sqs.visible:filter(and(prefix("queuename","p-"),not(suffix("queuename","-dlq"))))'
        ':splitBy("queuename"):max):limit(100):names',
    )
    series = {
        ("k.sqs.visible", (("queuename", "p-high"),)): [
            (1000, Summary(1, 5, 6, 2)),
            (4000, Summary(0, 2, 2, 2)),
        ],
        ("k.sqs.visible", (("queuename", "p-high-dlq"),)): [(1000, Summary(9, 9, 9, 1))],
        ("k.sqs.visible", (("queuename", "other-high"),)): [(1000, Summary(7, 7, 7, 1))],
        ("k.other", (("queuename", "p-high"),)): [(1000, Summary(8, 8, 8, 1))],
    }
    assert evaluate(query, series, 3.0) == {"p-high": [(1000, 5.0), (4000, 2.0)]}
    rate = parse_expression(
        "B",
        'resolution=null&(k.sqs.visible:filter(eq("queuename","p-high")):splitBy():sum:rate(1s)):limit(100):names',
    )
    assert evaluate(rate, series, 3.0) == {"B": [(1000, 2.0), (4000, 2 / 3)]}


@pytest.mark.parametrize(
    "expression",
    [
        "k.metric:max",
        'resolution=null&(k.metric:filter(contains("a","b")):max):limit(100):names',
        "resolution=null&(k.metric:splitBy():percentile(90)):limit(100):names",
        "resolution=null&(k.metric:splitBy()):limit(100):names",
    ],
)
def test_expressions_outside_the_subset_are_refused(expression: str) -> None:
    with pytest.raises(SelectorError):
        parse_expression("A", expression)


def test_the_page_marks_alarms_and_reports_tiles_without_data(tmp_path: Path) -> None:
    document = dashboard_document("p", "p pipeline")
    dlq = ("cloud.aws.sqs.approximateNumberOfMessagesVisibleByQueueName", (("queuename", "p-normal-dlq"),))
    rows = ("cloud.aws.s3stagger.rowsAppliedByService", (("service", "s3stagger-processor"),))
    page = render_dashboard(
        tmp_path / "d.html",
        document,
        {dlq: [(1000, Summary(0, 2, 2, 2))], rows: [(1000, Summary(1, 30, 60, 3))]},
        3.0,
        100,
    )
    assert page.tiles == 10
    assert page.tiles_with_data == [
        "Dead-letter queue depths",
        "Rows applied per second, against the downstream's limit C / L",
        "Alarm states (red: the alarm's condition holds)",
    ]
    text = page.path.read_text()
    assert "<tr class='alarm'><td>A p-normal-dlq</td><td>2</td>" in text
    assert "limit C / L = 100" in text
    assert text.count("no data") == 7
