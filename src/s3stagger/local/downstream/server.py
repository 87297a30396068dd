"""The downstream simulator's server: the asyncio loop, its routes, and the thread it runs in.

:class:`DownstreamSimulator` starts a background thread running one event loop; on it,
:class:`_DownstreamServer` accepts connections (:mod:`~s3stagger.local.downstream.protocol` speaks
HTTP), routes requests, holds admitted rows in service for their latency, and asks the
:class:`~s3stagger.local.downstream.model.DownstreamModel` for every decision and figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections.abc import Callable

from s3stagger.errors import S3StaggerError
from s3stagger.local.downstream.auth import OAUTH_PATH, DownstreamAuth
from s3stagger.local.downstream.model import (
    DownstreamModel,
    Reply,
    RequestRefusedError,
    RowRequest,
    SimulatorStats,
    parse_batch_request,
    parse_row_request,
)
from s3stagger.local.downstream.protocol import ConnectionHooks, Request, serve_connection
from s3stagger.local.downstream.settings import SimulatorSettings, next_change_after
from s3stagger.local.lifecycle import LocalService

HOST = "127.0.0.1"
TIMER_SLACK_S = 0.0005
"""Initial estimate of how late the event loop wakes a timer (epoll counts in milliseconds)."""
TIMER_LAG_MAX_S = 0.002
"""Most a sleep is shortened to make up for timer lag (and never by more than half the latency)."""
_TIMER_LAG_WEIGHT = 0.05
_SETTLE_ITERATIONS = 5
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0
_ROUTES = {
    "/rows": "POST",
    "/batch": "POST",
    OAUTH_PATH: "POST",
    "/stats": "GET",
    "/reset": "POST",
    "/healthz": "GET",
}
"""Each path and the one method it answers."""


class SimulatorStartError(S3StaggerError, OSError):
    """The simulator could not listen (e.g. its port is taken); the message says why."""


class _DownstreamServer:
    """The asyncio HTTP server; runs on the loop of the thread that calls :meth:`run`."""

    def __init__(
        self,
        settings: SimulatorSettings,
        tls: ssl.SSLContext | None = None,
        auth: DownstreamAuth | None = None,
    ) -> None:
        self.settings = settings
        self.tls = tls
        self.auth = auth
        self.model = DownstreamModel(settings)
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._schedule_task: asyncio.Task[None] | None = None
        self._timer_lag_s = TIMER_SLACK_S
        self._hooks = ConnectionHooks(
            opened=self.model.note_connection,
            oversized=lambda error: self.model.refuse(error, counted=False, close=True),
        )

    async def run(self, ready: threading.Event) -> None:
        self.loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(
            self._serve_connection, HOST, self.settings.port, backlog=1024, reuse_address=True, ssl=self.tls
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
        self.model.clear()
        self._restart_schedule()

    def _restart_schedule(self) -> None:
        if self._schedule_task is not None:
            self._schedule_task.cancel()
        self._schedule_task = None
        if self.settings.capacity_schedule:
            self._schedule_task = asyncio.get_running_loop().create_task(self._follow_schedule())

    async def _follow_schedule(self) -> None:
        """Wake waiting requests when the schedule raises the capacity."""
        model = self.model
        while (at := next_change_after(self.settings.capacity_schedule, model.elapsed())) is not None:
            await asyncio.sleep(max(at - model.elapsed(), 0.0) + 0.001)
            model.admit_waiters()

    # -- routes -----------------------------------------------------------------------------------

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stopping is not None and self._stopping.is_set():
            writer.close()
            return
        await serve_connection(reader, writer, self._dispatch, self.settings.max_body_bytes, self._hooks)

    async def _dispatch(self, request: Request) -> Reply:
        path = request.target.rstrip("/") or "/"
        allowed = _ROUTES.get(path)
        if allowed is None:
            return Reply(404, {"error": f"no such endpoint {request.target!r}; rows are POSTed to /rows"})
        if request.method != allowed:
            return Reply(
                405,
                {"error": f"{request.method} is not allowed on {path}; use {allowed}"},
                headers=(("Allow", allowed),),
            )
        if path == OAUTH_PATH:
            if self.auth is None:
                return Reply(404, {"error": "this simulator has no OAuth token endpoint (no auth)"})
            status, answer = self.auth.issue_token(request.headers, request.body)
            return Reply(status, answer)
        if path in ("/rows", "/batch"):
            refusal = self._refusal(request)
            if refusal is not None:
                return refusal
            return await self._handle_row(request, batch=path == "/batch")
        if path == "/reset":
            self.reset()
            return Reply(200, {"reset": True, "stats": self.model.snapshot().as_dict()})
        if path == "/stats":
            return Reply(200, self.model.snapshot().as_dict())
        return Reply(200, {"status": "ok"})

    def _refusal(self, request: Request) -> Reply | None:
        """The answer refusing the request's credentials, or ``None`` (authenticated, or no auth)."""
        if self.auth is None:
            return None
        scheme = "https" if self.tls is not None else "http"
        url = f"{scheme}://{request.headers.get('host', HOST)}{request.target}"
        url += f"?{request.query}" if request.query else ""
        refused = self.auth.check(request.method, url, request.headers, request.body)
        if refused is None:
            return None
        self.model.note_row_request()
        return Reply(refused.status, {"error": refused.reason})

    async def _handle_row(self, request: Request, *, batch: bool = False) -> Reply:
        model = self.model
        arrived = model.now()
        model.note_row_request()
        try:
            row: RowRequest | list[RowRequest] = (
                parse_batch_request(request.headers, request.body)
                if batch
                else parse_row_request(request.headers, request.body)
            )
        except RequestRefusedError as error:
            return model.refuse(error)
        if not model.try_acquire():
            if self.settings.overload == "reject":
                return model.throttle()
            await self._wait_for_slot()
        try:
            return await self._serve(row, arrived)
        finally:
            model.release()

    async def _wait_for_slot(self) -> None:
        """Queue for a slot (``queue`` mode); on cancellation give back a slot granted meanwhile."""
        model = self.model
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        model.wait(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                model.release()  # admitted just as the connection went away
            else:
                model.stop_waiting(waiter)
            raise

    async def _serve(self, row: RowRequest | list[RowRequest], arrived: float) -> Reply:
        latency, fail = self.model.draw_service()
        admitted = self.model.now()
        if latency > 0:
            await self._serve_for(latency)
        if isinstance(row, list):
            return self.model.complete_batch(row, fail, arrived, admitted)
        return self.model.complete_row(row, fail, arrived, admitted)

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


class DownstreamSimulator(LocalService):
    """The simulated downstream API, served from a background thread on 127.0.0.1.

    Use it as a context manager (``with DownstreamSimulator(settings) as sim:``) or call
    :meth:`start` and :meth:`stop`. ``sim.rows_url`` is where rows are POSTed.
    """

    def __init__(
        self,
        settings: SimulatorSettings | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        auth: DownstreamAuth | None = None,
    ) -> None:
        """``tls``: serve HTTPS with this server context (its ``verify_mode`` decides whether a
        client certificate is required: mTLS); ``auth``: the credentials row requests need."""
        self.settings = settings or SimulatorSettings()
        self.tls = tls
        self.auth = auth
        self._server: _DownstreamServer | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> DownstreamSimulator:
        """Bind the port and start serving; return once requests are accepted."""
        if self._thread is not None:
            raise RuntimeError("the downstream simulator is already running")
        server = _DownstreamServer(self.settings, self.tls, self.auth)
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
            raise SimulatorStartError(f"the downstream simulator could not listen on {HOST}: {self._error}")
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
        """Base URL, e.g. ``http://127.0.0.1:54321`` (``https`` when serving TLS)."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{HOST}:{self.port}"

    @property
    def rows_url(self) -> str:
        """Where rows are POSTed."""
        return f"{self.url}/rows"

    @property
    def batch_url(self) -> str:
        """Where batches of rows are POSTed (``{"rows": [{"key", "body"}]}`` → per-row results)."""
        return f"{self.url}/batch"

    @property
    def token_url(self) -> str:
        """The OAuth 2.0 token endpoint (client credentials), when ``auth`` is ``oauth``."""
        return f"{self.url}{OAUTH_PATH}"

    # -- figures ----------------------------------------------------------------------------------

    def stats(self) -> SimulatorStats:
        """A consistent snapshot of the counters (thread-safe)."""
        return self._running_server().model.snapshot()

    def reset(self) -> None:
        """Clear counters and the idempotency store; restart the capacity schedule's clock."""
        server = self._running_server()
        if server.loop is None:  # pragma: no cover - set before start() returns
            raise RuntimeError("the downstream simulator has no event loop")
        asyncio.run_coroutine_threadsafe(_call(server.reset), server.loop).result(_STOP_TIMEOUT_S)

    def applied_keys(self) -> frozenset[str]:
        """Idempotency keys whose row has been applied (since start or the last reset)."""
        return self._running_server().model.applied_keys()

    def _running_server(self) -> _DownstreamServer:
        if self._server is None:
            raise RuntimeError("the downstream simulator is not running; use it in a `with` block")
        return self._server


async def _call(function: Callable[[], None]) -> None:
    function()
