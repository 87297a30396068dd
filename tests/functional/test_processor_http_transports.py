"""The processor's HTTP transports against the real simulator: one keep-alive connection each."""

from __future__ import annotations

import asyncio

import httpx

from s3stagger.adapters.downstream_client import HttpDownstream, build_http_transports
from s3stagger.domain.delivery import DeliveryOutcome
from s3stagger.domain.request_mapping import OutgoingRow, RowRequest
from s3stagger.local.downstream import DownstreamSimulator, LatencySpec, SimulatorSettings

SETTINGS = SimulatorSettings(capacity=20, latency=LatencySpec.fixed(0.02), seed=1)


async def post(transport: httpx.AsyncBaseTransport, url: str, key: str) -> int:
    request = httpx.Request("POST", url, json={"data": {"id": key}}, headers={"Idempotency-Key": key})
    response = await transport.handle_async_request(request)
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response.status_code


def test_a_transport_never_opens_a_second_connection_even_when_asked_for_two_requests_at_once() -> None:
    with DownstreamSimulator(SETTINGS) as sim:

        async def send() -> list[int]:
            (transport,) = build_http_transports(1)
            try:
                at_once = await asyncio.gather(*(post(transport, sim.rows_url, f"k{n}") for n in range(4)))
                one_by_one = [await post(transport, sim.rows_url, f"k{n}") for n in range(4, 6)]
            finally:
                await transport.aclose()
            return [*at_once, *one_by_one]

        statuses = asyncio.run(send())
        stats = sim.stats()
    assert statuses == [200] * 6
    assert stats.effects_applied == 6
    # The four sent at once queued for the transport's one connection, which then served the rest.
    assert stats.peak_concurrency == 1
    assert stats.connections_opened == 1


def test_the_downstream_client_keeps_one_connection_per_transport_across_many_rows() -> None:
    with DownstreamSimulator(SETTINGS) as sim:

        async def send() -> list[DeliveryOutcome]:
            async with HttpDownstream(build_http_transports(3), sim.rows_url) as client:
                deliveries = await asyncio.gather(
                    *(
                        client.deliver([OutgoingRow(n + 1, f"key-{n}", RowRequest({"data": {"id": n}}))])
                        for n in range(24)
                    )
                )
            return [delivery.outcome for (delivery,) in deliveries]

        outcomes = asyncio.run(send())
        stats = sim.stats()
    assert outcomes == [DeliveryOutcome.APPLIED] * 24
    assert stats.effects_applied == 24
    assert stats.peak_concurrency <= 3
    assert stats.connections_opened == 3  # kept alive and reused: not one per row
