"""``s3stagger demo``: the whole pattern on one machine, in one command.

Starts the downstream simulator and the local stack (emulator, local Lambda runtime, provisioned
resources, scheduler), uploads generated CSV files in parallel, shows live progress, and ends with a
report (``--json``: one JSON object on stdout). Exit status: 0 when every row is applied or
accounted for (failed-row sink, DLQ) with no duplicate effect, empty DLQs and the downstream never
over its capacity; 1 when a row is missing; 3 when every row is accounted for but the run is not
clean (duplicate effects, messages left in a DLQ, or the downstream's capacity exceeded); 2 for
wrong flags.

The defaults (100 files x 50 rows; downstream capacity C = 20 at L = 200 ms, so at most
C / L = 100 rows/s; dispatcher budget 5 objects x 4 rows in flight each = 20 = C) keep the
downstream the bottleneck while the emulator's per-object orchestration stays below it: the run
takes one to two minutes on 2 cores and its utilization means something.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import botocore.exceptions
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from s3stagger.api_config import AuthMode
from s3stagger.cli.console import fail, stderr_console
from s3stagger.cli.downstream import latency_option
from s3stagger.cli.local import quiet_emulator_logs, terraform_progress
from s3stagger.errors import S3StaggerError

if TYPE_CHECKING:
    from s3stagger.cli.pipeline_report import PipelineReport
    from s3stagger.cli.pipeline_run import PipelineProgress, PipelineRunResult

EXIT_ROWS_MISSING = 1
EXIT_NOT_CLEAN = 3


def render_progress(progress: PipelineProgress) -> Table:
    """The live view: one table of where the run stands."""
    table = Table(
        title=f"s3stagger demo - {progress.elapsed_s:6.1f} s", title_justify="left", show_header=False
    )
    table.add_column("what")
    table.add_column("value", justify="right")
    queues = "  ".join(
        f"{name} {progress.queue_visible[name]} (+{progress.queue_in_flight[name]} in flight)"
        for name in progress.queue_visible
    )
    table.add_row("uploaded", f"{progress.objects_uploaded} / {progress.objects_total}")
    table.add_row("queues", queues)
    table.add_row("DLQ messages", str(progress.dlq_messages))
    table.add_row(
        "objects done",
        f"{progress.objects_done} / {progress.objects_total}"
        + (f" ({progress.objects_rejected} rejected)" if progress.objects_rejected else ""),
    )
    table.add_row("rows applied", f"{progress.rows_applied} / {progress.rows_total}")
    table.add_row(
        "downstream in flight",
        f"{progress.downstream_in_flight} / {progress.downstream_capacity}"
        f" (peak {progress.peak_downstream_concurrency})",
    )
    table.add_row("downstream 429 / 5xx", f"{progress.throttled_429} / {progress.errors_5xx}")
    table.add_row("processor invocations", str(progress.processor_invocations))
    if progress.autoscaler_budget is not None:
        table.add_row(
            "autoscaler budget / rows target",
            f"{progress.autoscaler_budget} / {progress.rows_in_flight_target}",
        )
    return table


def render_report(report: PipelineReport, result: PipelineRunResult | None = None) -> Group:
    """The end-of-run report for people."""
    table = Table(title="s3stagger demo report", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row(
        "objects complete / rejected / total",
        f"{report.objects_complete} / {report.objects_rejected} / {report.objects_total}",
    )
    table.add_row("rows applied / total", f"{report.rows_applied} / {report.rows_total}")
    table.add_row("rows in failed-row sink", f"{report.failed_rows} (+{report.rows_quarantined} quarantined)")
    table.add_row("DLQ messages (rows)", f"{report.dlq_messages} ({report.rows_in_dlq})")
    table.add_row("rows unaccounted", str(report.rows_unaccounted))
    table.add_row(
        "duplicate effects (deliveries)", f"{report.duplicate_effects} ({report.duplicate_deliveries})"
    )
    table.add_row(
        "peak downstream concurrency / capacity",
        f"{report.peak_downstream_concurrency} / {report.downstream_capacity}",
    )
    table.add_row(
        "downstream 429 rate", f"{report.throttle_rate:.1%} of {report.downstream_requests} requests"
    )
    table.add_row(
        "throughput / limit (C / L)",
        f"{report.rows_per_s:.1f} / {report.downstream_limit_rows_per_s:.1f} rows/s",
    )
    table.add_row("utilization", f"{report.utilization:.0%}")
    table.add_row("elapsed", f"{report.elapsed_s:.1f} s")
    if result is not None:
        table.add_row("processor invocations", str(result.processor_invocations))
        cost = result.sections.get("cost")
        if cost:
            top = ", ".join(
                f"{i['name']} ${i['usd']:.2f}"
                for i in sorted(cost["line_items"], key=lambda i: -i["usd"])[:2]
            )
            table.add_row(
                "cost per million objects (reference workload)",
                f"${cost['cost_per_million_objects_usd']:.2f} ({top})",
            )
    if report.ok:
        verdict = Text(
            "OK: every row applied or accounted for, no duplicate effect, DLQs empty, "
            "the downstream never over its capacity",
            style="bold green",
        )
    elif report.all_rows_accounted:
        verdict = Text(
            "NOT CLEAN: every row is accounted for, but see duplicate effects, DLQ and peak "
            "concurrency above",
            style="bold yellow",
        )
    else:
        verdict = Text(
            f"FAILED: {report.rows_unaccounted} rows are neither applied nor accounted for", style="bold red"
        )
    return Group(table, verdict)


@contextmanager
def lambda_output_to(path: Path) -> Iterator[None]:
    """Send what the in-process Lambda handlers write to stdout (their JSON log lines and EMF
    metrics, which CloudWatch Logs receives on AWS) to ``path``, at the file-descriptor level too,
    so the command's own stdout carries only its report."""
    sys.stdout.flush()
    with path.open("a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        saved_fd = os.dup(1)
        os.dup2(log.fileno(), 1)
        try:
            yield
        finally:
            log.flush()
            os.dup2(saved_fd, 1)
            os.close(saved_fd)


def sizing_note(budget: int, processor_concurrency: int, capacity: int) -> Text:
    """One line on how the run is sized against the downstream's capacity."""
    demand = budget * processor_concurrency
    line = (
        f"sizing: budget {budget} objects x {processor_concurrency} rows in flight each = {demand} "
        f"requests at most, downstream capacity {capacity}"
    )
    if demand > capacity:
        return Text(
            line + ": over capacity, expect 429s, retries and rows in the failed-row sink", style="yellow"
        )
    return Text(line, style="dim")


def exit_status(report: PipelineReport) -> int:
    """The verdict as an exit status: 0 OK; 1 rows missing (FAILED); 3 every row accounted for but
    not clean (duplicate effects, messages left in a DLQ, or the downstream over its capacity)."""
    if not report.all_rows_accounted:
        return EXIT_ROWS_MISSING
    if not report.ok:
        return EXIT_NOT_CLEAN
    return 0


class Scenario(StrEnum):
    DEFAULT = "default"
    FAILURES = "failures"


def demo(
    *,
    files: Annotated[int, typer.Option(min=1, max=100_000, help="CSV files to upload.")] = 100,
    rows: Annotated[int, typer.Option(min=0, max=1_000_000, help="Data rows per file.")] = 50,
    workers: Annotated[int, typer.Option(min=1, max=256, help="Parallel uploads.")] = 10,
    capacity: Annotated[
        int, typer.Option(min=1, max=1000, help="Downstream capacity C (concurrent requests).")
    ] = 20,
    latency: Annotated[
        str, typer.Option(help="Downstream latency L: fixed:SECONDS, uniform:LOW,HIGH or slow-api (5-30 s).")
    ] = "fixed:0.2",
    time_scale: Annotated[
        float,
        typer.Option(min=0.0001, max=100.0, help="Multiplies every downstream latency (slow-api: try 0.01)."),
    ] = 1.0,
    error_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of downstream requests answered --error-status.")
    ] = 0.0,
    error_status: Annotated[
        int,
        typer.Option(
            min=500, max=599, help="The injected answer: 503 pauses objects, another 5xx ends in the sink."
        ),
    ] = 503,
    high_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of files uploaded under high/.")
    ] = 0.1,
    budget: Annotated[
        int | None, typer.Option(min=1, max=40, help="Objects processed at once (default: budget.json).")
    ] = None,
    processor_concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=1000, help="Rows in flight per invocation (default: capacity // budget)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the generated data and the simulator.")] = 1,
    autoscale: Annotated[
        bool,
        typer.Option(
            help="Run the autoscaler every second instead of the fixed budget (ignored when --budget or "
            "--processor-concurrency pins). Off by default until it meets its targets (docs/autoscaling.md)."
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(min=1.0, help="Give up after this many seconds.")] = 600.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as one JSON object (no live view).")
    ] = False,
    verbose: Annotated[bool, typer.Option(help="Show the emulator's own log lines.")] = False,
    via_terraform: Annotated[
        bool,
        typer.Option(
            help="Build the resources by applying terraform/examples/local to the emulator (needs terraform)."
        ),
    ] = False,
    lambda_log: Annotated[
        Path | None,
        typer.Option(help="File for the processor's log lines (default: a file in the temp directory)."),
    ] = None,
    auth: Annotated[
        AuthMode,
        typer.Option(
            help="Credentials the simulated API requires, kept in the emulator's Secrets Manager and "
            "rotated once mid-run; rows are mapped by the example request hook."
        ),
    ] = AuthMode.NONE,
    scenario: Annotated[
        Scenario,
        typer.Option(
            help="failures: add poison messages, stray uploads and a downstream outage; alert by email."
        ),
    ] = Scenario.DEFAULT,
    mailbox: Annotated[
        Path | None,
        typer.Option(help="failures: the local SMTP server's mbox (default: in the temp directory)."),
    ] = None,
) -> None:
    """Run the pattern end to end on the embedded emulator and report."""
    latency_spec = latency_option(latency)
    # Imported here: it loads the emulator, which `s3stagger --help` should not wait for.
    from s3stagger.cli.pipeline_run import PipelineRunSettings, run_pipeline  # noqa: PLC0415
    from s3stagger.perf.counting import CostSection  # noqa: PLC0415

    settings = PipelineRunSettings(
        files=files,
        rows=rows,
        workers=workers,
        high_priority_share=high_share,
        capacity=capacity,
        latency=latency_spec,
        time_scale=time_scale,
        error_rate=error_rate,
        error_status=error_status,
        seed=seed,
        timeout_s=timeout,
        concurrency_budget=budget,
        processor_max_concurrency=processor_concurrency,
        autoscale_interval_s=1.0 if autoscale and budget is None and processor_concurrency is None else None,
        auth=auth,
        via_terraform=via_terraform,
    )
    err = stderr_console()
    log_path = lambda_log or Path(tempfile.gettempdir()) / f"s3stagger-demo-{os.getpid()}.log"
    if scenario is Scenario.FAILURES:
        from s3stagger.cli import demo_failures  # noqa: PLC0415

        mbox = mailbox or Path(tempfile.gettempdir()) / f"s3stagger-demo-{os.getpid()}.mbox"

        def run(on_progress: Any = None) -> PipelineRunResult:
            scenario_settings = demo_failures.FailureScenario()
            return demo_failures.run_failures(
                settings, scenario_settings, mbox, log_path, on_progress, collectors=[CostSection(log_path)]
            )
    else:
        from s3stagger.cli.observability_report import ObservabilityCollector  # noqa: PLC0415
        from s3stagger.local.observability import LocalObservabilitySettings  # noqa: PLC0415

        settings = replace(
            settings,
            pipeline_options={**settings.pipeline_options, "observability": LocalObservabilitySettings()},
        )

        def run(on_progress: Any = None) -> PipelineRunResult:
            return run_pipeline(
                settings,
                on_progress,
                collectors=[CostSection(log_path), ObservabilityCollector()],
                on_terraform_output=terraform_progress(err),
            )

    try:
        if as_json:
            with quiet_emulator_logs(verbose), lambda_output_to(log_path):
                result = run()
        else:
            err.print(
                f"demo: {files} files x {rows} rows, {workers} upload workers; "
                f"downstream capacity {capacity}, latency {latency_spec.describe()} x {time_scale:g}",
                highlight=False,
            )
            err.print(
                sizing_note(settings.effective_budget(), settings.sized_processor_concurrency(), capacity)
            )
            with (
                quiet_emulator_logs(verbose),
                lambda_output_to(log_path),
                Live(console=err, refresh_per_second=4, transient=False) as live,
            ):
                result = run(lambda progress: live.update(render_progress(progress)))
    except (
        S3StaggerError,
        botocore.exceptions.BotoCoreError,
        botocore.exceptions.ClientError,
        RuntimeError,
        OSError,
    ) as error:
        fail(f"the local pipeline failed: {type(error).__name__}: {error} (processor logs: {log_path})")
    report = result.report
    if as_json:
        payload: dict[str, Any] = report.as_dict() | {
            "processor_invocations": result.processor_invocations,
            "timed_out": result.timed_out,
            "concurrency_budget": settings.effective_budget(),
            "processor_concurrency": settings.sized_processor_concurrency(),
            "sections": result.sections,
        }
        if scenario is Scenario.FAILURES:
            payload |= demo_failures.alerting_figures(result)
        typer.echo(json.dumps(payload))
    else:
        err.print()
        Console().print(render_report(report, result))
        if scenario is Scenario.FAILURES:
            Console().print(
                demo_failures.render_alerting(demo_failures.alerting_figures(result)), highlight=False
            )
        from s3stagger.cli.observability_report import print_observability  # noqa: PLC0415

        print_observability(result.sections, Console())
        err.print(f"processor logs (JSON lines and EMF metrics): {log_path}", highlight=False)
    if scenario is Scenario.FAILURES:
        raise typer.Exit(
            code=demo_failures.failures_exit_status(report, demo_failures.alerting_figures(result))
        )
    raise typer.Exit(code=exit_status(report))
