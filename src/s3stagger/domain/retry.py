"""Retry decisions for downstream calls: what is retryable, how long to wait, Retry-After parsing.

Backoff is exponential with *full jitter* (a uniform draw between 0 and the exponential ceiling),
which spreads retries of many clients apart. A ``Retry-After`` answer is honoured (capped), in each
of its forms: delta-seconds (``"2"``), a decimal number of seconds (``"0.05"``, the local
simulator's extension when its time is compressed) and an HTTP-date.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})


def is_retryable_status(status: int) -> bool:
    """True for answers worth retrying: 408, 429 and every 5xx; other 4xx are permanent."""
    return status in RETRYABLE_CLIENT_STATUSES or 500 <= status <= 599


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or ``None`` if absent or unreadable.

    ``now`` (timezone-aware) is needed for the HTTP-date form only; a date in the past gives 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            return None
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - reference).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a row gets and how long to wait between them."""

    max_attempts: int = 5
    """Attempts per row, the first included."""
    base_delay_s: float = 0.1
    max_delay_s: float = 10.0
    """Cap of the exponential ceiling and of an honoured Retry-After."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("retry delays must be >= 0")

    def should_retry(self, attempt: int) -> bool:
        """Whether another attempt follows attempt number ``attempt`` (1-based) that failed."""
        return attempt < self.max_attempts

    def delay_s(self, attempt: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one.

        Full jitter: uniform in [0, min(max_delay, base · 2^(attempt-1))]. A Retry-After is a floor
        (capped at ``max_delay_s``): the wait is never shorter than what the server asked for.
        """
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        jittered = rng.uniform(0.0, ceiling)
        if retry_after_s is None:
            return jittered
        return max(jittered, min(retry_after_s, self.max_delay_s))
