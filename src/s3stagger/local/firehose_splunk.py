"""Stand-ins for the AWS log path to Splunk, which moto cannot run: a CloudWatch Logs subscription
filter and Kinesis Data Firehose with a Splunk destination (moto drops Splunk destinations).

- :class:`LogSubscriptionStandIn` turns the captured lines of the functions
  (:mod:`s3stagger.local.log_capture`) into CloudWatch-Logs-shaped Firehose records — base64 of
  gzip of ``DATA_MESSAGE`` payloads by log group and stream, and the ``CONTROL_MESSAGE`` CloudWatch
  sends when a subscription starts.
- :class:`FirehoseSplunkStandIn` does what the delivery stream does: buffers records, runs the
  **same** transformation handler as AWS (:func:`s3stagger.handlers.transform_logs.transform`,
  overflow put back into its buffer), and posts the ``Ok`` records to the HEC event endpoint with
  a request channel and indexer acknowledgement (an unacknowledged request counts as failed).
  A 503, a refused connection or an acknowledgement timeout is retried with exponential backoff
  for ``retry_duration_s``; then the events are written to the backup folder (the twin of
  Firehose's S3 backup, ``FailedEventsOnly``) and counted, never dropped. A refused token
  (401/403) is not worth retrying: the events are backed up and :attr:`SplunkDeliveryStats.error`
  says what to fix. ``ProcessingFailed`` records are backed up under ``processing-failed/``.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from s3stagger.domain.log_records import HecEventSettings, RecordResult, encode_subscription_data
from s3stagger.errors import S3StaggerError
from s3stagger.handlers import transform_logs
from s3stagger.local.log_capture import CapturedLine, CapturedLines
from s3stagger.local.splunk_hec import CHANNEL_HEADER

LOGGER = logging.getLogger(__name__)
MAX_EVENTS_PER_PAYLOAD = 10_000
MAX_REQUEST_BYTES = 1_000_000
ACK_POLL_S = 0.05

Transform = Callable[[Mapping[str, Any], HecEventSettings, Any], dict[str, Any]]


class LogSubscriptionStandIn:
    """Stands in for a CloudWatch Logs subscription filter to Firehose (all log events, no pattern)."""

    def __init__(
        self, lines: CapturedLines, put_records: Callable[[Sequence[bytes]], None], owner: str
    ) -> None:
        self._lines = lines
        self._put_records = put_records
        self._owner = owner
        self._announced: set[str] = set()
        self.log_events = 0

    def flush(self) -> int:
        """Put every line captured since the last flush into the stream; the number of log events."""
        captured = self._lines.drain()
        by_stream: dict[tuple[str, str], list[CapturedLine]] = defaultdict(list)
        for line in captured:
            by_stream[(line.log_group, line.log_stream)].append(line)
        records: list[bytes] = []
        for (group, stream), lines in by_stream.items():
            if group not in self._announced:
                self._announced.add(group)
                records.append(self._record(control_message_payload()))
            for start in range(0, len(lines), MAX_EVENTS_PER_PAYLOAD):
                records.append(
                    self._record(self._payload(group, stream, lines[start : start + MAX_EVENTS_PER_PAYLOAD]))
                )
        if records:
            self._put_records(records)
        self.log_events += len(captured)
        return len(captured)

    def _payload(self, group: str, stream: str, lines: Sequence[CapturedLine]) -> dict[str, Any]:
        return {
            "messageType": "DATA_MESSAGE",
            "owner": self._owner,
            "logGroup": group,
            "logStream": stream,
            "subscriptionFilters": ["s3stagger-splunk-logs"],
            "logEvents": [
                {"id": uuid.uuid4().hex, "timestamp": line.timestamp_ms, "message": line.message}
                for line in lines
            ],
        }

    @staticmethod
    def _record(payload: Mapping[str, Any]) -> bytes:
        return base64.b64decode(encode_subscription_data(payload))


def control_message_payload() -> dict[str, Any]:
    """What CloudWatch Logs sends first to check that the destination is reachable."""
    return {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [
            {
                "id": "",
                "timestamp": int(time.time() * 1000),
                "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose.",
            }
        ],
    }


@dataclass(frozen=True)
class SplunkDeliverySettings:
    """The delivery stream's Splunk destination (times scaled for local runs)."""

    hec_url: str
    """The HEC base URL (``http://127.0.0.1:<port>``)."""
    token: str
    backup_dir: Path
    stream_arn: str
    events: HecEventSettings = field(default_factory=HecEventSettings)
    retry_duration_s: float = 15.0
    """AWS: 0 to 7,200 s (default 300)."""
    ack_timeout_s: float = 9.0
    """AWS: 180 to 600 s."""
    first_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    buffer_records: int = 500


@dataclass
class SplunkDeliveryStats:
    records: int = 0
    records_dropped: int = 0
    records_processing_failed: int = 0
    records_reingested: int = 0
    events_delivered: int = 0
    """Events the HEC acknowledged."""
    events_backed_up: int = 0
    requests: int = 0
    retries: int = 0
    error: str | None = None
    """The last refusal that retrying cannot fix (token, invalid data), for a person to act on."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Undeliverable(S3StaggerError):
    """A delivery attempt failed; whether retrying may help."""

    def __init__(self, code: str, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class FirehoseSplunkStandIn:
    """Stands in for a Firehose delivery stream with a Splunk (HEC ``Event``) destination."""

    def __init__(
        self,
        settings: SplunkDeliverySettings,
        *,
        transform: Transform = transform_logs.transform,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._transform = transform
        self._client = client or httpx.Client(timeout=5.0)
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._buffer: list[bytes] = []
        self._flushing = threading.Lock()
        self._channel = str(uuid.uuid4())
        self.stats = SplunkDeliveryStats()

    def put_records(self, records: Sequence[bytes]) -> None:
        """``PutRecordBatch``: raw record data (here, what a subscription filter writes)."""
        with self._lock:
            self._buffer.extend(records)
            self.stats.records += len(records)

    def _put_back(self, stream_arn: str, records: Sequence[bytes]) -> None:
        with self._lock:
            self._buffer.extend(records)
            self.stats.records_reingested += len(records)

    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def flush(self) -> None:
        """Transform and deliver everything buffered (records put back meanwhile included)."""
        with self._flushing:
            while True:
                with self._lock:
                    batch = self._buffer[: self.settings.buffer_records]
                    del self._buffer[: len(batch)]
                if not batch:
                    return
                self._process(batch)

    def close(self) -> None:
        self._client.close()

    # -- one buffer ---------------------------------------------------------------------------------
    def _process(self, batch: Sequence[bytes]) -> None:
        ids = [f"{uuid.uuid4().hex}{n:06d}" for n in range(len(batch))]
        event = {
            "invocationId": str(uuid.uuid4()),
            "deliveryStreamArn": self.settings.stream_arn,
            "region": self.settings.stream_arn.split(":")[3],
            "records": [
                {
                    "recordId": record_id,
                    "approximateArrivalTimestamp": int(time.time() * 1000),
                    "data": base64.b64encode(data).decode("ascii"),
                }
                for record_id, data in zip(ids, batch, strict=True)
            ],
        }
        answers = {
            a["recordId"]: a for a in self._transform(event, self.settings.events, self._put_back)["records"]
        }
        bodies: list[tuple[bytes, int]] = []
        failed: list[bytes] = []
        for record_id, data in zip(ids, batch, strict=True):
            answer = answers.get(record_id)
            result = answer["result"] if answer else RecordResult.PROCESSING_FAILED.value
            if result == RecordResult.OK.value and answer is not None:
                body = base64.b64decode(answer["data"])
                bodies.append((body, _count_events(body)))
            elif result == RecordResult.DROPPED.value:
                self.stats.records_dropped += 1
            else:
                failed.append(data)
        if failed:
            self.stats.records_processing_failed += len(failed)
            self._backup(
                "processing-failed",
                [
                    {"errorCode": "Lambda.ProcessingFailed", "rawData": base64.b64encode(d).decode()}
                    for d in failed
                ],
            )
        for request in _requests(bodies):
            self._deliver(request)

    def _deliver(self, request: list[tuple[bytes, int]]) -> None:
        body = b"".join(part for part, _ in request)
        events = sum(count for _, count in request)
        deadline = self._clock() + self.settings.retry_duration_s
        attempt = 0
        while True:
            attempt += 1
            try:
                self._post(body)
            except _Undeliverable as problem:
                if problem.retryable and self._clock() < deadline:
                    self.stats.retries += 1
                    backoff = min(
                        self.settings.max_backoff_s, self.settings.first_backoff_s * 2 ** (attempt - 1)
                    )
                    self._sleep(min(backoff, max(0.0, deadline - self._clock())))
                    continue
                if not problem.retryable:
                    self.stats.error = str(problem)
                    LOGGER.error("Splunk delivery: %s", problem)
                self._backup(
                    "splunk-failed",
                    [
                        {
                            "attemptsMade": attempt,
                            "errorCode": problem.code,
                            "errorMessage": str(problem),
                            "rawData": base64.b64encode(part).decode(),
                            "events": count,
                        }
                        for part, count in request
                    ],
                )
                self.stats.events_backed_up += events
                return
            self.stats.events_delivered += events
            return

    def _post(self, body: bytes) -> None:
        headers = {"Authorization": f"Splunk {self.settings.token}", CHANNEL_HEADER: self._channel}
        url = self.settings.hec_url
        self.stats.requests += 1
        try:
            answer = self._client.post(f"{url}/services/collector/event", content=body, headers=headers)
        except httpx.TransportError as error:
            raise _Undeliverable(
                "Splunk.ConnectionFailed", f"cannot reach the HEC at {url}: {error}", True
            ) from error
        document = _json(answer)
        code, text = document.get("code"), document.get("text")
        if answer.status_code in {401, 403}:
            raise _Undeliverable(
                "Splunk.InvalidToken",
                f"the HEC at {url} refused the token (HTTP {answer.status_code}, code {code}: {text}); "
                "set the HEC token the Splunk destination uses",
                False,
            )
        if answer.status_code == 400:
            raise _Undeliverable(
                "Splunk.InvalidEvent", f"the HEC refused the events (code {code}: {text})", False
            )
        if answer.status_code != 200:
            raise _Undeliverable(
                f"Splunk.HTTP{answer.status_code}", f"HTTP {answer.status_code}: {text}", True
            )
        ack_id = document.get("ackId")
        if ack_id is not None:
            self._wait_for_ack(int(ack_id), headers)

    def _wait_for_ack(self, ack_id: int, headers: Mapping[str, str]) -> None:
        give_up = self._clock() + self.settings.ack_timeout_s
        url = f"{self.settings.hec_url}/services/collector/ack?channel={self._channel}"
        while True:
            try:
                answer = self._client.post(url, json={"acks": [ack_id]}, headers=dict(headers))
            except httpx.TransportError as error:
                raise _Undeliverable("Splunk.AckTimeout", f"acknowledgement lost: {error}", True) from error
            if _json(answer).get("acks", {}).get(str(ack_id)) is True:
                return
            if self._clock() >= give_up:
                raise _Undeliverable("Splunk.AckTimeout", f"ackId {ack_id} not acknowledged in time", True)
            self._sleep(ACK_POLL_S)

    def _backup(self, prefix: str, documents: list[dict[str, Any]]) -> None:
        folder = self.settings.backup_dir / prefix
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for document in documents:
                out.write(json.dumps(document) + "\n")


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        document = answer.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _count_events(body: bytes) -> int:
    decoder, text, position, count = json.JSONDecoder(), body.decode("utf-8"), 0, 0
    while position < len(text):
        _, position = decoder.raw_decode(text, position)
        count += 1
    return count


def _requests(bodies: Sequence[tuple[bytes, int]]) -> list[list[tuple[bytes, int]]]:
    """The Ok records grouped into HEC requests of at most :data:`MAX_REQUEST_BYTES` (records whole)."""
    requests: list[list[tuple[bytes, int]]] = []
    size = 0
    for body in bodies:
        if not requests or size + len(body[0]) > MAX_REQUEST_BYTES:
            requests.append([])
            size = 0
        requests[-1].append(body)
        size += len(body[0])
    return requests


def backed_up_events(backup_dir: Path) -> int:
    """Events kept in the backup folder's ``splunk-failed/`` files."""
    folder = backup_dir / "splunk-failed"
    if not folder.exists():
        return 0
    total = 0
    for path in folder.glob("*.jsonl"):
        with path.open(encoding="utf-8") as backup:
            total += sum(int(json.loads(line)["events"]) for line in backup if line.strip())
    return total
