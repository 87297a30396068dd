"""The downstream API's state and rules, without sockets: capacity, the idempotency ledger, stats.

:class:`DownstreamModel` decides every answer the simulator gives (moto's ``models`` to the
``responses`` of :mod:`~s3stagger.local.downstream.protocol`): whether a row request is well formed,
whether it gets a slot or waits or is refused, whether it is applied, replayed or conflicts with an
earlier body, and what the counters say. It is thread-safe (one lock) and takes its clock as an
argument, so it is tested on its own with a fake clock and no event loop.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.utils import formatdate
from typing import Any, Protocol

from s3stagger.errors import S3StaggerError
from s3stagger.local.downstream.settings import SimulatorSettings, capacity_at, format_retry_after

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
LATENCY_WINDOW = 10_000
"""Response times kept for the percentiles (the most recent ones)."""


@dataclass(frozen=True)
class SimulatorStats:
    """A snapshot of what the simulator has seen since start or the last reset."""

    requests: int
    """Row requests received (``POST /rows``), whatever their answer."""
    peak_concurrency: int
    """Most row requests in service at once: the figure "never overwhelm" is checked against."""
    throttled_429: int
    errors_5xx: int
    effects_applied: int
    """Rows applied (first delivery of a key)."""
    duplicate_deliveries: int
    """Requests with a key already applied: answered, not applied again."""
    duplicate_effects: int
    """Effects applied for a body (canonical JSON) already applied under another key."""
    bad_requests_400: int
    """Row requests refused as malformed (no key, body not JSON, too large)."""
    key_conflicts_422: int
    """Requests reusing an applied key with a different body."""
    connections_opened: int
    """TCP connections accepted: far more than the client's concurrency means it is not keeping them alive."""
    capacity: int
    """Capacity in force now (base, or the schedule's)."""
    in_flight: int
    """Row requests in service now."""
    queued: int
    """Row requests waiting for a slot now (``queue`` mode)."""
    overload: str
    time_scale: float
    elapsed_s: float
    """Seconds since start or the last reset (the capacity schedule's clock)."""
    latency_p50_ms: float | None
    """Median response time of admitted row requests (queueing included), recent window."""
    latency_p95_ms: float | None
    service_mean_ms: float | None
    """Mean time admitted requests spent in service (admission to answer): the effective L of C / L."""
    answered: int = 0
    """Admitted requests answered since start or the last reset."""
    response_time_total_ms: float = 0.0
    """Their response times summed (queueing included): differences between two looks give the mean
    latency of an interval, as a metric's average over a period does."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON-serialisable form ``GET /stats`` returns."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimulatorStats:
        """Read the form :meth:`as_dict` writes (e.g. from ``GET /stats``)."""
        return cls(**data)


@dataclass(frozen=True)
class Reply:
    """An answer of the simulated API, before HTTP framing: status, JSON payload, extra headers."""

    status: int
    payload: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False
    """Close the connection after this answer."""


class RequestRefusedError(S3StaggerError):
    """A request the API refuses as malformed; carries the status and message of the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def reply(self, *, close: bool = False) -> Reply:
        """The answer that says so."""
        return Reply(self.status, {"error": self.message}, close=close)


@dataclass(frozen=True)
class RowRequest:
    """A well-formed row request: its idempotency key and its JSON body."""

    key: str
    row: Any


class Waiter(Protocol):
    """A request waiting for a slot (an ``asyncio.Future`` on the server)."""

    def done(self) -> bool: ...

    def set_result(self, result: None, /) -> None: ...


def percentile(sorted_values: list[float], share: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = min(max(1, math.ceil(share * len(sorted_values))), len(sorted_values))
    return sorted_values[rank - 1]


def body_fingerprint(body: Any) -> str:
    """sha256 of the JSON body with sorted keys: equal rows have equal fingerprints."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _rounded_ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def parse_row_request(headers: dict[str, str], body: bytes) -> RowRequest:
    """Check a ``POST /rows`` request (key present, body JSON); raise :class:`RequestRefusedError`."""
    key = headers.get(IDEMPOTENCY_KEY_HEADER.lower(), "").strip()
    if not key:
        raise RequestRefusedError(
            400, f"missing {IDEMPOTENCY_KEY_HEADER} header: every row request must carry one"
        )
    try:
        return RowRequest(key, json.loads(body))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestRefusedError(400, f"body is not valid JSON: {error}") from None


def parse_batch_request(headers: dict[str, str], body: bytes) -> list[RowRequest]:
    """Check a ``POST /batch`` request: a key for the batch, ``{"rows": [{"key", "body"}, ...]}``."""
    parse_row_request(headers, b"null")  # the batch's own Idempotency-Key is required too
    try:
        document = json.loads(body)
        items = document["rows"]
        rows = [RowRequest(str(item["key"]), item["body"]) for item in items]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise RequestRefusedError(400, f'body is not {{"rows": [{{"key", "body"}}, ...]}}: {error}') from None
    if not rows or any(not row.key for row in rows):
        raise RequestRefusedError(400, "a batch needs at least one row, each with a key")
    return rows


class DownstreamModel:
    """Counters, idempotency ledger, capacity slots and waiters of the simulated API; thread-safe."""

    def __init__(
        self,
        settings: SimulatorSettings,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self.in_flight = 0
        self.waiters: collections.deque[Waiter] = collections.deque()
        self.clear()

    def clear(self) -> None:
        """Forget everything but the requests in service now; restart the schedule's clock."""
        with self._lock:
            self.started = self._clock()
            self.requests = 0
            self.peak = self.in_flight
            self.throttled = 0
            self.errors = 0
            self.effects = 0
            self.duplicate_deliveries = 0
            self.duplicate_effects = 0
            self.bad_requests = 0
            self.key_conflicts = 0
            self.connections_opened = 0
            self.applied: dict[str, str] = {}
            self.fingerprints: set[str] = set()
            self.response_times: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
            self.service_time_total = 0.0
            self.response_time_total = 0.0
            self.served = 0
            seed = self.settings.seed
            # Simulated latency and failures, not security: a seedable PRNG is what is wanted.
            self.latency_rng = random.Random(None if seed is None else f"latency-{seed}")  # nosec B311
            self.error_rng = random.Random(None if seed is None else f"errors-{seed}")  # nosec B311

    # -- clock and capacity -----------------------------------------------------------------------

    def now(self) -> float:
        """The model's clock (monotonic seconds)."""
        return self._clock()

    def elapsed(self) -> float:
        """Seconds since start or the last reset."""
        return self._clock() - self.started

    def capacity_now(self) -> int:
        """The capacity in force: the base, or the schedule's at this moment."""
        return capacity_at(self.settings.capacity, self.settings.capacity_schedule, self.elapsed())

    def try_acquire(self) -> bool:
        """Take a slot if one is free now (and no one is waiting ahead)."""
        with self._lock:
            if self.waiters or self.in_flight >= self.capacity_now():
                return False
            self._take_slot()
            return True

    def release(self) -> None:
        """Give a slot back and hand it to the next waiter, if any."""
        with self._lock:
            self.in_flight -= 1
        self.admit_waiters()

    def wait(self, waiter: Waiter) -> None:
        """Queue ``waiter`` for a slot, then admit whoever a free slot allows (it may be this one)."""
        with self._lock:
            self.waiters.append(waiter)
        self.admit_waiters()

    def stop_waiting(self, waiter: Waiter) -> None:
        """Take a waiter that gave up off the queue (no-op when it was admitted meanwhile)."""
        with self._lock:
            if waiter in self.waiters:
                self.waiters.remove(waiter)

    def admit_waiters(self) -> None:
        """Hand free slots to waiting requests, first come first served."""
        with self._lock:
            capacity = self.capacity_now()
            while self.waiters and self.in_flight < capacity:
                waiter = self.waiters.popleft()
                if waiter.done():  # cancelled: its client went away
                    continue
                self._take_slot()
                waiter.set_result(None)

    def _take_slot(self) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    # -- answers ----------------------------------------------------------------------------------

    def note_connection(self) -> None:
        """Count a TCP connection accepted."""
        with self._lock:
            self.connections_opened += 1

    def note_row_request(self) -> None:
        """Count a ``POST /rows`` request received, whatever its answer."""
        with self._lock:
            self.requests += 1

    def refuse(self, error: RequestRefusedError, *, counted: bool = True, close: bool = False) -> Reply:
        """Count a malformed row request (and the request itself unless ``counted``); its answer."""
        with self._lock:
            if not counted:
                self.requests += 1
            self.bad_requests += 1
        return error.reply(close=close)

    def throttle(self) -> Reply:
        """Count a request refused as over capacity; the 429 with ``Retry-After``."""
        with self._lock:
            self.throttled += 1
            capacity = self.capacity_now()
        return Reply(429, {"error": "over capacity", "capacity": capacity}, headers=(self.retry_after(),))

    def draw_service(self) -> tuple[float, bool]:
        """For an admitted request: its service time in (scaled) seconds and whether it fails."""
        settings = self.settings
        with self._lock:
            latency = settings.latency.sample(self.latency_rng) * settings.time_scale
            fail = settings.error_rate > 0 and self.error_rng.random() < settings.error_rate
        return latency, fail

    def retry_after(self) -> tuple[str, str]:
        """The ``Retry-After`` header of 429 and 503 answers (seconds, or an HTTP-date)."""
        seconds = self.settings.retry_after_seconds()
        if self.settings.retry_after_http_date:
            return ("Retry-After", formatdate(self._wall_clock() + seconds, usegmt=True))
        return ("Retry-After", format_retry_after(seconds))

    def complete_row(self, request: RowRequest, fail: bool, arrived: float, admitted: float) -> Reply:
        """Finish an admitted row: note its times, then fail it, replay it or apply it."""
        fingerprint = body_fingerprint(request.row)
        with self._lock:
            failure = self._note_served(fail, arrived, admitted)
            return failure or self._apply(request.key, fingerprint)

    def complete_batch(self, rows: list[RowRequest], fail: bool, arrived: float, admitted: float) -> Reply:
        """Finish an admitted batch: all of it fails (503), or each row gets its own result."""
        fingerprints = [body_fingerprint(row.row) for row in rows]
        with self._lock:
            failure = self._note_served(fail, arrived, admitted)
            if failure is not None:
                return failure
            results = []
            for row, fingerprint in zip(rows, fingerprints, strict=True):
                answer = self._apply(row.key, fingerprint)
                result: dict[str, Any] = {"key": row.key, "status": answer.status}
                if "error" in answer.payload:
                    result["error"] = answer.payload["error"]
                results.append(result)
        return Reply(200, {"results": results})

    def _note_served(self, fail: bool, arrived: float, admitted: float) -> Reply | None:
        """Note a request's times (lock held); the injected 5xx answer when it is to fail."""
        now = self._clock()
        self.response_times.append(now - arrived)
        self.response_time_total += now - arrived
        self.service_time_total += now - admitted
        self.served += 1
        if not fail:
            return None
        self.errors += 1
        status = self.settings.error_status
        headers = (self.retry_after(),) if status == 503 else ()
        return Reply(status, {"error": "injected failure; retry later"}, headers=headers)

    def _apply(self, key: str, fingerprint: str) -> Reply:
        """The ledger's rule (lock held): a new key is applied once; a known key is replayed if its
        body is the same, refused (422) if not."""
        applied = self.applied.get(key)
        if applied is not None and applied != fingerprint:
            self.key_conflicts += 1
            return Reply(
                422, {"error": f"{IDEMPOTENCY_KEY_HEADER} {key!r} was already used with a different body"}
            )
        answer = {"status": "applied", "idempotency_key": key}
        if applied is not None:
            self.duplicate_deliveries += 1
            return Reply(200, answer, headers=((REPLAYED_HEADER, "true"),))
        self.applied[key] = fingerprint
        self.effects += 1
        if fingerprint in self.fingerprints:
            self.duplicate_effects += 1
        self.fingerprints.add(fingerprint)
        return Reply(200, answer)

    # -- figures ----------------------------------------------------------------------------------

    def applied_keys(self) -> frozenset[str]:
        """Idempotency keys whose row has been applied."""
        with self._lock:
            return frozenset(self.applied)

    def snapshot(self) -> SimulatorStats:
        """A consistent copy of the counters."""
        with self._lock:
            times = sorted(self.response_times)
            return SimulatorStats(
                requests=self.requests,
                peak_concurrency=self.peak,
                throttled_429=self.throttled,
                errors_5xx=self.errors,
                effects_applied=self.effects,
                duplicate_deliveries=self.duplicate_deliveries,
                duplicate_effects=self.duplicate_effects,
                bad_requests_400=self.bad_requests,
                key_conflicts_422=self.key_conflicts,
                connections_opened=self.connections_opened,
                capacity=self.capacity_now(),
                in_flight=self.in_flight,
                queued=len(self.waiters),
                overload=self.settings.overload,
                time_scale=self.settings.time_scale,
                elapsed_s=round(self.elapsed(), 3),
                latency_p50_ms=_rounded_ms(percentile(times, 0.50)),
                latency_p95_ms=_rounded_ms(percentile(times, 0.95)),
                service_mean_ms=_rounded_ms(self.service_time_total / self.served) if self.served else None,
                answered=self.served,
                response_time_total_ms=round(self.response_time_total * 1000, 3),
            )
