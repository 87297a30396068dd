"""Settings of the downstream API simulator: latency distributions, capacity schedules, validation.

Pure code (no I/O): the parsing used by the ``s3stagger downstream`` command and the sampling used by
the server live here so they can be tested on their own.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from s3stagger.errors import S3StaggerError

OverloadMode = Literal["reject", "queue"]
"""What the simulator does with a request over capacity: answer 429 at once, or make it wait."""

OVERLOAD_MODES: tuple[OverloadMode, ...] = ("reject", "queue")

LATENCY_FORMS = "fixed:SECONDS, uniform:LOW,HIGH or slow-api (uniform 5-30 s)"
SCHEDULE_FORM = "AT_SECONDS:CAPACITY[,AT_SECONDS:CAPACITY...], e.g. 30:10,60:50"

SLOW_API = "slow-api"
"""The latency of the slow downstream API the pattern was designed for: uniform 5-30 s."""
SLOW_API_LATENCY_LOW_S = 5.0
SLOW_API_LATENCY_HIGH_S = 30.0
DEPRECATED_LATENCY_NAMES = {"seed": SLOW_API}
"""Old spellings still read, with the name that replaced them (``seed`` also meant a random seed)."""

CapacitySchedule = tuple[tuple[float, int], ...]
"""Capacity changes: ``(seconds since start, capacity from then on)``, times strictly increasing."""


class SimulatorSettingsError(S3StaggerError, ValueError):
    """A simulator setting is malformed; the message says which one and the expected form."""


@dataclass(frozen=True)
class LatencySpec:
    """How long a request stays in service (before the time scale is applied), in seconds."""

    kind: Literal["fixed", "uniform"]
    low_s: float
    high_s: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low_s) and math.isfinite(self.high_s)):
            raise SimulatorSettingsError(f"latency must be finite, got {self.low_s!r}..{self.high_s!r}")
        if self.low_s < 0:
            raise SimulatorSettingsError(f"latency must be >= 0 seconds, got {self.low_s}")
        if self.high_s < self.low_s:
            raise SimulatorSettingsError(
                f"latency upper bound {self.high_s} is below its lower bound {self.low_s}"
            )
        if self.kind == "fixed" and self.high_s != self.low_s:
            raise SimulatorSettingsError("a fixed latency has one value")

    @classmethod
    def fixed(cls, seconds: float) -> LatencySpec:
        """Every request takes exactly ``seconds``."""
        return cls("fixed", seconds, seconds)

    @classmethod
    def uniform(cls, low_s: float, high_s: float) -> LatencySpec:
        """Each request takes a time drawn uniformly from ``[low_s, high_s]``."""
        return cls("uniform", low_s, high_s)

    @classmethod
    def slow_api(cls) -> LatencySpec:
        """The slow downstream API the pattern was designed for: uniform between 5 and 30 seconds."""
        return cls.uniform(SLOW_API_LATENCY_LOW_S, SLOW_API_LATENCY_HIGH_S)

    @classmethod
    def parse(cls, text: str) -> LatencySpec:
        """Parse ``fixed:0.2``, ``uniform:0.1,0.3`` or ``slow-api``; raise with the expected form.

        The deprecated names of :data:`DEPRECATED_LATENCY_NAMES` are still read.
        """
        raw = text.strip().lower()
        if DEPRECATED_LATENCY_NAMES.get(raw, raw) == SLOW_API:
            return cls.slow_api()
        kind, sep, values = raw.partition(":")
        try:
            if sep and kind == "fixed":
                return cls.fixed(float(values))
            if sep and kind == "uniform":
                low, comma, high = values.partition(",")
                if comma:
                    return cls.uniform(float(low), float(high))
        except ValueError as error:
            if isinstance(error, SimulatorSettingsError):
                raise SimulatorSettingsError(f"latency {text!r}: {error}") from None
            raise SimulatorSettingsError(
                f"latency {text!r} has a value that is not a number; expected {LATENCY_FORMS}"
            ) from None
        raise SimulatorSettingsError(f"latency {text!r} is not understood; expected {LATENCY_FORMS}")

    @property
    def mean_s(self) -> float:
        """The expected latency in seconds."""
        return (self.low_s + self.high_s) / 2

    def sample(self, rng: random.Random) -> float:
        """Draw one latency in seconds."""
        if self.kind == "fixed":
            return self.low_s
        return rng.uniform(self.low_s, self.high_s)

    def describe(self) -> str:
        """The text form :meth:`parse` reads back."""
        if self.kind == "fixed":
            return f"fixed:{self.low_s!r}"
        return f"uniform:{self.low_s!r},{self.high_s!r}"


def parse_capacity_schedule(text: str) -> CapacitySchedule:
    """Parse ``"30:10,60:50"`` into ``((30.0, 10), (60.0, 50))``; an empty text is no schedule."""
    entries: list[tuple[float, int]] = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        at, colon, capacity = part.partition(":")
        try:
            if not colon:
                raise ValueError(part)
            entries.append((float(at), int(capacity)))
        except ValueError:
            raise SimulatorSettingsError(
                f"capacity schedule entry {part!r} is not understood; expected {SCHEDULE_FORM}"
            ) from None
    return validate_capacity_schedule(entries)


def validate_capacity_schedule(entries: Sequence[Sequence[float]]) -> CapacitySchedule:
    """Check a schedule (times >= 0 and strictly increasing, capacities >= 0) and normalise it."""
    schedule: list[tuple[float, int]] = []
    for entry in entries:
        if len(entry) != 2:
            raise SimulatorSettingsError(
                f"capacity schedule entry {tuple(entry)!r} must be (seconds since start, capacity)"
            )
        at, capacity = float(entry[0]), entry[1]
        if not math.isfinite(at) or at < 0:
            raise SimulatorSettingsError(f"capacity schedule time {entry[0]!r} must be >= 0 seconds")
        if isinstance(capacity, bool) or int(capacity) != capacity or capacity < 0:
            raise SimulatorSettingsError(f"capacity schedule capacity {capacity!r} must be an integer >= 0")
        if schedule and at <= schedule[-1][0]:
            raise SimulatorSettingsError(
                f"capacity schedule times must increase: {at:g} s comes after {schedule[-1][0]:g} s"
            )
        schedule.append((at, int(capacity)))
    return tuple(schedule)


def capacity_at(base_capacity: int, schedule: CapacitySchedule, elapsed_s: float) -> int:
    """The capacity in force ``elapsed_s`` seconds after start: the last change at or before it."""
    capacity = base_capacity
    for at, scheduled in schedule:
        if at > elapsed_s:
            break
        capacity = scheduled
    return capacity


def next_change_after(schedule: CapacitySchedule, elapsed_s: float) -> float | None:
    """The time of the first capacity change strictly after ``elapsed_s``, or ``None``."""
    for at, _ in schedule:
        if at > elapsed_s:
            return at
    return None


def format_retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds (rounded up) from 1 s, else fractional (local extension)."""
    if seconds >= 1:
        return str(math.ceil(seconds))
    return f"{max(seconds, 0.001):.3f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class SimulatorSettings:
    """Everything that shapes the simulated downstream API."""

    capacity: int = 10
    """Requests in service at once; more is "over capacity"."""
    latency: LatencySpec = field(default_factory=lambda: LatencySpec.fixed(0.02))
    overload: OverloadMode = "reject"
    error_rate: float = 0.0
    """Share of admitted row requests answered ``error_status`` instead of being applied."""
    error_status: int = 503
    """The injected answer: 503 (busy: the processor pauses the object and resumes later) or another
    5xx (a server error: retried, then the row goes to the failed-rows sink)."""
    time_scale: float = 1.0
    """Multiplies every latency and Retry-After; 0.01 turns the slow API's 5-30 s into 50-300 ms."""
    seed: int | None = None
    """Random seed of the draws (latency, injected errors); ``None`` draws differently each run."""
    capacity_schedule: CapacitySchedule = ()
    """``(seconds since start, capacity)`` pairs, in wall-clock seconds (not scaled)."""
    retry_after_s: float | None = None
    """Retry-After advised on 429/503 before scaling; ``None`` = the mean latency (a slot's turnover)."""
    retry_after_http_date: bool = False
    """Send Retry-After as an HTTP-date instead of seconds (exercises clients' date parsing)."""
    port: int = 0
    """TCP port on 127.0.0.1; 0 picks a free one."""
    max_body_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        if isinstance(self.capacity, bool) or not isinstance(self.capacity, int) or self.capacity < 1:
            raise SimulatorSettingsError(f"capacity must be an integer >= 1, got {self.capacity!r}")
        if self.overload not in OVERLOAD_MODES:
            raise SimulatorSettingsError(
                f"overload mode {self.overload!r} is not one of {', '.join(OVERLOAD_MODES)}"
            )
        if not (0.0 <= self.error_rate <= 1.0):
            raise SimulatorSettingsError(f"error rate must be between 0 and 1, got {self.error_rate!r}")
        if not 500 <= self.error_status <= 599:
            raise SimulatorSettingsError(f"error status must be a 5xx status, got {self.error_status!r}")
        if not (math.isfinite(self.time_scale) and self.time_scale >= 0):
            raise SimulatorSettingsError(f"time scale must be a finite number >= 0, got {self.time_scale!r}")
        if self.retry_after_s is not None and not (
            math.isfinite(self.retry_after_s) and self.retry_after_s >= 0
        ):
            raise SimulatorSettingsError(
                f"retry-after must be a finite number of seconds >= 0, got {self.retry_after_s!r}"
            )
        if not (0 <= self.port <= 65535):
            raise SimulatorSettingsError(f"port must be between 0 and 65535, got {self.port}")
        if self.max_body_bytes < 1:
            raise SimulatorSettingsError(f"max body bytes must be >= 1, got {self.max_body_bytes}")
        object.__setattr__(self, "capacity_schedule", validate_capacity_schedule(self.capacity_schedule))

    @property
    def max_capacity(self) -> int:
        """The highest capacity ever in force (base or scheduled)."""
        return max([self.capacity, *(capacity for _, capacity in self.capacity_schedule)])

    def retry_after_seconds(self) -> float:
        """The Retry-After hint in (scaled) seconds."""
        base = self.latency.mean_s if self.retry_after_s is None else self.retry_after_s
        return base * self.time_scale
