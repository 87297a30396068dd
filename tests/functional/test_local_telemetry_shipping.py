"""Local shipping over real loopback HTTP: captured lines → subscription → Firehose stand-in (the
transform Lambda's code) → the local HEC; metric samples → metric-stream stand-in → the local
Dynatrace endpoint. Outages are retried and nothing is lost; a bad token is a clear error."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from s3stagger.local.alarm_evaluator import MetricKey, metric_key
from s3stagger.local.dynatrace_ingest import DynatraceIngestReceiver
from s3stagger.local.firehose_splunk import (
    FirehoseSplunkStandIn,
    LogSubscriptionStandIn,
    SplunkDeliverySettings,
    backed_up_events,
)
from s3stagger.local.lambda_runtime import LambdaContext, running_invocation
from s3stagger.local.log_capture import CapturedLines, LambdaLogCapture
from s3stagger.local.metric_stream import CapturedEmfMetrics, MetricStreamSettings, MetricStreamStandIn
from s3stagger.local.splunk_hec import SplunkHecReceiver

TOKEN = "22222222-3333-4444-8555-666666666666"
ARN = "arn:aws:firehose:us-east-1:123456789012:deliverystream/s3stagger-splunk-logs"


def context(function: str) -> LambdaContext:
    return LambdaContext(
        function_name=function,
        function_version="$LATEST",
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function}",
        memory_limit_in_mb=128,
        aws_request_id="req",
        log_group_name=f"/aws/lambda/{function}",
        log_stream_name=f"local/{function}-stream",
        deadline_monotonic=time.monotonic() + 60,
    )


def write_as_function(function: str, lines: Iterable[str]) -> None:
    """What a handler does on its invocation thread: print and log to stdout."""
    logger = logging.getLogger(f"test-{function}")

    def run() -> None:
        with running_invocation(context(function)):
            for line in lines:
                if line.startswith("log:"):
                    logger.warning(line.removeprefix("log:"))
                else:
                    print(line)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()


@pytest.fixture
def hec() -> Iterator[SplunkHecReceiver]:
    with SplunkHecReceiver(TOKEN) as receiver:
        yield receiver


def firehose(hec_url: str, tmp_path: Path, token: str = TOKEN, retry_s: float = 5.0) -> FirehoseSplunkStandIn:
    return FirehoseSplunkStandIn(
        SplunkDeliverySettings(
            hec_url=hec_url,
            token=token,
            backup_dir=tmp_path / "backup",
            stream_arn=ARN,
            retry_duration_s=retry_s,
        ),
        sleep=lambda s: time.sleep(min(s, 0.01)),
    )


def test_every_line_a_function_writes_reaches_the_hec_once(hec: SplunkHecReceiver, tmp_path: Path) -> None:
    handler = logging.StreamHandler()  # bound to stderr before the capture is installed, as Powertools' is
    logger = logging.getLogger("test-processor")
    logger.addHandler(handler)
    try:
        with LambdaLogCapture() as capture:
            lines = capture.consumer()
            print("the main thread's output is not a function's")
            write_as_function(
                "processor",
                [
                    json.dumps({"level": "INFO", "message": f"row {n}", "object_key": "normal/a.csv"})
                    for n in range(5)
                ]
                + ["log:from a logging handler", "", "plain text"],
            )
            write_as_function("notifier", ['{"message": "alert sent"}'])
    finally:
        logger.removeHandler(handler)
    assert capture.lines_written() == {"processor": 7, "notifier": 1}
    stream = firehose(hec.url, tmp_path)
    subscription = LogSubscriptionStandIn(lines, stream.put_records, owner="123456789012")
    assert subscription.flush() == 8
    stream.flush()
    events = hec.events()
    assert len(events) == 8 == hec.stats().events_received
    assert stream.stats.records_dropped == 2  # one CONTROL_MESSAGE per log group
    assert sorted({e.source for e in events}) == ["/aws/lambda/notifier", "/aws/lambda/processor"]
    by_key = [e for e in events if e.fields.get("object_key") == "normal/a.csv"]
    assert [e.event["message"] for e in by_key] == [f"row {n}" for n in range(5)]
    assert {"message": "from a logging handler"} in [e.event for e in events]
    assert stream.stats.events_delivered == 8
    assert stream.stats.events_backed_up == 0


def test_a_busy_hec_is_retried_with_backoff_and_nothing_is_lost(
    hec: SplunkHecReceiver, tmp_path: Path
) -> None:
    stream = firehose(hec.url, tmp_path)
    subscription = LogSubscriptionStandIn(_lines_of(["a", "b", "c"]), stream.put_records, owner="1")
    subscription.flush()
    hec.refuse_next(3)
    stream.flush()
    assert stream.stats.retries == 3
    assert hec.stats().refusals[9] == 3
    assert [e.event["message"] for e in hec.events()] == ["a", "b", "c"]
    assert stream.stats.events_backed_up == 0


def test_a_hec_that_stays_down_gets_the_events_backed_up_and_counted(tmp_path: Path) -> None:
    with SplunkHecReceiver(TOKEN) as receiver:
        url = receiver.url  # a port nobody listens on once it stopped
    stream = firehose(url, tmp_path, retry_s=0.3)
    LogSubscriptionStandIn(_lines_of(["a", "b"]), stream.put_records, owner="1").flush()
    stream.flush()
    assert stream.stats.retries >= 1
    assert stream.stats.events_backed_up == 2
    assert backed_up_events(tmp_path / "backup") == 2
    (backup,) = (tmp_path / "backup" / "splunk-failed").glob("*.jsonl")
    assert json.loads(backup.read_text().splitlines()[0])["errorCode"] == "Splunk.ConnectionFailed"


def test_a_bad_token_is_a_clear_error_and_the_events_are_kept(hec: SplunkHecReceiver, tmp_path: Path) -> None:
    stream = firehose(hec.url, tmp_path, token="not-the-token")
    LogSubscriptionStandIn(_lines_of(["a"]), stream.put_records, owner="1").flush()
    stream.flush()
    assert stream.stats.retries == 0
    assert stream.stats.error is not None
    assert "refused the token (HTTP 403, code 4: Invalid token)" in stream.stats.error
    assert stream.stats.events_backed_up == 1
    assert hec.events() == []


def _lines_of(messages: list[str]) -> CapturedLines:
    with LambdaLogCapture() as capture:
        lines = capture.consumer()
        write_as_function("f", messages)
    return lines


class FixedSource:
    def __init__(self, values: list[float]) -> None:
        self.values = values

    def sample(self, now: float) -> Iterable[tuple[MetricKey, float]]:
        for value in self.values:
            yield metric_key("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "q-dlq"}), value


def stream_to(url: str, tmp_path: Path, sources: list[object], retry_s: float = 5.0) -> MetricStreamStandIn:
    return MetricStreamStandIn(
        MetricStreamSettings(
            ingest_url=url,
            token="dt0c01.T",
            account_id="123456789012",
            region="us-east-1",
            backup_dir=tmp_path / "backup",
            retry_duration_s=retry_s,
        ),
        sources,  # type: ignore[arg-type]
        sleep=lambda s: time.sleep(min(s, 0.01)),
    )


def test_metrics_arrive_as_summary_lines_named_as_the_metric_stream_names_them(tmp_path: Path) -> None:
    emf = {
        "_aws": {
            "Timestamp": 1,
            "CloudWatchMetrics": [
                {
                    "Namespace": "s3stagger",
                    "Dimensions": [["service"]],
                    "Metrics": [{"Name": "RowsApplied", "Unit": "Count"}],
                }
            ],
        },
        "service": "s3stagger-processor",
        "RowsApplied": 7,
    }
    with LambdaLogCapture() as capture:
        lines = capture.consumer()
        write_as_function("processor", [json.dumps(emf), json.dumps(emf | {"RowsApplied": 3})])
    with DynatraceIngestReceiver("dt0c01.T") as receiver:
        stream = stream_to(receiver.ingest_url, tmp_path, [FixedSource([2, 4]), CapturedEmfMetrics(lines)])
        stream.sample()
        stream.flush(final=True)
        series = receiver.series()
    rows = series[
        (
            "cloud.aws.s3stagger.rowsAppliedByService",
            (
                ("aws.account.id", "123456789012"),
                ("aws.region", "us-east-1"),
                ("service", "s3stagger-processor"),
            ),
        )
    ]
    assert [p.line.summary.sum for p in rows] == [10.0]  # type: ignore[union-attr]
    dlq = [p for (key, _), points in series.items() if key.startswith("cloud.aws.sqs.") for p in points]
    assert [(p.line.summary.min, p.line.summary.max) for p in dlq] == [(2.0, 4.0)]  # type: ignore[union-attr]
    assert stream.stats.lines_invalid == 0
    assert receiver.stats().lines_received == 2


def test_a_dynatrace_outage_is_retried_and_then_backed_up(tmp_path: Path) -> None:
    with DynatraceIngestReceiver("dt0c01.T") as receiver:
        receiver.unavailable = True
        stream = stream_to(receiver.ingest_url, tmp_path, [FixedSource([1])])
        stream.sample()
        threading.Timer(0.2, lambda: setattr(receiver, "unavailable", False)).start()
        stream.flush(final=True)
        assert stream.stats.retries >= 1
        assert receiver.stats().lines_received == 1
        receiver.unavailable = True
        short = stream_to(receiver.ingest_url, tmp_path, [FixedSource([1])], retry_s=0.2)
        short.sample()
        short.flush(final=True)
    assert short.stats.lines_backed_up == 1
    (kept,) = (tmp_path / "backup" / "dynatrace-failed").glob("*.json")
    assert json.loads(kept.read_text())["lines"][0].startswith(
        "cloud.aws.sqs.approximateNumberOfMessagesVisibleByQueueName,"
    )


def test_a_wrong_api_token_is_a_clear_error(tmp_path: Path) -> None:
    with DynatraceIngestReceiver("dt0c01.RIGHT") as receiver:
        stream = stream_to(receiver.ingest_url, tmp_path, [FixedSource([1])])
        stream.sample()
        stream.flush(final=True)
    assert stream.stats.retries == 0
    assert stream.stats.error is not None
    assert "HTTP 401" in stream.stats.error
    assert "metrics.ingest" in stream.stats.error
    assert stream.stats.lines_backed_up == 1
