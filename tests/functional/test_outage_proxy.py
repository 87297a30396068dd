"""The outage proxy forwards to the downstream simulator, refuses connections during an outage, and
forwards again once restored; the simulator's figures cover the whole time."""

import httpx
import pytest

from s3stagger.local.downstream import DownstreamSimulator, SimulatorSettings
from s3stagger.local.outage_proxy import DownstreamOutageProxy


def test_outage_then_restore() -> None:
    with (
        DownstreamSimulator(SimulatorSettings(capacity=2)) as simulator,
        DownstreamOutageProxy(simulator.port) as proxy,
    ):
        rows = proxy.url("/rows")
        assert httpx.post(rows, json={"id": 1}, headers={"Idempotency-Key": "a"}).status_code == 200
        proxy.outage()
        assert not proxy.up
        with pytest.raises(httpx.ConnectError):
            httpx.post(rows, json={"id": 2}, headers={"Idempotency-Key": "b"})
        proxy.restore()
        assert httpx.post(rows, json={"id": 2}, headers={"Idempotency-Key": "b"}).status_code == 200
        assert simulator.stats().effects_applied == 2
        assert proxy.outages == 1
