"""CloudWatch Logs subscription records → Splunk HEC events (pure): the transform Firehose runs.

A CloudWatch Logs subscription delivers to Firehose records whose ``data`` is base64 of gzip of::

    {"messageType": "DATA_MESSAGE" | "CONTROL_MESSAGE", "owner", "logGroup", "logStream",
     "subscriptionFilters": [...], "logEvents": [{"id", "timestamp" (ms), "message"}]}

:func:`transform_records` answers Firehose's data-transformation contract, one answer per record:

- ``Ok``: every log event became a HEC event (``time`` in epoch seconds from CloudWatch's
  milliseconds, ``host`` = the log stream, ``source`` = the log group, ``sourcetype``, ``index``,
  ``event`` = the log line parsed as JSON — a line that is not a JSON object becomes
  ``{"message": line}`` —, and ``fields.object_key`` when the line names an object); ``data`` is the
  events one after another, as the HEC event endpoint takes them;
- ``Dropped``: a ``CONTROL_MESSAGE`` (CloudWatch's reachability check) or a payload without events;
- ``ProcessingFailed``: data that is not base64 of gzip of such a payload (Firehose backs it up);
- **the 6 MB response limit**: answers are added while the response stays under
  ``max_response_bytes``; the records after that are returned as ``overflow`` for the caller to put
  back into the stream (then answered ``Dropped``, as AWS's blueprint does), and a record too large
  to fit alone is ``ProcessingFailed``.

The functions' Powertools logs carry the object key as ``object_key``; the same name is the
indexed field ``s3stagger logs --object`` searches on.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MAX_RESPONSE_BYTES = 6 * 1024 * 1024
"""Lambda's synchronous response limit, which bounds a transformation's answer."""
RECORD_ANSWER_OVERHEAD = 64
"""Bytes of JSON around one answer's ``recordId`` and ``data`` (keys, quotes, result)."""
OBJECT_KEY_FIELD = "object_key"
DEFAULT_SOURCETYPE = "s3stagger:lambda"
DEFAULT_INDEX = "main"


class RecordResult(StrEnum):
    OK = "Ok"
    DROPPED = "Dropped"
    PROCESSING_FAILED = "ProcessingFailed"


@dataclass(frozen=True)
class HecEventSettings:
    """What every HEC event of a deployment carries."""

    index: str = DEFAULT_INDEX
    sourcetype: str = DEFAULT_SOURCETYPE


@dataclass(frozen=True)
class RecordAnswer:
    record_id: str
    result: RecordResult
    data: str
    """base64 of what goes on (``Ok``), or the record's own data."""

    def as_dict(self) -> dict[str, str]:
        return {"recordId": self.record_id, "result": self.result.value, "data": self.data}

    @property
    def size(self) -> int:
        return len(self.record_id) + len(self.data) + RECORD_ANSWER_OVERHEAD


@dataclass
class Transformation:
    answers: list[RecordAnswer] = field(default_factory=list)
    overflow: list[Mapping[str, Any]] = field(default_factory=list)
    """Records left out to keep the response under the limit: put them back into the stream."""
    events: int = 0
    """HEC events in the ``Ok`` answers."""

    def response(self) -> dict[str, list[dict[str, str]]]:
        return {"records": [answer.as_dict() for answer in self.answers]}


class RecordDecodeError(ValueError):
    """A record's data is not base64 of gzip of a CloudWatch Logs subscription payload."""


def decode_subscription_data(data: str) -> dict[str, Any]:
    """The subscription payload of a record's ``data``."""
    try:
        payload = json.loads(gzip.decompress(base64.b64decode(data, validate=True)))
    except (binascii.Error, OSError, EOFError, zlib.error, ValueError) as error:
        raise RecordDecodeError(f"not base64 of gzip of JSON: {error}") from error
    if not isinstance(payload, dict) or "messageType" not in payload:
        raise RecordDecodeError("not a CloudWatch Logs subscription payload (no messageType)")
    return payload


def encode_subscription_data(payload: Mapping[str, Any]) -> str:
    """``data`` of a record carrying ``payload``, as CloudWatch Logs writes it."""
    return base64.b64encode(gzip.compress(json.dumps(payload).encode("utf-8"))).decode("ascii")


def parsed_log_line(message: str) -> dict[str, Any]:
    """The log line as a JSON object, or ``{"message": line}`` when it is not one."""
    text = message.rstrip("\n")
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"message": text}
    return parsed if isinstance(parsed, dict) else {"message": text}


def hec_event(
    log_event: Mapping[str, Any], payload: Mapping[str, Any], settings: HecEventSettings
) -> dict[str, Any]:
    """One HEC event of one CloudWatch log event."""
    event = parsed_log_line(str(log_event.get("message", "")))
    document: dict[str, Any] = {
        "time": int(log_event["timestamp"]) / 1000.0,
        "host": str(payload.get("logStream", "")),
        "source": str(payload.get("logGroup", "")),
        "sourcetype": settings.sourcetype,
        "index": settings.index,
        "event": event,
    }
    key = event.get(OBJECT_KEY_FIELD)
    if isinstance(key, str) and key:
        document["fields"] = {OBJECT_KEY_FIELD: key}
    return document


def hec_events(payload: Mapping[str, Any], settings: HecEventSettings) -> list[dict[str, Any]]:
    """The HEC events of a ``DATA_MESSAGE`` payload, in order."""
    return [hec_event(log_event, payload, settings) for log_event in payload.get("logEvents") or []]


def answer_record(record: Mapping[str, Any], settings: HecEventSettings) -> tuple[RecordAnswer, int]:
    """One record's answer and the number of HEC events in it."""
    record_id, data = str(record["recordId"]), str(record.get("data", ""))
    try:
        payload = decode_subscription_data(data)
        if payload["messageType"] == "CONTROL_MESSAGE":
            return RecordAnswer(record_id, RecordResult.DROPPED, data), 0
        events = hec_events(payload, settings)
    except (RecordDecodeError, KeyError, TypeError, ValueError):
        return RecordAnswer(record_id, RecordResult.PROCESSING_FAILED, data), 0
    if not events:
        return RecordAnswer(record_id, RecordResult.DROPPED, data), 0
    body = "".join(json.dumps(event, separators=(",", ":")) for event in events)
    encoded = base64.b64encode(body.encode("utf-8")).decode("ascii")
    return RecordAnswer(record_id, RecordResult.OK, encoded), len(events)


def transform_records(
    records: Sequence[Mapping[str, Any]],
    settings: HecEventSettings,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
) -> Transformation:
    """Firehose's answers for ``records`` (see the module), keeping the response under the limit."""
    transformation = Transformation()
    size = len('{"records":[]}')
    for record in records:
        answer, events = answer_record(record, settings)
        if size + answer.size > max_response_bytes:
            if answer.size + len('{"records":[]}') > max_response_bytes:
                failed = RecordAnswer(
                    answer.record_id, RecordResult.PROCESSING_FAILED, str(record.get("data", ""))
                )
                if size + failed.size <= max_response_bytes:
                    transformation.answers.append(failed)
                    size += failed.size
                    continue
            transformation.overflow.append(record)
            continue
        transformation.answers.append(answer)
        transformation.events += events
        size += answer.size
    return transformation


def mark_reingested(transformation: Transformation) -> None:
    """Answer the overflow records ``Dropped`` once they were put back into the stream."""
    for record in transformation.overflow:
        transformation.answers.append(RecordAnswer(str(record["recordId"]), RecordResult.DROPPED, ""))
    transformation.overflow = []


def mark_failed(transformation: Transformation) -> None:
    """Answer the overflow records ``ProcessingFailed`` (no way to put them back: Firehose backs them up)."""
    for record in transformation.overflow:
        transformation.answers.append(
            RecordAnswer(str(record["recordId"]), RecordResult.PROCESSING_FAILED, str(record.get("data", "")))
        )
    transformation.overflow = []
