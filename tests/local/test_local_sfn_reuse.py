"""moto's Step Functions interpreter reuses parsed definitions, clients and JSONPaths while an
emulator runs, and executions still compute what they computed before."""

from __future__ import annotations

import importlib
import json
import time
from typing import Any

import boto3
import jsonpath_ng.ext

from s3stagger.local import sfn_reuse
from s3stagger.local.emulator import Emulator

ROLE = "arn:aws:iam::123456789012:role/reuse"
DEFINITION = {
    "StartAt": "ListQueues",
    "States": {
        "ListQueues": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:sqs:listQueues",
            "Parameters": {"QueueNamePrefix.$": "$.prefix"},
            "ResultSelector": {"urls.$": "$.QueueUrls"},
            "ResultPath": "$.found",
            "End": True,
        }
    },
}
DEADLINE_S = 300


def finished_output(sfn: Any, execution_arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            assert described["status"] == "SUCCEEDED", described
            return json.loads(described["output"])  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"{execution_arn} still running after {DEADLINE_S} s")


def test_every_replaced_name_exists_in_the_pinned_moto() -> None:
    for name in sfn_reuse.CLIENT_USERS:
        assert hasattr(importlib.import_module(name), "boto_client_for"), name
    for name, parse in sfn_reuse.JSONPATH_USERS.items():
        assert importlib.import_module(name).parse is parse, name


def test_executions_of_one_definition_share_one_parse_and_one_client_per_service() -> None:
    with Emulator() as emulator:
        settings = emulator.client_settings()
        sqs = boto3.client("sqs", **settings)  # type: ignore[call-overload]
        sfn = boto3.client("stepfunctions", **settings)  # type: ignore[call-overload]
        sqs.create_queue(QueueName="reuse-a")
        sqs.create_queue(QueueName="other-b")
        arn = sfn.create_state_machine(name="reuse", definition=json.dumps(DEFINITION), roleArn=ROLE)[
            "stateMachineArn"
        ]
        before = sfn_reuse.parsed_program.cache_info()

        started = [
            sfn.start_execution(stateMachineArn=arn, name=f"run-{n}", input=json.dumps({"prefix": prefix}))
            for n, prefix in enumerate(("reuse", "other", "reuse"))
        ]
        outputs = [finished_output(sfn, execution["executionArn"]) for execution in started]

        after = sfn_reuse.parsed_program.cache_info()
        names = [[url.rsplit("/", 1)[1] for url in output["found"]["urls"]] for output in outputs]
        assert names == [["reuse-a"], ["other-b"], ["reuse-a"]]
        assert (after.misses - before.misses, after.hits - before.hits) == (1, 2)
        assert sfn_reuse.boto_client_for("us-east-1", "sqs") is sfn_reuse.boto_client_for("us-east-1", "sqs")
        assert sfn_reuse.boto_client_for("us-east-1", "sqs") is not sfn_reuse.boto_client_for(
            "us-east-1", "lambda"
        )

    assert not sfn_reuse.installed()
    assert importlib.import_module(sfn_reuse.CLIENT_USERS[0]).boto_client_for is sfn_reuse.new_client_per_call
    json_path = importlib.import_module("moto.stepfunctions.parser.asl.utils.json_path")
    assert json_path.parse is jsonpath_ng.ext.parse
    assert sfn_reuse.parsed_program.cache_info().currsize == 0
