"""Production artefacts as data files, read by Terraform and by local mode alike."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

DEFINITIONS_PACKAGE = "s3stagger.definitions"


def read_text(name: str) -> str:
    """Return the text of the definition file ``name`` shipped in this package."""
    return resources.files(DEFINITIONS_PACKAGE).joinpath(name).read_text(encoding="utf-8")


def read_json(name: str) -> Any:
    """Return the parsed JSON definition file ``name``."""
    return json.loads(read_text(name))
