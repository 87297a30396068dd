"""``s3stagger downstream``: run the downstream API simulator in the foreground.

Prints ``listening on http://127.0.0.1:PORT`` (one line on stdout, for scripts and benchmarks to
parse), serves until Ctrl-C, SIGTERM or ``--duration`` ends it, then prints the final figures as one
JSON line on stdout.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Annotated, TypeVar

import typer

from s3stagger.cli.console import BadOptionError, fail, stderr_console
from s3stagger.local.downstream import DownstreamSimulator
from s3stagger.local.downstream.settings import (
    DEPRECATED_LATENCY_NAMES,
    LATENCY_FORMS,
    OVERLOAD_MODES,
    SCHEDULE_FORM,
    LatencySpec,
    OverloadMode,
    SimulatorSettings,
    SimulatorSettingsError,
    parse_capacity_schedule,
)

_POLL_S = 0.5
T = TypeVar("T")


def _option(name: str, parse: Callable[[str], T], text: str) -> T:
    """Parse one option's text, or exit 2 with the option's name and the expected form."""
    try:
        return parse(text)
    except SimulatorSettingsError as error:
        fail(f"invalid {name}: {error}", code=2)


def latency_option(text: str) -> LatencySpec:
    """The ``--latency`` value of any command; a deprecated name works and says its new one."""
    replacement = DEPRECATED_LATENCY_NAMES.get(text.strip().lower())
    if replacement is not None:
        stderr_console().print(
            f"warning: --latency {text.strip()} is deprecated; use --latency {replacement}", highlight=False
        )
    try:
        return LatencySpec.parse(text)
    except SimulatorSettingsError as error:
        raise BadOptionError(f"invalid --latency: {error}") from None


def _overload(text: str) -> OverloadMode:
    for mode in OVERLOAD_MODES:
        if text.strip().lower() == mode:
            return mode
    raise SimulatorSettingsError(f"{text!r} is not one of: {', '.join(OVERLOAD_MODES)}")


def downstream(
    *,
    port: Annotated[
        int, typer.Option(help="TCP port on 127.0.0.1; 0 picks a free one.", min=0, max=65535)
    ] = 8080,
    capacity: Annotated[int, typer.Option(help="Requests in service at once.", min=1)] = 50,
    latency: Annotated[
        str, typer.Option(help=f"Service time per request: {LATENCY_FORMS}.", metavar="SPEC")
    ] = "fixed:0.2",
    time_scale: Annotated[
        float,
        typer.Option(
            help="Multiplies latency and Retry-After (0.01: slow-api's 5-30 s become 50-300 ms).", min=0.0
        ),
    ] = 1.0,
    overload: Annotated[
        str,
        typer.Option(
            help="Over capacity: reject (429 + Retry-After) or queue (wait for a slot).",
            metavar="reject|queue",
        ),
    ] = "reject",
    error_rate: Annotated[
        float, typer.Option(help="Share of admitted rows answered 503 instead of applied.", min=0.0, max=1.0)
    ] = 0.0,
    capacity_schedule: Annotated[
        str,
        typer.Option(
            help=f"Capacity changes in wall-clock seconds since start: {SCHEDULE_FORM}.", metavar="AT:CAP,..."
        ),
    ] = "",
    seed: Annotated[
        int | None, typer.Option(help="Random seed of the draws (latency, errors), for reproducible runs.")
    ] = None,
    retry_after: Annotated[
        float | None,
        typer.Option(
            help="Retry-After advised on 429/503, in seconds before scaling (default: the mean latency).",
            min=0.0,
        ),
    ] = None,
    retry_after_http_date: Annotated[
        bool,
        typer.Option("--retry-after-http-date", help="Send Retry-After as an HTTP-date instead of seconds."),
    ] = False,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until stopped).", min=0.0)
    ] = None,
) -> None:
    """Run the downstream API simulator on 127.0.0.1 until Ctrl-C or SIGTERM."""
    try:
        settings = SimulatorSettings(
            capacity=capacity,
            latency=latency_option(latency),
            overload=_option("--overload", _overload, overload),
            error_rate=error_rate,
            time_scale=time_scale,
            seed=seed,
            capacity_schedule=_option("--capacity-schedule", parse_capacity_schedule, capacity_schedule),
            retry_after_s=retry_after,
            retry_after_http_date=retry_after_http_date,
            port=port,
        )
    except SimulatorSettingsError as error:
        fail(f"invalid option: {error}", code=2)

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    simulator = DownstreamSimulator(settings)
    try:
        try:
            simulator.start()
        except OSError as error:
            hint = " (choose another --port, or 0 for any free port)" if port else ""
            fail(f"{error}{hint}")
        typer.echo(f"listening on {simulator.url}", nl=True)
        stderr_console().print(
            f"downstream simulator: rows at {simulator.rows_url}, stats at {simulator.url}/stats; "
            f"capacity {settings.capacity}, latency {settings.latency.describe()} x {settings.time_scale:g}, "
            f"overload {settings.overload}, error rate {settings.error_rate:g}",
            soft_wrap=True,
            highlight=False,
        )
        deadline = None if duration is None else time.monotonic() + duration
        while not stop_requested.is_set():
            remaining = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
            if remaining <= 0:
                break
            stop_requested.wait(remaining)
            if not simulator.running:
                fail("the downstream simulator stopped unexpectedly")
        typer.echo(json.dumps(simulator.stats().as_dict()))
    finally:
        simulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
