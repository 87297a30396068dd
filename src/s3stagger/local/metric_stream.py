"""Stand-in for a CloudWatch metric stream to Dynatrace, which moto cannot run.

On AWS a metric stream sends, per minute, each metric's minimum, maximum, sum and sample count
through Firehose to Dynatrace's AWS ingest. :class:`MetricStreamStandIn` does the same with what
local mode can measure — the local alarm evaluator's metric sources (queue attributes, the local
Lambda runtime's counters, dispatcher executions; :mod:`s3stagger.local.alarm_evaluator`), the
processor's EMF lines taken from the captured log lines (CloudWatch's EMF extraction,
:class:`CapturedEmfMetrics`), and dispatcher starts and successes
(:class:`DispatcherStartMetrics`) — aggregated per (scaled) period into Dynatrace summary lines
named as the metric stream names them (:mod:`s3stagger.domain.metric_stream_naming`), posted to the
Dynatrace ingest endpoint. A 503 or a refused connection is retried with backoff; lines that still
cannot be delivered are written to the backup folder and counted.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from s3stagger.domain.dynatrace_lines import Summary, summary_line
from s3stagger.domain.emf import parse_emf_line
from s3stagger.domain.metric_stream_naming import metric_stream_dimensions, metric_stream_key
from s3stagger.local.alarm_evaluator import MetricKey, MetricSource, metric_key
from s3stagger.local.log_capture import CapturedLines

LOGGER = logging.getLogger(__name__)
MAX_BODY_BYTES = 1_000_000


class CapturedEmfMetrics:
    """The EMF metrics of the captured log lines (what CloudWatch extracts from a log group)."""

    gauge = False

    def __init__(self, lines: CapturedLines) -> None:
        self._lines = lines

    def sample(self, now: float) -> Iterable[tuple[MetricKey, float]]:
        for line in self._lines.drain():
            for point in parse_emf_line(line.message):
                yield metric_key(point.namespace, point.name, point.dimensions), point.value


class DispatcherStartMetrics:
    """``ExecutionsStarted`` and ``ExecutionsSucceeded`` of the dispatcher (new executions per sample)."""

    gauge = False

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn
        self._started: set[str] = set()
        self._succeeded: set[str] = set()

    def sample(self, now: float) -> Iterable[tuple[MetricKey, float]]:
        try:
            pages = self._client.get_paginator("list_executions").paginate(stateMachineArn=self._arn)
            executions = [e for page in pages for e in page["executions"]]
        except (ClientError, BotoCoreError):
            return
        started = {e["executionArn"] for e in executions}
        succeeded = {e["executionArn"] for e in executions if e["status"] == "SUCCEEDED"}
        dimensions = {"StateMachineArn": self._arn}
        yield metric_key("AWS/States", "ExecutionsStarted", dimensions), float(len(started - self._started))
        yield (
            metric_key("AWS/States", "ExecutionsSucceeded", dimensions),
            float(len(succeeded - self._succeeded)),
        )
        self._started |= started
        self._succeeded |= succeeded


@dataclass(frozen=True)
class MetricStreamSettings:
    ingest_url: str
    token: str
    account_id: str
    region: str
    backup_dir: Path
    period_s: float = 3.0
    """AWS: 60 s; locally scaled like the alarm evaluator (a minute lasts 3 s)."""
    retry_duration_s: float = 10.0
    first_backoff_s: float = 0.1
    max_backoff_s: float = 2.0


@dataclass
class MetricStreamStats:
    lines_sent: int = 0
    lines_accepted: int = 0
    lines_invalid: int = 0
    lines_backed_up: int = 0
    requests: int = 0
    retries: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Aggregate:
    values: list[float] = field(default_factory=list)

    def summary(self) -> Summary:
        return Summary(min(self.values), max(self.values), sum(self.values), len(self.values))


class MetricStreamStandIn:
    """Samples ``sources``, aggregates per period and posts Dynatrace lines; thread-safe."""

    def __init__(
        self,
        settings: MetricStreamSettings,
        sources: Sequence[MetricSource],
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._sources = list(sources)
        self._client = client or httpx.Client(timeout=5.0)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._periods: dict[int, dict[MetricKey, _Aggregate]] = {}
        self.stats = MetricStreamStats()

    def sample(self) -> None:
        """Take one sample of every source into the current period."""
        now = self._clock()
        period = math.floor(now / self.settings.period_s)
        for source in self._sources:
            try:
                samples = list(source.sample(now))
            except (ClientError, BotoCoreError):
                LOGGER.warning("metric source %s could not be sampled", type(source).__name__)
                continue
            with self._lock:
                for key, value in samples:
                    self._periods.setdefault(period, {}).setdefault(key, _Aggregate()).values.append(value)

    def flush(self, final: bool = False) -> None:
        """Send the periods that have ended (every period when ``final``)."""
        current = math.floor(self._clock() / self.settings.period_s)
        with self._lock:
            ended = sorted(p for p in self._periods if final or p < current)
            closed = [(p, self._periods.pop(p)) for p in ended]
        lines = [
            self._line(key, aggregate, int(period * self.settings.period_s * 1000))
            for period, aggregates in closed
            for key, aggregate in aggregates.items()
        ]
        for body in _bodies(lines):
            self._send(body)

    def close(self) -> None:
        self._client.close()

    def _line(self, key: MetricKey, aggregate: _Aggregate, timestamp_ms: int) -> str:
        namespace, name, dimensions = key
        settings = self.settings
        return summary_line(
            metric_stream_key(namespace, name, [d for d, _ in dimensions]),
            metric_stream_dimensions(dict(dimensions), settings.account_id, settings.region),
            aggregate.summary(),
            timestamp_ms,
        )

    def _send(self, lines: list[str]) -> None:
        settings = self.settings
        headers = {
            "Authorization": f"Api-Token {settings.token}",
            "Content-Type": "text/plain; charset=utf-8",
        }
        body = "\n".join(lines).encode("utf-8")
        deadline = time.monotonic() + settings.retry_duration_s
        attempt = 0
        self.stats.lines_sent += len(lines)
        while True:
            attempt += 1
            self.stats.requests += 1
            try:
                answer = self._client.post(settings.ingest_url, content=body, headers=headers)
            except httpx.TransportError as error:
                problem, retryable = f"cannot reach {settings.ingest_url}: {error}", True
            else:
                if answer.status_code in {202, 400} and "linesOk" in answer.text:
                    document = answer.json()
                    self.stats.lines_accepted += int(document.get("linesOk", 0))
                    self.stats.lines_invalid += int(document.get("linesInvalid", 0))
                    if document.get("linesInvalid"):
                        self.stats.error = f"Dynatrace refused lines: {document['error']['invalidLines'][:3]}"
                        LOGGER.error("Dynatrace ingest: %s", self.stats.error)
                    return
                retryable = answer.status_code >= 500 or answer.status_code == 429
                problem = f"Dynatrace ingest answered HTTP {answer.status_code}: {answer.text[:200]}"
                if answer.status_code == 401:
                    problem += " (set the API token with scope metrics.ingest)"
            if retryable and time.monotonic() < deadline:
                self.stats.retries += 1
                self._sleep(min(settings.max_backoff_s, settings.first_backoff_s * 2 ** (attempt - 1)))
                continue
            if not retryable:
                self.stats.error = problem
                LOGGER.error("Dynatrace ingest: %s", problem)
            self._backup(lines, problem)
            return

    def _backup(self, lines: list[str], problem: str) -> None:
        folder = self.settings.backup_dir / "dynatrace-failed"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps({"errorMessage": problem, "lines": lines}), encoding="utf-8")
        self.stats.lines_backed_up += len(lines)


def _bodies(lines: list[str]) -> list[list[str]]:
    bodies: list[list[str]] = []
    size = 0
    for line in lines:
        if not bodies or size + len(line) + 1 > MAX_BODY_BYTES:
            bodies.append([])
            size = 0
        bodies[-1].append(line)
        size += len(line) + 1
    return bodies
