"""The project's error hierarchy.

Every error s3stagger raises on purpose derives from :class:`S3StaggerError`, so a caller (the CLI,
a handler) tells a project error (bad input, a missing resource, a refused setting: say it in one
line) from a bug (anything else: let it surface) with one ``except``.
"""

from __future__ import annotations


class S3StaggerError(Exception):
    """Base of every error s3stagger raises on purpose; its message is one line a person can act on."""
