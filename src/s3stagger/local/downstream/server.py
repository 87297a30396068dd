"""The downstream API simulator: a real HTTP/1.1 server on 127.0.0.1 that can be overwhelmed.

The pattern exists to protect an API like this one, so every test and benchmark measures against it:

- ``POST /rows`` applies one row (a JSON body) identified by its ``Idempotency-Key`` header. At most
  ``capacity`` requests are in service at once; over capacity the simulator answers 429 with
  ``Retry-After`` (``reject``) or makes the request wait for a slot (``queue``). A share of admitted
  requests (``error_rate``) fails with 503. A repeated key is answered 200 with
  ``Idempotent-Replayed: true`` and not applied again; the same body applied under a second key is
  counted as a duplicate effect (what a client that re-derives keys would cause).
- ``GET /stats`` returns :class:`SimulatorStats` as JSON; ``POST /reset`` clears counters, the
  idempotency store and restarts the capacity schedule; ``GET /healthz`` answers 200.

The server is asyncio with the h11 protocol state machine (keep-alive, one event-loop thread), run in a
background thread by :class:`DownstreamSimulator`; all state changes happen on that loop, and a lock
makes :meth:`DownstreamSimulator.stats` a consistent snapshot from any thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.utils import formatdate
from typing import Any

import h11

from s3stagger.local.downstream_settings import (
    LatencySpec,
    OverloadMode,
    SimulatorSettings,
    SimulatorSettingsError,
    capacity_at,
    format_retry_after,
    next_change_after,
    parse_capacity_schedule,
)
from s3stagger.local.lifecycle import LocalService

__all__ = [
    "DownstreamSimulator",
    "LatencySpec",
    "OverloadMode",
    "SimulatorSettings",
    "SimulatorSettingsError",
    "SimulatorStats",
    "parse_capacity_schedule",
]

HOST = "127.0.0.1"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
LATENCY_WINDOW = 10_000
"""Response times kept for the percentiles (the most recent ones)."""
TIMER_SLACK_S = 0.0005
"""Initial estimate of how late the event loop wakes a timer (epoll counts in milliseconds)."""
TIMER_LAG_MAX_S = 0.002
"""Most a sleep is shortened to make up for timer lag (and never by more than half the latency)."""
_TIMER_LAG_WEIGHT = 0.05
_READ_CHUNK = 65_536
_SETTLE_ITERATIONS = 5
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0


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

    def as_dict(self) -> dict[str, Any]:
        """The JSON-serialisable form ``GET /stats`` returns."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimulatorStats:
        """Read the form :meth:`as_dict` writes (e.g. from ``GET /stats``)."""
        return cls(**data)


def _percentile(sorted_values: list[float], share: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = min(max(1, math.ceil(share * len(sorted_values))), len(sorted_values))
    return sorted_values[rank - 1]


def body_fingerprint(body: Any) -> str:
    """sha256 of the JSON body with sorted keys: equal rows have equal fingerprints."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class _Response:
    status: int
    payload: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _SimulatorState:
    """Counters, idempotency store, slots and waiters. Mutated on the event loop only."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.in_flight = 0
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.clear()

    def clear(self) -> None:
        with self.lock:
            self.started = time.monotonic()
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
            self.served = 0
            seed = self.settings.seed
            # Simulated latency and failures, not security: a seedable PRNG is what is wanted.
            self.latency_rng = random.Random(None if seed is None else f"latency-{seed}")  # nosec B311
            self.error_rng = random.Random(None if seed is None else f"errors-{seed}")  # nosec B311

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def capacity_now(self) -> int:
        return capacity_at(self.settings.capacity, self.settings.capacity_schedule, self.elapsed())

    def snapshot(self) -> SimulatorStats:
        with self.lock:
            times = sorted(self.response_times)
            p50, p95 = _percentile(times, 0.50), _percentile(times, 0.95)
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
                latency_p50_ms=None if p50 is None else round(p50 * 1000, 3),
                latency_p95_ms=None if p95 is None else round(p95 * 1000, 3),
                service_mean_ms=round(self.service_time_total / self.served * 1000, 3)
                if self.served
                else None,
            )

    def try_acquire(self) -> bool:
        """Take a slot if one is free now (and no one is waiting ahead)."""
        with self.lock:
            if self.waiters or self.in_flight >= self.capacity_now():
                return False
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return True

    def release(self) -> None:
        with self.lock:
            self.in_flight -= 1
        self.admit_waiters()

    def admit_waiters(self) -> None:
        """Hand free slots to waiting requests, first come first served."""
        with self.lock:
            capacity = self.capacity_now()
            while self.waiters and self.in_flight < capacity:
                waiter = self.waiters.popleft()
                if waiter.done():  # cancelled: its client went away
                    continue
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
                waiter.set_result(None)


class _DownstreamServer:
    """The asyncio HTTP server; runs on the loop of the thread that calls :meth:`run`."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.state = _SimulatorState(settings)
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._schedule_task: asyncio.Task[None] | None = None
        self._timer_lag_s = TIMER_SLACK_S

    async def run(self, ready: threading.Event) -> None:
        self.loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(
            self._serve_connection, HOST, self.settings.port, backlog=1024, reuse_address=True
        )
        self.port = server.sockets[0].getsockname()[1]
        self._restart_schedule()
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            # Stop accepting first and let connections already accepted finish setting up: closing the
            # server under them makes Python 3.11 drop half-built transports (an assertion in
            # Server._attach), which leaves their sockets to the garbage collector.
            for listening in server.sockets:
                self.loop.remove_reader(listening.fileno())
            for _ in range(_SETTLE_ITERATIONS):
                await asyncio.sleep(0)
            server.close()
            if self._schedule_task is not None:
                self._schedule_task.cancel()
            await self._close_connections()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), _STOP_TIMEOUT_S / 2)

    async def _close_connections(self) -> None:
        """End every connection, including those accepted just before the listening socket closed.

        The loop is this server's own, so every other task belongs to a connection. Between rounds the
        loop runs a few iterations: connections accepted late start (and, seeing ``stopping``, close
        themselves) and closed transports release their sockets (``connection_lost`` runs).
        """
        current = asyncio.current_task()
        while True:
            for _ in range(_SETTLE_ITERATIONS):
                await asyncio.sleep(0)
            pending = [task for task in asyncio.all_tasks() if task is not current]
            if not pending:
                return
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def request_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    def reset(self) -> None:
        self.state.clear()
        self._restart_schedule()

    def _restart_schedule(self) -> None:
        if self._schedule_task is not None:
            self._schedule_task.cancel()
        self._schedule_task = None
        if self.settings.capacity_schedule:
            self._schedule_task = asyncio.get_running_loop().create_task(self._follow_schedule())

    async def _follow_schedule(self) -> None:
        """Wake waiting requests when the schedule raises the capacity."""
        while (at := next_change_after(self.settings.capacity_schedule, self.state.elapsed())) is not None:
            await asyncio.sleep(max(at - self.state.elapsed(), 0.0) + 0.001)
            self.state.admit_waiters()

    # -- HTTP -------------------------------------------------------------------------------------

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stopping is not None and self._stopping.is_set():
            writer.close()
            return
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - asyncio always runs a connection handler in a task
            raise RuntimeError("connection handler outside a task")
        self._connections.add(task)
        with self.state.lock:
            self.state.connections_opened += 1
        connection = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read_request(connection, reader, writer)
                if request is None:
                    break
                method, target, headers, body = request
                response = await self._dispatch(method, target, headers, body)
                await self._write_response(connection, writer, response)
                if response.close or connection.our_state is not h11.DONE:
                    break
                connection.start_next_cycle()
        except _BadRequest as error:  # body over the limit: answered, then the connection is closed
            with self.state.lock:
                self.state.requests += 1
                self.state.bad_requests += 1
            with contextlib.suppress(Exception):
                await self._write_response(
                    connection, writer, _Response(error.status, {"error": error.message}, close=True)
                )
        except h11.RemoteProtocolError as error:
            with contextlib.suppress(Exception):
                response = _Response(
                    error.error_status_hint, {"error": f"malformed HTTP request: {error}"}, close=True
                )
                await self._write_response(connection, writer, response)
        except (ConnectionError, asyncio.IncompleteReadError, h11.LocalProtocolError):
            pass
        except asyncio.CancelledError:
            # Only stop() cancels connections. Ending normally keeps Python 3.11's stream callback
            # from logging the cancellation as an unhandled error.
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_request(
        self, connection: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[str, str, dict[str, str], bytes] | None:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                if connection.they_are_waiting_for_100_continue:  # e.g. curl with a body over 1 KiB
                    writer.write(
                        connection.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
                    )
                data = await reader.read(_READ_CHUNK)
                connection.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                request = event
                length = dict(event.headers).get(b"content-length")
                if length is not None and int(length) > self.settings.max_body_bytes:
                    raise _BadRequest(413, f"body exceeds {self.settings.max_body_bytes} bytes")
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.settings.max_body_bytes:
                    raise _BadRequest(413, f"body exceeds {self.settings.max_body_bytes} bytes")
            elif isinstance(event, h11.EndOfMessage) and request is not None:
                headers = {
                    name.decode("latin-1").lower(): value.decode("latin-1") for name, value in request.headers
                }
                target = request.target.decode("latin-1").split("?", 1)[0]
                return request.method.decode("ascii").upper(), target, headers, bytes(body)
            else:  # ConnectionClosed, or PAUSED after the peer half-closed
                return None

    async def _write_response(
        self, connection: h11.Connection, writer: asyncio.StreamWriter, response: _Response
    ) -> None:
        payload = json.dumps(response.payload).encode("utf-8")
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            *response.headers,
        ]
        if response.close:
            headers.append(("Connection", "close"))
        data = connection.send(h11.Response(status_code=response.status, headers=headers))
        data = (data or b"") + (connection.send(h11.Data(data=payload)) or b"")
        data += connection.send(h11.EndOfMessage()) or b""
        writer.write(data)
        await writer.drain()

    async def _dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> _Response:
        route = (method, target.rstrip("/") or "/")
        if route == ("POST", "/rows"):
            return await self._handle_row(headers, body)
        if route == ("GET", "/stats"):
            return _Response(200, self.state.snapshot().as_dict())
        if route == ("POST", "/reset"):
            self.reset()
            return _Response(200, {"reset": True, "stats": self.state.snapshot().as_dict()})
        if route == ("GET", "/healthz"):
            return _Response(200, {"status": "ok"})
        known = {"/rows": "POST", "/stats": "GET", "/reset": "POST", "/healthz": "GET"}
        if route[1] in known:
            return _Response(
                405,
                {"error": f"{method} is not allowed on {route[1]}; use {known[route[1]]}"},
                headers=(("Allow", known[route[1]]),),
            )
        return _Response(404, {"error": f"no such endpoint {target!r}; rows are POSTed to /rows"})

    def _retry_after_header(self) -> tuple[str, str]:
        seconds = self.settings.retry_after_seconds()
        if self.settings.retry_after_http_date:
            return ("Retry-After", formatdate(time.time() + seconds, usegmt=True))
        return ("Retry-After", format_retry_after(seconds))

    async def _handle_row(self, headers: dict[str, str], body: bytes) -> _Response:
        state = self.state
        arrived = time.monotonic()
        with state.lock:
            state.requests += 1
        key = headers.get(IDEMPOTENCY_KEY_HEADER.lower(), "").strip()
        try:
            if not key:
                raise _BadRequest(
                    400, f"missing {IDEMPOTENCY_KEY_HEADER} header: every row request must carry one"
                )
            try:
                row = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise _BadRequest(400, f"body is not valid JSON: {error}") from None
        except _BadRequest as error:
            with state.lock:
                state.bad_requests += 1
            return _Response(error.status, {"error": error.message})

        if not state.try_acquire():
            if self.settings.overload == "reject":
                with state.lock:
                    state.throttled += 1
                    capacity = state.capacity_now()
                return _Response(
                    429,
                    {"error": "over capacity", "capacity": capacity},
                    headers=(self._retry_after_header(),),
                )
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            state.waiters.append(waiter)
            state.admit_waiters()  # a slot may have freed (or capacity risen) meanwhile
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    state.release()  # admitted just as the connection went away
                else:
                    with contextlib.suppress(ValueError):
                        state.waiters.remove(waiter)
                raise
        try:
            with state.lock:
                latency = self.settings.latency.sample(state.latency_rng) * self.settings.time_scale
                fail = self.settings.error_rate > 0 and state.error_rng.random() < self.settings.error_rate
            admitted = time.monotonic()
            if latency > 0:
                await self._serve_for(latency)
            return self._complete_row(key, row, fail, arrived, admitted)
        finally:
            state.release()

    async def _serve_for(self, latency: float) -> None:
        """Hold a slot for ``latency`` seconds on average.

        The loop wakes a timer late (0-1 ms from epoll's millisecond timeouts, more when the CPU is
        busy). Sleeping a little less, by a running mean of that lag, keeps the mean service time at
        the configured latency, so C / L stays the simulated API's true capacity; ``service_mean_ms``
        in the stats shows the outcome.
        """
        shortened = max(latency - min(self._timer_lag_s, TIMER_LAG_MAX_S, latency / 2), 0.0)
        started = time.monotonic()
        await asyncio.sleep(shortened)
        lag = time.monotonic() - started - shortened
        self._timer_lag_s += _TIMER_LAG_WEIGHT * (lag - self._timer_lag_s)

    def _complete_row(self, key: str, row: Any, fail: bool, arrived: float, admitted: float) -> _Response:
        state = self.state
        fingerprint = body_fingerprint(row)
        now = time.monotonic()
        with state.lock:
            state.response_times.append(now - arrived)
            state.service_time_total += now - admitted
            state.served += 1
            if fail:
                state.errors += 1
                return _Response(
                    503, {"error": "injected failure; retry later"}, headers=(self._retry_after_header(),)
                )
            applied = state.applied.get(key)
            if applied is not None:
                if applied != fingerprint:
                    state.key_conflicts += 1
                    return _Response(
                        422,
                        {"error": f"{IDEMPOTENCY_KEY_HEADER} {key!r} was already used with a different body"},
                    )
                state.duplicate_deliveries += 1
                return _Response(
                    200,
                    {"status": "applied", "idempotency_key": key},
                    headers=((REPLAYED_HEADER, "true"),),
                )
            state.applied[key] = fingerprint
            state.effects += 1
            if fingerprint in state.fingerprints:
                state.duplicate_effects += 1
            state.fingerprints.add(fingerprint)
        return _Response(200, {"status": "applied", "idempotency_key": key})


class DownstreamSimulator(LocalService):
    """The simulated downstream API, served from a background thread on 127.0.0.1.

    Use it as a context manager (``with DownstreamSimulator(settings) as sim:``) or call
    :meth:`start` and :meth:`stop`. ``sim.rows_url`` is where rows are POSTed.
    """

    def __init__(self, settings: SimulatorSettings | None = None) -> None:
        self.settings = settings or SimulatorSettings()
        self._server: _DownstreamServer | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> DownstreamSimulator:
        """Bind the port and start serving; return once requests are accepted."""
        if self._thread is not None:
            raise RuntimeError("the downstream simulator is already running")
        server = _DownstreamServer(self.settings)
        ready = threading.Event()
        self._error = None

        def run() -> None:
            try:
                asyncio.run(server.run(ready))
            except BaseException as error:  # reported to the starting thread
                self._error = error
                ready.set()

        thread = threading.Thread(target=run, name="downstream-simulator", daemon=True)
        thread.start()
        if not ready.wait(_START_TIMEOUT_S):
            raise RuntimeError("the downstream simulator did not start in time")
        if self._error is not None:
            thread.join(_STOP_TIMEOUT_S)
            raise OSError(f"the downstream simulator could not listen on {HOST}: {self._error}")
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and join the server thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        if server.loop is not None and not server.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                server.loop.call_soon_threadsafe(server.request_stop)
        thread.join(_STOP_TIMEOUT_S)
        self._server = self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- addresses --------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._running_server().port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{HOST}:{self.port}"

    @property
    def rows_url(self) -> str:
        """Where rows are POSTed."""
        return f"{self.url}/rows"

    # -- figures ----------------------------------------------------------------------------------

    def stats(self) -> SimulatorStats:
        """A consistent snapshot of the counters (thread-safe)."""
        return self._running_server().state.snapshot()

    def reset(self) -> None:
        """Clear counters and the idempotency store; restart the capacity schedule's clock."""
        server = self._running_server()
        if server.loop is None:  # pragma: no cover - set before start() returns
            raise RuntimeError("the downstream simulator has no event loop")
        asyncio.run_coroutine_threadsafe(_call(server.reset), server.loop).result(_STOP_TIMEOUT_S)

    def applied_keys(self) -> frozenset[str]:
        """Idempotency keys whose row has been applied (since start or the last reset)."""
        state = self._running_server().state
        with state.lock:
            return frozenset(state.applied)

    def _running_server(self) -> _DownstreamServer:
        if self._server is None:
            raise RuntimeError("the downstream simulator is not running; use it in a `with` block")
        return self._server


async def _call(function: Callable[[], None]) -> None:
    function()
