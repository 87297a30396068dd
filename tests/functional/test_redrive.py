"""`s3stagger redrive` and `s3stagger replay-failed-rows` against the moto server and the real simulator:
dry runs move nothing, filters and limits hold, a second run finds nothing left to do."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from _moto_support import moto_client
from typer.testing import CliRunner

from s3stagger.adapters.downstream_client import HttpDownstream, build_http_transports
from s3stagger.adapters.failed_rows_sink import S3FailedRowsSink
from s3stagger.cli.app import app
from s3stagger.config import ProcessorSettings
from s3stagger.definitions.model import Definitions
from s3stagger.domain.csv_rows import CsvFormat, CsvObjectReader
from s3stagger.domain.idempotency import row_idempotency_key
from s3stagger.domain.model import ObjectRef
from s3stagger.domain.request_mapping import OutgoingRow, RowRequest, SourceRow
from s3stagger.local.downstream import DownstreamSimulator, SimulatorSettings
from s3stagger.local.provision import _placeholder_code_zip


def make_queues(sqs: Any, prefix: str) -> dict[str, str]:
    names = [f"{prefix}-{p}" for p in Definitions.load().priorities]
    names += [f"{name}-dlq" for name in names] + [f"{prefix}-ingest-dlq"]
    return {name.removeprefix(f"{prefix}-"): sqs.create_queue(QueueName=name)["QueueUrl"] for name in names}


def s3_event(key: str) -> str:
    return json.dumps(
        {"detail-type": "Object Created", "detail": {"bucket": {"name": "up"}, "object": {"key": key}}}
    )


def depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def run_cli(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output.strip().splitlines()[-1]))


@pytest.fixture
def pipeline(endpoint_url: str) -> tuple[Any, str, dict[str, str]]:
    sqs = moto_client(endpoint_url, "sqs")
    prefix = f"rd{uuid.uuid4().hex[:8]}"
    return sqs, prefix, make_queues(sqs, prefix)


def test_priority_dlqs_dry_run_filter_limit_then_twice(endpoint_url: str, pipeline: Any) -> None:
    sqs, prefix, urls = pipeline
    for index in range(5):
        sqs.send_message(QueueUrl=urls["normal-dlq"], MessageBody=s3_event(f"normal/a/{index}.csv"))
    for index in range(3):
        sqs.send_message(QueueUrl=urls["normal-dlq"], MessageBody=s3_event(f"normal/b/{index}.csv"))
    common = ("redrive", "--from", "dlqs", "--name-prefix", prefix, "--endpoint-url", endpoint_url)

    dry = run_cli(*common, "--dry-run")
    assert dry["normal-dlq"]["moved"] == 8
    assert dry["normal-dlq"]["reasons"] == {"failed its receives (1 received)": 8}
    assert (depth(sqs, urls["normal-dlq"]), depth(sqs, urls["normal"])) == (8, 0)

    some = run_cli(*common, "--key-prefix", "normal/b/", "--limit", "2")
    assert (some["normal-dlq"]["moved"], some["normal-dlq"]["skipped_by_filter"]) == (2, 5)
    assert (depth(sqs, urls["normal-dlq"]), depth(sqs, urls["normal"])) == (6, 2)

    rest = run_cli(*common)
    assert rest["normal-dlq"]["moved"] == 6
    assert rest["high-dlq"]["moved"] == 0
    again = run_cli(*common)
    assert again["normal-dlq"]["moved"] == 0
    assert (depth(sqs, urls["normal-dlq"]), depth(sqs, urls["normal"])) == (0, 8)
    moved = sqs.receive_message(QueueUrl=urls["normal"], MaxNumberOfMessages=10)["Messages"]
    assert {json.loads(m["Body"])["detail"]["object"]["key"] for m in moved} >= {"normal/b/0.csv"}


def test_ingest_dlq_routes_each_event_by_its_key_and_reports_the_unroutable(
    endpoint_url: str, pipeline: Any
) -> None:
    sqs, prefix, urls = pipeline
    error = {"ERROR_CODE": {"DataType": "String", "StringValue": "SQSError"}}
    sqs.send_message(QueueUrl=urls["ingest-dlq"], MessageBody=s3_event("high/x.csv"), MessageAttributes=error)
    sqs.send_message(QueueUrl=urls["ingest-dlq"], MessageBody=s3_event("normal/y.csv"))
    sqs.send_message(QueueUrl=urls["ingest-dlq"], MessageBody=s3_event("elsewhere/z.csv"))
    sqs.send_message(QueueUrl=urls["ingest-dlq"], MessageBody="not an event")
    common = ("redrive", "--from", "ingest", "--name-prefix", prefix, "--endpoint-url", endpoint_url)

    dry = run_cli(*common, "--dry-run")["ingest-dlq"]
    assert (dry["moved"], dry["unroutable"]) == (2, 2)
    assert dry["reasons"]["SQSError:"] == 1
    assert depth(sqs, urls["ingest-dlq"]) == 4

    done = run_cli(*common)["ingest-dlq"]
    assert done["by_destination"] == {urls["high"]: 1, urls["normal"]: 1}
    assert any("under no route's prefix" in reason for reason in done["unroutable_reasons"])
    assert any("names no object key" in reason for reason in done["unroutable_reasons"])
    assert (depth(sqs, urls["high"]), depth(sqs, urls["normal"]), depth(sqs, urls["ingest-dlq"])) == (1, 1, 2)
    again = run_cli(*common)["ingest-dlq"]
    assert (again["moved"], again["unroutable"]) == (0, 2)


def test_a_missing_queue_is_one_clear_line(endpoint_url: str) -> None:
    result = CliRunner().invoke(
        app, ["redrive", "--name-prefix", "nothing-here", "--endpoint-url", endpoint_url]
    )
    assert result.exit_code != 0
    assert "queue 'nothing-here-high' not found" in result.output


OBJECT = b"id,name\n1,ok\n2,Caf\xe9\n3," + b"x" * 400 + b"\n4,landed\n"


def write_record(s3: Any, bucket: str) -> ObjectRef:
    """The real sink's record of rows 2 (latin-1), 3 (refused as too large) and 4 (timed out, but landed)."""
    ref = ObjectRef("up", "normal/r.csv", version_id="v1", etag="e1")
    reader = CsvObjectReader([OBJECT], CsvFormat())
    header = reader.read_header()
    batch = S3FailedRowsSink(s3, bucket).open_batch(ref, "v1", header)
    offset = header.end_offset
    for row in reader.rows(header.columns):
        if row.number > 1:
            batch.add(row.number, "the reason", (), byte_offset=offset, line=row.raw)
        offset = row.next_offset
    assert batch.close() is not None
    return ref


def test_replay_failed_rows_dry_run_refusals_original_keys_and_twice(endpoint_url: str) -> None:
    s3 = moto_client(endpoint_url, "s3")
    bucket = f"sink-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    ref = write_record(s3, bucket)
    with DownstreamSimulator(SimulatorSettings(capacity=4, max_body_bytes=300, seed=3)) as sim:
        # row 4 had in fact landed: the same key and body were applied before the replay
        landed = {"source": {"bucket": "up", "key": ref.key, "row": 4}, "data": {"id": "4", "name": "landed"}}

        async def deliver_once() -> None:
            async with HttpDownstream(build_http_transports(1), sim.rows_url) as http:
                key = row_idempotency_key("up", ref.key, "v1", 4)
                await http.deliver([OutgoingRow(4, key, RowRequest(landed))])

        asyncio.run(deliver_once())
        common = ("replay-failed-rows", "--downstream-url", sim.rows_url, "--bucket", bucket)
        common += ("--endpoint-url", endpoint_url)

        dry = run_cli(*common, "--dry-run")
        assert (dry["rows_selected"], dry["applied"]) == (3, 0)
        assert sim.stats().requests == 1

        first = run_cli(*common)
        assert (first["applied"], first["already_applied"], first["refused"], first["failed_again"]) == (
            0,
            1,
            1,
            1,
        )
        assert any("not valid UTF-8 (byte 0xE9" in reason for reason in first["outstanding_reasons"])
        assert any("HTTP 413" in reason for reason in first["outstanding_reasons"])

        latin = run_cli(
            *common, "--source-encoding", "latin-1", "--reason", "reason", "--key-prefix", "normal/"
        )
        assert (latin["rows_selected"], latin["applied"], latin["failed_again"]) == (2, 1, 1)
        assert row_idempotency_key("up", ref.key, "v1", 2) in sim.applied_keys()
        stats = sim.stats()
        assert (stats.effects_applied, stats.duplicate_effects) == (2, 0)

        again = run_cli(*common, "--source-encoding", "latin-1")
        assert (again["rows_selected"], again["applied"], again["already_applied"]) == (1, 0, 0)
        assert sim.stats().duplicate_effects == 0


def test_the_table_names_what_would_move_and_move_tasks_are_refused_on_the_emulator(
    endpoint_url: str, pipeline: Any
) -> None:
    sqs, prefix, urls = pipeline
    sqs.send_message(QueueUrl=urls["high-dlq"], MessageBody=s3_event("high/t.csv"))
    args = ["redrive", "--name-prefix", prefix, "--endpoint-url", endpoint_url, "--dry-run"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "would move" in result.output
    assert "high-dlq" in result.output
    assert depth(sqs, urls["high-dlq"]) == 1
    status = CliRunner().invoke(app, ["redrive", "--status", "--endpoint-url", endpoint_url])
    assert status.exit_code != 0
    assert "for SQS move tasks on AWS" in status.output


MAPPED_OBJECT = b"id;name\n1;ann\n2;bob\n3;cy\n4;dee\n5;eve\n"
MAPPED_ROWS = {2: "bob", 3: "cy", 4: "dee", 5: "eve"}
FIELDS = json.dumps({"ident": "id:int", "who": "name"})


def processor_function(endpoint_url: str, name: str, environment: dict[str, str]) -> None:
    """A processor function as deployed: only its environment matters to the replay."""
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}]}
    role = moto_client(endpoint_url, "iam").create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    moto_client(endpoint_url, "lambda").create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role,
        Handler="s3stagger.handlers.process_object.handler",
        Code={"ZipFile": _placeholder_code_zip()},
        Environment={"Variables": environment},
    )


@pytest.mark.parametrize(
    ("url_of", "rows_per_request"),
    [(lambda sim: sim.batch_url, "2"), (lambda sim: sim.rows_url + "?who={name}", "1")],
    ids=["field-map-batch-of-2", "field-map-url-template"],
)
def test_replay_builds_each_request_through_the_deployed_request_mapping(
    endpoint_url: str, url_of: Any, rows_per_request: str
) -> None:
    s3 = moto_client(endpoint_url, "s3")
    bucket, function = f"sink-{uuid.uuid4().hex[:8]}", f"fn-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    ref = ObjectRef("up", "normal/m.csv", version_id="v1", etag="e1")
    reader = CsvObjectReader([MAPPED_OBJECT], CsvFormat(delimiter=";"))
    header = reader.read_header()
    batch = S3FailedRowsSink(s3, bucket).open_batch(ref, "v1", header)
    offset = header.end_offset
    for row in reader.rows(header.columns):
        if row.number in MAPPED_ROWS:
            batch.add(row.number, "timed out", (), byte_offset=offset, line=row.raw)
        offset = row.next_offset
    assert batch.close() is not None

    with DownstreamSimulator(SimulatorSettings(capacity=4, seed=5)) as sim:
        environment = {
            "S3STAGGER_DOWNSTREAM_URL": url_of(sim),
            "S3STAGGER_REQUEST_FIELDS": FIELDS,
            "S3STAGGER_REQUEST_HEADERS": json.dumps({"X-Tenant": "t1"}),
            "S3STAGGER_ROWS_PER_REQUEST": rows_per_request,
            "S3STAGGER_CSV_DELIMITER": ";",
        }
        processor_function(endpoint_url, function, environment)
        mapping = ProcessorSettings.from_env(environment).api.request.mapping(
            environment["S3STAGGER_DOWNSTREAM_URL"]
        )

        def mapped(number: int) -> OutgoingRow:
            values = {"id": str(number), "name": MAPPED_ROWS[number]}
            request = mapping.map_row(SourceRow("up", ref.key, number, values))
            return OutgoingRow(number, row_idempotency_key("up", ref.key, "v1", number), request)

        async def deliver(numbers: list[int]) -> None:
            async with HttpDownstream(build_http_transports(1), mapping) as http:
                for number in numbers:
                    [delivery] = await http.deliver([mapped(number)])
                    assert delivery.status == 200, delivery.detail

        asyncio.run(deliver([3]))  # row 3 had landed: the processor's request timed out after it was applied
        common = (
            "replay-failed-rows",
            "--function",
            function,
            "--bucket",
            bucket,
            "--endpoint-url",
            endpoint_url,
        )

        first = run_cli(*common)
        assert (first["applied"] + first["already_applied"], first["failed_again"], first["refused"]) == (
            4,
            0,
            0,
        )
        stats = sim.stats()
        # the default body under row 3's key would be a 422 (same key, other body) and no row applied twice
        assert (stats.effects_applied, stats.duplicate_effects, stats.key_conflicts_422) == (4, 0, 0)

        asyncio.run(deliver(list(MAPPED_ROWS)))  # the mapped bodies again: each a replay, none a conflict
        stats = sim.stats()
        assert (stats.effects_applied, stats.key_conflicts_422, stats.duplicate_deliveries) == (4, 0, 5)
        assert run_cli(*common)["rows_selected"] == 0


def test_replay_without_a_function_or_url_is_one_clear_line(endpoint_url: str) -> None:
    result = CliRunner().invoke(
        app,
        ["replay-failed-rows", "--function", "no-such-fn", "--bucket", "b", "--endpoint-url", endpoint_url],
    )
    assert result.exit_code != 0
    assert "function 'no-such-fn' not found" in result.output
