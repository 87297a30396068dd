"""Shared console output of the operator commands: errors go to stderr, unwrapped, then exit."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape


def stderr_console() -> Console:
    """A console writing to standard error (progress, live views and messages)."""
    return Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` on stderr (one line, not wrapped) and exit with ``code``."""
    stderr_console().print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code=code)
