"""``s3stagger perf-test``: named scenarios x dispatchers side by side, a report folder, one JSON line.

Locally (the default) every scenario runs through every dispatcher on a fresh local pipeline and a
fresh downstream simulator in its own process; with ``--bucket/--queue/--state-machine/--function``
it drives an existing deployment (AWS, or ``s3stagger local up``) instead. Either way it writes
``report.json``, ``report.md`` and PNG plots into the report folder and prints one JSON object last.
See docs/performance.md.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from s3stagger.cli.console import fail, stderr_console
from s3stagger.errors import S3StaggerError

if TYPE_CHECKING:
    from s3stagger.domain.perf_metrics import Sample
    from s3stagger.perf.report import RunOutcome


def default_report_dir() -> Path:
    return Path("perf-report") / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def render_live(
    title: str, sample: Sample | None, done: int, total: int, finished: list[RunOutcome]
) -> Group:
    """The live view: the run in progress and a line per finished run."""
    table = Table(title=title, show_header=False, box=None)
    if sample is not None:
        table.add_row("elapsed", f"{sample.t:.1f} s")
        table.add_row("objects done", f"{done} / {total}")
        table.add_row("rows applied", str(sample.rows_applied))
        in_service = sample.downstream_in_flight + sample.downstream_queued
        table.add_row("downstream in service / C", f"{in_service} / {sample.capacity}")
        table.add_row("429 answers", str(sample.throttled_429))
        table.add_row("invocations in flight", str(sample.invocations_in_flight))
        visible = ", ".join(f"{k} {v}" for k, v in sample.queue_visible.items())
        table.add_row("queue visible", visible)
    lines = [
        Text(
            f"{o.scenario:<13} {o.dispatcher:<12} utilization {o.figures()['utilization']}  "
            f"429 rate {o.figures()['rate_429']}  rows unaccounted {o.report['rows_unaccounted']}",
            style="dim",
        )
        for o in finished
    ]
    return Group(*lines, table)


def perf_test(
    *,
    quick: Annotated[
        bool, typer.Option(help="CI-size workloads; only the demo scenario unless --scenario names more.")
    ] = False,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            help="Scenario to run (repeat; default: all). The autoscaler's (one-object, unknown-capacity, "
            "capacity-step, queue-mode, priority-wait) run once each, v2 Express with the autoscaler."
        ),
    ] = None,
    dispatcher: Annotated[
        list[str] | None,
        typer.Option(
            help="Dispatcher to compare (repeat; default: v2-express, v2-standard, no-stagger, sqs-mapping)."
        ),
    ] = None,
    report_dir: Annotated[
        Path | None, typer.Option(help="Report folder (default: perf-report/<UTC time>).")
    ] = None,
    bucket: Annotated[str | None, typer.Option(help="Existing deployment: the source bucket.")] = None,
    queue: Annotated[
        str | None, typer.Option(help="Existing deployment: a priority queue name or URL.")
    ] = None,
    state_machine: Annotated[
        str | None, typer.Option(help="Existing deployment: the dispatcher ARN.")
    ] = None,
    function: Annotated[str | None, typer.Option(help="Existing deployment: the processor function.")] = None,
    endpoint_url: Annotated[
        str | None, typer.Option(help="Existing deployment: AWS endpoint (local up).")
    ] = None,
    downstream_url: Annotated[
        str | None,
        typer.Option(help="Existing deployment: the simulator's base URL, when it is the downstream."),
    ] = None,
    files: Annotated[
        int, typer.Option(min=1, max=100_000, help="Existing deployment: files to upload.")
    ] = 20,
    rows: Annotated[int, typer.Option(min=1, max=1_000_000, help="Existing deployment: rows per file.")] = 50,
    timeout: Annotated[
        float, typer.Option(min=1.0, help="Existing deployment: give up after this long.")
    ] = 600.0,
    verbose: Annotated[bool, typer.Option(help="Show the emulator's own log lines.")] = False,
) -> None:
    """Compare dispatchers over named scenarios (or measure an existing deployment); write a report."""
    target = report_dir or default_report_dir()
    existing = [bucket, queue, state_machine, function]
    if any(existing):
        if not all(existing):
            fail("an existing deployment needs --bucket, --queue, --state-machine and --function together", 2)
        from s3stagger.perf.existing import ExistingDeployment, run_existing  # noqa: PLC0415 - boto3 on demand

        deployment = ExistingDeployment(
            bucket=str(bucket),
            queue=str(queue),
            state_machine_arn=str(state_machine),
            function_name=str(function),
            endpoint_url=endpoint_url,
            downstream_url=downstream_url,
        )
        try:
            line = run_existing(
                deployment,
                files=files,
                rows=rows,
                timeout_s=timeout,
                report_dir=target,
                console=stderr_console(),
            )
        except S3StaggerError as error:
            fail(str(error))
        typer.echo(json.dumps(line))
        return
    line = run_local(quick, scenario, dispatcher, target, verbose)
    typer.echo(json.dumps(line))
    if line["summary"]["rows_unaccounted"] or line["summary"]["duplicate_effects"]:
        raise typer.Exit(code=1)


def run_local(
    quick: bool,
    scenario_names: list[str] | None,
    dispatcher_names: list[str] | None,
    target: Path,
    verbose: bool,
) -> dict[str, Any]:
    """Every selected scenario through every selected dispatcher; writes the report, returns the line."""
    # Imported here: they load the emulator, which `s3stagger --help` should not wait for.
    from s3stagger.cli.demo import lambda_output_to  # noqa: PLC0415
    from s3stagger.cli.local import quiet_emulator_logs  # noqa: PLC0415
    from s3stagger.perf import autoscale  # noqa: PLC0415
    from s3stagger.perf import scenarios as catalogue  # noqa: PLC0415
    from s3stagger.perf.counting import dispatcher_type_setting  # noqa: PLC0415
    from s3stagger.perf.report import write_report  # noqa: PLC0415
    from s3stagger.perf.runner import run_scenario  # noqa: PLC0415

    if quick and not scenario_names:
        scenario_names = list(catalogue.QUICK_SCENARIOS)
    autoscale_names, scenario_names = autoscale.chosen(scenario_names)  # issue 9's, run apart
    try:
        chosen = [] if scenario_names == [] else catalogue.select(scenario_names, catalogue.scenarios(quick))
        dispatchers = catalogue.select_dispatchers(dispatcher_names)
    except S3StaggerError as error:
        fail(str(error), 2)
    err = stderr_console()
    target.mkdir(parents=True, exist_ok=True)
    log_path = target / "functions.log"
    finished: list[RunOutcome] = []
    runs = [(s, d) for s in chosen for d in dispatchers]
    err.print(
        f"perf-test: {len(chosen)} scenario(s) x {len(dispatchers)} dispatcher(s) -> {target}",
        highlight=False,
    )
    started = time.monotonic()
    with (
        quiet_emulator_logs(verbose),
        lambda_output_to(log_path),
        Live(console=err, refresh_per_second=4, transient=True) as live,
    ):
        for index, (scenario, dispatcher) in enumerate(runs, start=1):
            title = f"[{index}/{len(runs)}] {scenario.name} / {dispatcher}"
            live.update(render_live(title, None, 0, scenario.objects, finished))

            def follow(sample: Sample, done: int, total: int, title: str = title) -> None:
                live.update(render_live(title, sample, done, total, finished))

            outcome = run_scenario(scenario, dispatcher, lambda: log_path.stat().st_size, follow)
            finished.append(outcome)
            with (target / "runs.jsonl").open("a", encoding="utf-8") as runs_so_far:  # readable while it runs
                runs_so_far.write(
                    json.dumps({"scenario": scenario.name, "dispatcher": dispatcher, **outcome.figures()})
                )
                runs_so_far.write("\n")
    for outcome in finished:
        err.print(render_live("", None, 0, 0, [outcome]))
    context = {
        "mode": "local",
        "quick": quick,
        "wall_s": round(time.monotonic() - started, 1),
        "default_dispatcher_type": dispatcher_type_setting(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "scenarios": {s.name: s.description for s in chosen},
        "functions_log": str(log_path),
    }
    line: dict[str, Any] = (
        write_report(finished, target, context) if finished else {"scenarios": {}, "summary": {}}
    )
    if autoscale_names:  # each a local pipeline with the autoscaler, v2 Express (perf/autoscale.py)
        with quiet_emulator_logs(verbose), lambda_output_to(log_path):
            figures = autoscale.run_autoscale_scenarios(autoscale_names, target, err)
        line = autoscale.add_to_report({**line, "report_dir": str(target)}, figures, target)
    return line
