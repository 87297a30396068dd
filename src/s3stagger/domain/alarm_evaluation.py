"""CloudWatch metric-alarm evaluation, as CloudWatch documents it, without I/O.

Local mode needs it because the emulator stores alarms but never evaluates them. The rules
(AWS, "Using Amazon CloudWatch alarms": *Evaluating an alarm* and *Configuring how CloudWatch
alarms treat missing data*):

- A datapoint is the alarm's statistic over one period; it *breaches* when it compares to the
  threshold as ``comparison`` says.
- ``evaluation_periods`` (N) and ``datapoints_to_alarm`` (M): the alarm is in ALARM when at least M
  of the last N datapoints breach ("M out of N"), otherwise OK.
- CloudWatch retrieves more periods than N (the *evaluation range*; here N + 2, as in the
  documentation's 3-period example with a 5-period range). If the range holds at least N real
  datapoints, the most recent N real ones are evaluated and missing ones do not matter. Otherwise
  the missing ones are filled as ``treat_missing_data`` says, as few as possible:
  ``breaching`` → breaching, ``notBreaching`` → not breaching, ``missing`` → not counted
  (no real datapoint at all → INSUFFICIENT_DATA), ``ignore`` → the current state is kept.

The documented table (3 out of 3, range of 5; ``X`` breaching, ``0`` not, ``-`` missing) is
reproduced by ``tests/unit/test_alarm_evaluation.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from s3stagger.errors import S3StaggerError

EXTRA_PERIODS_IN_RANGE = 2
"""Periods the evaluation range holds beyond ``evaluation_periods``."""


class AlarmDefinitionError(S3StaggerError):
    """An alarm's settings are not ones CloudWatch accepts."""


class AlarmState(StrEnum):
    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


class MissingData(StrEnum):
    MISSING = "missing"
    IGNORE = "ignore"
    BREACHING = "breaching"
    NOT_BREACHING = "notBreaching"


class Comparison(StrEnum):
    GREATER_OR_EQUAL = "GreaterThanOrEqualToThreshold"
    GREATER = "GreaterThanThreshold"
    LESS = "LessThanThreshold"
    LESS_OR_EQUAL = "LessThanOrEqualToThreshold"

    def breaches(self, value: float, threshold: float) -> bool:
        if self is Comparison.GREATER_OR_EQUAL:
            return value >= threshold
        if self is Comparison.GREATER:
            return value > threshold
        if self is Comparison.LESS:
            return value < threshold
        return value <= threshold

    @property
    def words(self) -> str:
        """How CloudWatch's state reason says it ("greater than or equal to")."""
        return {
            Comparison.GREATER_OR_EQUAL: "greater than or equal to",
            Comparison.GREATER: "greater than",
            Comparison.LESS: "less than",
            Comparison.LESS_OR_EQUAL: "less than or equal to",
        }[self]


class Statistic(StrEnum):
    SUM = "Sum"
    AVERAGE = "Average"
    MAXIMUM = "Maximum"
    MINIMUM = "Minimum"
    SAMPLE_COUNT = "SampleCount"

    def of(self, values: Sequence[float]) -> float | None:
        """The statistic of one period's values; ``None`` (missing) when there are none."""
        if not values:
            return None
        if self is Statistic.SUM:
            return math.fsum(values)
        if self is Statistic.AVERAGE:
            return math.fsum(values) / len(values)
        if self is Statistic.MAXIMUM:
            return max(values)
        if self is Statistic.MINIMUM:
            return min(values)
        return float(len(values))


@dataclass(frozen=True)
class AlarmRule:
    """What decides an alarm's state: one metric's statistic compared to a threshold."""

    period_s: float
    evaluation_periods: int
    datapoints_to_alarm: int
    comparison: Comparison
    threshold: float
    treat_missing_data: MissingData
    statistic: Statistic = Statistic.MAXIMUM

    def __post_init__(self) -> None:
        if self.period_s <= 0:
            raise AlarmDefinitionError(f"period must be positive, not {self.period_s}")
        if not 1 <= self.datapoints_to_alarm <= self.evaluation_periods:
            raise AlarmDefinitionError(
                f"need 1 <= datapoints_to_alarm ({self.datapoints_to_alarm}) <= "
                f"evaluation_periods ({self.evaluation_periods})"
            )

    @property
    def range_periods(self) -> int:
        return self.evaluation_periods + EXTRA_PERIODS_IN_RANGE


@dataclass(frozen=True)
class Datapoint:
    """One period's statistic; ``value`` ``None`` means the period had no data."""

    start: float
    """Start of the period (epoch seconds)."""
    value: float | None


@dataclass(frozen=True)
class Evaluation:
    """The state the datapoints call for, and CloudWatch-style reasons for it."""

    state: AlarmState
    reason: str
    evaluated: tuple[Datapoint, ...]
    """The datapoints the decision rests on, newest first (as CloudWatch lists them)."""
    breaching: int


def period_datapoints(samples: Sequence[tuple[float, float]], rule: AlarmRule, now: float) -> list[Datapoint]:
    """The evaluation range's datapoints, oldest first, from ``(timestamp, value)`` samples.

    Periods are aligned to multiples of ``period_s``; only periods that have ended by ``now`` count
    (a period still open would be evaluated on part of its data).
    """
    period = rule.period_s
    last_end = math.floor(now / period) * period
    starts = [last_end - period * (rule.range_periods - i) for i in range(rule.range_periods)]
    buckets: dict[int, list[float]] = {index: [] for index in range(len(starts))}
    first = starts[0]
    for timestamp, value in samples:
        index = math.floor((timestamp - first) / period)
        if 0 <= index < len(starts):
            buckets[index].append(value)
    return [Datapoint(start, rule.statistic.of(buckets[i])) for i, start in enumerate(starts)]


def evaluate(rule: AlarmRule, datapoints: Sequence[Datapoint], current: AlarmState) -> Evaluation:
    """The state ``rule`` calls for given the evaluation range ``datapoints`` (oldest first)."""
    window = list(datapoints)[-rule.range_periods :]
    real = [point for point in window if point.value is not None]
    n, m = rule.evaluation_periods, rule.datapoints_to_alarm
    if len(real) >= n:
        considered = real[-n:]
        breaching = sum(1 for point in considered if _breaches(rule, point))
        return _decide(rule, considered, breaching, needed=m)
    missing_to_fill = n - len(real)
    treatment = rule.treat_missing_data
    if treatment is MissingData.IGNORE or (treatment is MissingData.MISSING and not real):
        state = current if treatment is MissingData.IGNORE else AlarmState.INSUFFICIENT_DATA
        why = "missing data ignored: state kept" if state is current else "no datapoints in the range"
        return Evaluation(state, f"Insufficient Data: {len(real)} of {n} datapoints, {why}.", (), 0)
    breaching = sum(1 for point in real if _breaches(rule, point))
    considered = list(real)
    if treatment is MissingData.BREACHING:
        breaching += missing_to_fill
        needed = m
    elif treatment is MissingData.NOT_BREACHING:
        needed = m
    else:  # missing: the filled points count neither way, so M is sought among the real ones
        needed = min(m, len(real))
    return _decide(rule, considered, breaching, needed=needed, filled=missing_to_fill)


def _breaches(rule: AlarmRule, point: Datapoint) -> bool:
    return point.value is not None and rule.comparison.breaches(point.value, rule.threshold)


def _decide(
    rule: AlarmRule, considered: list[Datapoint], breaching: int, *, needed: int, filled: int = 0
) -> Evaluation:
    newest_first = tuple(reversed(considered))
    shown = ", ".join(f"{p.value:g} ({_stamp(p.start)})" for p in newest_first)
    total = len(considered) + filled
    in_alarm = breaching >= needed
    if in_alarm:
        verb = "was" if breaching == 1 else "were"
        reason = (
            f"Threshold Crossed: {breaching} out of the last {total} datapoints [{shown}] {verb} "
            f"{rule.comparison.words} the threshold ({rule.threshold:g}) (minimum {needed} datapoint"
            f"{'s' if needed != 1 else ''} for OK -> ALARM transition)."
        )
    else:
        reason = (
            f"Threshold Crossed: {breaching} out of the last {total} datapoints [{shown}] "
            f"{'was' if breaching == 1 else 'were'} {rule.comparison.words} the threshold "
            f"({rule.threshold:g}) (fewer than {needed} for ALARM)."
        )
    return Evaluation(AlarmState.ALARM if in_alarm else AlarmState.OK, reason, newest_first, breaching)


def _stamp(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%d/%m/%y %H:%M:%S")


def iso_timestamp(epoch_s: float) -> str:
    """CloudWatch's timestamp format in state-change events (``2026-11-30T20:01:00.000+0000``)."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{int(epoch_s * 1000) % 1000:03d}+0000"
    )
