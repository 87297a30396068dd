"""Local provisioning and Terraform build the same pipeline: compared on two emulators, from the
emulators' own describe calls, and the pipeline runs on what Terraform built (which also shows
the uploads bucket sends its events to EventBridge: moto does not read that setting back).

One emulator per path, one after the other (moto keeps its state per process): local mode's
``Provisioner`` on the first, ``terraform apply`` of ``terraform/examples/local`` on the second
(one apply for the whole module: it is slow). Each side is read back the same way — bucket
notifications and versioning, queue attributes, rules with their patterns and targets, the state
machine's definition, the function's configuration, the processor settings its environment gives
(``ProcessorSettings.from_env``) and its other variables, the budget parameter — with
each emulator's endpoint replaced by ``<endpoint>``, and the two must be equal. Whatever both paths
render is compared (no ASL or setting is fixed here), so the paths cannot drift apart.

Not compared, because local mode does not build them and the emulator neither enforces nor runs
them: IAM roles' policies, queue and bucket policies, bucket encryption, public access blocks and
lifecycle rules, log groups, the state machine's logging and tracing, and the schedule (the local
scheduler stands in for EventBridge Scheduler; the test checks the one Terraform made targets the
state machine with ``dispatcher.json``'s expression).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_iac_terraform import HAS_AWS_PROVIDER, PLUGIN_DIR, TERRAFORM

from s3stagger.config import ProcessorSettings
from s3stagger.definitions.model import Definitions
from s3stagger.local.downstream import DownstreamSimulator, LatencySpec, SimulatorSettings
from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings
from s3stagger.local.provision import ResourceNames
from s3stagger.local.terraform_stack import TerraformPipeline

pytestmark = pytest.mark.skipif(
    TERRAFORM is None or not HAS_AWS_PROVIDER,
    reason=f"terraform or an offline AWS provider in {PLUGIN_DIR} is missing (set S3STAGGER_TF_PLUGIN_DIR)",
)

QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "DelaySeconds",
    "MaximumMessageSize",
    "FifoQueue",
    "ContentBasedDeduplication",
    "SqsManagedSseEnabled",
    "KmsMasterKeyId",
    "RedrivePolicy",
    "RedriveAllowPolicy",
)
FUNCTION_SETTINGS = (
    "FunctionName",
    "Runtime",
    "Handler",
    "Timeout",
    "MemorySize",
    "Architectures",
    "Environment",
)
JSON_VALUED = ("RedrivePolicy", "RedriveAllowPolicy", "EventPattern", "definition")

Client = Callable[[str], Any]


def _parsed(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def snapshot(client: Client, names: ResourceNames, endpoint_url: str) -> dict[str, Any]:
    """What the emulator says was built, by resource, in a form both paths can be compared in."""
    s3, sqs, events = client("s3"), client("sqs"), client("events")
    built: dict[str, Any] = {"buckets": {}, "queues": {}, "rules": {}}
    for bucket in (names.bucket, names.failed_rows_bucket):
        built["buckets"][bucket] = {"versioning": s3.get_bucket_versioning(Bucket=bucket).get("Status")}
    for url in sqs.list_queues()["QueueUrls"]:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        built["queues"][url.rsplit("/", 1)[-1]] = {
            name: _parsed(attributes[name]) if name in JSON_VALUED else attributes[name]
            for name in QUEUE_ATTRIBUTES
            if name in attributes
        }
    for rule in events.list_rules()["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        built["rules"][rule["Name"]] = {
            "EventPattern": _parsed(rule["EventPattern"]),
            "State": rule["State"],
            "EventBusName": rule.get("EventBusName", "default"),
            "Targets": sorted(targets, key=lambda target: target["Id"]),
        }
    machine = client("stepfunctions").describe_state_machine(stateMachineArn=names.state_machine_arn)
    built["state_machine"] = {
        "name": machine["name"],
        "type": machine["type"],
        "definition": _parsed(machine["definition"]),
    }
    lam = client("lambda")
    function = lam.get_function_configuration(FunctionName=names.function_name)
    built["function"] = {name: function.get(name) for name in FUNCTION_SETTINGS}
    # the processor's own settings as it reads them (a default may be spelt out on one side only)
    environment = built["function"].pop("Environment")["Variables"]
    built["function"]["ProcessorSettings"] = repr(ProcessorSettings.from_env(environment))
    built["function"]["OtherEnvironment"] = {
        name: value for name, value in environment.items() if not name.startswith("S3STAGGER_")
    }
    built["function"]["ReservedConcurrentExecutions"] = lam.get_function_concurrency(
        FunctionName=names.function_name
    ).get("ReservedConcurrentExecutions")
    parameter = client("ssm").get_parameter(Name=names.budget_parameter)["Parameter"]
    built["budget_parameter"] = {
        "Name": parameter["Name"],
        "Type": parameter["Type"],
        "Value": parameter["Value"],
    }
    built["names"] = {
        name: value
        for name, value in names.as_dict().items()
        if name not in ("state_machine_arn", "function_arn")
    }
    return json.loads(json.dumps(built, default=str).replace(endpoint_url, "<endpoint>"))


@pytest.fixture(scope="module")
def simulator() -> Iterator[DownstreamSimulator]:
    with DownstreamSimulator(SimulatorSettings(capacity=4, latency=LatencySpec.fixed(0.01))) as running:
        yield running


@pytest.fixture(scope="module")
def stack_settings(simulator: DownstreamSimulator) -> LocalPipelineSettings:
    """What both paths are given: the demo's kind of settings (an initial budget, rows in flight)."""
    return LocalPipelineSettings(
        downstream_url=simulator.rows_url,
        concurrency_budget=2,
        processor_environment={"S3STAGGER_MAX_CONCURRENCY": "2"},
        schedule_interval_s=0.5,
        start_scheduler=False,
    )


@pytest.fixture(scope="module")
def local_built(stack_settings: LocalPipelineSettings) -> dict[str, Any]:
    with LocalPipeline(stack_settings) as stack:
        return snapshot(stack.client, stack.names, stack.endpoint_url)


@pytest.fixture(scope="module")
def terraform_stack(
    stack_settings: LocalPipelineSettings, local_built: dict[str, Any]
) -> Iterator[TerraformPipeline]:
    """The Terraform-built stack, started after the local one has stopped (one emulator at a time)."""
    with TerraformPipeline(stack_settings) as stack:
        yield stack


@pytest.fixture(scope="module")
def terraform_built(terraform_stack: TerraformPipeline) -> dict[str, Any]:
    return snapshot(terraform_stack.client, terraform_stack.names, terraform_stack.endpoint_url)


@pytest.mark.parametrize(
    "part", ["names", "buckets", "queues", "rules", "state_machine", "function", "budget_parameter"]
)
def test_local_provisioning_and_terraform_build_the_same(
    part: str, local_built: dict[str, Any], terraform_built: dict[str, Any]
) -> None:
    assert terraform_built[part] == local_built[part]


def test_the_comparison_sees_every_resource(terraform_built: dict[str, Any]) -> None:
    definitions = Definitions.load()
    assert len(terraform_built["queues"]) == 2 * len(definitions.priorities) + 2  # + ingest DLQ, lease
    assert len(terraform_built["rules"]) == len(definitions.priorities) + 1  # + unrouted
    assert terraform_built["state_machine"]["definition"]["States"]
    assert "max_concurrency=2," in terraform_built["function"]["ProcessorSettings"]


def test_the_schedule_terraform_made_starts_the_state_machine(terraform_stack: TerraformPipeline) -> None:
    names = terraform_stack.names
    schedule = terraform_stack.client("scheduler").get_schedule(Name=names.schedule_name)
    assert schedule["Target"]["Arn"] == names.state_machine_arn
    assert schedule["ScheduleExpression"] == Definitions.load().dispatcher.schedule_expression
    assert schedule["State"] == "ENABLED"
    assert json.loads(terraform_stack.execution_input("slot"))["slot"] != "<aws.scheduler.scheduled-time>"


def test_the_pipeline_runs_on_what_terraform_built(
    terraform_stack: TerraformPipeline, simulator: DownstreamSimulator
) -> None:
    names = terraform_stack.names
    s3 = terraform_stack.client("s3")
    rows = "id,value\n" + "".join(f"{index},{index * 10}\n" for index in range(5))
    keys = [f"{names.key_prefix(priority)}parity-{priority}.csv" for priority in names.priorities]
    for key in keys:
        s3.put_object(Bucket=names.bucket, Key=key, Body=rows.encode())
    assert terraform_stack.scheduler is not None
    terraform_stack.scheduler.start()
    assert terraform_stack.wait_until_idle(timeout_s=300)
    stats = simulator.stats()
    assert stats.effects_applied - stats.duplicate_effects == 5 * len(keys)
    assert stats.duplicate_effects == 0
    assert all(terraform_stack.queue_depth(url).total == 0 for url in names.all_dlq_urls)
    assert terraform_stack.processor_counters().invocations >= len(keys)
