"""The keep-alive a dispatcher hands a processor call: parsed strictly, absent means none."""

from __future__ import annotations

from typing import Any

import pytest

from s3stagger.domain.keepalive import Hold, KeepAlive, keepalive_of
from s3stagger.domain.model import InvalidRequestError

MESSAGE = {"queue_url": "https://q/normal", "receipt_handle": "m-1"}
LEASE = {"queue_url": "https://q/lease.fifo", "receipt_handle": "l-1"}


def test_a_call_without_keepalive_has_none() -> None:
    assert keepalive_of({"object": {}}) is None
    assert keepalive_of({"keepalive": None}) is None
    assert keepalive_of("not a dict") is None


def test_the_message_and_the_lease_are_held_in_that_order() -> None:
    spec = keepalive_of({"keepalive": {"visibility_s": 30, "message": MESSAGE, "lease": LEASE}})
    message = Hold("https://q/normal", "m-1")
    assert spec == KeepAlive(30, (message, Hold("https://q/lease.fifo", "l-1")), message)
    assert spec.beat_interval_s == 10


def test_either_hold_may_be_absent() -> None:
    spec = keepalive_of({"keepalive": {"visibility_s": 5, "lease": LEASE}})
    assert spec is not None
    assert spec.holds == (Hold("https://q/lease.fifo", "l-1"),)


@pytest.mark.parametrize(
    ("keepalive", "message"),
    [
        ([], "keepalive must be"),
        ({"visibility_s": 0, "message": MESSAGE}, "visibility_s must be 1-43200 s, got 0"),
        ({"visibility_s": True, "message": MESSAGE}, "visibility_s must be 1-43200 s, got True"),
        ({"visibility_s": "30", "message": MESSAGE}, "visibility_s must be 1-43200 s, got '30'"),
        ({"visibility_s": 30, "message": {"queue_url": "q"}}, "message is"),
        ({"visibility_s": 30, "lease": "l-1"}, "lease is"),
    ],
)
def test_a_malformed_keepalive_is_an_invalid_request(keepalive: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        keepalive_of({"keepalive": keepalive})
