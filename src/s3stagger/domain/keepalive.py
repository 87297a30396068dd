"""What a processor call keeps invisible while it works: its message and its dispatcher's lease.

The dispatcher hands each call ``"keepalive": {"visibility_s": N, "message": {"queue_url",
"receipt_handle"}, "lease": {...}}`` (its message and its lease token; either may be absent).
While the call runs, each hold's visibility is set to ``visibility_s`` every
:attr:`KeepAlive.beat_interval_s`. Nothing else renews the lease, so once a dispatcher dies (stopped,
timed out) its lease is free at most ``visibility_s`` after its last call ended, and the message of
a call it left running reappears at most ``visibility_s`` after that call ended — not after the long
ceilings the dispatcher sets before a call. Pure: no I/O
(:mod:`s3stagger.adapters.visibility_keepalive` renews).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from s3stagger.domain.model import InvalidRequestError

KEEPALIVE_KEY = "keepalive"
BEATS_PER_VISIBILITY = 3
"""Renewals per visibility period: two beats may fail or come late before a hold lapses."""


@dataclass(frozen=True)
class Hold:
    """One SQS message held invisible: where it is and the receipt handle that holds it."""

    queue_url: str
    receipt_handle: str


@dataclass(frozen=True)
class KeepAlive:
    visibility_s: int
    holds: tuple[Hold, ...]
    message: Hold | None = None
    """The call's own message among ``holds`` (None: the payload names none)."""

    @property
    def beat_interval_s(self) -> float:
        return self.visibility_s / BEATS_PER_VISIBILITY


HOLD_NAMES = ("message", "lease")


def keepalive_of(event: Any) -> KeepAlive | None:
    """The event's keep-alive, or ``None`` (no ``keepalive`` key: a call from elsewhere)."""
    if not isinstance(event, dict) or event.get(KEEPALIVE_KEY) is None:
        return None
    spec = event[KEEPALIVE_KEY]
    shape = "keepalive must be {visibility_s, message?, lease?: {queue_url, receipt_handle}}"
    if not isinstance(spec, dict):
        raise InvalidRequestError(shape)
    visibility = spec.get("visibility_s")
    if not isinstance(visibility, int) or isinstance(visibility, bool) or not 1 <= visibility <= 43_200:
        raise InvalidRequestError(f"keepalive.visibility_s must be 1-43200 s, got {visibility!r}")
    holds = []
    message = None
    for name in HOLD_NAMES:
        hold = spec.get(name)
        if hold is None:
            continue
        if not isinstance(hold, dict) or not all(isinstance(hold.get(k), str) for k in Hold.__annotations__):
            raise InvalidRequestError(f"{shape}: {name} is {hold!r}")
        holds.append(Hold(hold["queue_url"], hold["receipt_handle"]))
        if name == "message":
            message = holds[-1]
    return KeepAlive(visibility, tuple(holds), message)
