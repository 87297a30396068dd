"""The object processor: one S3 object (or the rest of it, from a cursor) → rows delivered downstream.

The application service behind the ``process_object`` Lambda handler. It composes the domain (CSV
rows, AIMD limiter, retry policy, idempotency keys) with the adapters it is given (object source,
failed-rows sink, downstream client; their types are in :mod:`s3stagger.domain.ports`) and runs
one invocation. What each attempt means for its row is decided by the pure
:func:`s3stagger.domain.delivery.decide`; this module carries the decisions out:

* rows are read lazily and sent concurrently on one asyncio loop; the number of requests in flight
  is bounded by the adaptive (AIMD) limit, never above ``max_concurrency``; at most
  ``2 * max_concurrency`` rows are read ahead, so memory stays flat;
* each row gets up to ``max_attempts`` attempts with full-jitter backoff, honouring Retry-After;
  a 429 is counted apart (``max_throttled_attempts``) and never sends a row to the sink: a row
  throttled that often stops the invocation taking rows, and the answer is ``PARTIAL`` at it;
  a request slot is held only while a request is on the wire, not while a row backs off;
* rows that fail permanently (other 4xx), exhaust their attempts on 5xx answers (503 aside), or
  are invalid go to the failed-rows sink with their reason — ``rows_applied + rows_failed`` is
  every data row taken; a downstream away (timeouts, refused connections) or busy (503) after it had
  answered pauses the object instead (PARTIAL at the row), as a saturating 429 does;
* a row task that crashes ends the others; each one's outcome is read before the crash propagates;
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
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from s3stagger.config import ProcessorSettings
from s3stagger.domain.csv_rows import BadRow, CsvFormat, CsvHeader, CsvObjectReader, CsvRow, DataRow
from s3stagger.domain.delivery import (
    Delivery,
    DeliveryOutcome,
    DeliveryPolicy,
    InvocationView,
    RowAction,
    RowAttempts,
    RowDecision,
    attempt_timeout_s,
    decide,
)
from s3stagger.domain.idempotency import object_version_token, row_idempotency_key
from s3stagger.domain.limiter import AimdLimiter
from s3stagger.domain.model import Cursor, ObjectRef, ProcessRequest, RunStatus, RunSummary
from s3stagger.domain.ports import Downstream, FailedRows, FailedRowsSink, ObjectSource, OpenedObject
from s3stagger.domain.rejection import ObjectRejectedError, RejectionReason
from s3stagger.domain.retry import RetryPolicy
from s3stagger.errors import S3StaggerError

RemainingTime = Callable[[], float | None]
"""Seconds left in the invocation, or ``None`` when there is no deadline."""

Sleep = Callable[[float], Awaitable[None]]


class DownstreamUnavailableError(S3StaggerError, RuntimeError):
    """The downstream could not be reached during the whole invocation: transient, retry later."""


def csv_format(settings: ProcessorSettings) -> CsvFormat:
    return CsvFormat(
        delimiter=settings.csv_delimiter,
        expected_header=settings.expected_header,
        max_object_bytes=settings.max_object_bytes,
        max_field_bytes=settings.max_field_bytes,
        max_line_bytes=settings.max_line_bytes,
        reject_other_delimiter=settings.reject_other_delimiter,
    )


def delivery_policy(settings: ProcessorSettings) -> DeliveryPolicy:
    return DeliveryPolicy(
        retry=RetryPolicy(settings.max_attempts, settings.backoff_base_s, settings.backoff_max_s),
        throttle=RetryPolicy(
            settings.max_throttled_attempts, settings.backoff_base_s, settings.backoff_max_s
        ),
        deadline_margin_s=settings.deadline_margin_s,
    )


def row_body(ref: ObjectRef, row: DataRow) -> dict[str, Any]:
    """What is POSTed for one row: where it comes from and its values by column name."""
    return {"source": {"bucket": ref.bucket, "key": ref.key, "row": row.number}, "data": row.values}


def feed_limiter(limiter: AimdLimiter, outcome: DeliveryOutcome, in_flight: int) -> None:
    """Tell the limiter what an attempt says about the downstream's load."""
    if outcome is DeliveryOutcome.APPLIED:
        limiter.on_success(in_flight)
    elif outcome is DeliveryOutcome.THROTTLED:
        limiter.on_throttle()
    elif outcome is DeliveryOutcome.TIMED_OUT:
        limiter.on_timeout()


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


@dataclass(frozen=True)
class RunMetrics:
    """Figures of one run beyond the summary, for metrics."""

    latency_avg_ms: float
    latency_max_ms: float
    peak_in_flight: int
    peak_limit: int
    lowest_limit: int
    limit_decreases: int


@dataclass
class _Load:
    """The request load of one run: the adaptive limit, the slots it bounds, the latencies seen."""

    limiter: AimdLimiter
    slots: _RequestSlots = field(init=False)
    latency_total_s: float = 0.0
    latency_count: int = 0
    latency_max_s: float = 0.0

    def __post_init__(self) -> None:
        self.slots = _RequestSlots(self.limiter)

    def add_latency(self, seconds: float) -> None:
        self.latency_total_s += seconds
        self.latency_count += 1
        self.latency_max_s = max(self.latency_max_s, seconds)

    def metrics(self) -> RunMetrics:
        count = self.latency_count
        return RunMetrics(
            latency_avg_ms=1000 * self.latency_total_s / count if count else 0.0,
            latency_max_ms=1000 * self.latency_max_s,
            peak_in_flight=self.slots.peak_in_flight,
            peak_limit=self.limiter.peak,
            lowest_limit=self.limiter.lowest,
            limit_decreases=self.limiter.decreases,
        )


@dataclass
class _Invocation:
    """What the row tasks of one invocation share, and the bookkeeping of their outcomes."""

    ref: ObjectRef
    """The object as opened (its key as read, its version and ETag)."""
    version: str
    summary: RunSummary
    failed: FailedRows
    load: _Load
    remaining: RemainingTime
    unfinished: dict[int, int] = field(default_factory=dict)
    """Rows taken but not finished: row number → byte offset where its record starts."""
    any_answer: bool = False
    paused: str | None = None
    """Why no new row is taken (the downstream is saturated); the answer is PARTIAL."""
    unreachable: str | None = None
    """Why the invocation is abandoned: :class:`DownstreamUnavailableError` is raised."""

    def record_failed(self, row: CsvRow, reason: str, cells: tuple[str, ...], byte_offset: int) -> None:
        self.failed.add(row.number, reason, cells, byte_offset=byte_offset, line=row.raw)
        self.summary.rows_failed += 1

    def settle(self, row: DataRow, decision: RowDecision) -> None:
        """Carry out a final decision about ``row`` (every action but ``RETRY``)."""
        action = decision.action
        if action is RowAction.APPLIED:
            self.summary.rows_applied += 1
        elif action is RowAction.FAILED:
            self.record_failed(row, decision.reason, tuple(row.values.values()), self.unfinished[row.number])
        elif action is RowAction.PAUSE:
            self.paused = self.paused or f"{decision.reason} (row {row.number})"
        elif action is RowAction.UNREACHABLE:
            self.unreachable = self.unreachable or f"{decision.reason} (row {row.number})"
        if action in (RowAction.APPLIED, RowAction.FAILED):
            del self.unfinished[row.number]

    def count(self, outcome: DeliveryOutcome, decision: RowDecision) -> None:
        if outcome is DeliveryOutcome.THROTTLED:
            self.summary.throttled += 1
        elif outcome is DeliveryOutcome.TIMED_OUT:
            self.summary.timeouts += 1
        if decision.action is RowAction.RETRY:
            self.summary.retries += 1

    def stop_taking(self, margin_s: float) -> bool:
        if self.unreachable is not None or self.paused is not None:
            return True
        left = self.remaining()
        return left is not None and left < margin_s


@dataclass
class _ReadPosition:
    """The next row to take and where its record starts; ``finished`` once the object is read."""

    row: int
    offset: int
    finished: bool = False


class ObjectProcessor:
    """Processes one object per :meth:`run` call; collaborators are passed in.

    The steps of a run are fixed: open the object (or the rest of it, from the cursor), take rows
    and deliver each (:meth:`_deliver_row`: attempt, :func:`~s3stagger.domain.delivery.decide`,
    carry the decision out), then answer COMPLETE, PARTIAL with a cursor, or REJECTED.
    """

    def __init__(
        self,
        settings: ProcessorSettings,
        source: ObjectSource,
        sink: FailedRowsSink,
        downstream: Downstream,
        *,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._source = source
        self._sink = sink
        self._downstream = downstream
        # Backoff jitter, not security.
        self._rng = rng or random.Random()  # nosec B311
        self._sleep = sleep
        self._policy = delivery_policy(settings)
        self._format = csv_format(settings)

    async def run(
        self, request: ProcessRequest, remaining_s: RemainingTime | None = None
    ) -> tuple[RunSummary, RunMetrics]:
        """Process ``request``; returns the summary and figures, or raises on a transient failure."""
        started = time.monotonic()
        ref = request.object
        summary = RunSummary(status=RunStatus.COMPLETE, bucket=ref.bucket, key=ref.key)
        load = _Load(AimdLimiter(self._settings.initial_concurrency, self._settings.max_concurrency))
        opened: list[OpenedObject] = []
        try:
            start = self._open(request, opened)
            await self._deliver_rows(start, summary, load, remaining_s or (lambda: None))
        except ObjectRejectedError as rejection:
            summary.status = RunStatus.REJECTED
            summary.error = {"type": rejection.reason.value, "message": rejection.message}
            summary.failed_rows_object = self._sink.write_quarantine(
                ref, rejection.reason.value, rejection.message
            )
        finally:
            for item in opened:
                item.close()
            summary.concurrency_limit = load.limiter.limit
            summary.duration_ms = int((time.monotonic() - started) * 1000)
        return summary, load.metrics()

    def _open(self, request: ProcessRequest, opened: list[OpenedObject]) -> _Start:
        ref = request.object
        if ref.size is not None:
            self._check_size(ref.size)
        if request.cursor is None:
            return self._open_whole(ref, opened)
        return self._open_rest(ref, request.cursor, opened)

    def _open_whole(self, ref: ObjectRef, opened: list[OpenedObject]) -> _Start:
        whole = self._source.open(ref, if_match=ref.etag)
        opened.append(whole)
        self._check_size(whole.object_size)
        reader = CsvObjectReader(whole.chunks, self._format)
        header = reader.read_header()
        return _Start(whole, reader, header, 1, header.end_offset, header.end_offset)

    def _open_rest(self, ref: ObjectRef, cursor: Cursor, opened: list[OpenedObject]) -> _Start:
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
        self._check_size(rest.object_size)
        reader = CsvObjectReader(rest.chunks, self._format, start_offset=cursor.byte_offset)
        return _Start(rest, reader, header, cursor.next_row, cursor.byte_offset, cursor.header_end)

    def _check_size(self, size: int) -> None:
        if size > self._format.max_object_bytes:
            raise ObjectRejectedError(
                RejectionReason.OBJECT_TOO_LARGE,
                f"object is {size} bytes, over S3STAGGER_MAX_OBJECT_BYTES="
                f"{self._format.max_object_bytes}; split it or raise the limit",
            )

    async def _deliver_rows(
        self, start: _Start, summary: RunSummary, load: _Load, remaining: RemainingTime
    ) -> None:
        summary.key = start.opened.key or summary.key
        ref = ObjectRef(summary.bucket, summary.key, start.version_id, start.opened.etag)
        version = start.version_token
        summary.warning = start.header.warning
        failed = self._sink.open_batch(ref, version, start.header)
        invocation = _Invocation(ref, version, summary, failed, load, remaining)
        try:
            position = await self._take_rows(start, invocation)
            if invocation.unreachable is not None:
                raise DownstreamUnavailableError(invocation.unreachable)
        except BaseException:
            failed.discard()  # the caller retries, or the object is quarantined: no record of rows
            raise
        summary.failed_rows_object = failed.close()
        if invocation.unfinished:
            position.row = min(invocation.unfinished)
            position.offset = invocation.unfinished[position.row]
            position.finished = False
        if not position.finished:
            summary.status = RunStatus.PARTIAL
            summary.cursor = Cursor(
                position.row, position.offset, start.header_end, start.opened.etag, start.version_id
            )

    async def _take_rows(self, start: _Start, invocation: _Invocation) -> _ReadPosition:
        """Take rows while time, the row limit and the downstream allow; deliver each in a task."""
        pending: set[asyncio.Task[None]] = set()
        crashes: list[BaseException] = []
        read_ahead = asyncio.Semaphore(2 * self._settings.max_concurrency)
        position = _ReadPosition(start.first_row, start.first_offset)
        rows: Iterator[CsvRow] = start.reader.rows(start.header.columns, start.first_row)

        def finished(task: asyncio.Task[None]) -> None:
            pending.discard(task)
            read_ahead.release()
            error = None if task.cancelled() else task.exception()  # retrieved here, raised below
            if error is not None:
                crashes.append(error)

        try:
            for _ in range(self._settings.max_rows_per_invocation):
                if crashes or invocation.stop_taking(self._settings.deadline_margin_s):
                    break
                row = next(rows, None)
                if row is None:
                    position.finished = True
                    break
                row_start, position.row, position.offset = position.offset, row.number + 1, row.next_offset
                if isinstance(row, BadRow):
                    invocation.record_failed(row, row.reason, row.cells, row_start)
                    continue
                await read_ahead.acquire()
                invocation.unfinished[row.number] = row_start
                task = asyncio.create_task(self._deliver_row(invocation, row))
                pending.add(task)
                task.add_done_callback(finished)
            await _until_done_or_crashed(pending, crashes)
        except BaseException:
            # A crash ends every other row task too, and reads what each ended with, so none is left
            # with an exception nobody retrieved.
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            raise
        return position

    async def _deliver_row(self, invocation: _Invocation, row: DataRow) -> None:
        """Attempt, decide, and carry the decision out until the row is settled."""
        ref = invocation.ref
        key = row_idempotency_key(ref.bucket, ref.key, invocation.version, row.number)
        body = row_body(ref, row)
        attempts = RowAttempts()
        while invocation.unreachable is None:  # else: abandoned; the row stays unfinished
            delivery = await self._attempt(invocation, body, key)
            view = InvocationView(invocation.any_answer, invocation.remaining())
            decision = decide(delivery, attempts, view, self._policy, self._rng)
            invocation.count(delivery.outcome, decision)
            if decision.action is not RowAction.RETRY:
                invocation.settle(row, decision)
                return
            attempts = decision.attempts
            await self._sleep(decision.delay_s)

    async def _attempt(self, invocation: _Invocation, body: dict[str, Any], key: str) -> Delivery:
        """One request, holding a slot only while it is on the wire; feeds the limiter."""
        settings = self._settings
        timeout = attempt_timeout_s(
            invocation.remaining(), settings.read_timeout_s, settings.deadline_margin_s
        )
        load = invocation.load
        await load.slots.acquire()
        try:
            delivery = await self._downstream.deliver(body, key, timeout)
            feed_limiter(load.limiter, delivery.outcome, load.slots.in_flight)
        finally:
            load.slots.release()
        load.add_latency(delivery.latency_s)
        invocation.any_answer = invocation.any_answer or delivery.status is not None
        return delivery


async def _until_done_or_crashed(pending: set[asyncio.Task[None]], crashes: list[BaseException]) -> None:
    """Wait for the row tasks still running; raise the first exception one of them ended with."""
    while pending and not crashes:
        await asyncio.wait(set(pending), return_when=asyncio.FIRST_EXCEPTION)
    if crashes:
        raise crashes[0]


@dataclass(frozen=True)
class _Start:
    opened: OpenedObject
    reader: CsvObjectReader
    header: CsvHeader
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
