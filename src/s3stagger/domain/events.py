"""Parsing the processor's input: an S3 EventBridge "Object Created" event, a plain object
reference, or the dispatcher's ``{"object": ..., "cursor": ...}`` envelope around either.

AWS writes ``detail.object.etag``; moto writes ``eTag``; ``version-id`` is absent (AWS) or null
(moto) on unversioned buckets. The literal version id ``"null"`` (objects written before versioning
was enabled) is kept: S3 accepts it as a VersionId.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from s3stagger.domain.model import Cursor, InvalidRequestError, ObjectRef, ProcessRequest

OBJECT_CREATED = "Object Created"


def _text(value: Any, what: str, *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidRequestError(f"{what} is missing")
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"{what} must be a string, got {type(value).__name__}")
    return value


def _size(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(f"object size must be a non-negative integer, got {value!r}")
    return value


def _strip_quotes(etag: str | None) -> str | None:
    return etag.strip('"') if etag else etag


def parse_object_ref(data: Any) -> ObjectRef:
    """Turn an EventBridge S3 event or a plain ``{"bucket", "key", ...}`` mapping into an ObjectRef."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as error:
            raise InvalidRequestError(f"object reference is not JSON: {error}") from None
    if not isinstance(data, Mapping):
        raise InvalidRequestError(f"object reference must be a JSON object, got {type(data).__name__}")
    if "detail" in data:
        detail_type = data.get("detail-type")
        if detail_type != OBJECT_CREATED:
            raise InvalidRequestError(
                f"expected an S3 {OBJECT_CREATED!r} event, got detail-type {detail_type!r}"
            )
        detail = data["detail"]
        if not isinstance(detail, Mapping):
            raise InvalidRequestError("event detail must be an object")
        bucket = detail.get("bucket")
        obj = detail.get("object")
        if not isinstance(bucket, Mapping) or not isinstance(obj, Mapping):
            raise InvalidRequestError("event detail lacks bucket or object")
        return ObjectRef(
            bucket=str(_text(bucket.get("name"), "detail.bucket.name")),
            key=str(_text(obj.get("key"), "detail.object.key")),
            version_id=_text(obj.get("version-id"), "detail.object.version-id", required=False),
            etag=_strip_quotes(_text(obj.get("etag", obj.get("eTag")), "detail.object.etag", required=False)),
            size=_size(obj.get("size")),
        )
    return ObjectRef(
        bucket=str(_text(data.get("bucket"), "bucket")),
        key=str(_text(data.get("key"), "key")),
        version_id=_text(data.get("version_id"), "version_id", required=False),
        etag=_strip_quotes(_text(data.get("etag"), "etag", required=False)),
        size=_size(data.get("size")),
    )


def parse_process_request(event: Any) -> ProcessRequest:
    """Parse the handler's event: a bare object reference, or ``{"object": ..., "cursor": ...}``."""
    if isinstance(event, Mapping) and "object" in event and "detail" not in event:
        cursor_data = event.get("cursor")
        cursor = None if cursor_data is None else Cursor.from_dict(cursor_data)
        return ProcessRequest(object=parse_object_ref(event["object"]), cursor=cursor)
    return ProcessRequest(object=parse_object_ref(event))


CURSOR_ATTRIBUTE = "cursor"
"""The message attribute a continuation message carries its cursor in (JSON of :class:`Cursor`)."""


def parse_queue_message(message: Mapping[str, Any]) -> ProcessRequest:
    """A dispatcher queue message (as SQS ReceiveMessage returns it) as the processor's request:
    its body is the object's event, its ``cursor`` attribute (a continuation) where to resume."""
    if not str(message.get("Body", "")).startswith("{"):
        raise InvalidRequestError("the message body is not a JSON object, so it is no S3 event")
    attributes = message.get("MessageAttributes") or {}
    cursor_text = (attributes.get(CURSOR_ATTRIBUTE) or {}).get("StringValue")
    try:
        cursor = None if cursor_text is None else Cursor.from_dict(json.loads(cursor_text))
    except json.JSONDecodeError as error:
        raise InvalidRequestError(
            f"the message attribute {CURSOR_ATTRIBUTE!r} is not JSON: {error}"
        ) from None
    return ProcessRequest(object=parse_object_ref(message["Body"]), cursor=cursor)
