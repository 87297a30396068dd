"""Dynatrace's metric ingestion protocol (pure): write a data point as one line, and read a line
back, checked as ``POST /api/v2/metrics/ingest`` checks it.

A line is ``metric.key[,dim="value",...] <payload> [timestamp]``:

- the key: dot-separated sections of letters, digits, ``-`` and ``_``; it starts with a letter or
  ``_``, no section starts with ``-``, 3 to 255 characters, never under ``dt.``;
- dimensions: at most 50, each ``key="value"`` (or an unquoted value without spaces, commas or
  quotes); keys of lower-case letters, digits, ``-``, ``.``, ``:`` and ``_``, at most 100
  characters, each key once; values at most 250 characters, ``\\"`` and ``\\\\`` escaped;
- the payload: ``gauge,<v>``; ``gauge,min=<v>,max=<v>,sum=<v>,count=<n>`` (all four, min <= max,
  count a positive integer); ``count,delta=<v>``; or a bare ``<v>`` (a gauge); finite numbers;
- the timestamp: UTC milliseconds, from one hour in the past to ten minutes in the future.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

KEY_MIN, KEY_MAX = 3, 255
DIMENSIONS_MAX = 50
DIMENSION_KEY_MAX = 100
DIMENSION_VALUE_MAX = 250
PAST_MS = 60 * 60 * 1000
FUTURE_MS = 10 * 60 * 1000
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_][A-Za-z0-9_-]*)*")
_DIMENSION_KEY = re.compile(r"[a-z_][a-z0-9_.:-]*")


class LineError(ValueError):
    """Why a line is invalid (the API's ``invalidLines[].error``)."""


class PayloadKind(StrEnum):
    GAUGE = "gauge"
    SUMMARY = "summary"
    """A gauge given as min, max, sum and count."""
    COUNT_DELTA = "count"


@dataclass(frozen=True)
class Summary:
    min: float
    max: float
    sum: float
    count: int

    @property
    def average(self) -> float:
        return self.sum / self.count


@dataclass(frozen=True)
class MetricLine:
    key: str
    dimensions: tuple[tuple[str, str], ...]
    kind: PayloadKind
    value: float
    """The gauge value, the count's delta, or the summary's average."""
    summary: Summary | None = None
    timestamp_ms: int | None = None


# -- writing ----------------------------------------------------------------------------------------
def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _prefix(key: str, dimensions: Mapping[str, str]) -> str:
    return key + "".join(f",{name}={_quoted(value)}" for name, value in sorted(dimensions.items()))


def _suffix(timestamp_ms: int | None) -> str:
    return "" if timestamp_ms is None else f" {timestamp_ms}"


def gauge_line(key: str, dimensions: Mapping[str, str], value: float, timestamp_ms: int | None = None) -> str:
    return f"{_prefix(key, dimensions)} gauge,{_number(value)}{_suffix(timestamp_ms)}"


def summary_line(
    key: str, dimensions: Mapping[str, str], summary: Summary, timestamp_ms: int | None = None
) -> str:
    payload = (
        f"gauge,min={_number(summary.min)},max={_number(summary.max)},"
        f"sum={_number(summary.sum)},count={summary.count}"
    )
    return f"{_prefix(key, dimensions)} {payload}{_suffix(timestamp_ms)}"


def count_line(key: str, dimensions: Mapping[str, str], delta: float, timestamp_ms: int | None = None) -> str:
    return f"{_prefix(key, dimensions)} count,delta={_number(delta)}{_suffix(timestamp_ms)}"


# -- reading ----------------------------------------------------------------------------------------
def parse_line(line: str, now_ms: int) -> MetricLine:
    """One line, checked; raise :class:`LineError` saying what is wrong."""
    end_of_key = len(line)
    for separator in (",", " "):
        found = line.find(separator)
        if found != -1:
            end_of_key = min(end_of_key, found)
    key = line[:end_of_key]
    check_key(key)
    position = end_of_key
    dimensions: list[tuple[str, str]] = []
    while position < len(line) and line[position] == ",":
        name, dimension_value, position = _dimension(line, position + 1)
        if any(name == seen for seen, _ in dimensions):
            raise LineError(f"dimension key {name!r} is given twice")
        dimensions.append((name, dimension_value))
    if len(dimensions) > DIMENSIONS_MAX:
        raise LineError(f"{len(dimensions)} dimensions: at most {DIMENSIONS_MAX} are allowed")
    if position >= len(line) or line[position] != " ":
        raise LineError("a payload is required after the key and dimensions, separated by a space")
    parts = line[position + 1 :].split(" ")
    if len(parts) > 2 or not parts[0]:
        raise LineError("expected '<payload>' or '<payload> <timestamp>' after the dimensions")
    kind, value, summary = _payload(parts[0])
    timestamp = _timestamp(parts[1], now_ms) if len(parts) == 2 else None
    return MetricLine(key, tuple(sorted(dimensions)), kind, value, summary, timestamp)


def check_key(key: str) -> None:
    if not KEY_MIN <= len(key) <= KEY_MAX:
        raise LineError(f"metric key {key!r} must be {KEY_MIN} to {KEY_MAX} characters long")
    if not _KEY.fullmatch(key):
        raise LineError(
            f"metric key {key!r}: sections of letters, digits, '-' and '_', not starting with a digit "
            "or '-' (sections not with '-')"
        )
    if key.startswith("dt."):
        raise LineError(f"metric key {key!r}: the 'dt.' prefix is reserved")


def _dimension(line: str, start: int) -> tuple[str, str, int]:
    equals = line.find("=", start)
    if equals == -1:
        raise LineError('a dimension must be key="value"')
    name = line[start:equals]
    if not _DIMENSION_KEY.fullmatch(name) or len(name) > DIMENSION_KEY_MAX:
        raise LineError(
            f"dimension key {name!r}: lower-case letters, digits, '-', '.', ':' and '_', "
            f"at most {DIMENSION_KEY_MAX} characters"
        )
    position = equals + 1
    if position < len(line) and line[position] == '"':
        value, position = _quoted_value(line, position + 1, name)
    else:
        value, position = _unquoted_value(line, position, name)
    if not value or len(value) > DIMENSION_VALUE_MAX:
        raise LineError(f"dimension {name!r}: the value must be 1 to {DIMENSION_VALUE_MAX} characters")
    return name, value, position


def _quoted_value(line: str, position: int, name: str) -> tuple[str, int]:
    """The value of a quoted dimension starting after its opening quote, and the position after it."""
    chars: list[str] = []
    while position < len(line) and line[position] != '"':
        if line[position] == "\\":
            if position + 1 >= len(line) or line[position + 1] not in '"\\':
                raise LineError(f'dimension {name!r}: only \\" and \\\\ may be escaped')
            position += 1
        chars.append(line[position])
        position += 1
    if position >= len(line):
        raise LineError(f"dimension {name!r}: the quoted value is not closed")
    position += 1
    if position < len(line) and line[position] not in ", ":
        raise LineError(f"dimension {name!r}: unexpected text after the quoted value")
    return "".join(chars), position


def _unquoted_value(line: str, position: int, name: str) -> tuple[str, int]:
    end = position
    while end < len(line) and line[end] not in ", ":
        end += 1
    value = line[position:end]
    if '"' in value or "=" in value:
        raise LineError(f"dimension {name!r}: an unquoted value may not hold quotes or '='")
    return value, end


def _finite(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise LineError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value) or text.strip().lower() in {"nan", "inf", "-inf", "infinity"}:
        raise LineError(f"{what} {text!r} is not a finite number")
    return value


def _payload(text: str) -> tuple[PayloadKind, float, Summary | None]:
    head, _, rest = text.partition(",")
    if not rest:
        return PayloadKind.GAUGE, _finite(head, "value"), None
    if head == "count":
        if not rest.startswith("delta="):
            raise LineError("a count payload is count,delta=<value> (absolute counts are not supported)")
        return PayloadKind.COUNT_DELTA, _finite(rest[len("delta=") :], "count delta"), None
    if head != "gauge":
        raise LineError(f"payload type {head!r}: expected gauge or count")
    if "=" not in rest:
        return PayloadKind.GAUGE, _finite(rest, "gauge value"), None
    summary = _summary(rest)
    return PayloadKind.SUMMARY, summary.average, summary


def _summary(text: str) -> Summary:
    """``min=..,max=..,sum=..,count=..`` (any order, each once)."""
    members: dict[str, str] = {}
    for member in text.split(","):
        name, _, value = member.partition("=")
        if name not in {"min", "max", "sum", "count"} or name in members:
            raise LineError(f"gauge summary member {name!r}: expected min, max, sum and count once each")
        members[name] = value
    if set(members) != {"min", "max", "sum", "count"}:
        raise LineError("a gauge summary needs all of min, max, sum and count")
    low, high = _finite(members["min"], "min"), _finite(members["max"], "max")
    total, count = _finite(members["sum"], "sum"), _finite(members["count"], "count")
    if low > high:
        raise LineError(f"min {members['min']} is greater than max {members['max']}")
    if not count.is_integer() or count < 1:
        raise LineError(f"count {members['count']} must be a positive integer")
    return Summary(low, high, total, int(count))


def _timestamp(text: str, now_ms: int) -> int:
    if not text.isdigit():
        raise LineError(f"timestamp {text!r} must be UTC milliseconds (an integer)")
    timestamp = int(text)
    if timestamp < now_ms - PAST_MS or timestamp > now_ms + FUTURE_MS:
        raise LineError(
            f"timestamp {timestamp} is out of range: from one hour in the past to ten minutes in the future"
        )
    return timestamp
