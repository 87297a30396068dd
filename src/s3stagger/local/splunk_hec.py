"""A local Splunk HTTP Event Collector: a real HTTP server that checks every request as Splunk does.

``POST /services/collector/event`` (also ``/services/collector``) takes one or more JSON events one
after another (no array, no commas), authorised by ``Authorization: Splunk <token>``, and answers
Splunk's ``{"text", "code"}``:

=======  ======  =================================================================================
status   code    when
=======  ======  =================================================================================
200      0       every event indexed (``ackId`` too when the token uses indexer acknowledgement)
401      2       no ``Authorization`` header ("Token is required")
401      3       an ``Authorization`` header that is not ``Splunk <token>`` ("Invalid authorization")
403      1       a disabled token ("Token disabled")
403      4       an unknown token ("Invalid token")
400      5       an empty body ("No data")
400      6       not JSON objects, or a field of the wrong type ("Invalid data format")
400      7       an index the token may not write to ("Incorrect index")
400      10/11   acknowledgement on and no channel / a channel that is not a GUID
400      12/13   an event without ``event`` / with a blank one
400      15      ``fields`` that are not a flat object of strings ("Error in handling indexed fields")
503      9       busy: on demand (:meth:`SplunkHecReceiver.refuse_next`), for outage tests
=======  ======  =================================================================================

A 400 for one event of a batch names it (``invalid-event-number``, from 0); the events before it
are indexed, as Splunk does. With acknowledgement, each accepted request gets an ``ackId`` per
channel and ``POST /services/collector/ack?channel=<guid>`` with ``{"acks": [ids]}`` answers
``{"acks": {"<id>": true}}`` once per id. What it indexed is kept in memory and, when
``index_path`` is set, appended to that JSON-lines file, which ``s3stagger logs`` searches.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from s3stagger.errors import S3StaggerError
from s3stagger.local.http_receiver import HttpReceiver, HttpReply, HttpRequest

EVENT_PATHS = frozenset({"/services/collector/event", "/services/collector", "/services/collector/event/1.0"})
ACK_PATH = "/services/collector/ack"
HEALTH_PATH = "/services/collector/health"
CHANNEL_HEADER = "X-Splunk-Request-Channel"
DEFAULT_TOKEN = "00000000-0000-4000-8000-00000000c0de"  # noqa: S105  # nosec B105 - a local receiver's token
METADATA_FIELDS = ("host", "source", "sourcetype", "index")


class HecProblem(S3StaggerError):
    """One of Splunk's refusals: the HTTP status, Splunk's code and text."""

    def __init__(self, status: int, code: int, text: str, invalid_event_number: int | None = None) -> None:
        super().__init__(f"HTTP {status}, code {code}: {text}")
        self.status = status
        self.code = code
        self.text = text
        self.invalid_event_number = invalid_event_number

    def reply(self) -> HttpReply:
        document: dict[str, Any] = {"text": self.text, "code": self.code}
        if self.invalid_event_number is not None:
            document["invalid-event-number"] = self.invalid_event_number
        return HttpReply.json(self.status, document)


NO_TOKEN = HecProblem(401, 2, "Token is required")
BAD_AUTHORIZATION = HecProblem(401, 3, "Invalid authorization")
TOKEN_DISABLED = HecProblem(403, 1, "Token disabled")
INVALID_TOKEN = HecProblem(403, 4, "Invalid token")
NO_DATA = HecProblem(400, 5, "No data")
BUSY = HecProblem(503, 9, "Server is busy")
CHANNEL_MISSING = HecProblem(400, 10, "Data channel is missing")
CHANNEL_INVALID = HecProblem(400, 11, "Invalid data channel")
ACK_DISABLED = HecProblem(400, 14, "ACK is disabled")


def invalid_format(number: int | None = None) -> HecProblem:
    return HecProblem(400, 6, "Invalid data format", number)


@dataclass(frozen=True)
class IndexedEvent:
    """One event as Splunk indexed it (metadata filled from the token's defaults)."""

    time: float | None
    host: str | None
    source: str | None
    sourcetype: str | None
    index: str
    event: Any
    fields: dict[str, Any] = field(default_factory=dict)

    def field_value(self, name: str) -> Any:
        """An indexed field, else the member of a JSON event of that name."""
        if name in self.fields:
            return self.fields[name]
        return self.event.get(name) if isinstance(self.event, dict) else None


def split_json_objects(body: str) -> Iterator[Any]:
    """The JSON values of a HEC body, one after another (whitespace between them allowed).

    Raises ``ValueError`` (with ``.args[1]`` the number of values read before it) when the rest is
    not JSON.
    """
    decoder = json.JSONDecoder()
    position, count = 0, 0
    while True:
        while position < len(body) and body[position].isspace():
            position += 1
        if position == len(body):
            return
        try:
            value, position = decoder.raw_decode(body, position)
        except ValueError:
            raise ValueError("not JSON", count) from None
        count += 1
        yield value


def check_event(raw: Any, number: int, indexes: Sequence[str], default_index: str) -> IndexedEvent:
    """One decoded event, checked as Splunk checks it; raise :class:`HecProblem` otherwise."""
    if not isinstance(raw, dict):
        raise invalid_format(number)
    if "event" not in raw:
        raise HecProblem(400, 12, "Event field is required", number)
    event = raw["event"]
    if event is None or (isinstance(event, str) and not event.strip()):
        raise HecProblem(400, 13, "Event field cannot be blank", number)
    if any(name in raw and not isinstance(raw[name], str) for name in METADATA_FIELDS):
        raise invalid_format(number)
    index = raw.get("index") or default_index
    if index not in indexes:
        raise HecProblem(400, 7, "Incorrect index", number)
    fields = raw.get("fields", {})
    if not _flat_fields(fields):
        raise HecProblem(400, 15, "Error in handling indexed fields", number)
    return IndexedEvent(
        time=_event_time(raw.get("time"), number),
        host=raw.get("host"),
        source=raw.get("source"),
        sourcetype=raw.get("sourcetype"),
        index=index,
        event=event,
        fields=dict(fields),
    )


def _event_time(raw: Any, number: int) -> float | None:
    """``time``: epoch seconds, a number or a numeric string, not negative."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise invalid_format(number)
    try:
        moment = float(raw)
    except (TypeError, ValueError):
        raise invalid_format(number) from None
    if moment < 0:
        raise invalid_format(number)
    return moment


def _flat_fields(fields: Any) -> bool:
    """Indexed fields: an object of strings or lists of strings."""
    return isinstance(fields, dict) and all(
        isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        for value in fields.values()
    )


def is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


@dataclass
class HecStats:
    requests: int = 0
    events_received: int = 0
    """Events indexed."""
    events_rejected: int = 0
    """Events refused for good (a 4xx: token, data), including those after an invalid event of a
    batch; a 503 (busy, to be retried) rejects nothing."""
    refusals: Counter[int] = field(default_factory=Counter)
    """Refused requests by Splunk code."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "events_received": self.events_received,
            "events_rejected": self.events_rejected,
            "refusals_by_code": {str(code): n for code, n in sorted(self.refusals.items())},
        }


class SplunkHecReceiver(HttpReceiver):
    """The local HEC (see the module's table); thread-safe."""

    server_name = "s3stagger-splunk-hec"

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        indexes: Sequence[str] = ("main",),
        default_index: str | None = None,
        acknowledgement: bool = True,
        disabled: bool = False,
        index_path: Path | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.token = token
        self.indexes = tuple(indexes)
        self.default_index = default_index or self.indexes[0]
        self.acknowledgement = acknowledgement
        self.disabled = disabled
        self.index_path = index_path
        self._lock = threading.Lock()
        self._events: list[IndexedEvent] = []
        self._stats = HecStats()
        self._busy_left = 0
        self._next_ack: dict[str, int] = {}
        self._pending_acks: dict[str, set[int]] = {}

    @property
    def event_url(self) -> str:
        return f"{self.url}/services/collector/event"

    # -- what tests and the demo drive and read -----------------------------------------------
    def refuse_next(self, requests: int) -> None:
        """Answer the next ``requests`` event requests 503 "Server is busy" (an outage on demand)."""
        with self._lock:
            self._busy_left = requests

    def stats(self) -> HecStats:
        with self._lock:
            return HecStats(
                self._stats.requests,
                self._stats.events_received,
                self._stats.events_rejected,
                Counter(self._stats.refusals),
            )

    def events(self) -> list[IndexedEvent]:
        with self._lock:
            return list(self._events)

    # -- the protocol --------------------------------------------------------------------------
    def answer(self, request: HttpRequest) -> HttpReply:
        if request.path == HEALTH_PATH:
            return HttpReply.json(200, {"text": "HEC is healthy", "code": 17})
        if request.path not in EVENT_PATHS and request.path != ACK_PATH:
            return HttpReply.json(
                404, {"text": "The requested URL was not found on this server.", "code": 404}
            )
        if request.method != "POST":
            return HttpReply.json(405, {"text": "Method not allowed", "code": 405})
        try:
            self._authorise(request)
            channel = self._channel(request)
            if request.path == ACK_PATH:
                return self._acks(request, channel)
            return self._index(request, channel)
        except HecProblem as problem:
            with self._lock:
                self._stats.requests += request.path != ACK_PATH
                self._stats.refusals[problem.code] += 1
                if request.path != ACK_PATH and problem.status != BUSY.status:  # busy: to be retried
                    self._stats.events_rejected += max(1, _count_objects(request.body))
            return problem.reply()

    def _authorise(self, request: HttpRequest) -> None:
        authorization = request.header("Authorization")
        if authorization is None:
            raise NO_TOKEN
        scheme, _, token = authorization.partition(" ")
        if scheme != "Splunk" or not token.strip():
            raise BAD_AUTHORIZATION
        if token.strip() != self.token:
            raise INVALID_TOKEN
        if self.disabled:
            raise TOKEN_DISABLED

    def _channel(self, request: HttpRequest) -> str | None:
        channel = request.header(CHANNEL_HEADER) or request.query_value("channel")
        if channel is None:
            if self.acknowledgement:
                raise CHANNEL_MISSING
            return None
        if not is_guid(channel):
            raise CHANNEL_INVALID
        return channel

    def _index(self, request: HttpRequest, channel: str | None) -> HttpReply:
        with self._lock:
            if self._busy_left > 0:
                self._busy_left -= 1
                raise BUSY
        if not request.body.strip():
            raise NO_DATA
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_format(0) from None
        accepted: list[IndexedEvent] = []
        problem: HecProblem | None = None
        try:
            for number, raw in enumerate(split_json_objects(text)):
                accepted.append(check_event(raw, number, self.indexes, self.default_index))
        except ValueError as error:
            problem = invalid_format(int(error.args[1]))
        except HecProblem as refused:
            problem = refused
        with self._lock:
            self._stats.requests += 1
            self._events.extend(accepted)
            self._stats.events_received += len(accepted)
            self._persist(accepted)
            if problem is not None:
                self._stats.refusals[problem.code] += 1
                self._stats.events_rejected += max(1, _count_objects(request.body) - len(accepted))
                return problem.reply()
            document: dict[str, Any] = {"text": "Success", "code": 0}
            if channel is not None and self.acknowledgement:
                ack_id = self._next_ack.get(channel, 0)
                self._next_ack[channel] = ack_id + 1
                self._pending_acks.setdefault(channel, set()).add(ack_id)
                document["ackId"] = ack_id
        return HttpReply.json(200, document)

    def _acks(self, request: HttpRequest, channel: str | None) -> HttpReply:
        if not self.acknowledgement:
            raise ACK_DISABLED
        try:
            asked = json.loads(request.body)["acks"]
            if not isinstance(asked, list) or not all(isinstance(n, int) for n in asked):
                raise TypeError("acks must be a list of integers")
        except (ValueError, KeyError, TypeError):
            raise invalid_format() from None
        with self._lock:
            pending = self._pending_acks.setdefault(str(channel), set())
            answer = {str(n): n in pending for n in asked}
            pending.difference_update(asked)
        return HttpReply.json(200, {"acks": answer})

    def _persist(self, events: list[IndexedEvent]) -> None:
        if self.index_path is None or not events:
            return
        with self.index_path.open("a", encoding="utf-8") as index:
            for event in events:
                index.write(json.dumps(asdict(event)) + "\n")


def _count_objects(body: bytes) -> int:
    count = 0
    try:
        for _ in split_json_objects(body.decode("utf-8", errors="replace")):
            count += 1
    except ValueError:
        count += 1
    return count


def read_index(path: Path) -> list[IndexedEvent]:
    """The events a receiver appended to ``path`` (see ``index_path``)."""
    events: list[IndexedEvent] = []
    with path.open(encoding="utf-8") as index:
        for line in index:
            if line.strip():
                events.append(IndexedEvent(**json.loads(line)))
    return events


def search_events(
    events: Sequence[IndexedEvent], *, object_key: str | None = None, source: str | None = None
) -> list[IndexedEvent]:
    """The events about ``object_key`` (field ``object_key``) and/or from log group ``source``."""
    return [
        event
        for event in events
        if (object_key is None or event.field_value("object_key") == object_key)
        and (source is None or event.source == source)
    ]
