"""SQS's own redrive (StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask) as the AWS API
answers it: botocore's Stubber checks each request against the service model (moto lacks these calls)."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from s3stagger.adapters.dlq_redrive import MoveTask, SqsMessageMoveTasks

DLQ = "https://sqs.eu-west-1.amazonaws.com/123456789012/p-normal-dlq"
SOURCE = "https://sqs.eu-west-1.amazonaws.com/123456789012/p-normal"
DLQ_ARN = "arn:aws:sqs:eu-west-1:123456789012:p-normal-dlq"
SOURCE_ARN = "arn:aws:sqs:eu-west-1:123456789012:p-normal"


def arn_of(stub: Stubber, url: str, arn: str) -> None:
    stub.add_response(
        "get_queue_attributes",
        {"Attributes": {"QueueArn": arn}},
        {"QueueUrl": url, "AttributeNames": ["QueueArn"]},
    )


def test_start_list_and_cancel_a_move_task() -> None:
    sqs = boto3.client("sqs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(sqs) as stub:
        arn_of(stub, DLQ, DLQ_ARN)
        arn_of(stub, SOURCE, SOURCE_ARN)
        stub.add_response(
            "start_message_move_task",
            {"TaskHandle": "handle-1"},
            {"SourceArn": DLQ_ARN, "DestinationArn": SOURCE_ARN, "MaxNumberOfMessagesPerSecond": 50},
        )
        arn_of(stub, DLQ, DLQ_ARN)
        stub.add_response(
            "list_message_move_tasks",
            {
                "Results": [
                    {
                        "TaskHandle": "handle-1",
                        "Status": "RUNNING",
                        "ApproximateNumberOfMessagesMoved": 7,
                        "ApproximateNumberOfMessagesToMove": 20,
                    }
                ]
            },
            {"SourceArn": DLQ_ARN, "MaxResults": 10},
        )
        stub.add_response(
            "cancel_message_move_task", {"ApproximateNumberOfMessagesMoved": 9}, {"TaskHandle": "handle-1"}
        )
        tasks = SqsMessageMoveTasks(sqs)
        assert tasks.start(DLQ, SOURCE, 50) == "handle-1"
        assert tasks.list(DLQ) == [MoveTask("handle-1", "RUNNING", 7, 20, "")]
        assert tasks.cancel("handle-1") == 9
        stub.assert_no_pending_responses()


def test_an_unfiltered_redrive_on_aws_starts_one_move_task_per_priority_dlq() -> None:
    from s3stagger.cli.redrive import PipelineQueues, RedriveSource, redrive_queues
    from s3stagger.domain.redrive import RedriveFilter

    sqs = boto3.client("sqs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    queues = PipelineQueues(
        {"normal": SOURCE}, {"normal": DLQ}, DLQ + "-ingest", {"normal": "normal/"}, ".csv"
    )
    with Stubber(sqs) as stub:
        arn_of(stub, DLQ, DLQ_ARN)
        arn_of(stub, SOURCE, SOURCE_ARN)
        stub.add_response(
            "start_message_move_task",
            {"TaskHandle": "h-2"},
            {"SourceArn": DLQ_ARN, "DestinationArn": SOURCE_ARN},
        )
        reports = redrive_queues(
            sqs,
            queues,
            RedriveSource.DLQS,
            RedriveFilter(),
            limit=None,
            dry_run=False,
            native_move=SqsMessageMoveTasks(sqs),
        )
        assert reports == {"normal-dlq": {"move_task": "h-2"}}
        # a filter cannot be a move task: the message-by-message mover reads the DLQ instead
        stub.add_response("receive_message", {"Messages": []})
        filtered = redrive_queues(
            sqs,
            queues,
            RedriveSource.DLQS,
            RedriveFilter(key_prefix="normal/x"),
            limit=None,
            dry_run=False,
            native_move=SqsMessageMoveTasks(sqs),
        )
        assert filtered["normal-dlq"].moved == 0
        stub.assert_no_pending_responses()
