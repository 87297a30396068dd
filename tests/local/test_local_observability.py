"""A pipeline run on the emulator with local observability: every line the processor writes is
indexed by the local HEC once, every metric line is valid, and `s3stagger logs` finds an object."""

from __future__ import annotations

import json
import time
from pathlib import Path

from typer.testing import CliRunner

from s3stagger.cli.app import app
from s3stagger.cli.observability_report import ObservabilityCollector
from s3stagger.cli.pipeline_run import PipelineRun, PipelineRunSettings
from s3stagger.local.observability import LocalObservabilitySettings
from s3stagger.local.request_counter import HARNESS_USER_AGENT, client_as
from s3stagger.perf.counting import CostSection, execution_histories


class QueueReads:
    """``GetQueueAttributes`` calls the request counter billed to the pattern, and those the
    dispatcher's executions made (their Task states: the only ones the pattern makes in a run
    without the autoscaler), read once no new execution starts and the count has settled."""

    name = "queue_reads"

    def collect(self, run: PipelineRun) -> dict[str, int]:
        if run.stack.scheduler is not None:
            run.stack.scheduler.stop()  # each scheduled start reads the lease queue's depth
        sfn = client_as(HARNESS_USER_AGENT, "stepfunctions", run.stack.emulator.client_settings())
        arn = run.stack.names.state_machine_arn
        reads, deadline = -1, time.monotonic() + 30
        while time.monotonic() < deadline:
            settled = sum(
                1
                for _, events in execution_histories(sfn, arn)
                for event in events
                if str(event.get("taskScheduledEventDetails", {}).get("resource", "")).lower()
                == "getqueueattributes"
            )
            if settled == reads:
                break
            reads = settled
            time.sleep(0.5)
        counted = CostSection().collect(run)["counters"]["sqs_requests"].get("GetQueueAttributes", 0)
        return {"dispatcher": reads, "counted": counted}


def test_a_run_ships_every_log_line_and_valid_metrics(tmp_path: Path) -> None:
    settings = PipelineRunSettings(
        files=4,
        rows=3,
        timeout_s=300,
        pipeline_options={"observability": LocalObservabilitySettings(data_dir=tmp_path)},
    )
    run = PipelineRun(settings, collectors=[ObservabilityCollector(), QueueReads()])
    result = run.run()
    figures = result.section("observability")
    assert result.report.ok
    assert figures["function_log_lines"] >= 3 * result.processor_invocations  # start, end, EMF each
    assert figures["splunk_events_received"] == figures["function_log_lines"]
    assert figures["splunk_events_lost"] == figures["splunk_events_rejected"] == 0
    assert figures["dynatrace_lines_invalid"] == 0
    assert figures["dynatrace_lines_received"] > 0
    assert figures["dashboard_tiles_with_data"] == figures["dashboard_tiles"] == 10
    assert "Rows applied per second" in Path(figures["dashboard"]).read_text()
    # the metric stream's stand-in samples the queues every period: AWS's work, not billed to the
    # pattern (the demo's cost line counted it: 5.2 SQS requests per object instead of 2.8)
    reads = result.section("queue_reads")
    assert reads["counted"] == reads["dispatcher"] > 0

    key = run.uploaded[0].key
    answer = CliRunner().invoke(app, ["logs", "--object", key, "--json", "--index", figures["splunk_index"]])
    assert answer.exit_code == 0, answer.output
    messages = [json.loads(line)["event"]["message"] for line in answer.stdout.splitlines()]
    assert messages[0] == "processing object"
    assert messages[-1] == "object processed"
    missing = CliRunner().invoke(app, ["logs", "--object", "nope.csv", "--index", figures["splunk_index"]])
    assert missing.exit_code == 1
    assert "no events about object nope.csv" in missing.output
