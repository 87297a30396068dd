"""The object processor with in-memory collaborators: the steps of a run and their bookkeeping."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from s3stagger.adapters.failed_rows_sink import FailedRowsBatch, S3FailedRowsSink
from s3stagger.api_config import ApiSettings
from s3stagger.config import ProcessorSettings
from s3stagger.domain.breaker import BreakerSettings
from s3stagger.domain.csv_rows import CsvHeader
from s3stagger.domain.delivery import Delivery, DeliveryOutcome
from s3stagger.domain.failed_row_record import parse_record
from s3stagger.domain.model import (
    Cursor,
    InvalidRequestError,
    ObjectRef,
    ProcessRequest,
    RunStatus,
    RunSummary,
)
from s3stagger.domain.ports import OpenedObject
from s3stagger.domain.request_mapping import FieldSpec, FieldType, OutgoingRow, RequestMapping
from s3stagger.processor import (
    ChainLink,
    DownstreamUnavailableError,
    ObjectProcessor,
    SystemicRejectionError,
    answered_link,
)

REF = ObjectRef("bucket", "normal/rows.csv", etag="etag-1")


def csv_object(rows: int) -> bytes:
    return b"id,name\n" + b"".join(f"{n},name {n}\n".encode() for n in range(1, rows + 1))


@dataclass
class MemorySource:
    """Serves one object from memory in chunks; ``claimed_size`` can lie about its size."""

    data: bytes
    chunk: int = 16
    claimed_size: int | None = None
    closed: int = 0

    def open(
        self,
        ref: ObjectRef,
        *,
        start: int = 0,
        end: int | None = None,
        if_match: str | None = None,
        version_id: str | None = None,
    ) -> OpenedObject:
        part = self.data[start : None if end is None else end + 1]
        chunks = iter([part[i : i + self.chunk] for i in range(0, len(part), self.chunk)])
        size = len(self.data) if self.claimed_size is None else self.claimed_size
        return OpenedObject("etag-1", None, size, chunks, ref.key, release=self._close)

    def _close(self) -> None:
        self.closed += 1


@dataclass
class RecordingS3:
    """The one S3 call the failed-rows sink makes."""

    puts: dict[str, bytes] = field(default_factory=dict)

    def put_object(self, *, Bucket: str, Key: str, Body: Any, ContentType: str) -> None:
        self.puts[Key] = Body if isinstance(Body, bytes) else Body.read()


class KeptSink(S3FailedRowsSink):
    """The real sink over a recording client; keeps the batches it opened."""

    def __init__(self) -> None:
        self.s3 = RecordingS3()
        super().__init__(self.s3, None)  # type: ignore[arg-type]
        self.batches: list[FailedRowsBatch] = []

    def open_batch(self, ref: ObjectRef, version: str, header: CsvHeader) -> FailedRowsBatch:
        batch = super().open_batch(ref, version, header)
        self.batches.append(batch)
        return batch


@dataclass
class ScriptedDownstream:
    """Answers each attempt with ``script(row_number, attempt)``; counts attempts per row."""

    script: Callable[[int, int], Delivery]
    attempts: dict[int, int] = field(default_factory=dict)

    async def deliver(self, rows: Sequence[OutgoingRow], timeout_s: float | None = None) -> list[Delivery]:
        answers = []
        for outgoing in rows:
            row = int(outgoing.request.body["source"]["row"])
            self.attempts[row] = self.attempts.get(row, 0) + 1
            answers.append(self.script(row, self.attempts[row]))
        await asyncio.sleep(0)
        return answers


def always(delivery: Delivery) -> Callable[[int, int], Delivery]:
    return lambda _row, _attempt: delivery


OK = Delivery(DeliveryOutcome.APPLIED, 200, "ok", latency_s=0.004)
REFUSED = Delivery(DeliveryOutcome.UNREACHABLE, None, "cannot connect: refused")
BUSY = Delivery(DeliveryOutcome.THROTTLED, 429, "HTTP 429: busy")
BAD = Delivery(DeliveryOutcome.REJECTED, 422, "HTTP 422: bad row")

SETTINGS = ProcessorSettings(
    downstream_url="http://downstream.test/rows",
    max_concurrency=4,
    max_attempts=3,
    max_throttled_attempts=2,
    backoff_base_s=0.0,
    backoff_max_s=0.0,
)


async def no_wait(_seconds: float) -> None:
    await asyncio.sleep(0)


def run(
    source: MemorySource,
    downstream: ScriptedDownstream,
    sink: KeptSink,
    settings: ProcessorSettings = SETTINGS,
    cursor: Cursor | None = None,
) -> Any:
    processor = ObjectProcessor(settings, source, sink, downstream, rng=random.Random(1), sleep=no_wait)
    return asyncio.run(processor.run(ProcessRequest(REF, cursor)))


def test_a_complete_run_answers_the_summary_and_its_figures() -> None:
    source, sink = MemorySource(csv_object(10)), KeptSink()
    downstream = ScriptedDownstream(lambda row, attempt: BAD if row == 4 else OK)
    summary, metrics = run(source, downstream, sink)
    assert summary.status is RunStatus.COMPLETE
    assert (summary.rows_applied, summary.rows_failed) == (9, 1)
    assert summary.failed_rows_object is not None
    (batch,) = sink.batches
    assert batch.closed
    (record,) = sink.s3.puts.values()
    assert b"downstream rejected the row: HTTP 422: bad row" in record
    assert metrics.latency_max_ms == pytest.approx(4.0)
    assert 1 <= metrics.peak_in_flight <= 4
    assert source.closed == 1


def test_an_unreachable_downstream_raises_and_the_failed_rows_batch_is_discarded_not_left_open() -> None:
    source, sink = MemorySource(b"id,name\n1,a\n2,\xff\n3,c\n"), KeptSink()  # row 2 fails in the reader
    with pytest.raises(DownstreamUnavailableError, match="no answer to any request after 3 attempts"):
        run(source, ScriptedDownstream(always(REFUSED)), sink)
    (batch,) = sink.batches
    assert batch.count == 1  # the bad row was recorded ...
    assert batch.closed  # ... and its spooled file released
    assert sink.s3.puts == {}  # but nothing written: the retried invocation records it
    assert source.closed == 1


def test_a_rejection_after_the_batch_was_opened_closes_it_and_quarantines_the_object() -> None:
    # The object claims to be small but is not: the reader rejects it part-way.
    data = csv_object(40)
    source, sink = MemorySource(data, claimed_size=10), KeptSink()
    settings = ProcessorSettings(downstream_url=SETTINGS.downstream_url, max_object_bytes=100)
    summary, _ = run(source, ScriptedDownstream(always(OK)), sink, settings)
    assert summary.status is RunStatus.REJECTED
    assert summary.error is not None
    assert summary.error["type"] == "object_too_large"
    assert "S3STAGGER_MAX_OBJECT_BYTES=100" in summary.error["message"]
    (batch,) = sink.batches
    assert batch.closed
    (key,) = sink.s3.puts
    assert key.startswith("failed-rows/quarantine/")


def test_a_row_throttled_past_its_budget_pauses_the_object_at_it_and_never_fails_it() -> None:
    downstream = ScriptedDownstream(lambda row, attempt: BUSY if row == 3 else OK)
    summary, metrics = run(MemorySource(csv_object(30)), downstream, KeptSink())
    assert summary.status is RunStatus.PARTIAL
    assert summary.rows_failed == 0
    assert summary.cursor is not None
    assert summary.cursor.next_row == 3
    assert summary.throttled == downstream.attempts[3] == 2
    assert summary.retries == 1  # one retry between the two throttled attempts
    assert metrics.limit_decreases == 2
    assert summary.rows_applied < 30


def test_the_continuation_from_a_pause_applies_the_rest() -> None:
    data = csv_object(30)
    first, _ = run(MemorySource(data), ScriptedDownstream(lambda r, a: BUSY if r == 3 else OK), KeptSink())
    downstream = ScriptedDownstream(always(OK))
    second, _ = run(MemorySource(data), downstream, KeptSink(), cursor=first.cursor)
    assert second.status is RunStatus.COMPLETE
    assert min(downstream.attempts) == 3
    assert max(downstream.attempts) == 30


def test_a_request_refused_for_load_keeps_its_slot_through_the_wait_before_its_retry() -> None:
    """While the rows refused with a 429 wait for their retry, the call sends no other row: the
    downstream sees at most the call's limit of requests, refusals included."""

    async def scenario() -> tuple[int, Any]:
        retry_allowed = asyncio.Event()

        async def wait_for_retry(_seconds: float) -> None:
            await retry_allowed.wait()

        downstream = ScriptedDownstream(lambda _row, attempt: BUSY if attempt == 1 else OK)
        processor = ObjectProcessor(
            SETTINGS, MemorySource(csv_object(12)), KeptSink(), downstream, sleep=wait_for_retry
        )
        running = asyncio.create_task(processor.run(ProcessRequest(REF, None)))
        for _ in range(100):  # every row that can be sent now is sent
            await asyncio.sleep(0)
        sent_while_waiting = len(downstream.attempts)
        retry_allowed.set()
        return sent_while_waiting, await running

    sent_while_waiting, (summary, _metrics) = asyncio.run(scenario())
    assert 1 <= sent_while_waiting <= SETTINGS.max_concurrency
    assert summary.status is RunStatus.COMPLETE
    assert summary.rows_applied == 12


def test_retryable_failures_are_retried_then_the_row_is_failed_once_the_downstream_answered() -> None:
    broken = Delivery(DeliveryOutcome.RETRYABLE_ERROR, 500, "HTTP 500: bug")
    downstream = ScriptedDownstream(lambda row, attempt: broken if row == 2 else OK)
    summary, _ = run(MemorySource(csv_object(5)), downstream, KeptSink())
    assert summary.status is RunStatus.COMPLETE
    assert (summary.rows_applied, summary.rows_failed, summary.retries) == (4, 1, 2)
    assert downstream.attempts[2] == 3


@pytest.mark.parametrize(
    "away",
    [
        Delivery(DeliveryOutcome.RETRYABLE_ERROR, 503, "HTTP 503: down"),
        Delivery(DeliveryOutcome.UNREACHABLE, None, "cannot connect: refused"),
        Delivery(DeliveryOutcome.TIMED_OUT, None, "timed out: ReadTimeout"),
    ],
)
def test_a_downstream_away_or_busy_after_answering_pauses_the_object_and_fails_no_row(away: Delivery) -> None:
    data = csv_object(6)
    sink = KeptSink()
    downstream = ScriptedDownstream(lambda row, attempt: away if row >= 4 else OK)
    first, _ = run(
        MemorySource(data), downstream, sink, settings=dataclasses.replace(SETTINGS, max_concurrency=1)
    )
    assert first.status is RunStatus.PARTIAL
    assert first.rows_failed == 0
    assert sink.s3.puts == {}
    assert first.cursor is not None
    assert first.cursor.next_row == 4
    second, _ = run(MemorySource(data), ScriptedDownstream(always(OK)), KeptSink(), cursor=first.cursor)
    assert second.status is RunStatus.COMPLETE
    assert first.rows_applied + second.rows_applied == 6


def test_a_crashing_row_task_ends_the_others_and_leaves_no_exception_unretrieved() -> None:
    unretrieved: list[dict[str, Any]] = []

    class Crash(RuntimeError):
        pass

    async def crashing(row: int, attempt: int) -> Delivery:
        await asyncio.sleep(0.01 if row % 2 else 0)
        raise Crash(f"row {row}")

    class CrashingDownstream(ScriptedDownstream):
        async def deliver(
            self, rows: Sequence[OutgoingRow], timeout_s: float | None = None
        ) -> list[Delivery]:
            return [await crashing(rows[0].number, 1)]

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: unretrieved.append(context))
        processor = ObjectProcessor(
            SETTINGS, MemorySource(csv_object(20)), KeptSink(), CrashingDownstream(always(OK)), sleep=no_wait
        )
        with pytest.raises(Crash):
            await processor.run(ProcessRequest(REF))
        gc.collect()
        await asyncio.sleep(0)

    asyncio.run(main())
    assert unretrieved == []


def test_no_time_to_retry_leaves_the_row_unfinished_and_the_cursor_at_it() -> None:
    slow = Delivery(DeliveryOutcome.TIMED_OUT, None, "timed out: ReadTimeout")
    downstream = ScriptedDownstream(lambda row, attempt: slow if row == 1 else OK)
    left = iter([60.0] * 3 + [0.0] * 1000)  # the deadline arrives after the first rows are taken
    processor = ObjectProcessor(SETTINGS, MemorySource(csv_object(5)), KeptSink(), downstream, sleep=no_wait)
    summary, _ = asyncio.run(processor.run(ProcessRequest(REF), lambda: next(left)))
    assert summary.status is RunStatus.PARTIAL
    assert summary.cursor is not None
    assert summary.cursor.next_row == 1
    assert summary.rows_failed == 0
    assert summary.timeouts == downstream.attempts[1]


def test_a_cursor_whose_header_end_is_not_the_header_is_rejected() -> None:
    cursor = Cursor(next_row=2, byte_offset=12, header_end=12, etag="etag-1")  # the header ends at 8
    summary, _ = run(MemorySource(csv_object(3)), ScriptedDownstream(always(OK)), KeptSink(), cursor=cursor)
    assert summary.status is RunStatus.REJECTED
    assert summary.error is not None
    assert summary.error["type"] == "invalid_cursor"
    assert "(it ends at 8)" in summary.error["message"]


UNAUTHORIZED = Delivery(DeliveryOutcome.REJECTED, 401, "HTTP 401: invalid key")
GONE = Delivery(DeliveryOutcome.REJECTED, 410, "HTTP 410: gone")
BREAKER = replace(SETTINGS, api=ApiSettings(breaker=BreakerSettings(window=10, ratio=0.8, min_rows=5)))


def test_a_status_refusing_most_rows_stops_the_object_and_sinks_none_of_its_rows() -> None:
    source, sink = MemorySource(csv_object(200)), KeptSink()
    downstream = ScriptedDownstream(always(UNAUTHORIZED))
    with pytest.raises(SystemicRejectionError, match="refuses most rows of the object with HTTP 401"):
        run(source, downstream, sink, BREAKER)
    assert sink.s3.puts == {}  # nothing in the sink for that cause
    assert len(downstream.attempts) < 200  # the rest stayed unsent
    assert all(count == 1 for count in downstream.attempts.values())  # a refusal is never retried


def test_a_breaker_trip_after_isolated_refusals_sinks_nothing_of_the_invocation() -> None:
    # Row 3 is refused alone, early; from row 40 on every row is (a key rotated mid-object).
    source, sink = MemorySource(csv_object(100)), KeptSink()
    downstream = ScriptedDownstream(lambda row, _: UNAUTHORIZED if row >= 40 else (GONE if row == 3 else OK))
    with pytest.raises(SystemicRejectionError, match="HTTP 401"):
        run(source, downstream, sink, BREAKER)
    assert sink.s3.puts == {}  # the raised invocation discards its failed rows; the redrive records row 3


def test_isolated_permanent_refusals_still_go_to_the_sink() -> None:
    source, sink = MemorySource(csv_object(60)), KeptSink()
    downstream = ScriptedDownstream(lambda row, _: GONE if row % 7 == 0 else OK)
    summary, _ = run(source, downstream, sink, BREAKER)
    assert summary.status is RunStatus.COMPLETE
    assert (summary.rows_applied, summary.rows_failed) == (52, 8)
    (record,) = sink.s3.puts.values()
    assert record.count(b"HTTP 410: gone") == 8
    # the rows the breaker held and released are replayable: their offset and original bytes
    data = csv_object(60)
    recorded = parse_record(record.decode("utf-8"), "record").rows
    assert [row.row_number for row in recorded] == list(range(7, 61, 7))
    for row in recorded:
        assert row.line
        assert data[row.byte_offset : row.byte_offset + len(row.line)] == row.line


def test_refusals_of_different_statuses_do_not_add_up_to_a_trip() -> None:
    statuses = [GONE, UNAUTHORIZED, BAD]
    source, sink = MemorySource(csv_object(30)), KeptSink()
    summary, _ = run(source, ScriptedDownstream(lambda row, _: statuses[row % 3]), sink, BREAKER)
    assert (summary.status, summary.rows_failed) == (RunStatus.COMPLETE, 30)


@dataclass
class BatchDownstream:
    """A batch endpoint: ``script(row, attempt)`` per row; records the rows of each request."""

    script: Callable[[int, int], Delivery]
    requests: list[list[int]] = field(default_factory=list)
    attempts: dict[int, int] = field(default_factory=dict)
    bodies: list[Any] = field(default_factory=list)

    async def deliver(self, rows: Sequence[OutgoingRow], timeout_s: float | None = None) -> list[Delivery]:
        self.requests.append([row.number for row in rows])
        self.bodies.extend(row.request.body for row in rows)
        answers = []
        for row in rows:
            self.attempts[row.number] = self.attempts.get(row.number, 0) + 1
            answers.append(self.script(row.number, self.attempts[row.number]))
        await asyncio.sleep(0)
        return answers


def test_a_row_that_does_not_fit_the_field_map_is_failed_unsent_with_its_reason() -> None:
    mapping = RequestMapping(SETTINGS.downstream_url, fields=(FieldSpec("id", "id", FieldType.INT),))
    source, sink = MemorySource(b"id,name\n1,a\nx2,b\n3,c\n"), KeptSink()
    downstream = BatchDownstream(always(OK))
    processor = ObjectProcessor(SETTINGS, source, sink, downstream, mapping=mapping, sleep=no_wait)
    summary, _ = asyncio.run(processor.run(ProcessRequest(REF)))
    assert (summary.rows_applied, summary.rows_failed) == (2, 1)
    assert downstream.bodies == [{"id": 1}, {"id": 3}]
    (record,) = sink.s3.puts.values()
    assert b"request mapping: column 'id': 'x2' is not a valid int" in record


def test_rows_go_n_per_request_and_each_row_is_decided_on_its_own() -> None:
    flaky = Delivery(DeliveryOutcome.RETRYABLE_ERROR, 503, "HTTP 503 (batch row)")
    mapping = RequestMapping(SETTINGS.downstream_url, rows_per_request=4)
    source, sink = MemorySource(csv_object(10)), KeptSink()
    downstream = BatchDownstream(
        lambda row, attempt: BAD if row == 2 else (flaky if row == 3 and attempt == 1 else OK)
    )
    processor = ObjectProcessor(SETTINGS, source, sink, downstream, mapping=mapping, sleep=no_wait)
    summary, _ = asyncio.run(processor.run(ProcessRequest(REF)))
    assert (summary.status, summary.rows_applied, summary.rows_failed) == (RunStatus.COMPLETE, 9, 1)
    assert sorted(downstream.requests) == [[1, 2, 3, 4], [3], [5, 6, 7, 8], [9, 10]]
    assert summary.retries == 1


class SlowDownstream:
    """Applies every row after a pause long enough for the other requests to pile up."""

    async def deliver(self, rows: Sequence[OutgoingRow], timeout_s: float | None = None) -> list[Delivery]:
        for _ in range(20):
            await asyncio.sleep(0)
        return [OK for _ in rows]


@pytest.mark.parametrize(("most_in_flight", "reachable"), [(None, 4), (12, 12)])
def test_an_autoscaler_ceiling_above_max_concurrency_is_not_held_back_by_the_read_ahead(
    most_in_flight: int | None, reachable: int
) -> None:
    """max_concurrency 2 reads 2 x 2 requests ahead; an invocation the autoscaler may give 12 reads
    twice that ahead, so its limit can climb to the ceiling of 12."""
    settings = replace(SETTINGS, max_concurrency=2, initial_concurrency=2)
    processor = ObjectProcessor(
        settings,
        MemorySource(csv_object(400), chunk=4096),
        KeptSink(),
        SlowDownstream(),
        rng=random.Random(1),
        sleep=no_wait,
        ceiling=lambda: 12,
        most_in_flight=most_in_flight,
    )
    summary, metrics = asyncio.run(processor.run(ProcessRequest(REF, None)))
    assert summary.status is RunStatus.COMPLETE
    assert summary.rows_applied == 400
    assert metrics.peak_in_flight == reachable


@pytest.mark.parametrize("ceiling", [None, 6])
def test_an_invocation_starts_at_the_autoscaler_ceiling_not_at_the_initial_limit(ceiling: int | None) -> None:
    """The autoscaler's ceiling is the object's share of the downstream already: its first requests
    go out together. Without one the limit starts at initial_concurrency and climbs."""
    settings = replace(SETTINGS, max_concurrency=8, initial_concurrency=1)
    processor = ObjectProcessor(
        settings,
        MemorySource(csv_object(6)),
        KeptSink(),
        SlowDownstream(),
        sleep=no_wait,
        ceiling=None if ceiling is None else (lambda: ceiling),
    )
    summary, metrics = asyncio.run(processor.run(ProcessRequest(REF, None)))
    assert summary.rows_applied == 6
    if ceiling is None:
        assert metrics.peak_in_flight < 6  # climbing from 1, the object ends before it gets there
    else:
        assert metrics.peak_in_flight == 6


# One call serving several objects with one row pool (ObjectProcessor.run_chain)

LATENCY_S = 0.002


@dataclass
class Objects:
    """Serves several objects from memory by key."""

    rows: dict[str, int]

    def open(self, ref: ObjectRef, **range_and_match: object) -> object:
        return MemorySource(csv_object(self.rows[ref.key])).open(ref, **range_and_match)  # type: ignore[arg-type]


@dataclass
class TimedDownstream:
    """Answers every row after a short wait; records when each object's rows were on the wire and
    the most requests in flight at once. Rows of ``refused_keys`` are refused (the breaker trips)."""

    refused_keys: frozenset[str] = frozenset()
    in_flight: int = 0
    peak: int = 0
    wire: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    async def deliver(self, rows: Sequence[OutgoingRow], timeout_s: float | None = None) -> list[Delivery]:
        key = str(rows[0].request.body["source"]["key"])
        loop = asyncio.get_running_loop()
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        started = loop.time()
        await asyncio.sleep(LATENCY_S)
        self.in_flight -= 1
        self.wire.setdefault(key, []).append((started, loop.time()))
        if key in self.refused_keys:
            return [
                Delivery(DeliveryOutcome.REJECTED, 403, "HTTP 403: forbidden", latency_s=LATENCY_S)
            ] * len(rows)
        return [Delivery(DeliveryOutcome.APPLIED, 200, "ok", latency_s=LATENCY_S)] * len(rows)


def link(key: str) -> ChainLink[str]:
    return ChainLink(key, ProcessRequest(ObjectRef("bucket", key, etag="etag-1")))


@dataclass
class Queue:
    """The next objects of a chain, taken one by one; records what the caller was told."""

    waiting: list[ChainLink[str]]
    taken: int = 0
    ended_tags: list[str] = field(default_factory=list)
    superseded_tags: list[str] = field(default_factory=list)

    async def take(self) -> ChainLink[str] | None:
        if not self.waiting:
            return None
        self.taken += 1
        return self.waiting.pop(0)

    async def ended(self, done: ChainLink[str]) -> None:
        self.ended_tags.append(done.tag)

    async def superseded(self, done: ChainLink[str]) -> None:
        self.superseded_tags.append(done.tag)


def run_chain(
    rows: dict[str, int], queue: Queue, downstream: TimedDownstream, remaining_s: float | None = None
) -> list[ChainLink[str]]:
    processor = ObjectProcessor(
        SETTINGS, Objects(rows), KeptSink(), downstream, rng=random.Random(1), sleep=no_wait
    )
    first = link(next(iter(rows)))
    links, _ = asyncio.run(processor.run_chain(first, lambda: remaining_s, queue))
    return links


def test_the_next_object_starts_while_the_last_rows_of_the_one_before_are_in_flight() -> None:
    rows = {"a.csv": 21, "b.csv": 21, "c.csv": 21}
    downstream = TimedDownstream()
    queue = Queue([link("b.csv"), link("c.csv")])

    links = run_chain(rows, queue, downstream)

    assert [item.summary.rows_applied for item in links if item.summary] == [21, 21, 21]
    assert all(item.summary and item.summary.status is RunStatus.COMPLETE for item in links)
    a_last_end = max(end for _, end in downstream.wire["a.csv"])
    b_first_start = min(start for start, _ in downstream.wire["b.csv"])
    assert b_first_start < a_last_end  # b's rows filled the pool while a's tail drained
    assert downstream.peak == SETTINGS.max_concurrency  # one pool for the call, never above it
    # each clean object is let go once another followed it; the last is the answer's
    assert queue.superseded_tags == ["a.csv", "b.csv"]
    assert answered_link(links).tag == "c.csv"
    assert queue.ended_tags == ["a.csv", "b.csv", "c.csv"]


def test_a_call_takes_no_object_while_a_pool_of_rows_already_waits() -> None:
    """Rows are read ahead of the pool (up to twice its most in flight); objects smaller than that
    are all taken at once, but the next message waits until fewer rows wait than the limit."""
    rows = {f"{index:02d}.csv": 2 for index in range(20)}
    open_at_take: list[int] = []

    class Pacing(Queue):
        async def take(self) -> ChainLink[str] | None:
            open_at_take.append(self.taken + 1 - len(self.ended_tags))
            return await super().take()

    queue = Pacing([link(key) for key in list(rows)[1:]])
    processor = ObjectProcessor(
        SETTINGS,
        Objects(rows),
        KeptSink(),
        TimedDownstream(),
        rng=random.Random(1),
        sleep=no_wait,
        most_in_flight=64,
    )
    links, _ = asyncio.run(processor.run_chain(link("00.csv"), lambda: None, queue))

    assert [item.summary.rows_applied for item in links if item.summary] == [2] * 20
    # in service (the limit) and waiting (fewer than the limit), two rows an object, plus the one taken
    assert max(open_at_take) <= 2 * SETTINGS.max_concurrency // 2 + 1


def test_no_object_is_taken_after_one_that_did_not_end_clean() -> None:
    rows = {"a.csv": 30, "b.csv": 5}
    queue = Queue([link("b.csv")])

    links = run_chain(rows, queue, TimedDownstream(refused_keys=frozenset({"a.csv"})))

    assert queue.taken == 0
    assert [item.tag for item in links] == ["a.csv"]
    assert links[0].error is not None
    assert "403" in str(links[0].error)
    assert queue.superseded_tags == []


def test_no_object_is_taken_within_the_deadline_margin() -> None:
    rows = {"a.csv": 3, "b.csv": 3}
    queue = Queue([link("b.csv")])

    links = run_chain(rows, queue, TimedDownstream(), remaining_s=SETTINGS.deadline_margin_s - 1)

    assert queue.taken == 0
    assert links[0].summary is not None
    assert links[0].summary.status is RunStatus.PARTIAL


def test_a_message_that_names_no_object_ends_the_chain_and_is_the_answer() -> None:
    rows = {"a.csv": 5, "c.csv": 5}
    malformed: ChainLink[str] = ChainLink("b", None, error=InvalidRequestError("no S3 event"))
    queue = Queue([malformed, link("c.csv")])

    links = run_chain(rows, queue, TimedDownstream())

    assert [item.tag for item in links] == ["a.csv", "b"]
    assert answered_link(links) is malformed
    assert queue.superseded_tags == ["a.csv"]


def test_the_answer_is_about_the_first_object_that_did_not_end_clean() -> None:
    def ended(tag: str, status: RunStatus | None) -> ChainLink[str]:
        item = link(tag)
        if status is None:
            item.error = RuntimeError("unreachable")
        else:
            item.summary = run_summary(tag, status)
        return item

    clean = [ended("a", RunStatus.COMPLETE), ended("b", RunStatus.REJECTED)]
    assert answered_link(clean).tag == "b"
    partial_then_failed = [*clean, ended("c", RunStatus.PARTIAL), ended("d", None)]
    assert answered_link(partial_then_failed).tag == "c"
    assert answered_link([*clean, ended("d", None), ended("e", RunStatus.COMPLETE)]).tag == "d"


def run_summary(key: str, status: RunStatus) -> RunSummary:
    return RunSummary(status=status, bucket="bucket", key=key)


def test_the_rows_of_a_higher_priority_object_taken_later_go_before_the_waiting_rows() -> None:
    """A high object a call takes behind a normal one does not queue behind the normal one's waiting
    rows: a released request slot goes to the lowest rank first."""
    rows = {"normal.csv": 21, "high.csv": 8}
    normal = ChainLink("normal.csv", ProcessRequest(ObjectRef("bucket", "normal.csv", etag="etag-1")), rank=1)
    downstream = TimedDownstream()
    processor = ObjectProcessor(
        SETTINGS, Objects(rows), KeptSink(), downstream, rng=random.Random(1), sleep=no_wait
    )

    links, _ = asyncio.run(processor.run_chain(normal, lambda: None, Queue([link("high.csv")])))

    assert [item.summary.rows_applied for item in links if item.summary] == [21, 8]
    high_first_start = min(start for start, _ in downstream.wire["high.csv"])
    normal_last_start = max(start for start, _ in downstream.wire["normal.csv"])
    assert normal_last_start > high_first_start  # the normal rows left waiting went after it
    assert downstream.peak == SETTINGS.max_concurrency
