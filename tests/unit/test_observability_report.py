"""The demo's observability section for people."""

from __future__ import annotations

import io

from rich.console import Console

from s3stagger.cli.observability_report import print_observability

FIGURES = {
    "enabled": True,
    "function_log_lines": 60,
    "splunk_events_received": 58,
    "splunk_events_rejected": 0,
    "splunk_events_backed_up": 2,
    "splunk_events_lost": 0,
    "dynatrace_lines_received": 255,
    "dynatrace_lines_invalid": 0,
    "dashboard_tiles": 10,
    "dashboard_tiles_with_data": 9,
    "splunk_delivery_error": "the HEC refused the token",
    "dynatrace_delivery_error": None,
}


def printed(sections: dict) -> str:  # type: ignore[type-arg]
    out = io.StringIO()
    print_observability(sections, Console(file=out, width=200))
    return out.getvalue()


def test_the_section_shows_written_indexed_backed_up_and_errors() -> None:
    text = printed({"observability": FIGURES})
    assert "60 / 58" in text
    assert "0 / 2 / 0" in text
    assert "255 / 0" in text
    assert "9 / 10" in text
    assert "the HEC refused the token" in text
    assert "dynatrace delivery error" not in text


def test_nothing_is_printed_without_the_section() -> None:
    assert printed({}) == ""
    assert printed({"observability": {"enabled": False}}) == ""
