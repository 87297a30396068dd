"""Why an object as a whole cannot be processed."""

from __future__ import annotations

from enum import StrEnum

from s3stagger.errors import S3StaggerError


class RejectionReason(StrEnum):
    """A terminal reason: retrying the same object version would fail the same way."""

    OBJECT_GONE = "object_gone"
    OBJECT_CHANGED = "object_changed"
    EMPTY_OBJECT = "empty_object"
    OBJECT_TOO_LARGE = "object_too_large"
    NOT_UTF8 = "not_utf8"
    NOT_CSV = "not_csv"
    NO_HEADER = "no_header"
    INVALID_HEADER = "invalid_header"
    HEADER_MISMATCH = "header_mismatch"
    DELIMITER_MISMATCH = "delimiter_mismatch"
    INVALID_CURSOR = "invalid_cursor"


class ObjectRejectedError(S3StaggerError):
    """The object cannot be processed at all; ``reason`` says why, the message says what to do."""

    def __init__(self, reason: RejectionReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
