"""alarms.json: the strict loader, validate() and the expansion into concrete alarms."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from s3stagger import definitions
from s3stagger.definitions.alarms import (
    AlarmDefinitionError,
    AlarmResources,
    expand,
    load_alarm_definitions,
    parse_alarm_definitions,
    pipeline_alarm_resources,
    validate,
)
from s3stagger.errors import S3StaggerError

SHIPPED: dict[str, Any] = definitions.read_json("alarms.json")
STATE_MACHINE_ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:s3stagger-dispatcher"


def one_alarm(**changes: Any) -> dict[str, Any]:
    alarm: dict[str, Any] = {
        "id": "dlq-not-empty",
        "applies_to": "dlqs",
        "namespace": "AWS/SQS",
        "metric_name": "ApproximateNumberOfMessagesVisible",
        "statistic": "Maximum",
        "period_s": 60,
        "evaluation_periods": 1,
        "datapoints_to_alarm": 1,
        "comparison": "GreaterThanThreshold",
        "threshold": 0,
        "treat_missing_data": "notBreaching",
        "severity": "critical",
        "summary": "Messages wait in a DLQ.",
        "runbook": "docs/runbooks/dlq-not-empty.md",
    }
    alarm.update(changes)
    return {key: value for key, value in alarm.items() if value is not ...}


def refusal(data: object) -> str:
    with pytest.raises(AlarmDefinitionError) as caught:
        parse_alarm_definitions(data)
    message = str(caught.value)
    assert "\n" not in message
    return message


def resources(priorities: list[str], **changes: Any) -> AlarmResources:
    settings: dict[str, Any] = {
        "name_prefix": "team",
        "queues": {priority: f"team-{priority}" for priority in priorities},
        "dlqs": {
            **{priority: f"team-{priority}-dlq" for priority in priorities},
            "ingest-dlq": "team-ingest-dlq",
            "alert-dlq": "team-alert-dlq",
        },
        "rules": {f"object-created-{p}": f"team-object-created-{p}" for p in priorities},
        "processor_function_name": "team-processor",
        "processor_timeout_ms": 120_000,
        "processor_reserved_concurrency": 20,
        "dispatcher_state_machine_arn": STATE_MACHINE_ARN,
        "processor_metrics_dimensions": {"service": "s3stagger-processor"},
        "notifier_function_name": "team-notifier",
    }
    settings.update(changes)
    return AlarmResources(**settings)


# -- the shipped file --------------------------------------------------------------------------


def test_the_shipped_alarms_load_and_cover_the_recommended_metrics() -> None:
    alarms = load_alarm_definitions()
    covered = {(alarm.applies_to, alarm.metric_name) for alarm in alarms.alarms}
    assert covered == {
        ("queues", "ApproximateAgeOfOldestMessage"),
        ("queues", "ApproximateNumberOfMessagesVisible"),
        ("dlqs", "ApproximateNumberOfMessagesVisible"),
        ("processor", "Errors"),
        ("autoscaler", "Errors"),
        ("processor", "Throttles"),
        ("processor", "Duration"),
        ("processor", "ConcurrentExecutions"),
        ("notifier", "Errors"),
        ("dispatcher", "ExecutionsFailed"),
        ("dispatcher", "ExecutionsTimedOut"),
        ("dispatcher", "ExecutionThrottled"),
        ("rules", "FailedInvocations"),
        ("rules", "InvocationsSentToDlq"),
        ("delivery_streams", "DeliveryToSplunk.Success"),
        ("delivery_streams", "DeliveryToHttpEndpoint.Success"),
        ("delivery_streams", "ThrottledRecords"),
        ("processor_metrics", "Throttled429"),
        ("processor_metrics", "RowsFailed"),
    }


REPOSITORY = Path(__file__).resolve().parents[2]
RUNBOOK_SECTIONS = ("## What it means", "## What to look at", "## How to fix", "## How to redrive")


def test_every_alarm_and_alert_has_a_runbook_with_the_four_sections() -> None:
    alarms = load_alarm_definitions()
    validate(alarms, runbooks_root=REPOSITORY)
    alert_runbooks = [
        rule["runbook"] for rule in definitions.read_json("alerting.json")["rules"] if rule["runbook"]
    ]
    for runbook in [alarm.runbook for alarm in alarms.alarms] + alert_runbooks:
        text = (REPOSITORY / runbook).read_text(encoding="utf-8")
        missing = [section for section in RUNBOOK_SECTIONS if section not in text]
        assert missing == [], f"{runbook} lacks {missing}"


def test_the_alerting_page_lists_every_alarm_with_its_runbook() -> None:
    page = (REPOSITORY / "docs" / "alerting.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): line for line in page.splitlines() if line.startswith("| `")}
    for alarm in load_alarm_definitions().alarms:
        assert alarm.id in rows, f"docs/alerting.md does not list {alarm.id}"
        assert f"]({alarm.runbook.removeprefix('docs/')})" in rows[alarm.id]
        assert f"| {alarm.treat_missing_data} | {alarm.severity} |" in rows[alarm.id]


def test_the_emf_alarms_watch_the_namespace_the_processor_publishes_to() -> None:
    processor = definitions.read_json("processor.json")
    namespaces = {a.namespace for a in load_alarm_definitions().alarms if a.applies_to == "processor_metrics"}
    assert namespaces == {processor["environment"]["POWERTOOLS_METRICS_NAMESPACE"]}


def test_validate_names_a_missing_runbook(tmp_path: Path) -> None:
    with pytest.raises(AlarmDefinitionError, match=r"dlq-not-empty\.md, which does not exist"):
        validate(parse_alarm_definitions({"alarms": [one_alarm()]}), runbooks_root=tmp_path)


def test_load_refuses_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "alarms.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(S3StaggerError, match="cannot be read as JSON"):
        load_alarm_definitions(path)


def test_load_reads_a_given_file(tmp_path: Path) -> None:
    path = tmp_path / "alarms.json"
    path.write_text(json.dumps({"alarms": [one_alarm(threshold=3)]}), encoding="utf-8")
    assert load_alarm_definitions(path).by_id("dlq-not-empty").threshold == 3.0


# -- the loader's one-line refusals ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([], "the top level must be a JSON object"),
        ({"alarms": []}, "alarms must be a non-empty list"),
        ({"alarms": [], "extra": 1}, "unknown field(s) extra"),
        ({"alarms": ["x"]}, "alarms[0] must be a JSON object"),
        ({"alarms": [one_alarm(colour="red")]}, "alarms[0] has unknown field(s) colour"),
        ({"alarms": [one_alarm(summary=...)]}, "alarms[0] is missing field(s) summary"),
        ({"alarms": [one_alarm(threshold="0")]}, "alarms[0].threshold must be a number"),
        ({"alarms": [one_alarm(threshold=True)]}, "alarms[0].threshold must be a number"),
        ({"alarms": [one_alarm(period_s=0)]}, "alarms[0].period_s must be a positive integer"),
        ({"alarms": [one_alarm(evaluation_periods=1.5)]}, "evaluation_periods must be a positive integer"),
        (
            {"alarms": [one_alarm(applies_to="buckets")]},
            "applies_to must be one of autoscaler, delivery_streams, dispatcher",
        ),
        ({"alarms": [one_alarm(comparison=">")]}, "comparison must be one of GreaterThanOrEqualToThreshold"),
        ({"alarms": [one_alarm(treat_missing_data="zero")]}, "treat_missing_data must be one of breaching"),
        ({"alarms": [one_alarm(severity="page")]}, "severity must be one of critical, info, warning"),
        ({"alarms": [one_alarm(threshold_of="memory")]}, "threshold_of must be one of processor_reserved"),
        ({"alarms": [one_alarm(summary=" ")]}, "alarms[0].summary must be a non-empty string"),
        ({"alarms": [one_alarm(stream="kinesis")]}, "alarms[0].stream must be one of dynatrace, splunk"),
    ],
)
def test_the_loader_refuses_malformed_input_in_one_line(data: object, expected: str) -> None:
    assert expected in refusal(data)


# -- validate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"datapoints_to_alarm": 2}, "datapoints_to_alarm (2) must not exceed evaluation_periods (1)"),
        ({"statistic": "Median"}, "statistic must be one of Average, Maximum"),
        ({"period_s": 90}, "period_s must be 10, 20, 30 or a multiple of 60, got 90"),
        ({"period_s": 3600, "evaluation_periods": 25}, "must not exceed 86400 s"),
        ({"namespace": "AWS/Lambda"}, "namespace must be AWS/SQS for applies_to dlqs"),
        ({"id": "DLQ_not_empty"}, "must be lower-case words joined by hyphens"),
        ({"runbook": "https://wiki/dlq"}, "runbook must be docs/runbooks/<name>.md"),
        ({"threshold_of": "processor_timeout_ms"}, "threshold_of is for processor alarms only, not dlqs"),
        ({"stream": "splunk"}, "stream is for delivery_streams alarms only, not dlqs"),
        (
            {"applies_to": "delivery_streams"},
            "namespace must be AWS/Firehose for applies_to delivery_streams",
        ),
        (
            {
                "applies_to": "processor_metrics",
                "namespace": "AWS/Lambda",
            },
            "must be the processor's EMF namespace",
        ),
        (
            {
                "applies_to": "processor",
                "namespace": "AWS/Lambda",
                "threshold_of": "processor_timeout_ms",
                "threshold": 1.5,
            },
            "is a fraction of processor_timeout_ms: must be in (0, 1]",
        ),
    ],
)
def test_validate_refuses_what_cloudwatch_would_refuse_or_contradicts_itself(
    changes: dict[str, Any], expected: str
) -> None:
    assert expected in refusal({"alarms": [one_alarm(**changes)]})


def test_validate_refuses_an_id_used_twice() -> None:
    assert "(dlq-not-empty).id is used twice" in refusal({"alarms": [one_alarm(), one_alarm()]})


@pytest.mark.parametrize("statistic", ["p90", "p99.9", "p100", "SampleCount"])
def test_percentiles_and_every_standard_statistic_are_accepted(statistic: str) -> None:
    parsed = parse_alarm_definitions({"alarms": [one_alarm(statistic=statistic)]})
    (alarm,) = expand(parsed, resources(["high"], dlqs={"high": "team-high-dlq"}))
    assert alarm.statistic == statistic
    assert alarm.extended_statistic is statistic.startswith("p")


def test_a_mutated_copy_of_the_shipped_file_is_refused() -> None:
    data = copy.deepcopy(SHIPPED)
    data["alarms"][3]["datapoints_to_alarm"] = data["alarms"][3]["evaluation_periods"] + 1
    assert "alarms[3] (processor-errors).datapoints_to_alarm" in refusal(data)


# -- expand ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "priorities", [["high", "normal"], ["urgent", "high", "normal"]], ids=["2 priorities", "3 priorities"]
)
def test_expand_makes_one_alarm_per_resource_named_and_dimensioned(priorities: list[str]) -> None:
    alarms = expand(load_alarm_definitions(), resources(priorities))
    by_name = {alarm.name: alarm for alarm in alarms}
    assert len(by_name) == len(alarms)
    per_priority = ("queue-oldest-message-age", "queue-backlog", "dlq-not-empty")
    for alarm_id in per_priority:
        for priority in priorities:
            assert f"team-{alarm_id}-{priority}" in by_name
    for priority in priorities:
        assert dict(by_name[f"team-queue-backlog-{priority}"].dimensions) == {"QueueName": f"team-{priority}"}
        assert dict(by_name[f"team-dlq-not-empty-{priority}"].dimensions) == {
            "QueueName": f"team-{priority}-dlq"
        }
        rule = by_name[f"team-rule-failed-invocations-object-created-{priority}"]
        assert dict(rule.dimensions) == {"RuleName": f"team-object-created-{priority}"}
    assert dict(by_name["team-dlq-not-empty-ingest-dlq"].dimensions) == {"QueueName": "team-ingest-dlq"}
    assert dict(by_name["team-dlq-not-empty-alert-dlq"].dimensions) == {"QueueName": "team-alert-dlq"}
    assert dict(by_name["team-processor-errors"].dimensions) == {"FunctionName": "team-processor"}
    assert dict(by_name["team-notifier-errors"].dimensions) == {"FunctionName": "team-notifier"}
    assert dict(by_name["team-dispatcher-executions-failed"].dimensions) == {
        "StateMachineArn": STATE_MACHINE_ARN
    }
    assert dict(by_name["team-processor-throttled-429"].dimensions) == {"service": "s3stagger-processor"}
    # 2 per queue, 1 per DLQ (+ ingest, alert), 2 per rule, 4 processor, 1 notifier, 3 dispatcher, 2 EMF
    count = len(priorities)
    assert len(alarms) == 2 * count + (count + 2) + 2 * count + 4 + 1 + 3 + 2


def test_expand_scales_relative_thresholds_by_the_deployed_processor() -> None:
    by_id = {alarm.definition_id: alarm for alarm in expand(load_alarm_definitions(), resources(["high"]))}
    assert by_id["processor-duration-near-timeout"].threshold == pytest.approx(0.98 * 120_000)
    assert by_id["processor-concurrency-near-limit"].threshold == pytest.approx(0.9 * 20)
    assert by_id["queue-backlog"].threshold == 5000


def test_expand_leaves_out_what_the_deployment_does_not_have() -> None:
    alarms = expand(
        load_alarm_definitions(),
        resources(["high"], notifier_function_name=None, processor_reserved_concurrency=None),
    )
    ids = {alarm.definition_id for alarm in alarms}
    assert "notifier-errors" not in ids
    assert "processor-concurrency-near-limit" not in ids
    assert "processor-errors" in ids


def test_expand_refuses_two_resources_with_one_alarm_name() -> None:
    alarms = parse_alarm_definitions(
        {
            "alarms": [
                one_alarm(),
                one_alarm(id="dlq-not-empty-high", applies_to="processor", namespace="AWS/Lambda"),
            ]
        }
    )
    with pytest.raises(AlarmDefinitionError, match="same alarm name: team-dlq-not-empty-high"):
        expand(alarms, resources(["high"]))


def test_pipeline_resources_follow_the_shipped_definitions() -> None:
    found = pipeline_alarm_resources(
        "s3stagger",
        STATE_MACHINE_ARN,
        alert_dlq_name="s3stagger-alert-dlq",
        notifier_function_name="s3stagger-notifier",
        alert_rule_names=("s3stagger-alarm-state-change",),
    )
    queues = definitions.read_json("queues.json")
    processor = definitions.read_json("processor.json")
    assert list(found.queues) == queues["priorities"]
    assert found.dlqs["ingest-dlq"] == "s3stagger-ingest-dlq"
    assert found.dlqs["alert-dlq"] == "s3stagger-alert-dlq"
    assert found.rules["object-unrouted"] == "s3stagger-object-unrouted"
    assert found.rules["alarm-state-change"] == "s3stagger-alarm-state-change"
    assert found.processor_timeout_ms == processor["timeout_s"] * 1000
    assert found.processor_reserved_concurrency == processor["reserved_concurrency"]
    names = [alarm.name for alarm in expand(load_alarm_definitions(), found)]
    assert "s3stagger-dlq-not-empty-alert-dlq" in names
    assert "s3stagger-notifier-errors" in names
    assert "s3stagger-autoscaler-errors" in names


def test_the_autoscaler_errors_alarm_watches_the_autoscaler_function_and_only_when_there_is_one() -> None:
    with_autoscaler = resources(["high"], autoscaler_function_name="team-autoscaler")
    by_id = {alarm.definition_id: alarm for alarm in expand(load_alarm_definitions(), with_autoscaler)}
    alarm = by_id["autoscaler-errors"]
    assert (alarm.name, alarm.namespace, alarm.metric_name) == (
        "team-autoscaler-errors",
        "AWS/Lambda",
        "Errors",
    )
    assert dict(alarm.dimensions) == {"FunctionName": "team-autoscaler"}
    assert alarm.runbook == "docs/runbooks/autoscaler-errors.md"
    without = expand(load_alarm_definitions(), resources(["high"]))
    assert "autoscaler-errors" not in {alarm.definition_id for alarm in without}


def test_the_definitions_model_loads_the_alarms_and_names_their_errors_as_its_own() -> None:
    from s3stagger.definitions.model import DefinitionError, Definitions

    assert Definitions.load().alarms == load_alarm_definitions()
    broken = copy.deepcopy(SHIPPED["alarms"])
    broken[0]["datapoints_to_alarm"] = 99
    with pytest.raises(
        DefinitionError, match=r"alarms\[0\] \(queue-oldest-message-age\).datapoints_to_alarm"
    ):
        Definitions.load({"alarms.json": {"alarms": broken}})


FIREHOSE_IDS = {"firehose-splunk-delivery", "firehose-dynatrace-delivery", "firehose-throttled"}
STREAMS = {"splunk": "team-splunk-logs", "dynatrace": "team-dynatrace-metrics"}


def firehose_alarms(delivery_streams: dict[str, str]) -> dict[str, Any]:
    alarms = expand(load_alarm_definitions(), resources(["high"], delivery_streams=delivery_streams))
    return {alarm.name: alarm for alarm in alarms if alarm.definition_id in FIREHOSE_IDS}


def test_expand_makes_no_firehose_alarm_without_delivery_streams() -> None:
    assert firehose_alarms({}) == {}
    shipped = pipeline_alarm_resources("s3stagger", STATE_MACHINE_ARN)
    assert not [a for a in expand(load_alarm_definitions(), shipped) if a.namespace == "AWS/Firehose"]


def test_expand_alarms_each_delivery_stream_and_restricts_the_destination_metrics_to_their_stream() -> None:
    by_name = firehose_alarms(STREAMS)
    assert sorted(by_name) == [
        "team-firehose-dynatrace-delivery-dynatrace",
        "team-firehose-splunk-delivery-splunk",
        "team-firehose-throttled-dynatrace",
        "team-firehose-throttled-splunk",
    ]
    splunk = by_name["team-firehose-splunk-delivery-splunk"]
    assert (splunk.namespace, splunk.metric_name, splunk.label) == (
        "AWS/Firehose",
        "DeliveryToSplunk.Success",
        "splunk",
    )
    assert dict(splunk.dimensions) == {"DeliveryStreamName": "team-splunk-logs"}
    assert (splunk.comparison, splunk.threshold, splunk.treat_missing_data, splunk.severity) == (
        "LessThanThreshold",
        1.0,
        "breaching",
        "critical",
    )
    dynatrace = by_name["team-firehose-dynatrace-delivery-dynatrace"]
    assert dynatrace.metric_name == "DeliveryToHttpEndpoint.Success"
    assert dict(dynatrace.dimensions) == {"DeliveryStreamName": "team-dynatrace-metrics"}
    throttled = by_name["team-firehose-throttled-dynatrace"]
    assert (throttled.statistic, throttled.period_s, throttled.evaluation_periods) == ("Sum", 60, 5)


def test_expand_with_only_the_splunk_stream_makes_no_dynatrace_alarm() -> None:
    assert sorted(firehose_alarms({"splunk": "team-splunk-logs"})) == [
        "team-firehose-splunk-delivery-splunk",
        "team-firehose-throttled-splunk",
    ]
