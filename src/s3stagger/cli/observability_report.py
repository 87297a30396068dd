"""The demo report's ``observability`` section: what the functions logged and what reached the local
Splunk HEC, what metrics reached the local Dynatrace, and the dashboard page rendered from them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from s3stagger.cli.pipeline_run import PipelineRun

SECTION = "observability"


class ObservabilityCollector:
    """A :class:`~s3stagger.cli.pipeline_run.SectionCollector`: delivers what is still buffered,
    then reads the receivers' figures."""

    name = SECTION

    def collect(self, run: PipelineRun) -> dict[str, Any]:
        observability = run.stack.observability
        if observability is None:
            return {"enabled": False}
        observability.settle()
        limit = run.settings.capacity / (run.latency.mean_s * run.settings.time_scale)
        page = observability.render_dashboard(rows_per_s_limit=limit)
        return {
            "enabled": True,
            **observability.figures(),
            "dashboard": str(page.path),
            "dashboard_tiles": page.tiles,
            "dashboard_tiles_with_data": len(page.tiles_with_data),
        }


def render_observability(figures: dict[str, Any]) -> Table:
    """The section for people."""
    table = Table(title="logs (Splunk) and metrics (Dynatrace)", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row(
        "log lines written / indexed by the HEC",
        f"{figures['function_log_lines']} / {figures['splunk_events_received']}",
    )
    table.add_row(
        "HEC events rejected / backed up / lost",
        " / ".join(
            str(figures[key])
            for key in ("splunk_events_rejected", "splunk_events_backed_up", "splunk_events_lost")
        ),
    )
    table.add_row(
        "Dynatrace lines received / invalid",
        f"{figures['dynatrace_lines_received']} / {figures['dynatrace_lines_invalid']}",
    )
    if "dashboard_tiles" in figures:
        table.add_row(
            "dashboard tiles with data",
            f"{figures['dashboard_tiles_with_data']} / {figures['dashboard_tiles']}",
        )
    for key in ("splunk_delivery_error", "dynatrace_delivery_error"):
        if figures.get(key):
            table.add_row(key.replace("_", " "), f"[red]{figures[key]}[/red]")
    return table


def print_observability(sections: dict[str, dict[str, Any]], console: Console) -> None:
    """Print the section, if the run had one."""
    figures = sections.get(SECTION, {})
    if figures.get("enabled"):
        console.print(render_observability(figures))
