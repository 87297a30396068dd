"""``s3stagger logs``: search what the local Splunk HEC indexed (``demo`` and ``local up`` start it).

The functions' log lines reach the local HEC through the same transform as on AWS; each event about
an object carries its key as the indexed field ``object_key``. ``--object KEY`` lists that object's
events in time order (``--json``: one HEC event per line, as Splunk indexed it).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from s3stagger.cli.console import fail
from s3stagger.local.splunk_hec import IndexedEvent, read_index, search_events
from s3stagger.local.telemetry_location import SPLUNK_INDEX_FILE, TELEMETRY_DIR_ENV, default_telemetry_dir


def _describe(event: IndexedEvent) -> tuple[str, str, str, str]:
    moment = (
        ""
        if event.time is None
        else datetime.fromtimestamp(event.time, UTC).isoformat(timespec="milliseconds")
    )
    body = event.event if isinstance(event.event, dict) else {"message": event.event}
    if "_aws" in body:
        message = "EMF metrics: " + ", ".join(
            m["Name"] for d in body["_aws"].get("CloudWatchMetrics", []) for m in d.get("Metrics", [])
        )
    else:
        message = str(body.get("message", ""))
    return moment, str(event.source or ""), str(body.get("level", "")), message


def logs(
    *,
    object_key: Annotated[
        str | None, typer.Option("--object", help="Only the events about this object key.")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="Only the events of this log group (e.g. /aws/lambda/s3stagger-processor)."),
    ] = None,
    index: Annotated[
        Path | None,
        typer.Option(
            help=f"The local HEC's index file (default: {SPLUNK_INDEX_FILE} in ${TELEMETRY_DIR_ENV} "
            "or the local state dir)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One indexed HEC event per line.")] = False,
) -> None:
    """Search the log events the local Splunk HEC indexed."""
    path = index or default_telemetry_dir() / SPLUNK_INDEX_FILE
    if not path.exists():
        fail(f"no local Splunk index at {path}: run `s3stagger demo` or `s3stagger local up` first", code=2)
    indexed = read_index(path)
    found = sorted(search_events(indexed, object_key=object_key, source=source), key=lambda e: e.time or 0.0)
    if not found:
        what = " and ".join(
            f for f in (object_key and f"object {object_key}", source and f"source {source}") if f
        )
        fail(f"no events about {what or 'anything'} among the {len(indexed)} events of {path}")
    if as_json:
        for event in found:
            typer.echo(json.dumps(asdict(event)))
        return
    table = Table(title=f"{len(found)} events ({path})", title_justify="left")
    for column in ("time (UTC)", "source", "level", "message"):
        table.add_column(column)
    for event in found:
        table.add_row(*_describe(event))
    Console().print(table)
