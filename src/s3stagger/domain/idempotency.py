"""Idempotency keys: one stable key per row of one version of one object."""

from __future__ import annotations

import hashlib

NULL_VERSION_ID = "null"
"""The version id S3 gives every object written while versioning is off or suspended."""


def object_version_token(version_id: str | None, etag: str) -> str:
    """What identifies one version of an object: its version id, or its ETag when it has none.

    The literal ``"null"`` version id is shared by every overwrite on an unversioned or suspended
    bucket, so it cannot tell two contents of the same key apart: the ETag does.
    """
    if version_id and version_id != NULL_VERSION_ID:
        return version_id
    return etag


def row_idempotency_key(bucket: str, key: str, version: str, row_number: int) -> str:
    """A stable key for data row ``row_number`` of object ``bucket/key`` at ``version``.

    ``version`` is the S3 version id when the bucket is versioned, else the ETag, so a rewritten
    object gets new keys while a redelivered event or a retried invocation repeats the same ones.
    The parts are length-prefixed before hashing, so no two different tuples collide by concatenation.
    """
    if row_number < 1:
        raise ValueError(f"row numbers start at 1, got {row_number}")
    digest = hashlib.sha256()
    for part in (bucket, key, version, str(row_number)):
        encoded = part.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return f"s3stagger-{digest.hexdigest()[:48]}"
