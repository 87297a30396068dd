import asyncio

import httpx
import pytest

from s3stagger.adapters.downstream_client import HttpDownstream, build_http_transports


def test_a_downstream_needs_a_transport() -> None:
    with pytest.raises(ValueError, match="at least one transport"):
        HttpDownstream([], "http://127.0.0.1:9/rows")


def test_transports_share_one_connection_each_and_close() -> None:
    transports = build_http_transports(3)
    assert len(transports) == 3

    async def close() -> None:
        async with HttpDownstream(transports, "http://127.0.0.1:9/rows"):
            pass

    asyncio.run(close())


def test_a_per_request_timeout_never_exceeds_the_configured_ones() -> None:
    downstream = HttpDownstream([httpx.AsyncHTTPTransport()], "http://127.0.0.1:9/rows", 2.0, 30.0)
    assert downstream._timeouts(None) == {"connect": 2.0, "read": 30.0, "write": 30.0, "pool": 30.0}
    assert downstream._timeouts(0.5) == {"connect": 0.5, "read": 0.5, "write": 0.5, "pool": 0.5}
    assert downstream._timeouts(99.0)["read"] == 30.0
