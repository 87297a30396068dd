"""The object processor: one S3 object (or the rest of it, from a cursor) → rows delivered downstream.

The application service behind the ``process_object`` Lambda handler. It composes the domain (CSV
rows, AIMD limiter, retry policy, idempotency keys) with the adapters it is given (object source,
failed-rows sink, downstream client; their types are in :mod:`s3stagger.domain.ports`) and runs
one invocation. What each attempt means for its row is decided by the pure
:func:`s3stagger.domain.delivery.decide`; this module carries the decisions out:

* rows are read lazily and sent concurrently on one asyncio loop; the number of requests in flight
  is bounded by the adaptive (AIMD) limit, never above ``max_concurrency`` (or the autoscaler's
  ceiling, when it gives one); at most twice the most requests that may be in flight have their
  rows read ahead, so memory stays flat;
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
* a permanent status refusing most of the object's recent rows (the breaker,
  :mod:`s3stagger.domain.breaker`: ``BREAKER_WINDOW``, ``BREAKER_RATIO``, ``BREAKER_MIN_ROWS``)
  stops the object: :class:`SystemicRejectionError` names the status, the rows refused in the
  window are not sent to the sink and the rows not sent wait for a redrive; an isolated refusal
  still goes to the sink;
* rows become requests through the :class:`~s3stagger.domain.request_mapping.RequestMapping`
  (body, URL, rows per request); a row whose values do not fit it is a failed row, never sent.
  With several rows per request, each row of the answer is decided on its own and the rows to
  retry go again together;
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
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from s3stagger.config import ProcessorSettings
from s3stagger.domain.breaker import RejectionWindow
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
from s3stagger.domain.request_mapping import OutgoingRow, RequestMapping, RowMappingError, SourceRow
from s3stagger.domain.retry import RetryPolicy
from s3stagger.errors import S3StaggerError

RemainingTime = Callable[[], float | None]
"""Seconds left in the invocation, or ``None`` when there is no deadline."""

T = TypeVar("T")


@dataclass(eq=False)
class ChainLink(Generic[T]):
    """One object of a call (:meth:`ObjectProcessor.run_chain`) and how it ended.

    ``tag``: what the caller knows it by (its queue message); ``request``: the object, or ``None``
    when the message names none (``error`` says why; the chain ends there).
    """

    tag: T
    request: ProcessRequest | None
    summary: RunSummary | None = None
    error: BaseException | None = None
    followed: bool = False
    """Another object was taken after this one."""
    superseded: bool = False
    """The caller was told the object ended clean with another after it (its message can go)."""
    rank: int = 0
    """Its priority, 0 the highest (its queue's place in priority order): while rows of several
    objects wait for the call's request slots, those of the lowest rank go first."""

    @property
    def ended(self) -> bool:
        return self.summary is not None or self.error is not None

    def outcome(self) -> RunSummary:
        """The summary of an ended link; raises the error it ended with."""
        if self.error is not None:
            raise self.error
        if self.summary is None:
            raise RuntimeError(f"object {self.tag!r} has not ended")
        return self.summary

    @property
    def clean(self) -> bool:
        """Ended COMPLETE or REJECTED (quarantined): nothing of it is left to do."""
        return self.summary is not None and self.summary.status is not RunStatus.PARTIAL


class ChainHooks(Protocol[T]):
    """What :meth:`ObjectProcessor.run_chain` asks and tells its caller."""

    async def take(self) -> ChainLink[T] | None:
        """The next object (its message received and held), or ``None``: none waits."""
        ...

    async def ended(self, link: ChainLink[T]) -> None:
        """``link`` ended (its summary or error is set)."""
        ...

    async def superseded(self, link: ChainLink[T]) -> None:
        """``link`` ended clean and another was taken after it: its message can go."""
        ...


def answered_link(links: Sequence[ChainLink[T]]) -> ChainLink[T]:
    """The one link a chain's answer is about: the first that did not end clean, else the last.

    The caller settles every other link itself: a clean one's message is deleted, one that did not
    end clean is given back to its queue (its rows done are sent again under their Idempotency-Keys).
    """
    return next((link for link in links if not link.clean), links[-1])


Sleep = Callable[[float], Awaitable[None]]


class DownstreamUnavailableError(S3StaggerError, RuntimeError):
    """The downstream could not be reached during the whole invocation: transient, retry later."""


class SystemicRejectionError(S3StaggerError, RuntimeError):
    """One permanent status refuses most rows of the object (the breaker): fix the cause, redrive.

    The invocation fails, so the dispatcher's failure path alerts and the message ends in the DLQ;
    no row was written to the failed-rows sink for that cause.
    """


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


def request_outcome(deliveries: Sequence[Delivery]) -> DeliveryOutcome:
    """What one request's rows say about the downstream's load: a 429 or timeout for any row counts."""
    outcomes = {delivery.outcome for delivery in deliveries}
    for signal in (DeliveryOutcome.THROTTLED, DeliveryOutcome.TIMED_OUT, DeliveryOutcome.APPLIED):
        if signal in outcomes:
            return signal
    return deliveries[0].outcome


def feed_limiter(limiter: AimdLimiter, outcome: DeliveryOutcome, in_flight: int) -> None:
    """Tell the limiter what an attempt says about the downstream's load."""
    if outcome is DeliveryOutcome.APPLIED:
        limiter.on_success(in_flight)
    elif outcome is DeliveryOutcome.THROTTLED:
        limiter.on_throttle()
    elif outcome is DeliveryOutcome.TIMED_OUT:
        limiter.on_timeout()


class _RequestSlots:
    """Request slots bounded by the limiter's current limit (asyncio, one loop): a request holds one
    while on the wire and, refused for load, until its retry (``in_flight`` counts both).

    A released slot is handed directly to the longest waiter of the highest priority (lowest rank;
    FIFO within a rank), and only as many waiters are woken as the limit allows, so a release costs
    O(1) however many rows wait (a call's objects come from a few priority lanes).
    """

    def __init__(self, limiter: AimdLimiter) -> None:
        self._limiter = limiter
        self._waiters: dict[int, deque[asyncio.Future[None]]] = {}
        self._waiting = 0
        self._room = asyncio.Event()
        self.in_flight = 0
        self.peak_in_flight = 0

    async def room_for_more(self) -> None:
        """Until fewer rows wait for a slot than the limit: then what waits is less than one
        latency of work, and rows taken now do not queue behind a backlog of earlier ones."""
        self._note_room()
        await self._room.wait()

    def _note_room(self) -> None:
        if self._waiting < self._limiter.limit:
            self._room.set()
        else:
            self._room.clear()

    async def acquire(self, rank: int = 0) -> None:
        """A slot for a request of an object of ``rank`` (0 the highest priority)."""
        if not self._waiting and self.in_flight < self._limiter.limit:
            self._take()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(rank, deque()).append(waiter)
        self._waiting += 1
        self._note_room()
        try:
            await waiter  # resolved by _wake, which has already taken the slot for us
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()
            elif waiter in self._waiters[rank]:  # else a release already dropped it, cancelled
                self._waiters[rank].remove(waiter)
                self._waiting -= 1
                self._note_room()
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _take(self) -> None:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def _wake(self) -> None:
        for rank in sorted(self._waiters):
            queue = self._waiters[rank]
            while queue and self.in_flight < self._limiter.limit:
                waiter = queue.popleft()
                self._waiting -= 1
                if not waiter.done():
                    self._take()
                    waiter.set_result(None)
        self._note_room()


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


HeldRow = tuple[int, str, tuple[str, ...], int, bytes | None]
"""A failed row as the failed-rows sink records it: number, reason, cells, byte offset, its bytes."""


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
    breaker: RejectionWindow[HeldRow]
    """The breaker's window; a refused row is held there as its failed-rows record."""
    rank: int = 0
    """The object's priority (:attr:`ChainLink.rank`): its rows' place in the wait for a slot."""
    unfinished: dict[int, int] = field(default_factory=dict)
    """Rows taken but not finished: row number → byte offset where its record starts."""
    any_answer: bool = False
    paused: str | None = None
    """Why no new row is taken (the downstream is saturated); the answer is PARTIAL."""
    unreachable: str | None = None
    """Why the invocation is abandoned: :class:`DownstreamUnavailableError` is raised."""
    stopped: str | None = None
    """Why the object is stopped (the breaker): :class:`SystemicRejectionError` is raised."""

    @property
    def abandoned(self) -> bool:
        return self.unreachable is not None or self.stopped is not None

    def record_failed(
        self, number: int, reason: str, cells: tuple[str, ...], byte_offset: int, line: bytes | None
    ) -> None:
        self.failed.add(number, reason, cells, byte_offset=byte_offset, line=line)
        self.summary.rows_failed += 1

    def refusing_status(self, delivery: Delivery) -> int | None:
        """The breaker's fact for :func:`decide`: this refusal's status if it would trip the window."""
        status = delivery.status
        if delivery.outcome is DeliveryOutcome.REJECTED and status is not None:
            return status if self.breaker.would_trip(status) else None
        return None

    def settle(self, row: DataRow, decision: RowDecision, delivery: Delivery) -> None:
        """Carry out a final decision about ``row`` (every action but ``RETRY``)."""
        action = decision.action
        cells = tuple(row.values.values())
        released: list[HeldRow] = []
        if action is RowAction.APPLIED:
            self.summary.rows_applied += 1
            released = self.breaker.settle(None)
        elif action is RowAction.FAILED and delivery.outcome is DeliveryOutcome.REJECTED:
            held: HeldRow = (row.number, decision.reason, cells, self.unfinished[row.number], row.raw)
            released = self.breaker.settle(delivery.status, held)
        elif action is RowAction.FAILED:
            self.record_failed(row.number, decision.reason, cells, self.unfinished[row.number], row.raw)
            released = self.breaker.settle(None)
        elif action is RowAction.PAUSE:
            self.paused = self.paused or f"{decision.reason} (row {row.number})"
        elif action is RowAction.UNREACHABLE:
            self.unreachable = self.unreachable or f"{decision.reason} (row {row.number})"
        elif action is RowAction.STOP:
            self.stopped = self.stopped or f"{decision.reason} (row {row.number})"
        for held in released:
            self.record_failed(*held)
        if action in (RowAction.APPLIED, RowAction.FAILED):
            del self.unfinished[row.number]

    def finish(self) -> None:
        """The object ended without a trip: the refusals still held are isolated ones."""
        for held in self.breaker.release_all():
            self.record_failed(*held)

    def count(self, outcome: DeliveryOutcome, decision: RowDecision) -> None:
        if outcome is DeliveryOutcome.THROTTLED:
            self.summary.throttled += 1
        elif outcome is DeliveryOutcome.TIMED_OUT:
            self.summary.timeouts += 1
        if decision.action is RowAction.RETRY:
            self.summary.retries += 1

    def stop_taking(self, margin_s: float) -> bool:
        if self.abandoned or self.paused is not None:
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
        mapping: RequestMapping | None = None,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
        ceiling: Callable[[], int | None] | None = None,
        most_in_flight: int | None = None,
    ) -> None:
        """``ceiling``: the autoscaler's rows in flight per object, asked before every request
        (None: keep ``settings.max_concurrency``); the adaptive limit starts at it and never
        exceeds it.
        ``most_in_flight``: the most requests the ceiling may ever allow (the invocation's
        connection pool; default ``settings.max_concurrency``); the rows read ahead follow it, so
        a raised ceiling is not held back by how far the reader may run ahead."""
        self._ceiling = ceiling
        self._most_in_flight = max(settings.max_concurrency, most_in_flight or 0)
        self._settings = settings
        self._source = source
        self._sink = sink
        self._downstream = downstream
        self._mapping = mapping or settings.api.request.mapping(settings.downstream_url)
        # Backoff jitter, not security.
        self._rng = rng or random.Random()  # nosec B311
        self._sleep = sleep
        self._policy = delivery_policy(settings)
        self._format = csv_format(settings)

    async def run(
        self, request: ProcessRequest, remaining_s: RemainingTime | None = None
    ) -> tuple[RunSummary, RunMetrics]:
        """Process ``request``; returns the summary and figures, or raises on a transient failure."""
        links, figures = await self.run_chain(ChainLink(None, request), remaining_s)
        return links[0].outcome(), figures

    async def run_chain(
        self,
        first: ChainLink[T],
        remaining_s: RemainingTime | None = None,
        hooks: ChainHooks[T] | None = None,
    ) -> tuple[list[ChainLink[T]], RunMetrics]:
        """Process ``first`` and, through ``hooks.take``, the objects after it, with one row pool.

        Once an object's last row is taken (its tail in flight) and fewer rows wait for a request
        slot than the limit, the next one is taken and its rows fill the pool as the tail drains, so
        the downstream does not idle between objects and no object queues behind many others. No next
        object is taken once an object ended otherwise than COMPLETE or REJECTED, less than the
        deadline margin is left, or ``take`` finds none. ``hooks.ended`` hears of every object as it
        ends, ``hooks.superseded`` of every clean one once another was taken after it (its message
        can go); the caller settles the rest (:func:`answered_link`). Every link ends with a summary
        or the error it raised.
        """
        remaining = remaining_s or (lambda: None)
        load = self._new_load()
        links: list[ChainLink[T]] = []
        running: list[asyncio.Task[None]] = []

        async def superseded(link: ChainLink[T]) -> None:
            if hooks is not None and link.followed and link.clean and not link.superseded:
                link.superseded = True
                await hooks.superseded(link)

        async def run_link(
            link: ChainLink[T], request: ProcessRequest, all_taken: Callable[[], None]
        ) -> None:
            await self._run_link(link, request, load, remaining, all_taken)
            if hooks is not None:
                await hooks.ended(link)
            await superseded(link)

        link: ChainLink[T] | None = first
        while link is not None:
            if links:
                links[-1].followed = True
                await superseded(links[-1])
            links.append(link)
            if link.request is None:  # a message that names no object: nothing to run, the chain ends
                break
            all_taken = asyncio.Event()
            running.append(asyncio.create_task(run_link(link, link.request, all_taken.set)))
            # the next object once this one's last row is taken and fewer rows wait for the
            # downstream than the limit: small objects whose rows were all taken at once let a call
            # take 100 messages ahead of its pool (a high one then waited behind them all, measured)
            taken = asyncio.create_task(self._all_taken_with_room(all_taken, load))
            await asyncio.wait({running[-1], taken}, return_when=asyncio.FIRST_COMPLETED)
            taken.cancel()
            if hooks is None or not self._may_chain(links, remaining):
                break
            link = await hooks.take()
        await asyncio.gather(*running)
        return links, load.metrics()

    @staticmethod
    async def _all_taken_with_room(all_taken: asyncio.Event, load: _Load) -> None:
        await all_taken.wait()
        await load.slots.room_for_more()

    def _may_chain(self, links: Sequence[ChainLink[Any]], remaining: RemainingTime) -> bool:
        if not all(link.clean for link in links if link.ended):
            return False
        left = remaining()
        return left is None or left >= self._settings.deadline_margin_s

    async def _run_link(
        self,
        link: ChainLink[Any],
        request: ProcessRequest,
        load: _Load,
        remaining: RemainingTime,
        all_taken: Callable[[], None],
    ) -> None:
        started = time.monotonic()
        ref = request.object
        summary = RunSummary(status=RunStatus.COMPLETE, bucket=ref.bucket, key=ref.key)
        opened: list[OpenedObject] = []
        try:
            start = self._open(request, opened)
            await self._deliver_rows(start, summary, load, remaining, all_taken, rank=link.rank)
        except ObjectRejectedError as rejection:
            summary.status = RunStatus.REJECTED
            summary.error = {"type": rejection.reason.value, "message": rejection.message}
            summary.failed_rows_object = self._sink.write_quarantine(
                ref, rejection.reason.value, rejection.message
            )
        except Exception as error:  # the link carries it; run() and the handler raise it
            link.error = error
        finally:
            for item in opened:
                item.close()
            summary.concurrency_limit = load.limiter.limit
            summary.duration_ms = int((time.monotonic() - started) * 1000)
            all_taken()
        if link.error is None:
            link.summary = summary

    def _new_load(self) -> _Load:
        # the autoscaler's ceiling is already this call's share of the downstream: start there
        # rather than climb to it object after object (as a pinned share starts at its share)
        ceiling = self._ceiling_now()
        initial = self._settings.initial_concurrency if ceiling is None else ceiling
        return _Load(AimdLimiter(initial, max(self._settings.max_concurrency, initial)))

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
        self,
        start: _Start,
        summary: RunSummary,
        load: _Load,
        remaining: RemainingTime,
        all_taken: Callable[[], None],
        *,
        rank: int,
    ) -> None:
        summary.key = start.opened.key or summary.key
        ref = ObjectRef(summary.bucket, summary.key, start.version_id, start.opened.etag)
        version = start.version_token
        summary.warning = start.header.warning
        failed = self._sink.open_batch(ref, version, start.header)
        breaker: RejectionWindow[HeldRow] = RejectionWindow(self._settings.api.breaker)
        invocation = _Invocation(ref, version, summary, failed, load, remaining, breaker, rank)
        try:
            position = await self._take_rows(start, invocation, all_taken)
            if invocation.unreachable is not None:
                raise DownstreamUnavailableError(invocation.unreachable)
            if invocation.stopped is not None:
                raise SystemicRejectionError(
                    f"{invocation.stopped}; no row went to the failed-rows sink for it: fix the cause "
                    "(credentials, URL, permissions) and redrive the message"
                )
            invocation.finish()
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

    async def _take_rows(
        self, start: _Start, invocation: _Invocation, all_taken: Callable[[], None]
    ) -> _ReadPosition:
        """Take rows while time, the row limit and the downstream allow; deliver each group in a task.

        A group is ``rows_per_request`` rows (one request); the last group of a run may be smaller.
        """
        groups = _Groups(
            lambda group: self._deliver_group(invocation, group),
            self._mapping.rows_per_request,
            2 * self._most_in_flight * self._mapping.rows_per_request,
        )
        position = _ReadPosition(start.first_row, start.first_offset)
        rows: Iterator[CsvRow] = start.reader.rows(start.header.columns, start.first_row)

        try:
            for _ in range(self._settings.max_rows_per_invocation):
                if groups.crashed or invocation.stop_taking(self._settings.deadline_margin_s):
                    break
                row = next(rows, None)
                if row is None:
                    position.finished = True
                    all_taken()
                    break
                row_start, position.row, position.offset = position.offset, row.number + 1, row.next_offset
                if isinstance(row, BadRow):
                    invocation.record_failed(row.number, row.reason, row.cells, row_start, row.raw)
                    continue
                outgoing = self._outgoing(invocation, row, row_start)
                if outgoing is not None:
                    await groups.reserve()
                    invocation.unfinished[row.number] = row_start
                    groups.add(row, outgoing)
            await groups.finish()
        except BaseException:
            await groups.cancel()
            raise
        return position

    def _outgoing(self, invocation: _Invocation, row: DataRow, row_start: int) -> OutgoingRow | None:
        """The row as the mapping sends it, or ``None`` (recorded as failed) when it does not fit."""
        ref = invocation.ref
        try:
            request = self._mapping.map_row(SourceRow(ref.bucket, ref.key, row.number, row.values))
        except RowMappingError as error:
            invocation.record_failed(
                row.number, f"request mapping: {error}", tuple(row.values.values()), row_start, row.raw
            )
            return None
        key = row_idempotency_key(ref.bucket, ref.key, invocation.version, row.number)
        return OutgoingRow(row.number, key, request)

    async def _deliver_group(self, invocation: _Invocation, group: list[tuple[DataRow, OutgoingRow]]) -> None:
        """Attempt, decide for each row, carry the decisions out; the rows to retry go again together.

        A request the downstream refused for load (429) keeps its request slot through the wait
        before its retry: the call then has no more requests in flight or waiting to retry than its
        limit. Released at once, the slot went to the next row, refused at once too while the
        downstream was still full: after a capacity halved, each call swept its whole pool of rows
        into 429s every Retry-After (266 refusals in one second, capacity-step scenario)."""
        waiting = {row.number: (row, outgoing, RowAttempts()) for row, outgoing in group}
        slots = invocation.load.slots
        while waiting and not invocation.abandoned:  # else: the rows left stay unfinished
            entries = list(waiting.values())
            self._follow_ceiling(invocation.load)
            await slots.acquire(invocation.rank)
            try:
                deliveries = await self._attempt(invocation, [outgoing for _, outgoing, _ in entries])
                delay_s = self._decide_rows(invocation, entries, deliveries, waiting)
                again = bool(waiting) and not invocation.abandoned
                wait_in_slot = again and request_outcome(deliveries) is DeliveryOutcome.THROTTLED
                if wait_in_slot:
                    await self._sleep(delay_s)
            finally:
                slots.release()
            if again and not wait_in_slot:
                await self._sleep(delay_s)

    def _decide_rows(
        self,
        invocation: _Invocation,
        entries: list[tuple[DataRow, OutgoingRow, RowAttempts]],
        deliveries: list[Delivery],
        waiting: dict[int, tuple[DataRow, OutgoingRow, RowAttempts]],
    ) -> float:
        """Decide each row of one attempt: settle it, or keep it in ``waiting`` for a retry; the
        longest retry delay the decisions ask for."""
        delay_s = 0.0
        for (row, outgoing, attempts), delivery in zip(entries, deliveries, strict=True):
            view = InvocationView(
                invocation.any_answer, invocation.remaining(), invocation.refusing_status(delivery)
            )
            decision = decide(delivery, attempts, view, self._policy, self._rng)
            invocation.count(delivery.outcome, decision)
            if decision.action is RowAction.RETRY:
                waiting[row.number] = (row, outgoing, decision.attempts)
                delay_s = max(delay_s, decision.delay_s)
            else:
                del waiting[row.number]
                invocation.settle(row, decision, delivery)
        return delay_s

    def _ceiling_now(self) -> int | None:
        """The autoscaler's rows in flight per object as it is now (None: no autoscaler)."""
        return None if self._ceiling is None else self._ceiling()

    def _follow_ceiling(self, load: _Load) -> None:
        """The autoscaler's rows in flight per object, as it is now, bounds the limit."""
        ceiling = self._ceiling_now()
        if ceiling is not None:
            load.limiter.set_maximum(ceiling)

    async def _attempt(self, invocation: _Invocation, rows: list[OutgoingRow]) -> list[Delivery]:
        """One request, within a request slot the caller holds; feeds the limiter."""
        settings = self._settings
        timeout = attempt_timeout_s(
            invocation.remaining(), settings.read_timeout_s, settings.deadline_margin_s
        )
        load = invocation.load
        deliveries = await self._downstream.deliver(rows, timeout)
        feed_limiter(load.limiter, request_outcome(deliveries), load.slots.in_flight)
        load.add_latency(deliveries[0].latency_s)
        invocation.any_answer = invocation.any_answer or any(d.status is not None for d in deliveries)
        return deliveries


class _Groups:
    """Rows gathered into groups of ``size`` (one request each), each delivered in its own task;
    at most ``read_ahead`` rows are taken and not finished at once.

    A group task that crashes ends the others: :meth:`finish` raises the first exception, and every
    task's exception is retrieved, so none is left with an exception nobody read.
    """

    def __init__(
        self,
        deliver: Callable[[list[tuple[DataRow, OutgoingRow]]], Coroutine[Any, Any, None]],
        size: int,
        read_ahead: int,
    ) -> None:
        self._deliver = deliver
        self._size = size
        self._read_ahead = asyncio.Semaphore(read_ahead)
        self._group: list[tuple[DataRow, OutgoingRow]] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._crashes: list[BaseException] = []

    @property
    def crashed(self) -> bool:
        return bool(self._crashes)

    async def reserve(self) -> None:
        """Wait for room for one more row."""
        await self._read_ahead.acquire()

    def add(self, row: DataRow, outgoing: OutgoingRow) -> None:
        self._group.append((row, outgoing))
        if len(self._group) == self._size:
            self._launch()

    async def finish(self) -> None:
        """Send the last (smaller) group and wait for every group; raise the first crash."""
        if self._group and not self._crashes:
            self._launch()
        while self._pending and not self._crashes:
            await asyncio.wait(set(self._pending), return_when=asyncio.FIRST_EXCEPTION)
        if self._crashes:
            raise self._crashes[0]

    async def cancel(self) -> None:
        """End every group still running and read what each ended with."""
        pending = set(self._pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _launch(self) -> None:
        group, self._group = self._group, []
        task = asyncio.create_task(self._deliver(group))
        self._pending.add(task)
        task.add_done_callback(lambda done: self._finished(done, len(group)))

    def _finished(self, task: asyncio.Task[None], rows: int) -> None:
        self._pending.discard(task)
        for _ in range(rows):
            self._read_ahead.release()
        error = None if task.cancelled() else task.exception()  # retrieved here, raised by finish()
        if error is not None:
            self._crashes.append(error)


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
