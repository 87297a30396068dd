"""The object processor: one S3 object (or the rest of it, from a cursor) → rows delivered downstream.

The application service behind the ``process_object`` Lambda handler. It composes the domain (CSV
rows, AIMD limiter, retry policy, idempotency keys) with the adapters it is given (object source,
failed-rows sink, downstream client) and runs one invocation:

* rows are read lazily and sent concurrently on one asyncio loop; the number of requests in flight
  is bounded by the adaptive (AIMD) limit, never above ``max_concurrency``; at most
  ``2 * max_concurrency`` rows are read ahead, so memory stays flat;
* each row gets up to ``max_attempts`` attempts with full-jitter backoff, honouring Retry-After;
  a 429 is counted apart (``max_throttled_attempts``) and never sends a row to the sink: a row
  throttled that often stops the invocation taking rows, and the answer is ``PARTIAL`` at it;
  a request slot is held only while a request is on the wire, not while a row backs off;
* rows that fail permanently (other 4xx), exhaust their attempts, or are invalid go to the
  failed-rows sink with their reason — ``rows_applied + rows_failed`` is every data row taken;
* deadline-aware: no new row is taken once less than ``deadline_margin_s`` remains (nor beyond
  ``max_rows_per_invocation``); rows in flight are drained and the answer is ``PARTIAL`` with a
  cursor at the lowest row not finished. Rows after that row that did finish are sent again by
  the continuation under the same Idempotency-Key, which the downstream recognises (duplicate
  delivery, never a duplicate effect);
* if the downstream cannot be reached at all (no HTTP answer to any request in this invocation,
  and a row exhausted its attempts on connection errors or timeouts),
  :class:`DownstreamUnavailableError` is raised, so the caller's retry handles it and no row is
  wrongly recorded as failed. Once the downstream has answered, rows that exhaust their attempts
  are recorded as failed rows.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from s3stagger.adapters.downstream_client import Delivery, DeliveryOutcome
from s3stagger.adapters.s3_object_source import OpenedObject
from s3stagger.config import ProcessorSettings
from s3stagger.domain.csv_rows import BadRow, CsvFormat, CsvObjectReader, CsvRow, DataRow
from s3stagger.domain.idempotency import object_version_token, row_idempotency_key
from s3stagger.domain.limiter import AimdLimiter
from s3stagger.domain.model import Cursor, ObjectRef, ProcessRequest, RunStatus, RunSummary
from s3stagger.domain.rejection import ObjectRejectedError, RejectionReason
from s3stagger.domain.retry import RetryPolicy

RemainingTime = Callable[[], float | None]
"""Seconds left in the invocation, or ``None`` when there is no deadline."""


class DownstreamUnavailableError(RuntimeError):
    """The downstream could not be reached during the whole invocation: transient, retry later."""


class ObjectSource(Protocol):
    def open(
        self,
        ref: ObjectRef,
        *,
        start: int = 0,
        end: int | None = None,
        if_match: str | None = None,
        version_id: str | None = None,
    ) -> OpenedObject: ...


class FailedRows(Protocol):
    count: int

    def add(self, row_number: int, reason: str, cells: tuple[str, ...] | list[str]) -> None: ...

    def close(self) -> str | None: ...


class FailedRowsSink(Protocol):
    def open_batch(self, ref: ObjectRef, version: str, columns: tuple[str, ...]) -> FailedRows: ...

    def write_quarantine(self, ref: ObjectRef, reason: str, message: str) -> str: ...


class Downstream(Protocol):
    async def deliver(
        self, body: dict[str, Any], idempotency_key: str, timeout_s: float | None = None
    ) -> Delivery: ...


def csv_format(settings: ProcessorSettings) -> CsvFormat:
    return CsvFormat(
        delimiter=settings.csv_delimiter,
        expected_header=settings.expected_header,
        max_object_bytes=settings.max_object_bytes,
        max_field_bytes=settings.max_field_bytes,
        max_line_bytes=settings.max_line_bytes,
    )


def row_body(ref: ObjectRef, row: DataRow) -> dict[str, Any]:
    """What is POSTed for one row: where it comes from and its values by column name."""
    return {"source": {"bucket": ref.bucket, "key": ref.key, "row": row.number}, "data": row.values}


class _RequestSlots:
    """Request slots bounded by the limiter's current limit (asyncio, one loop).

    A released slot is handed to the longest waiter directly (FIFO), and only as many waiters are
    woken as the limit allows, so a release costs O(1) however many rows wait.
    """

    def __init__(self, limiter: AimdLimiter) -> None:
        self._limiter = limiter
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.in_flight = 0
        self.peak_in_flight = 0

    async def acquire(self) -> None:
        if not self._waiters and self.in_flight < self._limiter.limit:
            self._take()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # resolved by _wake, which has already taken the slot for us
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _take(self) -> None:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self._limiter.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)


@dataclass
class _Progress:
    unfinished: dict[int, int] = field(default_factory=dict)
    """Rows taken but not finished: row number → byte offset where its record starts."""
    any_answer: bool = False
    unreachable: str | None = None
    saturated: bool = False
    """A row was throttled ``max_throttled_attempts`` times: take no new rows, answer PARTIAL."""
    latency_total_s: float = 0.0
    latency_count: int = 0
    latency_max_s: float = 0.0


@dataclass(frozen=True)
class _RunState:
    """What the row tasks of one invocation share."""

    ref: ObjectRef
    version: str
    summary: RunSummary
    limiter: AimdLimiter
    slots: _RequestSlots
    progress: _Progress
    failed: FailedRows
    remaining: RemainingTime


@dataclass(frozen=True)
class RunMetrics:
    """Figures of one run beyond the summary, for metrics."""

    latency_avg_ms: float
    latency_max_ms: float
    peak_in_flight: int
    peak_limit: int
    lowest_limit: int
    limit_decreases: int


class ObjectProcessor:
    """Processes one object per :meth:`run` call; collaborators are passed in."""

    def __init__(
        self,
        settings: ProcessorSettings,
        source: ObjectSource,
        sink: FailedRowsSink,
        downstream: Downstream,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._source = source
        self._sink = sink
        self._downstream = downstream
        # Backoff jitter, not security.
        self._rng = rng or random.Random()  # nosec B311
        self._policy = RetryPolicy(settings.max_attempts, settings.backoff_base_s, settings.backoff_max_s)
        self._throttle_policy = RetryPolicy(
            settings.max_throttled_attempts, settings.backoff_base_s, settings.backoff_max_s
        )
        self._format = csv_format(settings)
        self.last_metrics = RunMetrics(0.0, 0.0, 0, 0, 0, 0)

    async def run(self, request: ProcessRequest, remaining_s: RemainingTime | None = None) -> RunSummary:
        """Process ``request``; returns the summary, or raises on a transient failure."""
        started = time.monotonic()
        remaining = remaining_s or (lambda: None)
        ref = request.object
        limiter = AimdLimiter(self._settings.initial_concurrency, self._settings.max_concurrency)
        summary = RunSummary(status=RunStatus.COMPLETE, bucket=ref.bucket, key=ref.key)
        opened: list[OpenedObject] = []
        try:
            try:
                start = self._open(request, opened)
                await self._deliver_rows(start, summary, limiter, remaining)
            except ObjectRejectedError as rejection:
                summary.status = RunStatus.REJECTED
                summary.error = {"type": rejection.reason.value, "message": rejection.message}
                summary.failed_rows_object = self._sink.write_quarantine(
                    ref, rejection.reason.value, rejection.message
                )
                return summary
        finally:
            for item in opened:
                item.close()
            summary.concurrency_limit = limiter.limit
            summary.duration_ms = int((time.monotonic() - started) * 1000)
        return summary

    def _open(self, request: ProcessRequest, opened: list[OpenedObject]) -> _Start:
        ref, cursor = request.object, request.cursor
        if ref.size is not None and ref.size > self._format.max_object_bytes:
            raise ObjectRejectedError(
                RejectionReason.OBJECT_TOO_LARGE,
                f"object is {ref.size} bytes, over "
                f"S3STAGGER_MAX_OBJECT_BYTES={self._format.max_object_bytes}",
            )
        if cursor is None:
            whole = self._source.open(ref, if_match=ref.etag)
            opened.append(whole)
            self._check_size(whole)
            reader = CsvObjectReader(whole.chunks, self._format)
            header = reader.read_header()
            return _Start(whole, reader, header.columns, 1, header.end_offset, header.end_offset)
        head = self._source.open(
            ref, end=cursor.header_end - 1, if_match=cursor.etag, version_id=cursor.version_id
        )
        opened.append(head)
        header = CsvObjectReader(head.chunks, self._format).read_header()
        if header.end_offset != cursor.header_end:
            raise ObjectRejectedError(
                RejectionReason.INVALID_CURSOR,
                f"cursor header_end={cursor.header_end} does not end the header "
                f"(it ends at {header.end_offset})",
            )
        rest = self._source.open(
            ref, start=cursor.byte_offset, if_match=cursor.etag, version_id=cursor.version_id
        )
        opened.append(rest)
        self._check_size(rest)
        reader = CsvObjectReader(rest.chunks, self._format, start_offset=cursor.byte_offset)
        return _Start(rest, reader, header.columns, cursor.next_row, cursor.byte_offset, cursor.header_end)

    def _check_size(self, opened: OpenedObject) -> None:
        if opened.object_size > self._format.max_object_bytes:
            raise ObjectRejectedError(
                RejectionReason.OBJECT_TOO_LARGE,
                f"object is {opened.object_size} bytes, over S3STAGGER_MAX_OBJECT_BYTES="
                f"{self._format.max_object_bytes}; split it or raise the limit",
            )

    async def _deliver_rows(
        self, start: _Start, summary: RunSummary, limiter: AimdLimiter, remaining: RemainingTime
    ) -> None:
        settings = self._settings
        ref = start.opened_ref(summary)
        version = start.version_token
        failed = self._sink.open_batch(ref, version, start.columns)
        slots = _RequestSlots(limiter)
        progress = _Progress()
        run = _RunState(ref, version, summary, limiter, slots, progress, failed, remaining)
        pending: set[asyncio.Task[None]] = set()
        read_ahead = asyncio.Semaphore(2 * settings.max_concurrency)
        next_row, next_offset = start.first_row, start.first_offset
        rows: Iterator[CsvRow] = start.reader.rows(start.columns, start.first_row)
        taken = 0
        finished_reading = False
        try:
            while True:
                stop = progress.unreachable is not None or progress.saturated
                if stop or taken >= settings.max_rows_per_invocation:
                    break
                left = remaining()
                if left is not None and left < settings.deadline_margin_s:
                    break
                try:
                    row = next(rows)
                except StopIteration:
                    finished_reading = True
                    break
                taken += 1
                row_start, next_row, next_offset = next_offset, row.number + 1, row.next_offset
                if isinstance(row, BadRow):
                    failed.add(row.number, row.reason, row.cells)
                    summary.rows_failed += 1
                    continue
                await read_ahead.acquire()
                progress.unfinished[row.number] = row_start
                task = asyncio.create_task(self._deliver_row(run, row))
                pending.add(task)
                task.add_done_callback(pending.discard)
                task.add_done_callback(lambda _: read_ahead.release())
            if pending:
                await asyncio.gather(*pending)
        except BaseException:
            for task in pending:
                task.cancel()
            raise
        if progress.unreachable is not None:
            raise DownstreamUnavailableError(progress.unreachable)
        summary.failed_rows_object = failed.close()
        if progress.unfinished:
            next_row = min(progress.unfinished)
            next_offset = progress.unfinished[next_row]
            finished_reading = False
        if not finished_reading:
            summary.status = RunStatus.PARTIAL
            summary.cursor = Cursor(
                next_row, next_offset, start.header_end, start.opened.etag, start.version_id
            )
        self.last_metrics = RunMetrics(
            latency_avg_ms=1000 * progress.latency_total_s / progress.latency_count
            if progress.latency_count
            else 0.0,
            latency_max_ms=1000 * progress.latency_max_s,
            peak_in_flight=slots.peak_in_flight,
            peak_limit=limiter.peak,
            lowest_limit=limiter.lowest,
            limit_decreases=limiter.decreases,
        )

    async def _deliver_row(self, run: _RunState, row: DataRow) -> None:
        ref, summary, limiter, slots, progress = run.ref, run.summary, run.limiter, run.slots, run.progress
        remaining = run.remaining
        key = row_idempotency_key(ref.bucket, ref.key, run.version, row.number)
        body = row_body(ref, row)
        margin = self._settings.deadline_margin_s
        failures = throttles = 0
        while True:
            if progress.unreachable is not None:
                return  # the invocation is being abandoned; the row stays unfinished
            left = remaining()
            timeout = (
                None if left is None else max(0.05, min(self._settings.read_timeout_s, left - margin / 2))
            )
            await slots.acquire()
            try:
                delivery = await self._downstream.deliver(body, key, timeout)
                progress.latency_total_s += delivery.latency_s
                progress.latency_count += 1
                progress.latency_max_s = max(progress.latency_max_s, delivery.latency_s)
                outcome = delivery.outcome
                if outcome is DeliveryOutcome.APPLIED:
                    limiter.on_success(slots.in_flight)
                elif outcome is DeliveryOutcome.THROTTLED:
                    limiter.on_throttle()
                elif outcome is DeliveryOutcome.TIMED_OUT:
                    limiter.on_timeout()
            finally:
                slots.release()
            if delivery.status is not None:
                progress.any_answer = True
            if outcome is DeliveryOutcome.APPLIED:
                summary.rows_applied += 1
                del progress.unfinished[row.number]
                return
            if outcome is DeliveryOutcome.REJECTED:
                self._fail(run, row, f"downstream rejected the row: {delivery.detail}")
                return
            if outcome is DeliveryOutcome.THROTTLED:
                # A 429 says "not now", not "this row is bad": it never sends a row to the sink.
                summary.throttled += 1
                throttles += 1
                if not self._throttle_policy.should_retry(throttles):
                    progress.saturated = True  # stop taking rows; the cursor points at this one
                    return
                delay = self._throttle_policy.delay_s(throttles, self._rng, delivery.retry_after_s)
            else:
                if outcome is DeliveryOutcome.TIMED_OUT:
                    summary.timeouts += 1
                failures += 1
                if not self._policy.should_retry(failures):
                    if delivery.status is None and not progress.any_answer:
                        progress.unreachable = (
                            f"downstream unreachable: no answer to any request after {failures} attempts "
                            f"of row {row.number} ({delivery.detail})"
                        )
                        return
                    self._fail(run, row, f"gave up after {failures} attempts: {delivery.detail}")
                    return
                delay = self._policy.delay_s(failures, self._rng, delivery.retry_after_s)
            left = remaining()
            if left is not None and left - delay < margin / 2:
                return  # no time left to retry: the row stays unfinished and the cursor points at it
            summary.retries += 1
            await asyncio.sleep(delay)

    @staticmethod
    def _fail(run: _RunState, row: DataRow, reason: str) -> None:
        run.failed.add(row.number, reason, tuple(row.values.values()))
        run.summary.rows_failed += 1
        del run.progress.unfinished[row.number]


@dataclass(frozen=True)
class _Start:
    opened: OpenedObject
    reader: CsvObjectReader
    columns: tuple[str, ...]
    first_row: int
    first_offset: int
    header_end: int

    @property
    def version_id(self) -> str | None:
        return self.opened.version_id

    @property
    def version_token(self) -> str:
        """The version id when the object has one, else its ETag: part of every idempotency key."""
        return object_version_token(self.opened.version_id, self.opened.etag)

    def opened_ref(self, summary: RunSummary) -> ObjectRef:
        summary.key = self.opened.key or summary.key
        return ObjectRef(
            bucket=summary.bucket, key=summary.key, version_id=self.version_id, etag=self.opened.etag
        )
