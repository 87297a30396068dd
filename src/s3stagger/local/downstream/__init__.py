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

Split as moto splits a service: :mod:`.settings` (what shapes the API, parsed and validated),
:mod:`.model` (state and rules: capacity, the idempotency ledger, stats; no sockets),
:mod:`.protocol` (HTTP/1.1 with h11) and :mod:`.server` (the asyncio loop in a background thread,
start and stop). All state changes go through the model's lock, so
:meth:`DownstreamSimulator.stats` is a consistent snapshot from any thread.
"""

from s3stagger.local.downstream.model import DownstreamModel, SimulatorStats, body_fingerprint
from s3stagger.local.downstream.server import DownstreamSimulator
from s3stagger.local.downstream.settings import (
    LatencySpec,
    OverloadMode,
    SimulatorSettings,
    SimulatorSettingsError,
    parse_capacity_schedule,
)

__all__ = [
    "DownstreamModel",
    "DownstreamSimulator",
    "LatencySpec",
    "OverloadMode",
    "SimulatorSettings",
    "SimulatorSettingsError",
    "SimulatorStats",
    "body_fingerprint",
    "parse_capacity_schedule",
]
