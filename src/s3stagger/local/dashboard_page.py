"""The Dynatrace dashboard's tiles as a local HTML page, drawn from the local Dynatrace's data points.

:func:`render_dashboard` reads ``definitions/dynatrace_dashboard.json`` rendered for the local
stack (the document ``terraform/modules/dynatrace-dashboard`` deploys), evaluates every tile's
metric expressions on the series the local Dynatrace ingest endpoint kept
(:mod:`s3stagger.domain.dashboard_tiles`), and writes one self-contained HTML page: a line chart
(inline SVG) per graph tile, a table of values against thresholds for the alarm-state tile. It
reports which tiles had data.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s3stagger.domain.dashboard_tiles import Series, Tile, dashboard_tiles, evaluate
from s3stagger.domain.dynatrace_lines import Summary
from s3stagger.local.dynatrace_ingest import DataPoint, SeriesKey
from s3stagger.local.templates import render_definition_json

DASHBOARD_DEFINITION = "dynatrace_dashboard.json"
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_WIDTH, _HEIGHT, _PAD = 560, 220, 36


@dataclass(frozen=True)
class DashboardPage:
    path: Path
    tiles: int
    tiles_with_data: list[str]

    @property
    def tiles_without_data(self) -> int:
        return self.tiles - len(self.tiles_with_data)


def dashboard_document(name_prefix: str, dashboard_name: str) -> dict[str, Any]:
    """The dashboard as Terraform renders it (``templatefile`` with the same two values)."""
    document: dict[str, Any] = render_definition_json(
        DASHBOARD_DEFINITION, {"name_prefix": name_prefix, "dashboard_name": dashboard_name}
    )
    return document


def series_of(points: Mapping[SeriesKey, Sequence[DataPoint]]) -> Series:
    """The receiver's series as summaries (a plain gauge or count is a summary of one value)."""
    return {
        key: [
            (
                point.timestamp_ms,
                point.line.summary or Summary(point.line.value, point.line.value, point.line.value, 1),
            )
            for point in series
        ]
        for key, series in points.items()
    }


def render_dashboard(
    path: Path,
    document: Mapping[str, Any],
    series: Series,
    period_s: float,
    rows_per_s_limit: float | None = None,
) -> DashboardPage:
    tiles = dashboard_tiles(document)
    with_data: list[str] = []
    sections: list[str] = []
    for tile in tiles:
        lines = {
            f"{query.query_id} {label}" if len(tile.queries) > 1 else label: (query.query_id, values)
            for query in tile.queries
            for label, values in evaluate(query, series, period_s).items()
        }
        if lines:
            with_data.append(tile.name)
        limit = rows_per_s_limit if any(q.rate_per_second for q in tile.queries) else None
        body = _table(tile, lines) if tile.chart == "TABLE" else _chart(lines, limit)
        sections.append(f"<section><h2>{html.escape(tile.name)}</h2>{body}</section>")
    title = html.escape(str(document["dashboardMetadata"]["name"]))
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{title}</h1><p>{len(with_data)} of {len(tiles)} tiles have data; one point per "
        f"{period_s:g} s period (the metric stream's minute, scaled).</p>"
        f"<main>{''.join(sections)}</main></body></html>",
        encoding="utf-8",
    )
    return DashboardPage(path, len(tiles), with_data)


def _chart(lines: Mapping[str, tuple[str, list[tuple[int, float]]]], limit: float | None) -> str:
    if not lines:
        return "<p class='empty'>no data</p>"
    points = [point for _, values in lines.values() for point in values]
    start = min(t for t, _ in points)
    end = max([t for t, _ in points] + [start + 1])
    top = max([v for _, v in points] + ([limit] if limit else []) + [1.0])

    def xy(timestamp: int, value: float) -> str:
        x = _PAD + (timestamp - start) / (end - start) * (_WIDTH - 2 * _PAD)
        y = _HEIGHT - _PAD - value / top * (_HEIGHT - 2 * _PAD)
        return f"{x:.1f},{y:.1f}"

    shapes = [
        f"<line x1='{_PAD}' y1='{_HEIGHT - _PAD}' x2='{_WIDTH - _PAD}' y2='{_HEIGHT - _PAD}' class='axis'/>",
        f"<text x='2' y='{_PAD}'>{top:g}</text><text x='2' y='{_HEIGHT - _PAD}'>0</text>",
    ]
    legend = []
    for index, (label, (_, values)) in enumerate(sorted(lines.items())):
        colour = _COLOURS[index % len(_COLOURS)]
        shapes.append(
            f"<polyline fill='none' stroke='{colour}' stroke-width='2' "
            f"points='{' '.join(xy(t, v) for t, v in values)}'/>"
        )
        legend.append(
            f"<span style='color:{colour}'>&#9632; {html.escape(label)} (last {values[-1][1]:g})</span>"
        )
    if limit:
        y = xy(start, limit).split(",")[1]
        shapes.append(f"<line x1='{_PAD}' y1='{y}' x2='{_WIDTH - _PAD}' y2='{y}' class='limit'/>")
        legend.append(f"<span class='limit'>- - limit C / L = {limit:g}</span>")
    return f"<svg viewBox='0 0 {_WIDTH} {_HEIGHT}'>{''.join(shapes)}</svg><p>{' '.join(legend)}</p>"


def _table(tile: Tile, lines: Mapping[str, tuple[str, list[tuple[int, float]]]]) -> str:
    if not lines:
        return "<p class='empty'>no data</p>"
    rows = []
    for label, (query_id, values) in sorted(lines.items()):
        threshold = tile.thresholds.get(query_id)
        peak = max(v for _, v in values)
        last = values[-1][1]
        state = "ALARM" if threshold is not None and last >= threshold else "OK"
        rows.append(
            f"<tr class='{state.lower()}'><td>{html.escape(label)}</td><td>{last:g}</td><td>{peak:g}</td>"
            f"<td>{'' if threshold is None else f'{threshold:g}'}</td><td>{state}</td></tr>"
        )
    return (
        "<table><tr><th>series</th><th>last</th><th>peak</th><th>alarm from</th><th>state</th></tr>"
        + "".join(rows)
        + "</table>"
    )


_STYLE = (
    "body{font-family:sans-serif;margin:1em}main{display:grid;grid-template-columns:repeat(2,1fr);gap:1em}"
    "section{border:1px solid #ccc;padding:.5em}h2{font-size:1em}svg{width:100%}"
    ".axis{stroke:#888}.limit{stroke:#d62728;stroke-dasharray:6 4;color:#d62728}text{font-size:10px}"
    "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eee}"
    "tr.alarm td{color:#dc172a;font-weight:bold}.empty{color:#999}"
)
