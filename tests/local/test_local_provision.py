"""Provisioning from definitions/: what local mode creates is what the definition files say."""

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from s3stagger import definitions
from s3stagger.definitions.model import DefinitionError, Definitions
from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings
from s3stagger.local.provision import ProvisionSettings, ResourceNames, dispatcher_template_values
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
    shipped = Definitions.load()
    assert names.priorities == shipped.priorities
    assert list(names.queue_urls) == list(names.dlq_urls) == list(shipped.priorities)  # served in this order
    for priority in shipped.priorities:
        assert names.queue_urls[priority].endswith(f"/s3stagger-{priority}")
        assert names.dlq_urls[priority].endswith(f"/s3stagger-{priority}-dlq")
        assert names.key_prefix(priority) == shipped.event_rules.key_prefix(priority)
    assert names.all_dlq_urls == (*names.dlq_urls.values(), names.ingest_dlq_url)
    assert names.ingest_dlq_url.endswith("/s3stagger-ingest-dlq")
    assert names.lease_queue_url.endswith("/s3stagger-dispatcher-lease.fifo")
    assert names.state_machine_arn.endswith(":stateMachine:s3stagger-dispatcher")
    assert names.function_name == "s3stagger-processor"
    assert names.budget_parameter == "/s3stagger/concurrency-budget"
    assert names.rule_names == (
        *(f"s3stagger-object-created-{priority}" for priority in shipped.priorities),
        "s3stagger-object-unrouted",
    )
    printed = json.loads(json.dumps(names.as_dict()))  # what `s3stagger local up` prints
    assert printed["queue_urls"] == dict(names.queue_urls)
    assert names.key_prefix("high") == "high/"
    with pytest.raises(DefinitionError, match="no route for priority 'urgent'"):
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
    unrouted = json.loads(events.describe_rule(Name="s3stagger-object-unrouted")["EventPattern"])
    every_route = [f"{route['key_prefix']}*{rules_spec['object_suffix']}" for route in rules_spec["routes"]]
    assert unrouted["detail"]["object"]["key"] == [{"anything-but": {"wildcard": every_route}}]


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
    urls = {**stack.names.queue_urls, "ingest-dlq": stack.names.ingest_dlq_url}
    landed: dict[str, str] = {}
    deadline = time.monotonic() + 120
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
    assert described["type"] == Definitions.load().dispatcher.state_machine_type
    invoke = asl["States"]["RunSlots"]["ItemProcessor"]["States"]["InvokeProcessor"]
    assert invoke["Parameters"]["FunctionName"] == stack.names.function_arn
    # Lambda's refusals go to the slot's own retry loop, which holds the message for each wait (no
    # Retry on the call: during its waits nothing would renew the message)
    assert "Retry" not in invoke
    refused, anything_else = invoke["Catch"]
    assert set(refused["ErrorEquals"]) == {
        "Lambda.TooManyRequestsException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
    }
    assert refused["Next"] == "CallRefused"
    assert (anything_else["ErrorEquals"], anything_else["Next"]) == (["States.ALL"], "RecordFailure")


def test_the_environment_points_a_client_at_the_stack(stack: LocalPipeline) -> None:
    env = stack.environment()
    assert env["AWS_ENDPOINT_URL"] == stack.endpoint_url
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"


# -- overrides of a local run (no emulator needed) -------------------------------------------------


def load(**overrides: Any) -> Definitions:
    return ProvisionSettings(downstream_url=DOWNSTREAM, **overrides).load_definitions()


def names_for_template(loaded: Definitions, queue_urls: dict[str, str] | None = None) -> ResourceNames:
    urls = {p: f"u-{p}" for p in loaded.priorities} if queue_urls is None else queue_urls
    return ResourceNames(
        name_prefix="p",
        region="r",
        account_id="1",
        bucket="b",
        failed_rows_bucket="f",
        failed_rows_prefix="x/",
        priorities=loaded.priorities,
        queue_urls=urls,
        dlq_urls={p: f"d-{p}" for p in loaded.priorities},
        key_prefixes={p: f"{p}/" for p in loaded.priorities},
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


def test_every_asl_placeholder_gets_a_value_and_none_is_spare() -> None:
    loaded = load()
    values = dispatcher_template_values(loaded, names_for_template(loaded))
    assert set(values) == placeholders(definitions.read_text("dispatcher.asl.json"))
    # one value per priority, in queues.json order, joined with ","
    assert values["queue_urls"] == "u-high,u-normal"
    spacing = loaded.dispatcher.stagger.priorities
    assert values["stagger_max_delay_s"] == f"{spacing['high'].max_delay_s},{spacing['normal'].max_delay_s}"
    assert values["max_calls_per_slot"] == loaded.dispatcher.max_calls_per_slot["EXPRESS"]


def test_the_asl_needs_a_queue_for_every_priority() -> None:
    loaded = load()
    with pytest.raises(DefinitionError, match=r"no queue URL for priorities \['normal'\]"):
        dispatcher_template_values(loaded, names_for_template(loaded, {"high": "u-high"}))


def test_settings_override_the_definition_files() -> None:
    loaded = load(
        processor_timeout_s=30,
        processor_reserved_concurrency=None,
        max_receive_count=2,
        dispatcher={"failure_retry_delay_s": 1},
        stagger={
            "backlog_depth": 3,
            "priorities": {
                "high": {"spacing_s": 0, "max_delay_s": 0},
                "normal": {"spacing_s": 2, "max_delay_s": 2},
            },
        },
    )
    shipped = Definitions.load()
    assert loaded.processor.timeout_s == 30
    assert loaded.processor.reserved_concurrency == shipped.processor.reserved_concurrency  # None: keep
    assert loaded.queues.queue.max_receive_count == 2
    assert loaded.queues.queue.visibility_timeout_s == shipped.queues.queue.visibility_timeout_s
    assert loaded.dispatcher.failure_retry_delay_s == 1
    assert loaded.dispatcher.stagger.backlog_depth == 3
    assert loaded.dispatcher.stagger.priorities["normal"].spacing_s == 2


def test_the_initial_budget_is_checked_like_terraforms() -> None:
    assert load(concurrency_budget=40).budget.default == 40
    with pytest.raises(DefinitionError, match=r"default \(41\) <= maximum \(40\)"):
        load(concurrency_budget=41)


def test_an_unknown_dispatcher_override_is_named() -> None:
    with pytest.raises(DefinitionError, match=r"dispatcher.json: override of unknown field retry_delay"):
        load(dispatcher={"retry_delay": 1})


def test_a_processor_timeout_the_queue_visibility_cannot_cover_is_refused() -> None:
    with pytest.raises(
        DefinitionError, match=r"queue\.visibility_timeout_s=360 must be at least processor\.json timeout_s"
    ):
        load(processor_timeout_s=900)


def test_the_dispatcher_type_is_a_setting() -> None:
    assert load(dispatcher_type="STANDARD").dispatcher.state_machine_type == "STANDARD"
    assert load().dispatcher.state_machine_type == "EXPRESS"
    with pytest.raises(
        DefinitionError, match="state_machine_type must be one of EXPRESS, STANDARD, got 'SYNC'"
    ):
        load(dispatcher_type="SYNC")


def test_a_stagger_override_replaces_the_priorities_whole() -> None:
    with pytest.raises(DefinitionError, match=r"stagger.priorities \['normal'\] must be exactly"):
        load(stagger={"backlog_depth": 1, "priorities": {"normal": {"spacing_s": 0, "max_delay_s": 0}}})


def test_the_name_prefix_is_validated_too() -> None:
    with pytest.raises(DefinitionError, match="S3 allows 63"):
        ProvisionSettings(downstream_url=DOWNSTREAM, name_prefix="p" * 60).load_definitions()
