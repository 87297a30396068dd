"""Adaptive concurrency limit: AIMD (additive increase, multiplicative decrease).

Loss-based, the fit for a downstream that answers 429 over its capacity (see Netflix
concurrency-limits' ``AIMDLimit``). Growth only counts successes while the requests in flight use
at least half of the limit (otherwise the limit is not what holds throughput back); a throttle or a
timeout multiplies the limit by ``backoff_ratio``. It never goes below 1 nor above the maximum.

Growth has two phases, as TCP's congestion control does:

* *slow start*, until the first throttle or timeout: +1 per success, so the limit reaches the
  downstream's capacity within a few round trips;
* *congestion avoidance*, after it: +1 per window of ``limit`` successes (about +1 per round trip).
  Probing +1 per success instead overshoots a downstream whose capacity is below the maximum by
  several requests every round trip: measured with capacity C = 20 and a maximum of 40, 25 % of
  requests were answered 429 with +1 per success, 2 % with +1 per window.

A raised maximum (the autoscaler's share, which its own probes of the whole downstream vouch for)
restarts slow start up to it: +1 per window trailed a rising share by seconds (one invocation at
21 rows in flight of a share of 38, capacity-step scenario).

``congestion_avoidance=False`` keeps +1 per success throughout (Netflix's ``AIMDLimit``).
Pure: no clock, no I/O.
"""

from __future__ import annotations

import math


class AimdLimiter:
    """The number of requests allowed in flight at once, adapted from their outcomes."""

    def __init__(
        self, initial: int, maximum: int, backoff_ratio: float = 0.9, congestion_avoidance: bool = True
    ) -> None:
        if maximum < 1:
            raise ValueError(f"maximum concurrency must be >= 1, got {maximum}")
        if not 0.0 < backoff_ratio < 1.0:
            raise ValueError(f"backoff_ratio must be between 0 and 1 (exclusive), got {backoff_ratio}")
        self._maximum = maximum
        self._backoff_ratio = backoff_ratio
        self._limit = min(max(1, initial), maximum)
        self._peak = self._limit
        self._lowest = self._limit
        self._decreases = 0
        self._congestion_avoidance = congestion_avoidance
        self._slow_start = True
        self._successes_in_window = 0

    @property
    def limit(self) -> int:
        """Requests allowed in flight now (1 ≤ limit ≤ maximum)."""
        return self._limit

    @property
    def peak(self) -> int:
        """Highest limit reached so far."""
        return self._peak

    @property
    def lowest(self) -> int:
        """Lowest limit reached so far."""
        return self._lowest

    @property
    def decreases(self) -> int:
        """How many times the limit was cut (throttles and timeouts)."""
        return self._decreases

    def set_maximum(self, maximum: int) -> None:
        """A new ceiling (the autoscaler's rows in flight per object); the limit follows it down,
        and grows to a raised one in slow start."""
        maximum = max(1, maximum)
        self._slow_start = self._slow_start or maximum > self._maximum
        self._maximum = maximum
        self._limit = min(self._limit, self._maximum)
        self._lowest = min(self._lowest, self._limit)

    def on_success(self, in_flight: int) -> None:
        """A request succeeded while ``in_flight`` requests (itself included) were outstanding."""
        if in_flight * 2 < self._limit or self._limit >= self._maximum:
            return
        if self._congestion_avoidance and not self._slow_start:
            self._successes_in_window += 1
            if self._successes_in_window < self._limit:
                return
        self._successes_in_window = 0
        self._limit += 1
        self._peak = max(self._peak, self._limit)

    def on_throttle(self) -> None:
        """The downstream refused a request for load (429)."""
        self._decrease()

    def on_timeout(self) -> None:
        """A request timed out: treated as a sign of overload, like a throttle."""
        self._decrease()

    def _decrease(self) -> None:
        self._decreases += 1
        self._slow_start = False
        self._successes_in_window = 0
        self._limit = max(1, math.floor(self._limit * self._backoff_ratio))
        self._lowest = min(self._lowest, self._limit)
