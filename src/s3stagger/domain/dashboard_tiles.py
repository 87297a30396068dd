"""The Dynatrace dashboard's tiles, read and evaluated on data points (pure).

``definitions/dynatrace_dashboard.json`` is a classic Dynatrace dashboard: each ``DATA_EXPLORER``
tile holds ``metricExpressions`` of the form ``resolution=null&(<selector>):limit(100):names``.
This module reads the subset of Dynatrace's metric selector the dashboard uses —
``<key>:filter(<condition>):splitBy(<dims>):<max|min|sum|avg>[:rate(1s)]`` with conditions
``eq``, ``prefix``, ``suffix``, ``not`` and ``and`` — so that the test of the tiles' metric keys
and the local dashboard page read the very same document Terraform deploys. An expression outside
that subset raises :class:`SelectorError`, so the dashboard cannot grow a tile nobody checks.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from s3stagger.domain.dynatrace_lines import Summary

Dimensions = tuple[tuple[str, str], ...]
Series = Mapping[tuple[str, Dimensions], Sequence[tuple[int, Summary]]]
"""``(metric key, dimensions)`` → ``(timestamp ms, summary)`` data points."""
Condition = Callable[[Mapping[str, str]], bool]
_EXPRESSION = re.compile(r"resolution=[^&]*&\((?P<selector>.*)\):limit\(\d+\):names")
_AGGREGATIONS = {"max", "min", "sum", "avg"}


class SelectorError(ValueError):
    """A metric expression outside the subset this module reads."""


@dataclass(frozen=True)
class TileQuery:
    query_id: str
    metric_key: str
    condition: Condition
    split_by: tuple[str, ...]
    aggregation: str
    rate_per_second: bool


@dataclass(frozen=True)
class Tile:
    name: str
    chart: str
    queries: tuple[TileQuery, ...]
    thresholds: Mapping[str, float]
    """Query id → the value from which the tile colours a value red (the alarm's threshold)."""


def dashboard_tiles(document: Mapping[str, Any]) -> list[Tile]:
    """The tiles of a classic dashboard document, their expressions parsed."""
    tiles: list[Tile] = []
    for raw in document["tiles"]:
        queries = tuple(
            parse_expression(query["id"], expression)
            for query, expression in zip(raw["queries"], raw["metricExpressions"], strict=True)
        )
        for query, declared in zip(queries, raw["queries"], strict=True):
            if declared["metric"] != query.metric_key:
                raise SelectorError(f"tile {raw['name']!r}: query {query.query_id} names another metric")
        thresholds = {
            str(item["queryId"]): float(item["rules"][1]["value"])
            for item in raw.get("visualConfig", {}).get("thresholds", [])
        }
        tiles.append(Tile(raw["name"], raw["visualConfig"]["type"], queries, thresholds))
    return tiles


def parse_expression(query_id: str, expression: str) -> TileQuery:
    match = _EXPRESSION.fullmatch(expression)
    if match is None:
        raise SelectorError(f"not resolution=...&(<selector>):limit(N):names: {expression}")
    parts = _split_top_level(match.group("selector"), ":")
    key, operations = parts[0], parts[1:]
    condition: Condition = lambda dimensions: True  # noqa: E731 - the default filter
    split_by: tuple[str, ...] = ()
    aggregation: str | None = None
    rate = False
    for operation in operations:
        name, _, rest = operation.partition("(")
        argument = rest[:-1] if rest.endswith(")") else None
        if name == "filter" and argument is not None:
            condition = parse_condition(argument)
        elif name == "splitBy" and argument is not None:
            split_by = tuple(json.loads(f"[{argument}]"))
        elif name in _AGGREGATIONS and not rest:
            aggregation = name
        elif name == "rate" and argument == "1s":
            rate = True
        else:
            raise SelectorError(f"selector operation {operation!r} is not one the dashboard may use")
    if aggregation is None:
        raise SelectorError(f"selector {match.group('selector')!r} has no aggregation")
    return TileQuery(query_id, key, condition, split_by, aggregation, rate)


def parse_condition(text: str) -> Condition:
    name, _, rest = text.partition("(")
    if not rest.endswith(")"):
        raise SelectorError(f"condition {text!r} is not name(arguments)")
    arguments = _split_top_level(rest[:-1], ",")
    if name == "and":
        parts = [parse_condition(argument) for argument in arguments]
        return lambda dimensions: all(part(dimensions) for part in parts)
    if name == "not" and len(arguments) == 1:
        inner = parse_condition(arguments[0])
        return lambda dimensions: not inner(dimensions)
    if name in {"eq", "prefix", "suffix"} and len(arguments) == 2:
        dimension, value = (json.loads(argument) for argument in arguments)
        test: Callable[[str], bool] = {
            "eq": lambda found: found == value,
            "prefix": lambda found: found.startswith(value),
            "suffix": lambda found: found.endswith(value),
        }[name]
        return lambda dimensions: dimension in dimensions and test(dimensions[dimension])
    raise SelectorError(f"condition {name!r} is not one the dashboard may use")


def _split_top_level(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == separator:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def evaluate(query: TileQuery, series: Series, period_s: float) -> dict[str, list[tuple[int, float]]]:
    """The query's lines: split label → ``(timestamp ms, value)``, oldest first."""
    grouped: dict[str, dict[int, list[Summary]]] = defaultdict(lambda: defaultdict(list))
    for (key, dimensions), points in series.items():
        named = dict(dimensions)
        if key != query.metric_key or not query.condition(named):
            continue
        label = ", ".join(named.get(name, "") for name in query.split_by) or query.query_id
        for timestamp, summary in points:
            grouped[label][timestamp].append(summary)
    lines: dict[str, list[tuple[int, float]]] = {}
    for label, by_time in grouped.items():
        values = [
            (timestamp, _aggregate(query.aggregation, items)) for timestamp, items in sorted(by_time.items())
        ]
        if query.rate_per_second:
            values = [(timestamp, value / period_s) for timestamp, value in values]
        lines[label] = values
    return lines


def _aggregate(aggregation: str, items: Sequence[Summary]) -> float:
    if aggregation == "max":
        return max(item.max for item in items)
    if aggregation == "min":
        return min(item.min for item in items)
    if aggregation == "sum":
        return sum(item.sum for item in items)
    return sum(item.sum for item in items) / sum(item.count for item in items)
