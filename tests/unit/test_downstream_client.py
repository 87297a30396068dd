"""The downstream client: status and network failure → outcome, Retry-After in every form (MockTransport)."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable

import httpx
import pytest

from s3stagger.adapters.downstream_client import HttpDownstream, build_http_transports
from s3stagger.domain.delivery import Delivery, DeliveryOutcome
from s3stagger.domain.request_mapping import OutgoingRow, RowRequest


def one_row(key: str, body: object = None) -> list[OutgoingRow]:
    return [OutgoingRow(1, key, RowRequest(body if body is not None else {}))]


def test_a_downstream_needs_a_transport() -> None:
    with pytest.raises(ValueError, match="at least one transport"):
        HttpDownstream([], "http://127.0.0.1:9/rows")


def test_transports_are_built_one_per_connection_with_one_tls_context() -> None:
    transports = build_http_transports(3)
    assert len(transports) == 3
    assert len(build_http_transports(0)) == 1
    contexts = {id(t._pool._ssl_context) for t in transports}
    assert len(contexts) == 1


def test_a_per_request_timeout_never_exceeds_the_configured_ones() -> None:
    downstream = HttpDownstream([httpx.AsyncHTTPTransport()], "http://127.0.0.1:9/rows", 2.0, 30.0)
    assert downstream._timeouts(None) == {"connect": 2.0, "read": 30.0, "write": 30.0, "pool": 30.0}
    assert downstream._timeouts(0.5) == {"connect": 0.5, "read": 0.5, "write": 0.5, "pool": 0.5}
    assert downstream._timeouts(99.0)["read"] == 30.0


def deliver_through(
    handler: Callable[[httpx.Request], httpx.Response], timeout_s: float | None = None
) -> tuple[Delivery, list[httpx.Request]]:
    """One :meth:`HttpDownstream.deliver` through an ``httpx.MockTransport`` answering with ``handler``."""
    seen: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async def once() -> Delivery:
        async with HttpDownstream([httpx.MockTransport(recording)], "http://downstream.test/rows") as client:
            (delivery,) = await client.deliver(
                one_row("key-1", {"data": {"id": "1", "name": "café"}}), timeout_s
            )
            return delivery

    return asyncio.run(once()), seen


def answer(
    status: int, retry_after: str | None = None, text: str = ""
) -> Callable[[httpx.Request], httpx.Response]:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return lambda _request: httpx.Response(status, headers=headers, text=text)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, DeliveryOutcome.APPLIED),
        (201, DeliveryOutcome.APPLIED),
        (204, DeliveryOutcome.APPLIED),
        (429, DeliveryOutcome.THROTTLED),
        (408, DeliveryOutcome.RETRYABLE_ERROR),
        (500, DeliveryOutcome.RETRYABLE_ERROR),
        (502, DeliveryOutcome.RETRYABLE_ERROR),
        (503, DeliveryOutcome.RETRYABLE_ERROR),
        (400, DeliveryOutcome.REJECTED),
        (404, DeliveryOutcome.REJECTED),
        (409, DeliveryOutcome.REJECTED),
        (413, DeliveryOutcome.REJECTED),
        (422, DeliveryOutcome.REJECTED),
        (301, DeliveryOutcome.REJECTED),  # no redirect is followed: a moved URL is a deployment error
    ],
)
def test_each_status_is_classified(status: int, outcome: DeliveryOutcome) -> None:
    delivery, _ = deliver_through(answer(status, text="why" * 100))
    assert delivery.outcome is outcome
    assert delivery.status == status
    if outcome is not DeliveryOutcome.APPLIED:
        assert delivery.detail == f"HTTP {status}: " + ("why" * 100)[:200]


def test_the_row_is_posted_as_compact_json_with_its_idempotency_key_and_the_shortened_timeout() -> None:
    delivery, seen = deliver_through(answer(200), timeout_s=0.5)
    assert delivery.outcome is DeliveryOutcome.APPLIED
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "http://downstream.test/rows"
    assert request.headers["Idempotency-Key"] == "key-1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.content == '{"data":{"id":"1","name":"café"}}'.encode()
    assert request.extensions["timeout"] == {"connect": 0.5, "read": 0.5, "write": 0.5, "pool": 0.5}


def at(offset_s: float) -> Callable[[], str]:
    """A Retry-After HTTP-date ``offset_s`` from the moment the test runs (not when it is collected)."""
    return lambda: email.utils.formatdate(time.time() + offset_s, usegmt=True)


def literal(value: str) -> Callable[[], str]:
    return lambda: value


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [
        (literal("7"), 7.0, 7.0),
        (literal(" 3 "), 3.0, 3.0),
        (literal("0.25"), 0.25, 0.25),  # decimal seconds (the simulator's compressed time)
        (literal("0"), 0.0, 0.0),
        (literal("-4"), 0.0, 0.0),  # a negative wait is no wait
        (at(120), 118.0, 121.0),  # HTTP-date: seconds from now (one-second resolution)
        (at(-3600), 0.0, 0.0),  # a date in the past: retry now
    ],
    ids=["seconds", "padded", "decimal", "zero", "negative", "http-date", "http-date-past"],
)
def test_every_retry_after_form_is_read(
    status: int, retry_after: Callable[[], str], low: float, high: float
) -> None:
    delivery, _ = deliver_through(answer(status, retry_after()))
    assert delivery.retry_after_s is not None
    assert low <= delivery.retry_after_s <= high


@pytest.mark.parametrize("retry_after", [None, "", "soon", "nan", "inf", "Mon, 99 Foo 2026 25:61:00 GMT"])
def test_an_absent_or_unreadable_retry_after_is_no_hint(retry_after: str | None) -> None:
    delivery, _ = deliver_through(answer(429, retry_after))
    assert delivery.outcome is DeliveryOutcome.THROTTLED
    assert delivery.retry_after_s is None


def test_retry_after_is_ignored_on_answers_that_are_not_retried() -> None:
    assert deliver_through(answer(200, "5"))[0].retry_after_s is None
    assert deliver_through(answer(422, "5"))[0].retry_after_s is None


@pytest.mark.parametrize(
    ("error", "outcome", "detail"),
    [
        (httpx.ConnectError("refused"), DeliveryOutcome.UNREACHABLE, "cannot connect: refused"),
        (httpx.ConnectTimeout("slow"), DeliveryOutcome.TIMED_OUT, "timed out: ConnectTimeout"),
        (httpx.ReadTimeout("slow"), DeliveryOutcome.TIMED_OUT, "timed out: ReadTimeout"),
        (httpx.RemoteProtocolError("cut"), DeliveryOutcome.RETRYABLE_ERROR, "RemoteProtocolError: cut"),
        (httpx.ReadError("reset"), DeliveryOutcome.RETRYABLE_ERROR, "ReadError: reset"),
    ],
)
def test_network_failures_are_outcomes_not_exceptions(
    error: httpx.TransportError, outcome: DeliveryOutcome, detail: str
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    delivery, _ = deliver_through(fail)
    assert delivery.outcome is outcome
    assert delivery.status is None
    assert detail in delivery.detail


def test_a_transport_is_given_back_after_a_failure_so_the_next_row_can_use_it() -> None:
    answers = iter([httpx.ConnectError("refused"), httpx.Response(200)])

    def flaky(request: httpx.Request) -> httpx.Response:
        result = next(answers)
        if isinstance(result, Exception):
            raise result
        return result

    async def twice() -> list[DeliveryOutcome]:
        async with HttpDownstream([httpx.MockTransport(flaky)], "http://downstream.test/rows") as client:
            (first,) = await asyncio.wait_for(client.deliver(one_row("k1")), 5)
            (second,) = await asyncio.wait_for(client.deliver(one_row("k2")), 5)
        return [first.outcome, second.outcome]

    assert asyncio.run(twice()) == [DeliveryOutcome.UNREACHABLE, DeliveryOutcome.APPLIED]
