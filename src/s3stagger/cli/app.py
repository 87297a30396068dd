"""The `s3stagger` command: each subcommand lives in its own module and registers itself here."""

from __future__ import annotations

import typer

from s3stagger.cli import (
    cost,
    demo,
    downstream,
    local,
    logs,
    mail,
    monitor,
    perf_test,
    redrive,
    simulate,
)
from s3stagger.cli.console import one_line_errors

app = typer.Typer(
    name="s3stagger",
    help="Staggered, concurrency-controlled processing of S3 objects: operator toolkit and local mode.",
    no_args_is_help=True,
    add_completion=False,
)


app.command(name="simulate")(simulate.simulate)
app.command(name="downstream")(downstream.downstream)
app.command(name="monitor")(monitor.monitor)
app.command(name="demo")(demo.demo)
app.command(name="logs")(logs.logs)
app.command(name="mail")(mail.mail)
app.command(name="redrive")(redrive.redrive)
app.command(name="replay-failed-rows")(redrive.replay_failed_rows)
app.command(name="perf-test")(perf_test.perf_test)
app.command(name="cost")(cost.cost)
app.add_typer(local.app, name="local")

# The one place a project error becomes one line and an exit status, for every command.
for _command in (*app.registered_commands, *local.app.registered_commands):
    if _command.callback is not None:
        _command.callback = one_line_errors(_command.callback)


@app.callback()
def _root() -> None:
    """s3stagger operator toolkit."""


def main() -> None:
    """Console-script entry point."""
    app()
