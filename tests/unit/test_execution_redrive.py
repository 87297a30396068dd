"""Failed dispatcher executions: Standard ones redriven in place (RedriveExecution, checked against the
service model with Stubber: moto lacks it), an Express dispatcher re-dispatched once; dry run and twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
from botocore.stub import Stubber

from s3stagger.adapters.execution_redrive import ExecutionRedrive

SM = "arn:aws:states:eu-west-1:123456789012:stateMachine:p-dispatcher"


def execution(name: str, status: str, minutes_ago: int) -> dict[str, object]:
    stopped = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return {
        "executionArn": f"arn:aws:states:eu-west-1:123456789012:execution:p-dispatcher:{name}",
        "stateMachineArn": SM,
        "name": name,
        "status": status,
        "startDate": stopped - timedelta(minutes=1),
        "stopDate": stopped,
    }


def client() -> object:
    return boto3.client(
        "stepfunctions", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def describe(stub: Stubber, kind: str) -> None:
    answer = {
        "stateMachineArn": SM,
        "name": "p-dispatcher",
        "definition": "{}",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "type": kind,
        "creationDate": datetime.now(UTC),
    }
    stub.add_response("describe_state_machine", answer, {"stateMachineArn": SM})


def listing(stub: Stubber, failed: list[dict[str, object]]) -> None:
    for status in ("FAILED", "TIMED_OUT", "ABORTED"):
        found = [e for e in failed if e["status"] == status]
        stub.add_response(
            "list_executions", {"executions": found}, {"stateMachineArn": SM, "statusFilter": status}
        )


def test_standard_executions_are_redriven_in_place_filtered_by_age_and_a_second_run_is_refused() -> None:
    sfn = client()
    failed = [execution("a", "FAILED", 30), execution("b", "TIMED_OUT", 30), execution("young", "ABORTED", 1)]
    with Stubber(sfn) as stub:  # type: ignore[arg-type]
        describe(stub, "STANDARD")
        listing(stub, failed)
        dry = ExecutionRedrive(sfn, SM).run(min_age_s=600, dry_run=True)  # type: ignore[arg-type]
        assert [arn.rsplit(":", 1)[1] for arn in dry.redriven] == ["a", "b"]

        describe(stub, "STANDARD")
        listing(stub, failed)
        for name in ("a", "b"):
            stub.add_response(
                "redrive_execution",
                {"redriveDate": datetime.now(UTC)},
                {"executionArn": failed[0 if name == "a" else 1]["executionArn"]},
            )
        done = ExecutionRedrive(sfn, SM).run(min_age_s=600)  # type: ignore[arg-type]
        assert len(done.redriven) == 2
        assert done.statuses == {"FAILED": 1, "TIMED_OUT": 1}

        describe(stub, "STANDARD")
        listing(stub, failed[:1])
        stub.add_client_error("redrive_execution", "ExecutionNotRedrivable", "execution is RUNNING")
        again = ExecutionRedrive(sfn, SM).run(min_age_s=600)  # type: ignore[arg-type]
        assert again.redriven == []
        assert again.refused == {"ExecutionNotRedrivable: execution is RUNNING": 1}
        stub.assert_no_pending_responses()


def test_an_express_dispatcher_is_redispatched_with_one_new_execution() -> None:
    sfn = client()
    with Stubber(sfn) as stub:  # type: ignore[arg-type]
        describe(stub, "EXPRESS")
        dry = ExecutionRedrive(sfn, SM).run(dry_run=True)  # type: ignore[arg-type]
        assert dry.as_dict()["redriven"] == 1
        describe(stub, "EXPRESS")
        stub.add_response(
            "start_execution",
            {
                "executionArn": SM.replace("stateMachine", "execution") + ":redrive-1",
                "startDate": datetime.now(UTC),
            },
        )
        done = ExecutionRedrive(sfn, SM).run()  # type: ignore[arg-type]
        assert done.redriven[0].endswith(":redrive-1")
        stub.assert_no_pending_responses()
