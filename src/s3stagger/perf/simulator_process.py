"""The downstream simulator in its own process (``s3stagger downstream``), so the pipeline's threads
do not starve it of the GIL; its figures are read over HTTP (``GET /stats``)."""

from __future__ import annotations

import json
import shutil
import subprocess  # nosec B404 - starts our own simulator CLI
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from s3stagger.errors import S3StaggerError
from s3stagger.local.downstream import SimulatorStats

START_TIMEOUT_S = 30.0


class SimulatorProcessError(S3StaggerError):
    """The simulator process did not start or does not answer."""


class SimulatorProcess:
    """``s3stagger downstream`` on a free loopback port; use as a context manager."""

    def __init__(self, capacity: int, latency_s: float, overload: str = "reject", seed: int = 1) -> None:
        self.capacity = capacity
        self.latency_s = latency_s
        self.overload = overload
        self.seed = seed
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    @property
    def rows_url(self) -> str:
        return f"{self.url}/rows"

    def __enter__(self) -> SimulatorProcess:
        cli = shutil.which("s3stagger", path=str(Path(sys.executable).parent)) or "s3stagger"
        command = [cli, "downstream", "--port", "0", "--capacity", str(self.capacity)]
        command += [
            "--latency",
            f"fixed:{self.latency_s}",
            "--overload",
            self.overload,
            "--seed",
            str(self.seed),
        ]
        process = subprocess.Popen(  # noqa: S603  # nosec B603 - our own CLI, arguments built here
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self._process = process
        assert process.stdout is not None  # noqa: S101  # nosec B101 - Popen with stdout=PIPE
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if line.startswith("listening on "):
                self.url = line.split("listening on ", 1)[1].strip().rstrip("/")
                return self
            if not line and process.poll() is not None:
                break
        self.__exit__(None, None, None)
        raise SimulatorProcessError("the downstream simulator process did not start")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None

    def stats(self) -> SimulatorStats:
        return fetch_stats(self.url)


def fetch_stats(base_url: str, timeout_s: float = 5.0) -> SimulatorStats:
    """``GET /stats`` of a simulator at ``base_url``."""
    with urllib.request.urlopen(f"{base_url}/stats", timeout=timeout_s) as response:  # noqa: S310  # nosec B310
        return SimulatorStats.from_dict(json.loads(response.read()))
