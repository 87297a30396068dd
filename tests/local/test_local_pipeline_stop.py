"""Stopping a local pipeline frees the process's one emulator whatever fails on the way."""

import pytest

from s3stagger.local.emulator import Emulator
from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings


class SchedulerThatFailsToStop:
    def stop(self) -> None:
        raise RuntimeError("the scheduler did not stop")


def test_a_step_of_stop_that_fails_still_frees_the_emulator_for_the_next_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = LocalPipelineSettings(downstream_url="http://127.0.0.1:9/rows", start_scheduler=False)
    stack = LocalPipeline(settings)
    stack.start()
    monkeypatch.setattr(stack, "scheduler", SchedulerThatFailsToStop())
    with pytest.raises(RuntimeError, match="did not stop"):
        stack.stop()
    assert stack.runtime is None  # the Lambda runtime is uninstalled too
    with Emulator() as emulator:  # a later stack in this process is not refused
        assert emulator.endpoint_url.startswith("http://127.0.0.1:")
