"""``s3stagger redrive`` and ``s3stagger replay-failed-rows``: get failed work out of where it waits.

* ``redrive --from dlqs``: each priority's DLQ back to its queue. On AWS with no filter, no limit
  and no dry run it is SQS's own ``StartMessageMoveTask`` (``--rate``; ``--status`` lists the tasks
  with ``ListMessageMoveTasks``, ``--cancel`` stops one); otherwise — the emulator, which lacks the
  API, or a filtered, limited or dry redrive — the message-by-message mover
  (:class:`~s3stagger.adapters.dlq_redrive.LocalMessageMoveTask`) with the same semantics.
* ``redrive --from ingest``: each event in the ingest DLQ goes to the queue its key routes to
  (``event_rules.json``), or stays, reported as unroutable with the reason.
* ``replay-failed-rows``: the failed-rows sink's rows are sent again with their original
  Idempotency-Key (:mod:`s3stagger.adapters.failed_rows_replay`).

Every mode takes ``--dry-run``, ``--key-prefix``, ``--reason``, ``--min-age-s`` and ``--limit``, and
is safe to run twice: what moved or was applied is gone from where it waited.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import botocore.exceptions
import typer
from rich.console import Console
from rich.table import Table

from s3stagger.adapters.api_setup import build_api_setup
from s3stagger.adapters.dlq_redrive import (
    Destination,
    LocalMessageMoveTask,
    RedriveReport,
    SqsMessageMoveTasks,
)
from s3stagger.adapters.downstream_client import HttpDownstream, build_http_transports
from s3stagger.adapters.execution_redrive import ExecutionRedrive
from s3stagger.adapters.failed_rows_replay import FailedRowsReplay, ReplayOptions, ReplayTarget
from s3stagger.cli.aws_clients import AwsTarget, error_code
from s3stagger.config import ProcessorSettings
from s3stagger.definitions.model import DEFAULT_NAME_PREFIX, Definitions
from s3stagger.domain.redrive import DeadLetter, RedriveFilter, Unroutable, route_by_key
from s3stagger.env_settings import PREFIX
from s3stagger.errors import S3StaggerError
from s3stagger.processor import csv_format

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient


class RedriveSource(StrEnum):
    DLQS = "dlqs"
    INGEST = "ingest"
    EXECUTIONS = "executions"
    ALL = "all"
    """The DLQs and the ingest DLQ (executions only when asked: a Standard redrive restarts work)."""


class RedriveError(S3StaggerError):
    """A redrive that cannot start (a queue missing, a move task refused)."""


@dataclass(frozen=True)
class PipelineQueues:
    """The queues of one deployment, by the names Terraform and local mode give them."""

    queue_urls: dict[str, str]
    dlq_urls: dict[str, str]
    ingest_dlq_url: str
    key_prefixes: dict[str, str]
    object_suffix: str

    @classmethod
    def find(cls, sqs: SQSClient, definitions: Definitions, name_prefix: str) -> PipelineQueues:
        def url(name: str) -> str:
            try:
                return sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except botocore.exceptions.ClientError as error:
                raise RedriveError(
                    f"queue {name!r} not found ({error_code(error)}): is --name-prefix {name_prefix!r} right?"
                ) from None

        priorities = definitions.priorities
        return cls(
            queue_urls={p: url(f"{name_prefix}-{p}") for p in priorities},
            dlq_urls={p: url(f"{name_prefix}-{p}-dlq") for p in priorities},
            ingest_dlq_url=url(f"{name_prefix}-{definitions.queues.ingest_dlq.name_suffix}"),
            key_prefixes={route.priority: route.key_prefix for route in definitions.event_rules.routes},
            object_suffix=definitions.event_rules.object_suffix,
        )

    def route(self, letter: DeadLetter) -> str | Unroutable:
        priority = route_by_key(letter.key, self.key_prefixes, self.object_suffix)
        return priority if isinstance(priority, Unroutable) else self.queue_urls[priority]


def redrive_queues(
    sqs: SQSClient,
    queues: PipelineQueues,
    source: RedriveSource,
    selection: RedriveFilter,
    *,
    limit: int | None,
    dry_run: bool,
    native_move: SqsMessageMoveTasks | None = None,
    rate_per_s: int | None = None,
) -> dict[str, Any]:
    """Redrive ``source``; returns the reports by queue (and the move tasks started, if any)."""
    mover = LocalMessageMoveTask(sqs)
    reports: dict[str, Any] = {}
    if source in (RedriveSource.DLQS, RedriveSource.ALL):
        for priority, dlq_url in queues.dlq_urls.items():
            target = queues.queue_urls[priority]
            if native_move is not None and not (selection.narrows or limit or dry_run):
                reports[f"{priority}-dlq"] = {"move_task": native_move.start(dlq_url, target, rate_per_s)}
                continue
            reports[f"{priority}-dlq"] = mover.run(
                dlq_url, _to(target), selection, limit=limit, dry_run=dry_run
            )
    if source in (RedriveSource.INGEST, RedriveSource.ALL):
        reports["ingest-dlq"] = mover.run(
            queues.ingest_dlq_url, queues.route, selection, limit=limit, dry_run=dry_run
        )
    return reports


def dispatcher_arn(sfn: SFNClient, name: str) -> str:
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == name:
                return machine["stateMachineArn"]
    raise RedriveError(f"state machine {name!r} not found: is --name-prefix right?")


def _to(queue_url: str) -> Destination:
    return lambda _letter: queue_url


def _print_reports(reports: dict[str, Any], as_json: bool) -> None:
    data = {name: r.as_dict() if isinstance(r, RedriveReport) else r for name, r in reports.items()}
    if as_json:
        typer.echo(json.dumps(data, sort_keys=True))
        return
    table = Table(title="redrive")
    for column in (
        "queue",
        "moved" if not _any_dry(reports) else "would move",
        "left (filter)",
        "unroutable",
        "why",
    ):
        table.add_column(column)
    for name, report in reports.items():
        if not isinstance(report, RedriveReport):
            table.add_row(name, f"move task {report['move_task']}", "-", "-", "SQS StartMessageMoveTask")
            continue
        why = "; ".join(
            f"{n} x {reason}" for reason, n in (report.reasons + report.unroutable_reasons).items()
        )
        table.add_row(
            name, str(report.moved), str(report.skipped_by_filter), str(report.unroutable), why or "-"
        )
    Console().print(table)


def _any_dry(reports: dict[str, Any]) -> bool:
    return any(isinstance(r, RedriveReport) and r.dry_run for r in reports.values())


Endpoint = Annotated[str | None, typer.Option(help="Emulator endpoint (`s3stagger local up`); omit for AWS.")]
Region = Annotated[str | None, typer.Option(help="AWS region (default: from the environment).")]
NamePrefix = Annotated[str, typer.Option(help="The deployment's name prefix (queue names start with it).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Say what would move, and why, without moving it.")]
KeyPrefix = Annotated[str, typer.Option(help="Only objects whose key starts with this.")]
Reason = Annotated[
    str, typer.Option(help="Only messages or rows whose recorded reason contains these words.")
]
MinAge = Annotated[float, typer.Option(min=0, help="Only what has waited at least this many seconds.")]
Limit = Annotated[int | None, typer.Option(min=1, help="Move or send at most this many.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def redrive(
    *,
    source: Annotated[
        RedriveSource,
        typer.Option(
            "--from",
            help="dlqs: priority DLQs; ingest: the ingest DLQ; all: both; executions: failed dispatcher "
            "executions (Standard: RedriveExecution; Express: one new execution).",
        ),
    ] = RedriveSource.ALL,
    name_prefix: NamePrefix = DEFAULT_NAME_PREFIX,
    endpoint_url: Endpoint = None,
    region: Region = None,
    dry_run: DryRun = False,
    key_prefix: KeyPrefix = "",
    reason: Reason = "",
    min_age_s: MinAge = 0.0,
    limit: Limit = None,
    rate: Annotated[
        int | None, typer.Option(min=1, max=500, help="AWS move tasks: messages per second (default: SQS's).")
    ] = None,
    status: Annotated[bool, typer.Option("--status", help="AWS: list the DLQs' message move tasks.")] = False,
    cancel: Annotated[str | None, typer.Option(help="AWS: cancel the move task with this handle.")] = None,
    as_json: AsJson = False,
) -> None:
    """Move dead-lettered messages back to work: priority DLQs to their queues, ingest DLQ by route."""
    aws = AwsTarget(endpoint_url=endpoint_url, region=region)
    sqs = aws.sqs()
    native = SqsMessageMoveTasks(sqs) if aws.endpoint_url is None else None
    if cancel is not None or status:
        if native is None:
            raise RedriveError(
                "--status and --cancel are for SQS move tasks on AWS; the emulator's redrive is done at once"
            )
        _move_task_status(native, sqs, name_prefix, cancel, as_json)
        return
    definitions = Definitions.load(name_prefix=name_prefix)
    if source is RedriveSource.EXECUTIONS:
        arn = dispatcher_arn(
            aws.stepfunctions(), f"{name_prefix}-{definitions.dispatcher.state_machine_name_suffix}"
        )
        report = ExecutionRedrive(aws.stepfunctions(), arn).run(
            min_age_s=min_age_s, limit=limit, dry_run=dry_run
        )
        typer.echo(json.dumps({"executions": report.as_dict()}, sort_keys=True))
        return
    queues = PipelineQueues.find(sqs, definitions, name_prefix)
    selection = RedriveFilter(key_prefix, reason, min_age_s)
    reports = redrive_queues(
        sqs, queues, source, selection, limit=limit, dry_run=dry_run, native_move=native, rate_per_s=rate
    )
    _print_reports(reports, as_json)


def _move_task_status(
    native: SqsMessageMoveTasks, sqs: SQSClient, name_prefix: str, cancel: str | None, as_json: bool
) -> None:
    if cancel is not None:
        moved = native.cancel(cancel)
        typer.echo(
            json.dumps({"cancelled": cancel, "moved": moved})
            if as_json
            else f"cancelled {cancel}: {moved} moved"
        )
        return
    queues = PipelineQueues.find(sqs, Definitions.load(name_prefix=name_prefix), name_prefix)
    tasks = {p: [t.__dict__ for t in native.list(url)] for p, url in queues.dlq_urls.items()}
    typer.echo(json.dumps(tasks, sort_keys=True) if as_json else json.dumps(tasks, indent=2))


def deployment_settings(
    aws: AwsTarget, function_name: str, downstream_url: str | None
) -> tuple[ProcessorSettings, str | None]:
    """The processor's settings as deployed — its function's ``S3STAGGER_*`` environment: URL,
    request mapping, authentication, TLS, CSV delimiter — with ``downstream_url`` over its URL; and
    a warning line when the function is not found and this shell's ``S3STAGGER_*`` variables stand in."""
    try:
        configuration = aws.lambda_().get_function_configuration(FunctionName=function_name)
        environment = dict(configuration.get("Environment", {}).get("Variables", {}))
        warning = None
    except botocore.exceptions.ClientError as error:
        if downstream_url is None:
            raise RedriveError(
                f"function {function_name!r} not found ({error_code(error)}): pass --function (the "
                "processor whose request mapping the rows were sent with) or --downstream-url"
            ) from None
        environment = {k: v for k, v in os.environ.items() if k.startswith(PREFIX)}
        warning = (
            f"warning: function {function_name!r} not found: the request mapping comes from this "
            f"shell's {PREFIX}* variables"
        )
    if downstream_url is not None:
        environment[f"{PREFIX}DOWNSTREAM_URL"] = downstream_url
    return ProcessorSettings.from_env(environment), warning


def replay_failed_rows(
    *,
    downstream_url: Annotated[
        str | None,
        typer.Option(help="Send to this URL (template) instead of the processor's S3STAGGER_DOWNSTREAM_URL."),
    ] = None,
    function: Annotated[
        str | None,
        typer.Option(
            help="The processor function whose settings (request mapping, auth, TLS) the rows are sent "
            "with (default: <name-prefix>-<processor.json suffix>)."
        ),
    ] = None,
    bucket: Annotated[
        str | None, typer.Option(help="Failed-rows bucket (default: <name-prefix>-<storage.json suffix>).")
    ] = None,
    prefix: Annotated[str, typer.Option(help="Failed-rows prefix.")] = "failed-rows/",
    name_prefix: NamePrefix = DEFAULT_NAME_PREFIX,
    endpoint_url: Endpoint = None,
    region: Region = None,
    dry_run: DryRun = False,
    key_prefix: KeyPrefix = "",
    reason: Reason = "",
    min_age_s: MinAge = 0.0,
    limit: Limit = None,
    source_encoding: Annotated[
        str | None, typer.Option(help="Decode the rows as this encoding (e.g. latin-1) instead of UTF-8.")
    ] = None,
    read_timeout_s: Annotated[float, typer.Option(min=0.01, help="Read timeout of each request.")] = 30.0,
    as_json: AsJson = False,
) -> None:
    """Send recorded failed rows again, as the processor sent them (its request mapping, its
    authentication) with their original Idempotency-Key: never applied twice."""
    aws = AwsTarget(endpoint_url=endpoint_url, region=region)
    definitions = Definitions.load()
    function_name = function or f"{name_prefix}-{definitions.processor.function_name_suffix}"
    settings, warning = deployment_settings(aws, function_name, downstream_url)
    if warning is not None:
        typer.echo(warning, err=True)
    target = ReplayTarget(bucket or definitions.bucket_names(name_prefix)["failed_rows"], prefix)
    options = ReplayOptions(RedriveFilter(key_prefix, reason, min_age_s), limit, dry_run, source_encoding)
    session = aws.session()
    setup = build_api_setup(
        settings,
        lambda service: session.client(service, endpoint_url=aws.endpoint_url),  # type: ignore[call-overload]
        session.get_credentials,
    )

    async def replay() -> dict[str, Any]:
        transports = build_http_transports(1, setup.tls())
        async with HttpDownstream(
            transports, setup.mapping, settings.connect_timeout_s, read_timeout_s, auth=setup.auth
        ) as http:
            replay = FailedRowsReplay(aws.s3(), target, http, csv_format(settings), setup.mapping)
            return (await replay.run(options)).as_dict()

    report = asyncio.run(replay())
    typer.echo(json.dumps(report, sort_keys=True) if as_json else json.dumps(report, indent=2))
