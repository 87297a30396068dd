"""The local alarm evaluator with fake clients: metric sources, transitions, AWS-shaped events."""

import datetime as dt
import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

from s3stagger.definitions.alarms import ConcreteAlarm
from s3stagger.domain.alarm_evaluation import AlarmState
from s3stagger.domain.emf import parse_emf_line
from s3stagger.local.alarm_evaluator import (
    DispatcherExecutionMetrics,
    EmfLogMetrics,
    LambdaRuntimeMetrics,
    LocalAlarmEvaluator,
    SqsQueueMetrics,
    metric_key,
)
from s3stagger.local.lambda_runtime import FunctionCounters

DLQ_ALARM = ConcreteAlarm(
    name="s3stagger-dlq-not-empty-normal",
    definition_id="dlq-not-empty",
    label="normal",
    namespace="AWS/SQS",
    metric_name="ApproximateNumberOfMessagesVisible",
    dimensions=MappingProxyType({"QueueName": "s3stagger-normal-dlq"}),
    statistic="Maximum",
    period_s=60,
    evaluation_periods=1,
    datapoints_to_alarm=1,
    comparison="GreaterThanThreshold",
    threshold=0,
    treat_missing_data="notBreaching",
    severity="critical",
    summary="A dead-letter queue holds messages.",
    runbook="docs/runbooks/dlq-not-empty.md",
)


class FakeSqs:
    def __init__(self) -> None:
        self.visible = 0

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        return {"Attributes": {"ApproximateNumberOfMessages": str(self.visible)}}


class FakeCloudWatch:
    def __init__(self) -> None:
        self.states: list[tuple[str, str]] = []
        self.metric_data: list[dict[str, Any]] = []

    def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
        self.metric_data.extend({"Namespace": Namespace, **item} for item in MetricData)

    def set_alarm_state(self, **request: Any) -> None:
        self.states.append((request["AlarmName"], request["StateValue"]))


class FakeEvents:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0}


class Clock:
    def __init__(self) -> None:
        self.now = 6000.0

    def __call__(self) -> float:
        return self.now


def test_a_dlq_message_takes_the_alarm_to_alarm_and_back_with_aws_shaped_events() -> None:
    sqs, cloudwatch, events, clock = FakeSqs(), FakeCloudWatch(), FakeEvents(), Clock()
    evaluator = LocalAlarmEvaluator(
        [DLQ_ALARM],
        [SqsQueueMetrics(sqs, {"s3stagger-normal-dlq": "http://q"})],
        cloudwatch=cloudwatch,
        events=events,
        region="us-east-1",
        account_id="123456789012",
        description=lambda alarm: f"{alarm.summary} Runbook: {alarm.runbook}",
        time_scale=1 / 60,
        clock=clock,
    )
    states = []
    for visible in [0] * 4 + [3] * 4 + [0] * 4:
        sqs.visible = visible
        for _ in range(4):
            clock.now += 0.25
            evaluator.tick()
        states.append(evaluator.states()[DLQ_ALARM.name])
    assert [s for i, s in enumerate(states) if i == 0 or states[i - 1] is not s] == [
        AlarmState.OK,
        AlarmState.ALARM,
        AlarmState.OK,
    ]
    assert [value for _, value in cloudwatch.states] == ["OK", "ALARM", "OK"]
    assert evaluator.fired() == [DLQ_ALARM.name]
    alarm_event = events.entries[1]
    assert alarm_event["Source"] == "aws.cloudwatch"
    assert alarm_event["DetailType"] == "CloudWatch Alarm State Change"
    assert alarm_event["Resources"] == [
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:s3stagger-dlq-not-empty-normal"
    ]
    detail = json.loads(alarm_event["Detail"])
    assert detail["state"]["value"] == "ALARM"
    assert detail["previousState"]["value"] == "OK"
    assert json.loads(detail["state"]["reasonData"])["recentDatapoints"] == [3.0]
    assert detail["configuration"]["description"].endswith("Runbook: docs/runbooks/dlq-not-empty.md")
    metric = detail["configuration"]["metrics"][0]["metricStat"]["metric"]
    assert metric["dimensions"] == {"QueueName": "s3stagger-normal-dlq"}


def test_queue_age_is_the_time_since_the_queue_was_last_empty() -> None:
    sqs = FakeSqs()
    source = SqsQueueMetrics(sqs, {"q": "http://q"})
    age = metric_key("AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": "q"})
    sqs.visible = 2
    assert dict(source.sample(100.0))[age] == 0.0
    assert dict(source.sample(130.0))[age] == 30.0
    sqs.visible = 0
    assert dict(source.sample(140.0))[age] == 0.0


def test_lambda_metrics_are_deltas_published_only_with_activity() -> None:
    counters = {"f": FunctionCounters()}
    source = LambdaRuntimeMetrics(lambda name: counters[name], ["f"])
    assert list(source.sample(0)) == []
    counters["f"] = FunctionCounters(invocations=5, errors=2, throttles=1, in_flight=1)
    sampled = {key[1]: value for key, value in source.sample(1)}
    assert sampled == {"Throttles": 1.0, "Invocations": 5.0, "Errors": 2.0, "ConcurrentExecutions": 1.0}
    counters["f"] = FunctionCounters(invocations=6, errors=2, throttles=1, in_flight=0)
    assert {key[1]: value for key, value in source.sample(2)}["Errors"] == 0.0


class FakeSfn:
    def __init__(self) -> None:
        self.failed: list[dict[str, Any]] = [{"executionArn": "old"}]

    def list_executions(self, stateMachineArn: str, statusFilter: str) -> dict[str, Any]:
        return {"executions": self.failed if statusFilter == "FAILED" else []}


def test_new_failed_executions_count_and_become_events_old_ones_do_not() -> None:
    sfn, ended = FakeSfn(), []
    source = DispatcherExecutionMetrics(sfn, "arn:sm", ended.append)
    failed_key = metric_key("AWS/States", "ExecutionsFailed", {"StateMachineArn": "arn:sm"})
    assert dict(source.sample(0))[failed_key] == 0.0  # what failed before the evaluator started
    sfn.failed = [{"executionArn": "old"}, {"executionArn": "new"}]
    assert dict(source.sample(1))[failed_key] == 1.0
    assert ended == [{"executionArn": "new"}]


def test_execution_status_change_event_is_aws_shaped() -> None:
    events = FakeEvents()
    evaluator = LocalAlarmEvaluator(
        [],
        [],
        cloudwatch=FakeCloudWatch(),
        events=events,
        region="r",
        account_id="a",
        description=str,
        time_scale=1,
    )

    class Sfn:
        def describe_execution(self, executionArn: str) -> dict[str, Any]:
            now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
            return {
                "executionArn": executionArn,
                "stateMachineArn": "arn:sm",
                "name": "slot-1",
                "status": "FAILED",
                "startDate": now,
                "stopDate": now,
                "error": "DispatcherFailed",
                "cause": "queue gone",
            }

    evaluator.execution_ended({"executionArn": "arn:x"}, Sfn())
    entry = events.entries[0]
    assert entry["Source"] == "aws.states"
    assert entry["DetailType"] == "Step Functions Execution Status Change"
    detail = json.loads(entry["Detail"])
    assert detail["status"] == "FAILED"
    assert detail["error"] == "DispatcherFailed"
    assert detail["startDate"] == int(dt.datetime(2026, 11, 30, tzinfo=dt.UTC).timestamp() * 1000)  # epoch ms


def test_emf_lines_become_metrics_as_they_are_appended(tmp_path: Path) -> None:
    log = tmp_path / "processor.log"
    log.write_text('{"old": 1}\n')
    source = EmfLogMetrics(log)
    emf = {
        "_aws": {
            "Timestamp": 1,
            "CloudWatchMetrics": [
                {
                    "Namespace": "s3stagger",
                    "Dimensions": [["service"]],
                    "Metrics": [{"Name": "RowsFailed"}, {"Name": "Throttled429"}],
                }
            ],
        },
        "service": "s3stagger-processor",
        "RowsFailed": [4.0],
        "Throttled429": 0,
    }
    with log.open("a") as handle:
        handle.write(json.dumps(emf) + "\nnot json\n" + json.dumps(emf)[:10])
    sampled = list(source.sample(0))
    assert sampled == [
        (metric_key("s3stagger", "RowsFailed", {"service": "s3stagger-processor"}), 4.0),
        (metric_key("s3stagger", "Throttled429", {"service": "s3stagger-processor"}), 0.0),
    ]
    with log.open("a") as handle:
        handle.write(json.dumps(emf)[10:] + "\n")
    assert len(list(source.sample(1))) == 2  # the line completed later is read once whole


def test_emf_parser_ignores_what_is_not_emf() -> None:
    assert parse_emf_line("plain text") == []
    assert parse_emf_line("[1, 2]") == []
    assert parse_emf_line('{"_aws": {"CloudWatchMetrics": "x"}}') == []
    assert (
        parse_emf_line(
            '{"_aws": {"CloudWatchMetrics": [{"Namespace": "n", "Metrics": [{"Name": "m"}]}]}, "m": true}'
        )
        == []
    )


def test_lambda_figures_are_put_into_cloudwatch_for_monitor() -> None:
    cloudwatch = FakeCloudWatch()
    counters = {"s3stagger-processor": FunctionCounters()}
    evaluator = LocalAlarmEvaluator(
        [],
        [LambdaRuntimeMetrics(lambda name: counters[name], ["s3stagger-processor"])],
        cloudwatch=cloudwatch,
        events=FakeEvents(),
        region="r",
        account_id="a",
        description=str,
        time_scale=1,
    )
    counters["s3stagger-processor"] = FunctionCounters(invocations=4, errors=1)
    evaluator.tick()
    figures = {item["MetricName"]: item["Value"] for item in cloudwatch.metric_data}
    assert figures == {"Invocations": 4.0, "Errors": 1.0, "ConcurrentExecutions": 0.0}
    assert {item["Namespace"] for item in cloudwatch.metric_data} == {"AWS/Lambda"}
    assert cloudwatch.metric_data[0]["Dimensions"] == [
        {"Name": "FunctionName", "Value": "s3stagger-processor"}
    ]


def test_a_sampling_gap_of_a_gauge_holds_its_last_value_not_missing_data() -> None:
    sqs, cloudwatch, clock = FakeSqs(), FakeCloudWatch(), Clock()
    evaluator = LocalAlarmEvaluator(
        [DLQ_ALARM],
        [SqsQueueMetrics(sqs, {"s3stagger-normal-dlq": "http://q"})],
        cloudwatch=cloudwatch,
        events=FakeEvents(),
        region="r",
        account_id="a",
        description=str,
        time_scale=1 / 20,  # 3 s periods, ticks every 1.5 s
        clock=clock,
    )
    sqs.visible = 2
    for _ in range(6):
        clock.now += 1.5
        evaluator.tick()
    assert evaluator.states()[DLQ_ALARM.name] is AlarmState.ALARM
    before = list(cloudwatch.states)
    clock.now += 10  # a slow tick: no sample for more than three periods
    evaluator.tick()
    assert evaluator.states()[DLQ_ALARM.name] is AlarmState.ALARM
    assert cloudwatch.states == before  # no flap to OK over the gap
