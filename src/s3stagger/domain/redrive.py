"""Redrive decisions, without I/O: which dead-lettered message moves, and where to.

A message in a dead-letter queue is described by :class:`DeadLetter` (its object key, why it is
there, how old it is). :class:`RedriveFilter` says which ones an operator asked for, and
:func:`route_by_key` says which priority queue an ingest-DLQ event belongs to — or why none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class DeadLetter:
    """What is known of one dead-lettered message."""

    key: str | None
    """The S3 object key it is about, or ``None`` when the body names none."""
    reason: str
    age_s: float
    """Seconds since the message was first sent (a moved message keeps its first send time)."""


@dataclass(frozen=True)
class RedriveFilter:
    """Which messages a redrive takes: all of them by default."""

    key_prefix: str = ""
    reason_contains: str = ""
    """Case-insensitive words of the recorded reason."""
    min_age_s: float = 0.0
    """Only messages at least this old."""

    @property
    def narrows(self) -> bool:
        return bool(self.key_prefix or self.reason_contains or self.min_age_s)

    def matches(self, letter: DeadLetter) -> bool:
        if self.key_prefix and not (letter.key or "").startswith(self.key_prefix):
            return False
        if self.reason_contains and self.reason_contains.lower() not in letter.reason.lower():
            return False
        return letter.age_s >= self.min_age_s


@dataclass(frozen=True)
class Unroutable:
    reason: str


def route_by_key(key: str | None, key_prefixes: Mapping[str, str], object_suffix: str) -> str | Unroutable:
    """The priority whose route takes ``key`` (as the EventBridge rules route uploads), or why none does."""
    if key is None:
        return Unroutable("the message names no object key (not an S3 event)")
    if not key.endswith(object_suffix):
        return Unroutable(f"key {key!r} does not end in {object_suffix!r}")
    for priority, prefix in key_prefixes.items():
        if key.startswith(prefix):
            return priority
    routes = ", ".join(f"{prefix!r}" for prefix in key_prefixes.values())
    return Unroutable(
        f"key {key!r} is under no route's prefix ({routes}): move it under one and upload again"
    )


def dead_letter_reason(attributes: Mapping[str, str], receive_count: int) -> str:
    """Why a message is dead-lettered: EventBridge's error attributes, else its receive count."""
    code = attributes.get("ERROR_CODE")
    if code:
        return f"{code}: {attributes.get('ERROR_MESSAGE', '')}".strip()
    return f"failed its receives ({receive_count} received)"


def object_key_of_message(body: str) -> str | None:
    """The S3 object key a queue message is about (S3 event, dispatcher continuation, plain ref)."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    if isinstance(message.get("continuation"), dict):
        message = message["continuation"].get("object", {})
    if isinstance(message.get("object"), dict) and "detail" not in message:
        message = message["object"]
    detail = message.get("detail")
    if isinstance(detail, dict) and isinstance(detail.get("object"), dict):
        key = detail["object"].get("key")
        return str(key) if key is not None else None
    key = message.get("key")
    return str(key) if key is not None else None
