"""Shared console output of the operator commands: errors go to stderr, unwrapped, then exit.

:func:`one_line_errors` is the one place a command's project error (:class:`S3StaggerError`)
becomes ``error: <message>`` on stderr and a non-zero exit status instead of a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from s3stagger.errors import S3StaggerError

EXIT_USAGE = 2
"""Exit status of a command given a wrong flag or a malformed value (as click's usage errors)."""


class BadOptionError(S3StaggerError, ValueError):
    """A flag's value is malformed (e.g. an endpoint URL with no scheme); exit status 2."""


P = ParamSpec("P")
R = TypeVar("R")


def stderr_console() -> Console:
    """A console writing to standard error (progress, live views and messages)."""
    return Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` on stderr (one line, not wrapped) and exit with ``code``."""
    stderr_console().print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code=code)


def one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so a project error ends it with one line on stderr: exit status 2 for a bad
    option (:class:`BadOptionError`), 1 for any other; anything else (a bug) still surfaces."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except BadOptionError as error:
            fail(str(error), code=EXIT_USAGE)
        except S3StaggerError as error:
            fail(str(error))

    return run
