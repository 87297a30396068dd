"""Where local mode keeps received mail (light on imports: ``s3stagger mail`` reads it without moto)."""

from __future__ import annotations

import os
from pathlib import Path

MAILBOX_ENV = "S3STAGGER_MAILBOX"


def default_mailbox() -> Path:
    """``$S3STAGGER_MAILBOX``, else ``$XDG_STATE_HOME/s3stagger/mail.mbox`` (``~/.local/state``)."""
    if os.environ.get(MAILBOX_ENV):
        return Path(os.environ[MAILBOX_ENV])
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "s3stagger" / "mail.mbox"
