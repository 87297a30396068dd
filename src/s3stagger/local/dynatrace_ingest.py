"""A local Dynatrace metrics ingest endpoint: a real HTTP server that checks every line as the API does.

``POST /api/v2/metrics/ingest`` with ``Authorization: Api-Token <token>`` and a ``text/plain``
body of at most 1 MB, one data point per line (:mod:`s3stagger.domain.dynatrace_lines`). Answers:

- 202 ``{"linesOk", "linesInvalid": 0, "error": null, "warnings": null}`` when every line is valid;
- 400 with ``error.invalidLines[{line, error}]`` (lines numbered from 1) when some are not; the
  valid lines are kept all the same, as Dynatrace keeps them;
- 401 without a token or with a wrong one, 413 over 1 MB, 415 for another content type, 400 for
  an empty body.

Blank lines and metadata lines (``#key ...``) are skipped. The receiver keeps every data point by
series (key and dimensions), so the dashboard's tiles can be evaluated on real data points
(:meth:`DynatraceIngestReceiver.series`); ``unavailable`` makes it answer 503 for outage tests.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s3stagger.domain.dynatrace_lines import LineError, MetricLine, parse_line
from s3stagger.local.http_receiver import HttpReceiver, HttpReply, HttpRequest

INGEST_PATH = "/api/v2/metrics/ingest"
MAX_BODY_BYTES = 1_000_000
DEFAULT_API_TOKEN = "dt0c01.S3STAGGERLOCAL.LOCALTOKEN"  # noqa: S105  # nosec B105 - a local receiver's token

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class DataPoint:
    timestamp_ms: int
    line: MetricLine


@dataclass
class IngestStats:
    requests: int = 0
    lines_received: int = 0
    """Valid lines kept."""
    lines_invalid: int = 0
    requests_refused: int = 0
    """Requests refused as a whole (token, size, type, unavailable)."""

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _error(status: int, message: str) -> HttpReply:
    return HttpReply.json(status, {"error": {"code": status, "message": message}})


class DynatraceIngestReceiver(HttpReceiver):
    """The local metrics ingest endpoint; thread-safe."""

    server_name = "s3stagger-dynatrace-ingest"

    def __init__(
        self,
        token: str = DEFAULT_API_TOKEN,
        *,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        series_path: Path | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.token = token
        self.series_path = series_path
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._series: dict[SeriesKey, list[DataPoint]] = defaultdict(list)
        self._stats = IngestStats()
        self.unavailable = False

    @property
    def ingest_url(self) -> str:
        return f"{self.url}{INGEST_PATH}"

    def stats(self) -> IngestStats:
        with self._lock:
            return IngestStats(**self._stats.as_dict())

    def series(self) -> dict[SeriesKey, list[DataPoint]]:
        """Every series kept: ``(key, dimensions)`` → its data points in arrival order."""
        with self._lock:
            return {key: list(points) for key, points in self._series.items()}

    def metric_keys(self) -> set[str]:
        with self._lock:
            return {key for key, _ in self._series}

    def answer(self, request: HttpRequest) -> HttpReply:
        if request.path != INGEST_PATH:
            return _error(404, f"no such endpoint: {request.path}")
        if request.method != "POST":
            return _error(405, "use POST")
        refusal = self._refusal(request)
        if refusal is not None:
            with self._lock:
                self._stats.requests += 1
                self._stats.requests_refused += 1
            return refusal
        now = self._clock_ms()
        kept: list[DataPoint] = []
        invalid: list[dict[str, Any]] = []
        text = request.body.decode("utf-8", errors="replace")
        for number, raw_line in enumerate(text.split("\n"), start=1):
            line = raw_line.rstrip("\r")
            if not line.strip() or line.startswith("#"):
                continue
            try:
                parsed = parse_line(line, now)
            except LineError as error:
                invalid.append({"line": number, "error": str(error)})
                continue
            kept.append(DataPoint(parsed.timestamp_ms or now, parsed))
        with self._lock:
            self._stats.requests += 1
            self._stats.lines_received += len(kept)
            self._stats.lines_invalid += len(invalid)
            for point in kept:
                self._series[(point.line.key, point.line.dimensions)].append(point)
            self._persist(kept)
        if invalid:
            return HttpReply.json(
                400,
                {
                    "linesOk": len(kept),
                    "linesInvalid": len(invalid),
                    "error": {
                        "code": 400,
                        "message": f"{len(invalid)} invalid lines",
                        "invalidLines": invalid,
                    },
                    "warnings": None,
                },
            )
        return HttpReply.json(202, {"linesOk": len(kept), "linesInvalid": 0, "error": None, "warnings": None})

    def _refusal(self, request: HttpRequest) -> HttpReply | None:
        if self.unavailable:
            return _error(503, "Service unavailable")
        authorization = request.header("Authorization")
        if authorization is None:
            return _error(401, "Missing authorization parameter.")
        scheme, _, token = authorization.partition(" ")
        if scheme != "Api-Token" or token.strip() != self.token:
            return _error(401, "Token Authentication failed")
        if len(request.body) > MAX_BODY_BYTES:
            return _error(413, f"Payload too large: at most {MAX_BODY_BYTES} bytes")
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "text/plain":
            return _error(415, f"Unsupported content type {content_type or '(none)'}: use text/plain")
        if not request.body.strip():
            return _error(400, "The request body is empty")
        return None

    def _persist(self, points: list[DataPoint]) -> None:
        if self.series_path is None or not points:
            return
        with self.series_path.open("a", encoding="utf-8") as out:
            for point in points:
                line = point.line
                out.write(
                    json.dumps(
                        {
                            "timestamp_ms": point.timestamp_ms,
                            "key": line.key,
                            "dimensions": dict(line.dimensions),
                            "kind": line.kind.value,
                            "value": line.value,
                        }
                    )
                    + "\n"
                )
