"""``s3stagger mail``: the mail the local SMTP server received (``local up`` and ``demo`` start it).

Lists the messages of the local mailbox (an mbox file, path printed by ``local up``), newest last,
or shows one with its headers — ``Received:`` says whether it came over STARTTLS with AUTH
(``with ESMTPSA``).
"""

from __future__ import annotations

import json
import mailbox
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Annotated

import typer

from s3stagger.cli.console import fail
from s3stagger.local.mailbox_location import MAILBOX_ENV, default_mailbox

_PARSER = BytesParser(policy=policy.default)


def read_mailbox(path: Path) -> list[mailbox.mboxMessage]:
    return list(mailbox.mbox(str(path), create=False))


def mail(
    *,
    show: Annotated[
        int | None, typer.Option("--show", min=1, help="Show message N (1 = oldest) in full.")
    ] = None,
    mbox: Annotated[
        Path | None,
        typer.Option("--mbox", help=f"The mailbox file (default: ${MAILBOX_ENV} or the local state dir)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per message.")] = False,
) -> None:
    """List (or show) the alert emails the local SMTP server received."""
    path = mbox or default_mailbox()
    if not path.exists():
        fail(f"no mailbox at {path}: start `s3stagger local up` or `s3stagger demo`, or pass --mbox", code=2)
    messages = read_mailbox(path)
    if show is not None:
        if show > len(messages):
            fail(f"--show {show}: the mailbox {path} holds {len(messages)} message(s)", code=2)
        parsed = _PARSER.parsebytes(messages[show - 1].as_bytes())
        if as_json:
            typer.echo(json.dumps({"headers": dict(parsed.items()), "body": _body(parsed)}))
        else:
            typer.echo("\n".join(f"{name}: {value}" for name, value in parsed.items()))
            typer.echo("")
            typer.echo(_body(parsed))
        return
    for number, message in enumerate(messages, start=1):
        parsed = _PARSER.parsebytes(message.as_bytes())
        row = {
            "n": number,
            "date": str(parsed.get("Date", "")),
            "subject": " ".join(str(parsed.get("Subject", "")).split()),  # unfolded
            "starttls_auth": "with ESMTPSA" in str(parsed.get("Received", "")),
        }
        if as_json:
            typer.echo(json.dumps(row))
        else:
            tls = "STARTTLS+AUTH" if row["starttls_auth"] else "plain"
            typer.echo(f"{number:>4}  {row['date']:<31}  {tls:<13}  {row['subject']}")
    if not as_json:
        typer.echo(f"{len(messages)} message(s) in {path}; `s3stagger mail --show N` shows one")


def _body(message: object) -> str:
    get_body = getattr(message, "get_body", None)
    part = get_body(preferencelist=("plain",)) if get_body else None
    return str(part.get_content()) if part is not None else ""
