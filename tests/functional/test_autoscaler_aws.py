"""The autoscaler's AWS side against a moto server: SQS backlog, CloudWatch signals (the
processor's EMF metrics as CloudWatch stores them), the SSM budget and flight parameters, the
handler end to end, and the processor reading its rows in flight from the flight parameter."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _moto_support import moto_client

from s3stagger.adapters.autoscaler_inputs import CloudWatchSignals, SqsBacklog
from s3stagger.adapters.flight_parameter import FlightParameterReader, SsmFlightStore, state_of
from s3stagger.autoscaler import AutoscalerSettings, AutoscalerSettingsError
from s3stagger.domain.autoscale import AutoscalePolicy, AutoscaleState, Backlog, DownstreamSignals, decide
from s3stagger.handlers import autoscale, process_object

BUDGET = "/s3stagger/concurrency-budget"
FLIGHT = "/s3stagger/flight"


@pytest.fixture
def aws_env(endpoint_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    return endpoint_url


def queues(endpoint_url: str, *names: str) -> dict[str, str]:
    sqs = moto_client(endpoint_url, "sqs")
    return {name: sqs.create_queue(QueueName=f"as-{name}")["QueueUrl"] for name in names}


def test_sqs_backlog_counts_visible_and_in_flight_per_priority(endpoint_url: str) -> None:
    urls = queues(endpoint_url, "high", "normal")
    sqs = moto_client(endpoint_url, "sqs")
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=urls["normal"], MessageBody=body)
    sqs.receive_message(QueueUrl=urls["normal"], MaxNumberOfMessages=1, VisibilityTimeout=60)
    backlog = SqsBacklog(sqs, urls, lambda: 12.5).read_backlog()
    assert backlog.visible == {"high": 0, "normal": 2}
    assert backlog.in_flight == {"high": 0, "normal": 1}
    assert (backlog.objects, backlog.oldest_age_s) == (3, 12.5)


def test_cloudwatch_signals_read_the_processor_metrics(endpoint_url: str) -> None:
    cloudwatch = moto_client(endpoint_url, "cloudwatch")
    now = datetime.now(UTC)
    service = [{"Name": "service", "Value": "as-test-processor"}]
    figures = {
        "RowsApplied": 90,
        "RowsFailed": 2,
        "RowsRetried": 3,
        "Throttled429": 5,
        "DownstreamTimeouts": 1,
    }
    cloudwatch.put_metric_data(
        Namespace="as-test",
        MetricData=[
            *(
                {"MetricName": name, "Dimensions": service, "Value": value, "Timestamp": now}
                for name, value in figures.items()
            ),
            {"MetricName": "DownstreamLatencyAvg", "Dimensions": service, "Value": 200.0, "Timestamp": now},
        ],
    )
    cloudwatch.put_metric_data(  # Lambda's own metric, which moto keeps like any other
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "ConcurrentExecutions",
                "Dimensions": [{"Name": "FunctionName", "Value": "s3stagger-processor"}],
                "Value": 6,
                "Timestamp": now,
            }
        ],
    )
    signals = CloudWatchSignals(
        cloudwatch,
        "as-test",
        "as-test-processor",
        "s3stagger-processor",
        queue_names=["as-high"],
        clock=lambda: now + timedelta(seconds=30),
    ).read_signals()
    assert signals.requests == 90 + 2 + 3 + 5
    assert (signals.throttled_429, signals.timeouts, signals.errors_5xx) == (5, 1, 2)
    assert signals.latency_ms == pytest.approx(200.0)
    assert signals.interval_s == 60.0
    assert signals.calls_in_flight == 6


def test_flight_store_round_trips_the_state_and_writes_the_budget(endpoint_url: str) -> None:
    ssm = moto_client(endpoint_url, "ssm")
    store = SsmFlightStore(ssm, f"{BUDGET}-rt", f"{FLIGHT}-rt")
    assert store.load_state() is None
    policy = AutoscalePolicy()
    backlog = Backlog(visible={"normal": 50}, in_flight={"normal": 2})
    decision = decide(
        AutoscaleState(rows_target=20, budget=2, ceiling=20.0),
        backlog,
        DownstreamSignals(requests=100, latency_ms=200, interval_s=1),
        policy,
    )
    store.save(decision)
    assert store.load_state() == decision.state
    assert ssm.get_parameter(Name=f"{BUDGET}-rt")["Parameter"]["Value"] == str(
        decision.plan.objects_in_flight
    )
    reader = FlightParameterReader(ssm, f"{FLIGHT}-rt", ttl_s=60)
    assert reader.rows_in_flight_per_object() == decision.plan.rows_in_flight_per_object
    assert reader.budget() == decision.plan.objects_in_flight
    # written before an execution began, it is not the autoscaler's answer to that execution's budget
    assert reader.budget(written_after=time.time() - 60) == decision.plan.objects_in_flight
    assert reader.budget(written_after=time.time() + 60) is None


def test_flight_reader_caches_and_tolerates_a_missing_or_bad_parameter(endpoint_url: str) -> None:
    ssm = moto_client(endpoint_url, "ssm")
    now = [0.0]
    reader = FlightParameterReader(ssm, f"{FLIGHT}-cache", ttl_s=10, clock=lambda: now[0])
    assert reader.rows_in_flight_per_object() is None  # missing: keep the configured ceiling
    ssm.put_parameter(
        Name=f"{FLIGHT}-cache",
        Value=json.dumps({"rows_in_flight_per_object": 7, "budget": True}),
        Type="String",
    )
    assert reader.rows_in_flight_per_object() is None  # cached for 10 s
    now[0] = 10.0
    assert reader.rows_in_flight_per_object() == 7
    assert reader.budget() is None  # not a count
    ssm.put_parameter(Name=f"{FLIGHT}-cache", Value="[3]", Type="String", Overwrite=True)
    now[0] = 20.0
    assert (reader.rows_in_flight_per_object(), reader.budget()) == (None, None)
    ssm.put_parameter(Name=f"{FLIGHT}-cache", Value="not json", Type="String", Overwrite=True)
    now[0] = 30.0
    assert reader.rows_in_flight_per_object() is None
    assert state_of({"state": {"unknown": 1}}) is None


def autoscaler_env(monkeypatch: pytest.MonkeyPatch, urls: dict[str, str], **extra: str) -> None:
    monkeypatch.setenv("S3STAGGER_QUEUE_URLS", json.dumps(urls))
    monkeypatch.setenv("S3STAGGER_BUDGET_PARAMETER", BUDGET)
    monkeypatch.setenv("S3STAGGER_FLIGHT_PARAMETER", FLIGHT)
    monkeypatch.setenv("S3STAGGER_PROCESSOR_FUNCTION_NAME", "s3stagger-processor")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "s3stagger")
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


def test_handler_decides_writes_logs_and_emits(
    aws_env: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    urls = queues(aws_env, "hhigh", "hnormal")
    sqs = moto_client(aws_env, "sqs")
    for index in range(30):
        sqs.send_message(QueueUrl=urls["hnormal"], MessageBody=str(index))
    autoscaler_env(monkeypatch, urls, S3STAGGER_BUDGET_FLOOR="2", S3STAGGER_BUDGET_CAP="6")
    answer = autoscale.handler({}, None)
    assert answer["backlog_objects"] == 30
    assert answer["reason"] == "no_signal"  # no processor metric yet
    assert 2 <= int(answer["budget"]) <= 6  # type: ignore[call-overload]
    ssm = moto_client(aws_env, "ssm")
    assert ssm.get_parameter(Name=BUDGET)["Parameter"]["Value"] == str(answer["budget"])
    record = json.loads(ssm.get_parameter(Name=FLIGHT)["Parameter"]["Value"])
    assert record["rows_in_flight_per_object"] == answer["rows_in_flight_per_object"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emf = [line for line in lines if "_aws" in line]
    assert emf
    assert (emf[0]["budget"], emf[0]["reason"]) == ([answer["budget"]], "no_signal")
    assert any(record.getMessage() == "autoscaler decision" for record in caplog.records)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "S3STAGGER_QUEUE_URLS is required"),
        ({"S3STAGGER_QUEUE_URLS": "nope"}, "not JSON"),
        ({"S3STAGGER_QUEUE_URLS": "[]"}, "JSON object"),
        (
            {"S3STAGGER_QUEUE_URLS": '{"a": "u"}', "S3STAGGER_BUDGET_PARAMETER": "b"},
            "FLIGHT_PARAMETER is required",
        ),
    ],
)
def test_settings_name_what_is_wrong(env: dict[str, str], message: str) -> None:
    with pytest.raises(AutoscalerSettingsError, match=message):
        AutoscalerSettings.from_env(env)


def test_settings_refuse_a_bad_floor() -> None:
    env = {
        "S3STAGGER_QUEUE_URLS": '{"a": "u"}',
        "S3STAGGER_BUDGET_PARAMETER": "b",
        "S3STAGGER_FLIGHT_PARAMETER": "f",
        "S3STAGGER_PROCESSOR_FUNCTION_NAME": "p",
        "POWERTOOLS_METRICS_NAMESPACE": "n",
        "S3STAGGER_BUDGET_FLOOR": "two",
    }
    with pytest.raises(AutoscalerSettingsError, match="S3STAGGER_BUDGET_FLOOR='two'"):
        AutoscalerSettings.from_env(env)


def test_processor_takes_rows_in_flight_from_payload_then_parameter(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    event: dict[str, Any] = {"object": {"bucket": "b", "key": "k"}, "rows_in_flight_per_object": 3}
    assert process_object.autoscaled_rows_in_flight(event) == 3
    monkeypatch.delenv("S3STAGGER_FLIGHT_PARAMETER", raising=False)
    assert process_object.autoscaled_rows_in_flight({"object": {}}) is None
    ssm = moto_client(aws_env, "ssm")
    ssm.put_parameter(
        Name=f"{FLIGHT}-proc", Value=json.dumps({"rows_in_flight_per_object": 6}), Type="String"
    )
    monkeypatch.setenv("S3STAGGER_FLIGHT_PARAMETER", f"{FLIGHT}-proc")
    assert process_object.autoscaled_rows_in_flight({"object": {}}) == 6
    ceiling = process_object.rows_in_flight_ceiling({"object": {}})
    assert ceiling is not None
    assert ceiling() == 6  # asked before every request: the parameter's figure
    ssm.put_parameter(
        Name=f"{FLIGHT}-proc",
        Value=json.dumps({"rows_in_flight_per_object": 6, "rows_in_flight_target": 12}),
        Type="String",
        Overwrite=True,
    )
    process_object._flight_readers.clear()
    single = process_object.rows_in_flight_ceiling({"object": {}}, execution_slots=1)
    assert single is not None
    assert single() == 12  # an execution of one slot: its call may take all of R
    fixed = process_object.rows_in_flight_ceiling(event)
    assert fixed is not None
    assert fixed() == 3  # the payload's figure holds for the invocation
