"""``s3stagger cost COUNTERS.json``: dollars per million objects, by line item, from a run's counters.

The counters are a :class:`~s3stagger.domain.cost.CountedWork` as JSON — what a perf-test run
counted (``report.json`` holds one per run under ``runs[].cost_counters``; ``--run`` picks one from a
report) — priced with ``definitions/prices.json`` and scaled to the reference workload.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from s3stagger.cli.console import fail
from s3stagger.definitions.model import Definitions
from s3stagger.domain.cost import CostEstimate, CostModelError, CountedWork, estimate_cost


def counters_from(document: Any, run: str | None) -> dict[str, Any]:
    """The counters in ``document``: a counters object, or a perf-test ``report.json`` (one run of
    it, named ``scenario/dispatcher``; the first when ``run`` is not given)."""
    if isinstance(document, dict) and isinstance(document.get("runs"), list):
        runs = {
            f"{r.get('scenario')}/{r.get('dispatcher')}": r for r in document["runs"] if isinstance(r, dict)
        }
        if not runs:
            raise CostModelError("the report has no runs")
        name = run or next(iter(runs))
        if name not in runs:
            raise CostModelError(f"no run {name!r} in the report; runs: {', '.join(runs)}")
        counters = runs[name].get("cost_counters")
        if not isinstance(counters, dict):
            raise CostModelError(f"run {name!r} has no cost_counters")
        return counters
    if not isinstance(document, dict):
        raise CostModelError("the counters must be a JSON object")
    return document


def render_cost(estimate: CostEstimate) -> Table:
    table = Table(
        title=(
            f"cost per million objects (reference workload), prices {estimate.region} as of "
            f"{estimate.prices_as_of}, time scale {estimate.time_scale:.2f}"
        )
    )
    for column in ("line item", "quantity", "unit", "USD"):
        table.add_column(column, justify="left" if column in {"line item", "unit"} else "right")
    for item in sorted(estimate.items, key=lambda i: i.usd, reverse=True):
        table.add_row(item.name, f"{item.quantity:,.1f}", item.unit, f"{item.usd:,.2f}")
    table.add_row("total (the pattern's)", "", "", f"{estimate.total_usd:,.2f}", style="bold")
    for item in estimate.excluded:
        table.add_row(
            f"excluded: {item.name}", f"{item.quantity:,.1f}", item.unit, f"{item.usd:,.2f}", style="dim"
        )
    return table


def cost(
    counters: Annotated[Path, typer.Argument(help="Counters JSON of a run, or a perf-test report.json.")],
    run: Annotated[
        str | None, typer.Option(help="In a report.json: the run, as scenario/dispatcher.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the estimate as one JSON object.")] = False,
) -> None:
    """Dollars per million objects, with the line items, from a run's counted work."""
    try:
        document = json.loads(counters.read_text(encoding="utf-8"))
    except OSError as error:
        fail(f"cannot read {counters}: {error.strerror or error}", 2)
    except ValueError as error:
        fail(f"{counters} is not JSON: {error}", 2)
    try:
        work = CountedWork.from_dict(counters_from(document, run))
        estimate = estimate_cost(work, Definitions.read().prices)
    except CostModelError as error:
        fail(f"{counters}: {error}", 2)
    if as_json:
        typer.echo(json.dumps(estimate.as_dict()))
    else:
        Console().print(render_cost(estimate))
