"""Reading an S3 object as a stream of byte chunks (boto3 ``get_object``), never whole in memory."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from s3stagger.domain.model import ObjectRef
from s3stagger.domain.ports import OpenedObject
from s3stagger.domain.rejection import ObjectRejectedError, RejectionReason

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "404"})
CHANGED_CODES = frozenset({"PreconditionFailed", "412"})
RANGE_CODES = frozenset({"InvalidRange", "416"})


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3ObjectSource:
    """Opens objects with ``get_object``; S3 errors become rejections or propagate as transient."""

    def __init__(self, s3_client: S3Client, chunk_size: int = 64 * 1024) -> None:
        self._s3 = s3_client
        self._chunk_size = chunk_size

    def open(
        self,
        ref: ObjectRef,
        *,
        start: int = 0,
        end: int | None = None,
        if_match: str | None = None,
        version_id: str | None = None,
    ) -> OpenedObject:
        """Open bytes ``start``..``end`` (inclusive; ``None`` = to the end) of ``ref``.

        Raises :class:`ObjectRejectedError` when the object is gone (``OBJECT_GONE``) or its ETag is
        no longer ``if_match`` (``OBJECT_CHANGED``); any other S3 error propagates (transient).
        """
        return self._open(
            ref, start=start, end=end, if_match=if_match, version_id=version_id, try_decoded=True
        )

    def _open(
        self,
        ref: ObjectRef,
        *,
        start: int,
        end: int | None,
        if_match: str | None,
        version_id: str | None,
        try_decoded: bool,
    ) -> OpenedObject:
        version = version_id or ref.version_id
        try:
            response = self._s3.get_object(**_get_params(ref, start, end, if_match, version))
        except ClientError as error:
            code = _error_code(error)
            decoded = unquote_plus(ref.key)
            if code in GONE_CODES and try_decoded and decoded != ref.key:
                # S3 URL-encodes keys in its notifications ("a b.csv" → "a+b.csv"); EventBridge
                # events are taken as they come, so an encoded key gets one more try, decoded.
                return self._open(
                    replace(ref, key=decoded),
                    start=start,
                    end=end,
                    if_match=if_match,
                    version_id=version_id,
                    try_decoded=False,
                )
            if code in RANGE_CODES:
                return OpenedObject(if_match or "", version, start, iter(()), key=ref.key)
            _raise_rejection(error, code, ref, version, if_match)
            raise
        body = response["Body"]
        returned_version = response.get("VersionId")
        return OpenedObject(
            etag=str(response.get("ETag", "")).strip('"'),
            version_id=returned_version if returned_version and returned_version != "null" else version,
            object_size=_object_size(response),
            chunks=body.iter_chunks(chunk_size=self._chunk_size),
            key=ref.key,
            release=body.close,
        )


def _get_params(
    ref: ObjectRef, start: int, end: int | None, if_match: str | None, version: str | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    if version:
        params["VersionId"] = version
    if if_match:
        params["IfMatch"] = f'"{if_match.strip(chr(34))}"'
    if start > 0 or end is not None:
        params["Range"] = f"bytes={start}-{'' if end is None else end}"
    return params


def _raise_rejection(
    error: ClientError, code: str, ref: ObjectRef, version: str | None, if_match: str | None
) -> None:
    """Raise the rejection an S3 error code means (gone, changed); return for any other (transient)."""
    where = f"s3://{ref.bucket}/{ref.key}" + (f" (version {version})" if version else "")
    if code in GONE_CODES:
        raise ObjectRejectedError(
            RejectionReason.OBJECT_GONE, f"{where} no longer exists ({code}); nothing to process"
        ) from error
    if code in CHANGED_CODES:
        raise ObjectRejectedError(
            RejectionReason.OBJECT_CHANGED,
            f"{where} changed: its ETag is no longer {if_match}; the new version is processed "
            "on its own event",
        ) from error


def _object_size(response: Any) -> int:
    """Size of the whole object: the total of a ``Content-Range``, else the length of the body."""
    size = int(response.get("ContentLength", 0))
    content_range = response.get("ContentRange")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total.isdigit():
            size = int(total)
    return size
