"""Where local mode keeps its telemetry (light on imports: ``s3stagger logs`` reads it without moto).

``<dir>/splunk-index.jsonl`` holds what the local Splunk HEC indexed, ``<dir>/dynatrace-series.jsonl``
the data points the local Dynatrace endpoint accepted, ``<dir>/dashboard.html`` the dashboard's
tiles, ``<dir>/backup/`` what could not be delivered (the S3 backup's twin). The first three
describe the last local run; the backup folder keeps everything.
"""

from __future__ import annotations

import os
from pathlib import Path

TELEMETRY_DIR_ENV = "S3STAGGER_TELEMETRY_DIR"
SPLUNK_INDEX_FILE = "splunk-index.jsonl"
DYNATRACE_SERIES_FILE = "dynatrace-series.jsonl"
DASHBOARD_FILE = "dashboard.html"
BACKUP_DIR = "backup"


def default_telemetry_dir() -> Path:
    """``$S3STAGGER_TELEMETRY_DIR``, else ``$XDG_STATE_HOME/s3stagger/telemetry`` (``~/.local/state``)."""
    if os.environ.get(TELEMETRY_DIR_ENV):
        return Path(os.environ[TELEMETRY_DIR_ENV])
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "s3stagger" / "telemetry"
