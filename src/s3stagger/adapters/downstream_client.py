"""The downstream API client: one request per row (or per batch of rows), classified outcomes.

The client does one attempt; retry decisions belong to the caller (:mod:`s3stagger.domain.delivery`).
What the request looks like comes from the :class:`~s3stagger.domain.request_mapping.RequestMapping`;
credentials from a :class:`~s3stagger.adapters.auth.RequestAuth`, refreshed once per invocation
after a 401/403 so a rotated secret is picked up before the refusal counts.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Sequence

import httpx

from s3stagger.adapters.auth import NoAuth, RequestAuth
from s3stagger.domain.delivery import Delivery, DeliveryOutcome
from s3stagger.domain.request_mapping import (
    IDEMPOTENCY_HEADER,
    HttpRequestSpec,
    OutgoingRow,
    RequestMapping,
    batch_deliveries,
)
from s3stagger.domain.retry import parse_retry_after

__all__ = ["IDEMPOTENCY_HEADER", "HttpDownstream", "build_http_transports", "shared_tls_context"]

AUTH_REFUSALS = frozenset({401, 403})
MAX_REFRESHES_PER_INVOCATION = 3
"""Credential refreshes one invocation may make (each for different credentials): enough for a
rotation or two mid-invocation, few enough that credentials the API keeps refusing cost a handful
of secret reads or token requests before the breaker stops the object."""


def build_http_transports(
    connections: int, tls: ssl.SSLContext | None = None
) -> list[httpx.AsyncHTTPTransport]:
    """``connections`` httpx transports of one keep-alive connection each, verifying with ``tls``
    (default: :func:`shared_tls_context`).

    Why transports of one connection each rather than one ``AsyncClient`` with a pool of
    ``connections``: httpcore's pool re-examines every pooled connection (a ``poll`` system call
    each) whenever a request is assigned or a connection released, so its cost per request grows
    with the pool; and the client layer (URL merging, cookies, auth and redirect flows) costs about
    a quarter of the CPU of a request the processor does not need. Measured against the simulator
    (C = 20, L = 20 ms): one pooled client about 270 rows/s; twenty single-connection clients about
    730 rows/s at about 0.6 ms CPU per row; transports about 0.46 ms CPU per row.
    """
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    tls = tls or shared_tls_context()
    return [
        httpx.AsyncHTTPTransport(verify=tls, limits=limits, retries=0) for _ in range(max(1, connections))
    ]


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    """One TLS context (httpx's defaults: certifi's CA bundle) for every transport and invocation.

    Loading the CA bundle costs about 20 ms of CPU; a context per transport would spend it once per
    connection on every invocation.
    """
    return httpx.create_ssl_context()


REPLAYED_HEADER = "Idempotent-Replayed"
ALREADY_APPLIED = "ok, already applied"
"""The detail of a 2xx whose Idempotency-Key the downstream had applied before (``Idempotent-Replayed``)."""


class HttpDownstream:
    """Sends rows through the transports it is given, one request on each at once.

    Timeouts: ``connect_timeout_s`` to open a connection, ``read_timeout_s`` for each read or write;
    :meth:`deliver` may shorten them for one request (the invocation's deadline). One instance
    serves one invocation: ``auth_refreshes`` counts the credential refreshes it caused.
    """

    def __init__(
        self,
        transports: Sequence[httpx.AsyncBaseTransport],
        mapping: RequestMapping | str,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 30.0,
        *,
        auth: RequestAuth | None = None,
    ) -> None:
        if not transports:
            raise ValueError("HttpDownstream needs at least one transport")
        self._transports = list(transports)
        self._idle: asyncio.LifoQueue[httpx.AsyncBaseTransport] = asyncio.LifoQueue()
        for transport in self._transports:
            self._idle.put_nowait(transport)
        self._mapping = RequestMapping(mapping) if isinstance(mapping, str) else mapping
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._auth: RequestAuth = auth or NoAuth()
        self._refreshed_generations: set[int] = set()
        self.auth_refreshes = 0

    async def aclose(self) -> None:
        """Close every connection."""
        for transport in self._transports:
            await transport.aclose()

    async def __aenter__(self) -> HttpDownstream:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def _timeouts(self, timeout_s: float | None) -> dict[str, float]:
        read = self._read_timeout_s if timeout_s is None else min(self._read_timeout_s, timeout_s)
        connect = min(self._connect_timeout_s, read)
        return {"connect": connect, "read": read, "write": read, "pool": read}

    async def deliver(self, rows: Sequence[OutgoingRow], timeout_s: float | None = None) -> list[Delivery]:
        """One attempt carrying ``rows``; one classified delivery per row.

        Raises only when credentials cannot be obtained at all
        (:class:`~s3stagger.adapters.auth.AuthenticationError`,
        :class:`~s3stagger.adapters.secrets.SecretUnavailableError`): the invocation fails.
        """
        spec = self._mapping.build(rows)
        started = time.monotonic()
        request = self._request(spec, timeout_s)
        used = self._auth.authorize(request)
        delivery, content = await self._send(request, started)
        if delivery.status in AUTH_REFUSALS and self._may_retry_with_new_credentials(used):
            request = self._request(spec, timeout_s)
            self._auth.authorize(request)
            delivery, content = await self._send(request, started)
        if len(rows) == 1 and self._mapping.rows_per_request == 1:
            return [delivery]
        return batch_deliveries(self._mapping, rows, delivery, content)

    def _may_retry_with_new_credentials(self, used: int) -> bool:
        """After a 401/403: newer credentials are there already, or a refresh got them. One refresh
        per credentials refused (so a wrong secret is re-read once), at most
        :data:`MAX_REFRESHES_PER_INVOCATION` in all."""
        if used != self._auth.generation:
            return True
        if used in self._refreshed_generations or self.auth_refreshes >= MAX_REFRESHES_PER_INVOCATION:
            return False
        self._refreshed_generations.add(used)
        self.auth_refreshes += 1
        return self._auth.refresh(used)

    def _request(self, spec: HttpRequestSpec, timeout_s: float | None) -> httpx.Request:
        return httpx.Request(
            spec.method,
            spec.url,
            content=spec.content,
            headers=spec.headers,
            extensions={"timeout": self._timeouts(timeout_s)},
        )

    async def _send(self, request: httpx.Request, started: float) -> tuple[Delivery, bytes]:
        transport = await self._idle.get()
        try:
            response = await transport.handle_async_request(request)
            try:
                content = await response.aread()
            finally:
                await response.aclose()
        except httpx.TimeoutException as error:
            return _no_answer(DeliveryOutcome.TIMED_OUT, f"timed out: {type(error).__name__}", started)
        except httpx.ConnectError as error:
            return _no_answer(DeliveryOutcome.UNREACHABLE, f"cannot connect: {error}", started)
        except httpx.TransportError as error:
            return _no_answer(
                DeliveryOutcome.RETRYABLE_ERROR,
                f"connection failed: {type(error).__name__}: {error}",
                started,
            )
        finally:
            self._idle.put_nowait(transport)
        latency = _since(started)
        status = response.status_code
        outcome = self._mapping.outcome(status)
        if outcome is DeliveryOutcome.APPLIED:
            replayed = response.headers.get(REPLAYED_HEADER, "").lower() == "true"
            detail = ALREADY_APPLIED if replayed else "ok"
            return Delivery(outcome, status, detail, None, latency), content
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if outcome is DeliveryOutcome.REJECTED:
            retry_after = None
        detail = f"HTTP {status}: {response.text[:200]}"
        return Delivery(outcome, status, detail, retry_after, latency), content


def _no_answer(outcome: DeliveryOutcome, detail: str, started: float) -> tuple[Delivery, bytes]:
    return Delivery(outcome, None, detail, None, _since(started)), b""


def _since(started: float) -> float:
    return time.monotonic() - started
