"""What an execution's history says about its queue calls (the idle starts' share of SQS cost)."""

import json

from s3stagger.perf.counting import invoked_processor, sqs_calls


def scheduled(resource_type: str, resource: str) -> dict[str, object]:
    return {
        "type": "TaskScheduled",
        "taskScheduledEventDetails": {"resourceType": resource_type, "resource": resource},
    }


def succeeded(resource: str, output: dict[str, object]) -> dict[str, object]:
    return {
        "type": "TaskSucceeded",
        "taskSucceededEventDetails": {
            "resourceType": "aws-sdk:sqs",
            "resource": resource,
            "output": json.dumps(output),
        },
    }


def test_queue_calls_and_empty_receives_are_read_from_the_history() -> None:
    events = [
        scheduled("aws-sdk:sqs", "getQueueAttributes"),
        succeeded("getQueueAttributes", {"Attributes": {}}),
        scheduled("aws-sdk:sqs", "receiveMessage"),
        succeeded("receiveMessage", {"Messages": [{"Body": "lease"}]}),
        scheduled("aws-sdk:ssm", "getParameter"),
        scheduled("aws-sdk:sqs", "receiveMessage"),
        succeeded("receiveMessage", {}),
    ]
    assert sqs_calls(events) == (3, 1)
    assert not invoked_processor(events)
    assert invoked_processor([scheduled("lambda", "invoke")])
