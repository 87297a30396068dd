"""`s3stagger monitor --once` against a moto server on 127.0.0.1."""

import datetime as dt
import io
import json
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any

import pytest
from _moto_support import moto_client
from typer.testing import CliRunner

from s3stagger.cli.app import app


@dataclass(frozen=True)
class Resources:
    queue_name: str
    queue_url: str
    dlq_name: str
    state_machine_name: str
    state_machine_arn: str
    function_name: str


@pytest.fixture(scope="module")
def resources(endpoint_url: str) -> Resources:
    tag = uuid.uuid4().hex[:8]
    sqs = moto_client(endpoint_url, "sqs")
    dlq_url = sqs.create_queue(QueueName=f"mon-{tag}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    queue_url = sqs.create_queue(QueueName=f"mon-{tag}", Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    for index in range(5):
        sqs.send_message(QueueUrl=queue_url, MessageBody=f"m{index}")
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=2, VisibilityTimeout=600)
    assert len(received["Messages"]) == 2
    sqs.send_message(QueueUrl=dlq_url, MessageBody="dead")

    role = moto_client(endpoint_url, "iam").create_role(RoleName=f"mon-{tag}", AssumeRolePolicyDocument="{}")
    sfn = moto_client(endpoint_url, "stepfunctions")
    # A long Wait keeps an execution RUNNING until the test stops it, whether or not this process's
    # moto runs state machines (a setting other test modules may have turned on).
    definition = json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 300, "End": True}}})
    machine_arn = sfn.create_state_machine(
        name=f"mon-{tag}", definition=definition, roleArn=role["Role"]["Arn"]
    )["stateMachineArn"]

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("h.py", "def handler(event, context):\n    return event\n")
    lam = moto_client(endpoint_url, "lambda")
    lam.create_function(
        FunctionName=f"mon-{tag}",
        Runtime="python3.13",
        Role=role["Role"]["Arn"],
        Handler="h.handler",
        Code={"ZipFile": code.getvalue()},
    )
    lam.put_function_concurrency(FunctionName=f"mon-{tag}", ReservedConcurrentExecutions=5)
    return Resources(
        queue_name=f"mon-{tag}",
        queue_url=queue_url,
        dlq_name=f"mon-{tag}-dlq",
        state_machine_name=f"mon-{tag}",
        state_machine_arn=machine_arn,
        function_name=f"mon-{tag}",
    )


def _monitor(endpoint_url: str, *args: str) -> Any:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, ["monitor", "--endpoint-url", endpoint_url, *args])


def test_once_json_reports_depths_in_flight_dlq_executions_and_function(
    endpoint_url: str, resources: Resources
) -> None:
    result = _monitor(
        endpoint_url,
        "--queue",
        resources.queue_name,
        "--state-machine",
        resources.state_machine_name,
        "--function",
        resources.function_name,
        "--once",
        "--json",
    )
    assert result.exit_code == 0, result.output
    snapshot = json.loads(result.stdout)
    (queue,) = snapshot["queues"]
    assert (queue["visible"], queue["in_flight"]) == (3, 2)
    assert queue["dlq_name"] == resources.dlq_name
    assert queue["dlq_visible"] == 1
    assert queue["max_receive_count"] == 3
    assert snapshot["state_machine"]["arn"] == resources.state_machine_arn
    assert snapshot["state_machine"]["running"] == 0
    assert snapshot["function"]["reserved_concurrency"] == 5


def test_executions_are_counted_by_status(endpoint_url: str, resources: Resources) -> None:
    sfn = moto_client(endpoint_url, "stepfunctions")
    args = ("--state-machine", resources.state_machine_arn, "--once", "--json")
    before = json.loads(_monitor(endpoint_url, *args).stdout)["state_machine"]
    execution = sfn.start_execution(stateMachineArn=resources.state_machine_arn)["executionArn"]
    sfn.stop_execution(executionArn=execution)
    result = _monitor(endpoint_url, *args)
    assert result.exit_code == 0, result.output
    machine = json.loads(result.stdout)["state_machine"]
    assert machine["aborted"] == before["aborted"] + 1
    assert machine["running"] == 0
    assert (machine["failed"], machine["timed_out"]) == (before["failed"], before["timed_out"])


def test_cloudwatch_figures_are_summed_when_datapoints_exist(endpoint_url: str, resources: Resources) -> None:
    cloudwatch = moto_client(endpoint_url, "cloudwatch")
    now = dt.datetime.now(dt.UTC)
    for value in (2.0, 3.0):
        cloudwatch.put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[
                {
                    "MetricName": "Throttles",
                    "Dimensions": [{"Name": "FunctionName", "Value": resources.function_name}],
                    "Timestamp": now,
                    "Value": value,
                }
            ],
        )
    result = _monitor(endpoint_url, "--function", resources.function_name, "--once", "--json")
    assert result.exit_code == 0, result.output
    function = json.loads(result.stdout)["function"]
    assert function["throttles"] == 5.0
    assert function["errors"] is None, "no datapoint must read as unknown, not as zero"


def test_once_renders_tables_for_people(endpoint_url: str, resources: Resources) -> None:
    result = _monitor(
        endpoint_url,
        "--queue",
        resources.queue_url,
        "--state-machine",
        resources.state_machine_name,
        "--function",
        resources.function_name,
        "--once",
    )
    assert result.exit_code == 0, result.output
    assert resources.queue_name in result.stdout
    assert resources.dlq_name in result.stdout
    assert "dispatcher executions" in result.stdout
    assert "reserved concurrency" in result.stdout


def test_live_view_stops_after_count_refreshes(endpoint_url: str, resources: Resources) -> None:
    result = _monitor(endpoint_url, "--queue", resources.queue_name, "--count", "2", "--interval", "0.2")
    assert result.exit_code == 0, result.output
    assert resources.queue_name in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--queue", "no-such-queue"], "queue 'no-such-queue' does not exist"),
        (["--state-machine", "no-such-machine"], "state machine 'no-such-machine' does not exist"),
        (["--function", "no-such-function"], "function 'no-such-function' does not exist"),
    ],
)
def test_a_missing_resource_is_named_and_exits_non_zero(
    endpoint_url: str, args: list[str], message: str
) -> None:
    result = _monitor(endpoint_url, *args, "--once")
    assert result.exit_code == 1
    assert message in result.stderr


def test_a_missing_queue_given_by_url_is_named(endpoint_url: str) -> None:
    url = f"{endpoint_url}/123456789012/gone-queue"
    result = _monitor(endpoint_url, "--queue", url, "--once")
    assert result.exit_code == 1
    assert f"queue '{url}' does not exist" in result.stderr


def test_an_unreachable_endpoint_is_reported_without_a_traceback() -> None:
    result = _monitor("http://127.0.0.1:9", "--queue", "q", "--once")
    assert result.exit_code == 1
    assert "reading from http://127.0.0.1:9 failed" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--once"], "nothing to watch"),
        (["--queue", "q", "--json"], "--json needs --once"),
        (["--queue", "q", "--interval", "0"], "--interval"),
        (["--queue", "q", "--bogus"], "No such option"),
    ],
)
def test_wrong_flags_are_usage_errors(endpoint_url: str, args: list[str], message: str) -> None:
    result = _monitor(endpoint_url, *args)
    assert result.exit_code == 2
    assert message in result.output


def test_an_express_dispatcher_is_read_from_the_aws_states_metrics(endpoint_url: str) -> None:
    """ListExecutions does not serve Express executions on AWS: the monitor reads AWS/States instead."""
    sfn = moto_client(endpoint_url, "stepfunctions")
    tag = uuid.uuid4().hex[:8]
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    arn = sfn.create_state_machine(
        name=f"mon-express-{tag}",
        definition=definition,
        roleArn="arn:aws:iam::123456789012:role/x",
        type="EXPRESS",
    )["stateMachineArn"]
    cloudwatch = moto_client(endpoint_url, "cloudwatch")
    for metric, value in (("ExecutionsStarted", 7.0), ("ExecutionsFailed", 1.0), ("ExecutionsFailed", 2.0)):
        cloudwatch.put_metric_data(
            Namespace="AWS/States",
            MetricData=[
                {
                    "MetricName": metric,
                    "Dimensions": [{"Name": "StateMachineArn", "Value": arn}],
                    "Timestamp": dt.datetime.now(dt.UTC),
                    "Value": value,
                }
            ],
        )
    result = _monitor(endpoint_url, "--state-machine", arn, "--once", "--json")
    assert result.exit_code == 0, result.output
    machine = json.loads(result.stdout)["state_machine"]
    assert machine["type"] == "EXPRESS"
    assert machine["source"] == "AWS/States, last 5 min"
    assert (machine["started"], machine["failed"]) == (7.0, 3.0)
    assert machine["running"] is None, "AWS cannot count running Express executions"
    assert machine["timed_out"] is None, "no datapoint must read as unknown, not as zero"
    table = _monitor(endpoint_url, "--state-machine", arn, "--once")
    assert table.exit_code == 0, table.output
    assert "EXPRESS" in table.stdout
    assert "succeeded" in table.stdout
