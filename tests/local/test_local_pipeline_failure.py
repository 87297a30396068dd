import pytest

from s3stagger.definitions.model import DefinitionError
from s3stagger.local.emulator import Emulator
from s3stagger.local.lambda_runtime import LocalLambdaRuntime
from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings


def test_a_stack_that_cannot_provision_cleans_up_and_says_why() -> None:
    bad = LocalPipelineSettings(downstream_url="http://127.0.0.1:9/rows", dispatcher={"no_such_setting": 1})
    with pytest.raises(DefinitionError, match="no_such_setting"), LocalPipeline(bad):
        pass
    assert LocalLambdaRuntime._installed is None
    assert Emulator._running is None
    with LocalPipeline(
        LocalPipelineSettings(downstream_url="http://127.0.0.1:9/rows", start_scheduler=False)
    ) as stack:
        assert stack.names.bucket == "s3stagger-uploads"


def test_a_dispatcher_that_fails_gives_the_lease_back() -> None:
    with LocalPipeline(
        LocalPipelineSettings(downstream_url="http://127.0.0.1:9/rows", start_scheduler=False)
    ) as stack:
        sqs = stack.client("sqs")
        sqs.delete_queue(QueueUrl=stack.names.queue_urls["high"])  # every receive now fails
        arn = stack.start_dispatcher()
        assert stack.wait_for_dispatchers(300)
        described = stack.client("stepfunctions").describe_execution(executionArn=arn)
        assert described["status"] == "FAILED"
        assert described["error"] == "DispatcherFailed"
        assert stack.queue_depth(stack.names.lease_queue_url).visible == 1  # the next slot can dispatch
