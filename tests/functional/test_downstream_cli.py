"""``s3stagger downstream``: in its own process (as a benchmark runs it) and through typer's runner."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO

import httpx
import pytest
from typer.testing import CliRunner

from s3stagger.cli.app import app

LISTENING = re.compile(r"^listening on (http://127\.0\.0\.1:(\d+))$")
WAIT_LIMIT_S = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def read_line(stream: IO[str] | None, timeout: float) -> str:
    """One line from a pipe, or fail after ``timeout`` seconds instead of hanging."""
    lines: list[str] = []
    assert stream is not None
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines:
        raise AssertionError("no line from the simulator process in time")
    return lines[0].rstrip("\n")


def test_the_command_runs_in_its_own_process_and_stops_on_sigterm() -> None:
    command = [
        sys.executable,
        "-c",
        "from s3stagger.cli.app import main; main()",
        "downstream",
        "--port",
        "0",
        "--capacity",
        "3",
        "--latency",
        "uniform:0.001,0.002",
        "--seed",
        "1",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
    try:
        match = LISTENING.match(read_line(process.stdout, WAIT_LIMIT_S))
        assert match is not None
        base_url = match.group(1)
        with httpx.Client(timeout=WAIT_LIMIT_S) as client:
            applied = client.post(f"{base_url}/rows", json={"id": 1}, headers={"Idempotency-Key": "cli-1"})
            stats = client.get(f"{base_url}/stats").json()
        assert applied.status_code == 200
        assert (stats["requests"], stats["effects_applied"], stats["capacity"]) == (1, 1, 3)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=WAIT_LIMIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    final = json.loads(out.strip().splitlines()[-1])
    assert final["effects_applied"] == 1
    assert "rows at http://127.0.0.1:" in err


def test_the_command_prints_its_url_and_final_figures_when_its_duration_ends() -> None:
    options = ["--duration", "0.2", "--overload", "QUEUE", "--time-scale", "0.5", "--error-rate", "0.1"]
    options += ["--seed", "3", "--retry-after", "2", "--retry-after-http-date", "--latency", "slow-api"]
    result = CliRunner().invoke(app, ["downstream", "--port", "0", *options])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert LISTENING.match(lines[0])
    final = json.loads(lines[-1])
    assert (final["overload"], final["capacity"], final["time_scale"], final["requests"]) == (
        "queue",
        50,
        0.5,
        0,
    )
    assert "latency uniform:5.0,30.0 x 0.5" in " ".join(result.output.split())


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_foreground_command_and_restores_signal_handlers(
    stop_signal: signal.Signals,
) -> None:
    port = free_port()
    before = signal.getsignal(stop_signal)
    seen: dict[str, int] = {}

    def drive_then_terminate() -> None:
        deadline = time.monotonic() + WAIT_LIMIT_S
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                try:
                    client.post(f"http://127.0.0.1:{port}/rows", json={}, headers={"Idempotency-Key": "k"})
                    seen["requests"] = client.get(f"http://127.0.0.1:{port}/stats").json()["requests"]
                    break
                except httpx.TransportError:
                    time.sleep(0.02)
        if seen:  # only while the command (and so its handler) is surely running
            os.kill(os.getpid(), stop_signal)

    driver = threading.Thread(target=drive_then_terminate)
    driver.start()
    options = [
        "--port",
        str(port),
        "--latency",
        "fixed:0",
        "--capacity-schedule",
        "100:1",
        "--duration",
        "30",
    ]
    result = CliRunner().invoke(app, ["downstream", *options])
    driver.join(WAIT_LIMIT_S)
    assert result.exit_code == 0, result.output
    assert seen == {"requests": 1}
    assert json.loads(result.stdout.strip().splitlines()[-1])["effects_applied"] == 1
    assert signal.getsignal(stop_signal) is before


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--latency", "fast"],
            "invalid --latency: latency 'fast' is not understood; expected fixed:SECONDS",
        ),
        (["--latency", "uniform:0.3,0.1"], "invalid --latency"),
        (["--capacity-schedule", "30-10"], "invalid --capacity-schedule: capacity schedule entry '30-10'"),
        (["--overload", "drop"], "invalid --overload: 'drop' is not one of: reject, queue"),
        (["--time-scale", "inf"], "invalid option: time scale must be a finite number >= 0, got inf"),
    ],
)
def test_bad_options_exit_2_with_the_expected_form(options: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["downstream", "--port", "0", *options])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "listening on" not in result.output


def test_out_of_range_numbers_are_refused_by_the_option_parser() -> None:
    result = CliRunner().invoke(app, ["downstream", "--error-rate", "1.5"])
    assert result.exit_code == 2
    assert "--error-rate" in result.output


def test_a_busy_port_is_reported_with_a_hint() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["downstream", "--port", str(port)])
    assert result.exit_code == 1
    assert "could not listen" in result.output
    assert "--port" in result.output
