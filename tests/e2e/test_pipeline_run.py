"""PipelineRun step by step, with a section collector, as the perf and alerting runs drive it."""

from __future__ import annotations

from typing import Any

import pytest

import s3stagger.handlers.process_object  # noqa: F401 - bind the processor's logger before the run
from s3stagger.cli.pipeline_run import PipelineProgress, PipelineRun, PipelineRunSettings

pytestmark = pytest.mark.e2e


class DownstreamSection:
    name = "downstream"

    def __init__(self) -> None:
        self.calls = 0

    def collect(self, run: PipelineRun) -> dict[str, Any]:
        self.calls += 1
        stats = run.simulator.stats()
        return {"requests": stats.requests, "keys": len(run.simulator.applied_keys())}


def test_a_run_goes_in_steps_and_carries_the_sections_of_its_collectors() -> None:
    settings = PipelineRunSettings(
        files=2, rows=3, high_priority_share=0.5, timeout_s=300, pipeline_options={"schedule_interval_s": 0.5}
    )
    section = DownstreamSection()
    seen: list[PipelineProgress] = []
    with PipelineRun(settings, on_progress=seen.append, collectors=[section]) as run:
        assert run.stack.names.bucket
        assert run.stack.settings.schedule_interval_s == 0.5, "pipeline_options reach the local stack"
        run.upload()
        assert run.follow(poll_interval_s=0.1)
        result = run.collect()
    assert result.report.rows_applied == 6
    assert result.report.ok
    assert not result.timed_out
    assert seen[-1].objects_done == 2
    assert section.calls == 1
    assert result.section("downstream")["keys"] == 6
    assert result.section("downstream")["requests"] == result.report.downstream_requests
    with pytest.raises(RuntimeError, match="not started"):
        _ = run.simulator
