"""The processor's vocabulary: the object to process, the cursor to continue from, the run summary."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from s3stagger.errors import S3StaggerError


class InvalidRequestError(S3StaggerError, ValueError):
    """The processor's input is not an object reference (or its cursor is malformed)."""


class RunStatus(StrEnum):
    COMPLETE = "COMPLETE"
    """Every data row of the object was applied or recorded as failed."""
    PARTIAL = "PARTIAL"
    """Stopped early (deadline or rows-per-invocation limit); continue with the cursor."""
    REJECTED = "REJECTED"
    """The object as a whole cannot be processed; a quarantine record says why. Terminal."""


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object version to process."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Cursor:
    """Where a PARTIAL run stopped: enough to resume with a ranged GET of the same object version."""

    next_row: int
    """Number of the first data row not yet taken (data rows count from 1)."""
    byte_offset: int
    """Byte offset where that row's record starts."""
    header_end: int
    """Byte offset just after the header record (the header is re-read from bytes 0..header_end-1)."""
    etag: str
    """ETag of the object version read; a different ETag means the object changed."""
    version_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "next_row": self.next_row,
            "byte_offset": self.byte_offset,
            "header_end": self.header_end,
            "etag": self.etag,
            "version_id": self.version_id,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Cursor:
        """Parse a cursor produced by :meth:`as_dict`; raises :class:`InvalidRequestError`."""
        if not isinstance(data, dict):
            raise InvalidRequestError(f"cursor must be an object or null, got {type(data).__name__}")
        try:
            next_row, byte_offset, header_end = data["next_row"], data["byte_offset"], data["header_end"]
            etag = data["etag"]
        except KeyError as missing:
            raise InvalidRequestError(f"cursor lacks {missing.args[0]!r}") from None
        integers = {"next_row": next_row, "byte_offset": byte_offset, "header_end": header_end}
        for name, value in integers.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidRequestError(f"cursor {name} must be a non-negative integer, got {value!r}")
        if next_row < 1 or byte_offset < header_end or header_end < 1:
            raise InvalidRequestError(f"cursor is inconsistent: {data!r}")
        if not isinstance(etag, str) or not etag:
            raise InvalidRequestError("cursor etag must be a non-empty string")
        version_id = data.get("version_id")
        if version_id is not None and not isinstance(version_id, str):
            raise InvalidRequestError("cursor version_id must be a string or null")
        return cls(next_row, byte_offset, header_end, etag, version_id)


@dataclass(frozen=True)
class ProcessRequest:
    """One processor invocation: the object and, when continuing, the cursor."""

    object: ObjectRef
    cursor: Cursor | None = None


@dataclass
class RunSummary:
    """What one invocation did. Counters cover this invocation only."""

    status: RunStatus
    bucket: str
    key: str
    cursor: Cursor | None = None
    rows_applied: int = 0
    rows_failed: int = 0
    retries: int = 0
    throttled: int = 0
    timeouts: int = 0
    duration_ms: int = 0
    error: dict[str, str] | None = None
    failed_rows_object: str | None = None
    """``s3://bucket/key`` of the failed-rows (or quarantine) record written, if any."""
    concurrency_limit: int = 0
    """Adaptive concurrency limit at the end of the invocation."""
    warning: str | None = None
    """A surprise let through (a header that looks delimited by another character); answered only when set."""
    auth_refreshes: int = 0
    """Credentials refreshed after the downstream refused them (a rotated secret): 0 or 1."""

    def as_dict(self) -> dict[str, Any]:
        """The handler's JSON-serialisable answer."""
        return {
            "status": self.status.value,
            "cursor": self.cursor.as_dict() if self.cursor else None,
            "bucket": self.bucket,
            "key": self.key,
            "rows_applied": self.rows_applied,
            "rows_failed": self.rows_failed,
            "retries": self.retries,
            "throttled": self.throttled,
            "timeouts": self.timeouts,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "failed_rows_object": self.failed_rows_object,
            "concurrency_limit": self.concurrency_limit,
            "auth_refreshes": self.auth_refreshes,
        } | ({"warning": self.warning} if self.warning else {})
