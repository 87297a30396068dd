"""Reading an S3 object as a stream of byte chunks (boto3 ``get_object``), never whole in memory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from s3stagger.domain.model import ObjectRef
from s3stagger.domain.rejection import ObjectRejectedError, RejectionReason

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "404"})
CHANGED_CODES = frozenset({"PreconditionFailed", "412"})
RANGE_CODES = frozenset({"InvalidRange", "416"})


@dataclass
class OpenedObject:
    """An open object (or byte range of it): its identity and a lazy iterator of its bytes."""

    etag: str
    """ETag without quotes."""
    version_id: str | None
    object_size: int
    """Size of the whole object (not of the range)."""
    chunks: Iterator[bytes]
    key: str = ""
    """The key actually read (the event's key, URL-decoded if only that form exists)."""
    _body: Any = None

    def close(self) -> None:
        if self._body is not None:
            self._body.close()


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
        params: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        version = version_id or ref.version_id
        if version:
            params["VersionId"] = version
        if if_match:
            params["IfMatch"] = f'"{if_match.strip(chr(34))}"'
        if start > 0 or end is not None:
            params["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            response = self._s3.get_object(**params)
        except ClientError as error:
            code = _error_code(error)
            where = f"s3://{ref.bucket}/{ref.key}" + (f" (version {version})" if version else "")
            if code in GONE_CODES:
                decoded = unquote_plus(ref.key)
                if try_decoded and decoded != ref.key:
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
                raise ObjectRejectedError(
                    RejectionReason.OBJECT_GONE, f"{where} no longer exists ({code}); nothing to process"
                ) from error
            if code in CHANGED_CODES:
                raise ObjectRejectedError(
                    RejectionReason.OBJECT_CHANGED,
                    f"{where} changed: its ETag is no longer {if_match}; the new version is processed "
                    "on its own event",
                ) from error
            if code in RANGE_CODES:
                return OpenedObject(if_match or "", version, start, iter(()), key=ref.key)
            raise
        body = response["Body"]
        etag = str(response.get("ETag", "")).strip('"')
        content_range = response.get("ContentRange")
        size = int(response.get("ContentLength", 0))
        if content_range and "/" in content_range:
            total = content_range.rsplit("/", 1)[1]
            if total.isdigit():
                size = int(total)
        returned_version = response.get("VersionId")
        return OpenedObject(
            etag=etag,
            version_id=returned_version if returned_version and returned_version != "null" else version,
            object_size=size,
            chunks=body.iter_chunks(chunk_size=self._chunk_size),
            key=ref.key,
            _body=body,
        )
