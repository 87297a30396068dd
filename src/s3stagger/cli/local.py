"""``s3stagger local up``: the local stack and the downstream simulator, kept running for you.

Prints the emulator's endpoint, the resource names and ready-to-paste commands, so the stock
``aws`` CLI, boto3 or ``s3stagger simulate``/``monitor`` can drive the pipeline; stops cleanly on
Ctrl-C or SIGTERM (or after ``--for`` seconds).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from s3stagger.cli.console import fail, stderr_console
from s3stagger.cli.downstream import latency_option
from s3stagger.errors import S3StaggerError

app = typer.Typer(help="Local mode: the whole pipeline on an embedded AWS emulator.", no_args_is_help=True)


@contextmanager
def quiet_emulator_logs(verbose: bool) -> Iterator[None]:
    """Keep the emulator's own log lines off the terminal while inside, unless ``verbose``.

    moto's Step Functions interpreter logs every caught path miss (a Choice on a missing field) and
    every state failure at ERROR; what matters of it is in the execution history and the report.
    """
    if verbose:
        yield
        return
    moto_logger = logging.getLogger("moto")
    werkzeug_logger = logging.getLogger("werkzeug")
    moto_level, werkzeug_disabled = moto_logger.level, werkzeug_logger.disabled
    moto_logger.setLevel(logging.CRITICAL)  # inherited by moto.* loggers without their own level
    werkzeug_logger.disabled = True  # not a level: the stack sets werkzeug's level when it starts
    try:
        yield
    finally:
        moto_logger.setLevel(moto_level)
        werkzeug_logger.disabled = werkzeug_disabled


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT/SIGTERM while inside (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def terraform_progress(console: Console) -> Callable[[str], None]:
    """Show what ``terraform apply`` finished (one dim line per resource) and its errors."""

    def show(line: str) -> None:
        if line.startswith(("Error", "Apply complete")) or "Creation complete" in line:
            console.print(
                f"terraform: {line.strip()}", style="dim", highlight=False, markup=False, soft_wrap=True
            )

    return show


def describe_stack(endpoint_url: str, names: dict[str, Any], downstream_url: str) -> str:
    """What `local up` prints: endpoint, names, and commands to paste."""
    bucket = names["bucket"]
    queues = names.get("queue_urls", {})
    lines = [
        f"endpoint:        {endpoint_url}",
        f"downstream rows: {downstream_url}",
        f"uploads bucket:  {bucket}   (route by key prefix: high/ or normal/)",
        f"failed rows:     s3://{names['failed_rows_bucket']}/{names['failed_rows_prefix']}",
    ]
    lines += [f"queue {priority}:{' ' * max(1, 10 - len(priority))}{url}" for priority, url in queues.items()]
    lines += [
        f"ingest DLQ:      {names['ingest_dlq_url']}",
        f"state machine:   {names['state_machine_arn']}",
        f"function:        {names['function_name']}",
        f"budget:          {names['budget_parameter']}",
        *_alerting_lines(names.get("alerting")),
        *_observability_lines(names.get("observability")),
        "",
        "try:",
        "  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1",
        f"  export AWS_ENDPOINT_URL={endpoint_url}   # boto3, the aws CLI and s3stagger honour it",
        f"  aws --endpoint-url {endpoint_url} s3 cp file.csv s3://{bucket}/normal/file.csv",
        f"  s3stagger simulate --endpoint-url {endpoint_url} --bucket {bucket} --files 10 --rows 50",
        f"  make simulate BUCKET={bucket} FILES=10 ROWS=50   # with AWS_ENDPOINT_URL exported",
        f"  s3stagger monitor --endpoint-url {endpoint_url} "
        + " ".join(f"--queue {url}" for url in queues.values())
        + f" --state-machine {names['state_machine_arn']} --function {names['function_name']}",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def _alerting_lines(alerting: dict[str, Any] | None) -> list[str]:
    if not alerting:
        return []
    return [
        f"alert queue:     {alerting['alert_queue_url']}   (DLQ {alerting['alert_dlq_url']})",
        f"alarms:          {len(alerting['alarm_names'])} evaluated locally "
        f"(periods x {alerting['time_scale']:g}: a minute lasts {60 * alerting['time_scale']:g} s)",
        f"mail (SMTP):     {alerting['mailbox']}   read it with: s3stagger mail --mbox {alerting['mailbox']}",
    ]


def _observability_lines(observability: dict[str, Any] | None) -> list[str]:
    if not observability:
        return []
    return [
        f"Splunk HEC:      {observability['splunk_hec_url']}/services/collector/event   "
        f"(token {observability['splunk_token']}); search it: s3stagger logs --object KEY",
        f"Dynatrace:       {observability['dynatrace_ingest_url']}   "
        f"(Api-Token {observability['dynatrace_token']})",
        f"telemetry:       {observability['data_dir']}",
    ]


@app.command(name="up")
def up(
    *,
    capacity: Annotated[
        int, typer.Option(min=1, max=1000, help="Simulator capacity (concurrent requests).")
    ] = 20,
    latency: Annotated[
        str, typer.Option(help="Simulator latency: fixed:SECONDS, uniform:LOW,HIGH or slow-api (5-30 s).")
    ] = "fixed:0.2",
    time_scale: Annotated[
        float, typer.Option(min=0.0001, max=100.0, help="Multiplies simulator latency.")
    ] = 1.0,
    downstream_url: Annotated[
        str | None,
        typer.Option(help="Send rows to this URL instead of starting the simulator (full rows URL)."),
    ] = None,
    schedule_interval: Annotated[
        float, typer.Option(min=0.1, max=3600, help="Seconds between scheduled dispatcher starts.")
    ] = 1.0,
    run_for: Annotated[
        float | None, typer.Option("--for", min=0.0, help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print endpoint and names as one JSON line.")
    ] = False,
    verbose: Annotated[bool, typer.Option(help="Show the emulator's own log lines.")] = False,
    mailbox: Annotated[
        Path | None, typer.Option(help="Mailbox (mbox) of the local SMTP server; `s3stagger mail` reads it.")
    ] = None,
    via_terraform: Annotated[
        bool,
        typer.Option(
            help="Build the resources by applying terraform/examples/local to the emulator (needs terraform)."
        ),
    ] = False,
) -> None:
    """Start the local stack and the downstream simulator and keep them running."""
    if downstream_url is not None and not downstream_url.startswith(("http://", "https://")):
        fail(f"--downstream-url {downstream_url!r} must start with http:// or https://", code=2)
    latency_spec = latency_option(latency)
    from s3stagger.local.alerting import LocalAlertingSettings  # noqa: PLC0415
    from s3stagger.local.downstream import DownstreamSimulator, SimulatorSettings  # noqa: PLC0415
    from s3stagger.local.observability import LocalObservabilitySettings  # noqa: PLC0415
    from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings  # noqa: PLC0415

    stop = threading.Event()
    with ExitStack() as resources, stop_on_signals(stop), quiet_emulator_logs(verbose):
        rows_url = downstream_url
        if rows_url is None:
            simulator = resources.enter_context(
                DownstreamSimulator(
                    SimulatorSettings(capacity=capacity, latency=latency_spec, time_scale=time_scale)
                )
            )
            rows_url = simulator.rows_url
        stack_settings = LocalPipelineSettings(
            downstream_url=rows_url,
            schedule_interval_s=schedule_interval,
            alerting=LocalAlertingSettings(mailbox=mailbox),
            observability=LocalObservabilitySettings(),
        )
        if via_terraform:
            from s3stagger.local.terraform_stack import TerraformPipeline  # noqa: PLC0415

            pipeline: LocalPipeline = TerraformPipeline(stack_settings, terraform_progress(stderr_console()))
        else:
            pipeline = LocalPipeline(stack_settings)
        try:
            stack = resources.enter_context(pipeline)
        except S3StaggerError as error:
            fail(str(error))
        names = stack.names.as_dict()
        if stack.alerting is not None and stack.alerting.names is not None:
            names["alerting"] = stack.alerting.names.as_dict()
        if stack.observability is not None:
            names["observability"] = stack.observability.endpoints()
        if as_json:
            typer.echo(
                json.dumps({"endpoint_url": stack.endpoint_url, "downstream_url": rows_url, "names": names})
            )
        else:
            typer.echo(describe_stack(stack.endpoint_url, names, rows_url))
        stop.wait(run_for)
    stderr_console().print("local stack stopped", highlight=False)
