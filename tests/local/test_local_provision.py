"""Provisioning from definitions/: what local mode creates is what the definition files say."""

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from s3stagger import definitions
from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings
from s3stagger.local.provision import Definitions, ProvisionError, ProvisionSettings
from s3stagger.local.templates import placeholders

DOWNSTREAM = "http://127.0.0.1:9/rows"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalPipeline]:
    settings = LocalPipelineSettings(downstream_url=DOWNSTREAM, start_scheduler=False, max_receive_count=3)
    with LocalPipeline(settings) as running:
        yield running


def attributes(stack: LocalPipeline, url: str) -> dict[str, str]:
    return stack.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_names_follow_the_prefix_convention(stack: LocalPipeline) -> None:
    names = stack.names
    assert names.bucket == "s3stagger-uploads"
    assert names.failed_rows_bucket == "s3stagger-failed-rows"
    assert names.high_queue_url.endswith("/s3stagger-high")
    assert names.normal_queue_url.endswith("/s3stagger-normal")
    assert names.high_dlq_url.endswith("/s3stagger-high-dlq")
    assert names.normal_dlq_url.endswith("/s3stagger-normal-dlq")
    assert names.ingest_dlq_url.endswith("/s3stagger-ingest-dlq")
    assert names.lease_queue_url.endswith("/s3stagger-dispatcher-lease.fifo")
    assert names.state_machine_arn.endswith(":stateMachine:s3stagger-dispatcher")
    assert names.function_name == "s3stagger-processor"
    assert names.budget_parameter == "/s3stagger/concurrency-budget"
    assert names.rule_names == (
        "s3stagger-object-created-high",
        "s3stagger-object-created-normal",
        "s3stagger-object-unrouted",
    )
    json.dumps(names.as_dict())  # what `s3stagger local up` prints
    assert names.key_prefix("high") == "high/"
    with pytest.raises(ProvisionError, match="no route for priority 'urgent'"):
        names.key_prefix("urgent")


def test_queues_have_the_definition_settings_and_redrive(stack: LocalPipeline) -> None:
    spec = definitions.read_json("queues.json")
    for priority in stack.names.priorities:
        queue = attributes(stack, stack.names.queue_urls[priority])
        dlq = attributes(stack, stack.names.dlq_urls[priority])
        assert queue["VisibilityTimeout"] == str(spec["queue"]["visibility_timeout_s"])
        assert queue["MessageRetentionPeriod"] == str(spec["queue"]["message_retention_s"])
        redrive = json.loads(queue["RedrivePolicy"])
        assert redrive == {"deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": 3}  # the override
        assert int(dlq["MessageRetentionPeriod"]) > int(queue["MessageRetentionPeriod"])
        policy = json.loads(queue["Policy"])
        assert policy["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}


def test_the_lease_queue_is_fifo_with_one_token(stack: LocalPipeline) -> None:
    lease = attributes(stack, stack.names.lease_queue_url)
    assert lease["FifoQueue"] == "true"
    assert lease["ApproximateNumberOfMessages"] == "1"


def test_rules_route_by_prefix_with_retry_policy_and_dlq(stack: LocalPipeline) -> None:
    events = stack.client("events")
    rules_spec = definitions.read_json("event_rules.json")
    ingest_arn = attributes(stack, stack.names.ingest_dlq_url)["QueueArn"]
    for rule_name in stack.names.rule_names:
        pattern = json.loads(events.describe_rule(Name=rule_name)["EventPattern"])
        assert pattern["detail"]["bucket"]["name"] == [stack.names.bucket]
        (target,) = events.list_targets_by_rule(Rule=rule_name)["Targets"]
        assert target["RetryPolicy"] == {
            "MaximumRetryAttempts": rules_spec["target_retry_policy"]["maximum_retry_attempts"],
            "MaximumEventAgeInSeconds": rules_spec["target_retry_policy"]["maximum_event_age_s"],
        }
        assert target["DeadLetterConfig"] == {"Arn": ingest_arn}
    high = json.loads(events.describe_rule(Name="s3stagger-object-created-high")["EventPattern"])
    assert high["detail"]["object"]["key"] == [{"wildcard": "high/*.csv"}]


def test_the_bucket_sends_events_and_each_key_lands_in_its_queue(stack: LocalPipeline) -> None:
    s3 = stack.client("s3")
    # (moto does not echo EventBridgeConfiguration back; delivery below proves it is on)
    uploads = {
        "high/a.csv": "high",
        "normal/b.csv": "normal",
        "c.csv": "ingest-dlq",
        "normal/d.txt": "ingest-dlq",
    }
    for key in uploads:
        s3.put_object(Bucket=stack.names.bucket, Key=key, Body=b"h\n1\n")
    s3.put_object(Bucket=stack.names.failed_rows_bucket, Key="failed-rows/x.json", Body=b"{}")
    urls = {"high": stack.names.high_queue_url, "normal": stack.names.normal_queue_url}
    urls["ingest-dlq"] = stack.names.ingest_dlq_url
    landed: dict[str, str] = {}
    deadline = time.monotonic() + 10
    while len(landed) < len(uploads) and time.monotonic() < deadline:
        for queue, url in urls.items():
            for message in (
                stack.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            ):
                body = json.loads(message["Body"])
                landed[body["detail"]["object"]["key"]] = queue
                stack.client("sqs").delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert landed == uploads  # and nothing from the failed-rows bucket


def test_the_function_is_configured_from_processor_json(stack: LocalPipeline) -> None:
    spec = definitions.read_json("processor.json")
    function = stack.client("lambda").get_function(FunctionName=stack.names.function_name)
    config = function["Configuration"]
    assert config["Handler"] == spec["handler"]
    assert config["Timeout"] == spec["timeout_s"]
    assert config["MemorySize"] == spec["memory_mb"]
    env = config["Environment"]["Variables"]
    assert env["S3STAGGER_DOWNSTREAM_URL"] == DOWNSTREAM
    assert env["S3STAGGER_FAILED_ROWS_BUCKET"] == stack.names.failed_rows_bucket
    assert env["S3STAGGER_MAX_CONCURRENCY"] == spec["environment"]["S3STAGGER_MAX_CONCURRENCY"]
    assert function["Concurrency"]["ReservedConcurrentExecutions"] == spec["reserved_concurrency"]


def test_the_budget_parameter_holds_the_default(stack: LocalPipeline) -> None:
    value = stack.client("ssm").get_parameter(Name=stack.names.budget_parameter)["Parameter"]["Value"]
    assert value == str(definitions.read_json("budget.json")["default"])


def test_the_state_machine_is_the_rendered_template(stack: LocalPipeline) -> None:
    described = stack.client("stepfunctions").describe_state_machine(
        stateMachineArn=stack.names.state_machine_arn
    )
    definition = described["definition"]
    assert not placeholders(definition)
    asl = json.loads(definition)
    template = json.loads(definitions.read_text("dispatcher.asl.json"))
    assert set(asl["States"]) == set(template["States"])
    urls = ",".join(stack.names.queue_urls[priority] for priority in stack.names.priorities)
    settings = asl["States"]["Setup"]["Parameters"]["settings"]
    assert settings["queueUrls.$"] == f"States.StringSplit('{urls}', ',')"  # in priority order
    assert described["type"] == definitions.read_json("dispatcher.json")["state_machine_type"]
    invoke = asl["States"]["RunSlots"]["ItemProcessor"]["States"]["InvokeProcessor"]
    assert invoke["Parameters"]["FunctionName"] == stack.names.function_arn
    retrier = invoke["Retry"][0]
    assert set(retrier["ErrorEquals"]) == {
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    }
    assert (retrier["IntervalSeconds"], retrier["MaxAttempts"], retrier["BackoffRate"]) == (2, 6, 2)


def test_the_environment_points_a_client_at_the_stack(stack: LocalPipeline) -> None:
    env = stack.environment()
    assert env["AWS_ENDPOINT_URL"] == stack.endpoint_url
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"


# -- validation of definitions and overrides (no emulator needed) -------------------------------


def load(**overrides: Any) -> Definitions:
    return Definitions.load(ProvisionSettings(downstream_url=DOWNSTREAM, **overrides))


def test_the_shipped_definitions_are_consistent() -> None:
    loaded = load()
    values = loaded.dispatcher_template_values(
        _names_for_template(loaded)  # every placeholder gets a value, none is spare
    )
    assert set(values) == placeholders(definitions.read_text("dispatcher.asl.json"))


def _names_for_template(loaded: Definitions) -> Any:
    from s3stagger.local.provision import ResourceNames

    return ResourceNames(
        name_prefix="p",
        region="r",
        account_id="1",
        bucket="b",
        failed_rows_bucket="f",
        failed_rows_prefix="x/",
        priorities=tuple(loaded.queues["priorities"]),
        queue_urls={p: f"u-{p}" for p in loaded.queues["priorities"]},
        dlq_urls={p: f"d-{p}" for p in loaded.queues["priorities"]},
        ingest_dlq_url="i",
        lease_queue_url="l",
        rule_names=(),
        state_machine_name="s",
        state_machine_arn="a",
        function_name="fn",
        function_arn="fa",
        budget_parameter="/p/b",
        schedule_name="sc",
    )


def test_an_unknown_dispatcher_override_is_named() -> None:
    with pytest.raises(ProvisionError, match=r"unknown dispatcher setting\(s\) retry_delay"):
        load(dispatcher={"retry_delay": 1})


def test_visibility_must_outlast_the_processor_timeout() -> None:
    with pytest.raises(
        ProvisionError, match="visibility_extension_s=600 must exceed the processor timeout_s=900"
    ):
        load(processor_timeout_s=900)


def test_the_queue_visibility_covers_one_invocation() -> None:
    with pytest.raises(
        ProvisionError, match="visibility_timeout_s=100 must be at least the processor timeout_s=300"
    ):
        load(visibility_timeout_s=100)


def test_the_lease_must_outlast_an_execution_a_call_and_the_longest_wait() -> None:
    with pytest.raises(
        ProvisionError, match=r"lease_s=100 must be >= time_budget_s \+ visibility_extension_s"
    ):
        load(dispatcher={"lease_s": 100})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dispatcher_type": "SYNC"}, "state_machine_type='SYNC' must be EXPRESS or STANDARD"),
        ({"dispatcher": {"time_budget_s": 280}}, "time_budget_s=280 must be >= 1, and <= 270 for EXPRESS"),
        ({"dispatcher": {"time_budget_s": 0}}, "time_budget_s=0 must be >= 1"),
        ({"dispatcher": {"max_calls_per_slot": 0}}, "max_calls_per_slot for EXPRESS must be >= 1"),
    ],
)
def test_the_execution_settings_are_checked(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ProvisionError, match=re.escape(message)):
        load(**overrides)


def test_a_standard_dispatcher_may_work_longer_and_takes_its_own_call_cap() -> None:
    loaded = load(dispatcher_type="STANDARD", dispatcher={"time_budget_s": 280})
    assert loaded.state_machine_type == "STANDARD"
    assert (
        loaded.max_calls_per_slot
        == definitions.read_json("dispatcher.json")["max_calls_per_slot"]["STANDARD"]
    )


def test_the_stagger_must_cover_every_priority() -> None:
    with pytest.raises(ProvisionError, match=r"stagger lacks priorities \['high'\]"):
        load(stagger={"backlog_depth": 1, "priorities": {"normal": {"spacing_s": 0, "max_delay_s": 0}}})
