"""Chaos at the processor: fault kinds over many small objects, with lost/duplicate accounting.

Each fault kind runs on its own: a fresh downstream simulator (behind an outage proxy), the real
processor (:class:`~s3stagger.processor.ObjectProcessor`) over S3 (moto, in-process) with the real
failed-rows sink, driven as the dispatcher drives it — call again at the cursor while PARTIAL; on an
exception retry after a delay, and after ``max_receives`` failures put the object in a dead-letter
list. Once the fault is gone the dead-letter list is redriven (processed again from its cursor) and
the failed-rows sink replayed (:class:`~s3stagger.adapters.failed_rows_replay.FailedRowsReplay`).

Accounting per kind, from the simulator's own ledger: rows expected (every data row of every
object's final version), rows applied once (their Idempotency-Keys the downstream applied), rows
still outstanding in the sink with a reason, objects quarantined with a reason (poison, deleted),
**lost** = expected - applied - outstanding, **duplicate effects** (the simulator's count of a body
applied twice).

Lambda throttling and a dispatcher execution stopped mid-batch need the dispatcher and the Lambda
service: :mod:`s3stagger.local.stack_chaos` runs them on the whole local stack.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from s3stagger.adapters.downstream_client import HttpDownstream, build_http_transports
from s3stagger.adapters.failed_rows_replay import FailedRowsReplay, ReplayOptions, ReplayTarget
from s3stagger.adapters.failed_rows_sink import S3FailedRowsSink
from s3stagger.adapters.s3_object_source import S3ObjectSource
from s3stagger.config import ProcessorSettings
from s3stagger.domain.delivery import Delivery
from s3stagger.domain.failed_row_record import parse_record
from s3stagger.domain.idempotency import object_version_token, row_idempotency_key
from s3stagger.domain.model import Cursor, ObjectRef, ProcessRequest, RunStatus
from s3stagger.domain.request_mapping import OutgoingRow
from s3stagger.local.downstream import DownstreamSimulator, LatencySpec, SimulatorSettings
from s3stagger.local.outage_proxy import DownstreamOutageProxy
from s3stagger.processor import ObjectProcessor, csv_format

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "chaos-uploads"
SINK_PREFIX = "failed-rows/"
ROWS_PER_OBJECT = 5
TRANSIENT_KINDS = ("downstream_outage", "storm_503", "slow_downstream", "capacity_drop")
MAX_CALLS_PER_OBJECT = 100
"""A run is bounded: an object not done after this many calls is dead-lettered (then redriven)."""


SAMPLE_S = 0.25
"""How often the rows the downstream applied are sampled for the timeline."""


@contextmanager
def applied_over_time(
    sim: DownstreamSimulator, started: float, every_s: float, into: list[tuple[float, int]]
) -> Iterator[None]:
    """While the block runs, append (seconds since ``started``, effects applied) every ``every_s``."""
    stop = threading.Event()

    def sample() -> None:
        into.append((round(time.monotonic() - started, 2), sim.stats().effects_applied))

    def sampling() -> None:
        while not stop.wait(every_s):
            sample()

    sample()
    sampler = threading.Thread(target=sampling, name="chaos-sampler", daemon=True)
    sampler.start()
    try:
        yield
    finally:
        stop.set()
        sampler.join()
        sample()  # the last figure, as the block ends


class InjectedCrashError(RuntimeError):
    """The processor crashing mid-object (a bug), injected after some rows."""


@dataclass
class KindResult:
    kind: str
    objects: int
    rows_expected: int = 0
    rows_applied_once: int = 0
    rows_in_sink: int = 0
    objects_quarantined: int = 0
    objects_in_dlq: int = 0
    recovered_by_redrive: int = 0
    rows_failed_transient: int = 0
    lost_rows: int = 0
    duplicate_effects: int = 0
    invocations: int = 0
    max_stall_s: float = 0.0
    seconds: float = 0.0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    fault_window_s: tuple[float, float] = (0.0, 0.0)
    """When the fault was on, in seconds from the start of the kind."""
    timeline: list[tuple[float, int]] = field(default_factory=list)
    """(seconds from the start, rows the downstream applied so far), every quarter second."""


@dataclass
class _Object:
    ref: ObjectRef
    body: bytes
    expected: bool = True
    """Its rows must be applied (not a poison or deleted object)."""
    cursor: Cursor | None = None
    failures: int = 0
    done: bool = False


@dataclass
class _Fault:
    """How one kind perturbs the run; the defaults are no fault."""

    simulator: SimulatorSettings = field(default_factory=lambda: SimulatorSettings(capacity=8, seed=1))
    settings: dict[str, Any] = field(default_factory=dict)
    outage_s: float = 0.0
    crash_after_rows: int = 0
    timeout_first_call_s: float = 0.0
    twice: bool = False
    concurrently: bool = False
    overwrite: bool = False
    delete: bool = False
    poison: bool = False


def fault_kinds(window_s: float) -> dict[str, _Fault]:
    """The fault kinds this harness runs, by name."""
    return {
        "downstream_outage": _Fault(outage_s=window_s),
        "storm_503": _Fault(
            simulator=SimulatorSettings(capacity=8, error_rate=0.3, seed=2, retry_after_s=0.01)
        ),
        "slow_downstream": _Fault(
            simulator=SimulatorSettings(capacity=8, latency=LatencySpec.uniform(0.0, 0.25), seed=3),
            settings={"read_timeout_s": 0.1},
        ),
        "capacity_drop": _Fault(
            simulator=SimulatorSettings(capacity=8, seed=4, capacity_schedule=((0.0, 1), (window_s, 8)))
        ),
        "processor_crash_mid_object": _Fault(crash_after_rows=2),
        "processor_timeout": _Fault(timeout_first_call_s=0.01),
        "duplicate_s3_events": _Fault(twice=True),
        "overwritten_while_processed": _Fault(overwrite=True, settings={"max_rows_per_invocation": 2}),
        "deleted_before_processed": _Fault(delete=True),
        "poison_objects": _Fault(poison=True),
        "redelivered_by_visibility_expiry": _Fault(concurrently=True),
    }


def csv_object(kind: str, index: int, version: str = "v1", rows: int = ROWS_PER_OBJECT) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "kind", "value"])
    for row in range(1, rows + 1):
        writer.writerow([f"{index}-{row}", kind, f"{version}-{row * 7}"])
    return buffer.getvalue().encode()


POISON = (b"id;kind;value\n1;x;2\n", b"", b"\xff\xfeid,kind\n1,x\n")


class _CrashingDownstream:
    """Passes deliveries through; raises once per object after ``after`` rows of its first call."""

    def __init__(self, inner: HttpDownstream, after: int) -> None:
        self._inner = inner
        self._after = after
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    async def deliver(self, rows: Sequence[OutgoingRow], timeout_s: float | None = None) -> list[Delivery]:
        key = rows[0].request.body["source"]["key"]  # the default request mapping's body
        with self._lock:
            count = self._seen.get(key, 0) + 1
            self._seen[key] = count
        if count == self._after + 1:
            raise InjectedCrashError(f"injected crash in {key} after {self._after} rows")
        return await self._inner.deliver(rows, timeout_s)


class ChaosRun:
    """One fault kind over ``objects`` objects (see the module doc)."""

    def __init__(self, s3: S3Client, kind: str, fault: _Fault, objects: int, *, workers: int = 4) -> None:
        self._s3 = s3
        self._kind = kind
        self._fault = fault
        self._objects = objects
        self._workers = workers
        self._applied_at: list[float] = []
        self._lock = threading.Lock()
        self.result = KindResult(kind, objects)

    def run(self, max_receives: int = 3, retry_delay_s: float = 0.05) -> KindResult:
        started = time.monotonic()
        with (
            DownstreamSimulator(self._fault.simulator) as sim,
            DownstreamOutageProxy(sim.port) as proxy,
            applied_over_time(sim, started, SAMPLE_S, self.result.timeline),
        ):
            settings = replace(
                ProcessorSettings(
                    downstream_url=proxy.url("/rows"),
                    max_attempts=3,
                    max_throttled_attempts=5,
                    backoff_base_s=0.01,
                    backoff_max_s=0.05,
                    read_timeout_s=2.0,
                    max_concurrency=4,
                    failed_rows_bucket=BUCKET,
                    failed_rows_prefix=f"{SINK_PREFIX}{self._kind}/",
                ),
                **self._fault.settings,
            )
            objects = self._upload()
            window_start = round(time.monotonic() - started, 2)
            if self._fault.outage_s:
                proxy.outage()
                threading.Timer(self._fault.outage_s, proxy.restore).start()
            dead = self._drive(settings, objects, max_receives, retry_delay_s)
            self.result.objects_in_dlq = len(dead)
            proxy.restore()
            self.result.rows_failed_transient = (
                self._sink_rows(settings) if self._kind in TRANSIENT_KINDS else 0
            )
            # The fault is gone: redrive the dead letters, then replay the sink.
            self._drive(settings, dead, max_receives, retry_delay_s)
            self.result.recovered_by_redrive = sum(1 for item in dead if item.done)
            replayed = asyncio.run(self._replay(settings, sim.rows_url))
            self.result.recovered_by_redrive += replayed
            self._account(settings, objects, sim)
        self.result.seconds = round(time.monotonic() - started, 2)
        schedule = self._fault.simulator.capacity_schedule  # counted from the simulator's start
        if self._fault.outage_s:
            self.result.fault_window_s = (window_start, round(window_start + self._fault.outage_s, 2))
        elif schedule:
            self.result.fault_window_s = (0.0, schedule[-1][0])
        else:
            self.result.fault_window_s = (0.0, self.result.seconds)
        return self.result

    def _upload(self) -> list[_Object]:
        objects: list[_Object] = []
        for index in range(self._objects):
            key = f"normal/{self._kind}/{index:05d}.csv"
            body = POISON[index % len(POISON)] if self._fault.poison else csv_object(self._kind, index)
            etag = self._s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
            item = _Object(ObjectRef(BUCKET, key, etag=etag), body, expected=not self._fault.poison)
            if self._fault.delete:
                self._s3.delete_object(Bucket=BUCKET, Key=key)
                item.expected = False
            objects.append(item)
        return objects

    def _drive(
        self, settings: ProcessorSettings, objects: list[_Object], max_receives: int, delay_s: float
    ) -> list[_Object]:
        """Process each object to the end; returns those that failed ``max_receives`` times."""
        dead: list[_Object] = []
        for item in objects:
            item.failures = 0
        with ThreadPoolExecutor(self._workers) as pool:
            for item, gone in zip(
                objects,
                pool.map(lambda o: self._one(settings, o, max_receives, delay_s), objects),
                strict=True,
            ):
                if gone:
                    dead.append(item)
        return dead

    def _one(self, settings: ProcessorSettings, item: _Object, max_receives: int, delay_s: float) -> bool:
        """Drive one object; ``True`` if it ended in the dead-letter list."""
        first = True
        for _ in range(MAX_CALLS_PER_OBJECT):
            if item.done:
                break
            try:
                self._call(settings, item, first)
            except Exception:  # the dispatcher's retry: any failure is retried, then dead-lettered
                item.failures += 1
                if item.failures >= max_receives:
                    return True
                time.sleep(delay_s)
            first = False
        if not item.done:
            return True  # bounded: still paused after that many calls, it waits in the DLQ
        if self._fault.twice or self._fault.concurrently:
            self._again(settings, item)
        return False

    def _call(self, settings: ProcessorSettings, item: _Object, first: bool) -> None:
        fault = self._fault
        if fault.concurrently and first:
            # A message redelivered by visibility expiry: a second invocation of the same object at once.
            other = _Object(item.ref, item.body)
            worker = threading.Thread(target=self._call, args=(settings, other, False))
            worker.start()
            self._invoke(settings, item, crash=False, timeout_s=0.0)
            worker.join()
            return
        self._invoke(
            settings,
            item,
            crash=bool(fault.crash_after_rows) and first,
            timeout_s=fault.timeout_first_call_s if first else 0.0,
        )
        if fault.overwrite and first and item.cursor is not None:
            # The key is overwritten while processed: the continuation finds another ETag (object_changed);
            # the new version comes with its own event.
            body = csv_object(self._kind, int(item.ref.key.rsplit("/", 1)[1][:5]), version="v2")
            etag = self._s3.put_object(Bucket=BUCKET, Key=item.ref.key, Body=body)["ETag"].strip('"')
            item.ref, item.body = ObjectRef(BUCKET, item.ref.key, etag=etag), body
            self._invoke(settings, item, crash=False, timeout_s=0.0)
            item.cursor = None
            item.done = False

    def _again(self, settings: ProcessorSettings, item: _Object) -> None:
        repeat = _Object(item.ref, item.body)
        for _ in range(MAX_CALLS_PER_OBJECT):
            if repeat.done:
                return
            self._invoke(settings, repeat, crash=False, timeout_s=0.0)

    def _invoke(self, settings: ProcessorSettings, item: _Object, *, crash: bool, timeout_s: float) -> None:
        async def call() -> None:
            async with HttpDownstream(
                build_http_transports(settings.max_concurrency),
                settings.downstream_url,
                settings.connect_timeout_s,
                settings.read_timeout_s,
            ) as http:
                downstream: Any = _CrashingDownstream(http, self._fault.crash_after_rows) if crash else http
                processor = ObjectProcessor(
                    settings,
                    S3ObjectSource(self._s3),
                    S3FailedRowsSink(self._s3, settings.failed_rows_bucket, settings.failed_rows_prefix),
                    downstream,
                    rng=random.Random(len(item.ref.key)),  # nosec B311 backoff jitter, not security
                )
                run = processor.run(ProcessRequest(item.ref, item.cursor))
                # A Lambda timeout kills the invocation wherever it is: nothing is answered.
                summary, _ = await (asyncio.wait_for(run, timeout_s) if timeout_s else run)
                self._settle(item, summary.status, summary.cursor, summary.rows_applied, summary.error)

        with self._lock:
            self.result.invocations += 1
        asyncio.run(call())

    def _settle(
        self, item: _Object, status: RunStatus, cursor: Cursor | None, applied: int, error: Any
    ) -> None:
        if applied:
            with self._lock:
                self._applied_at.append(time.monotonic())
        if status is RunStatus.PARTIAL:
            item.cursor = cursor
            return
        item.done = True
        if status is RunStatus.REJECTED and error:
            with self._lock:
                reasons = self.result.quarantine_reasons
                reasons[error["type"]] = reasons.get(error["type"], 0) + 1

    async def _replay(self, settings: ProcessorSettings, rows_url: str) -> int:
        mapping = settings.api.request.mapping(rows_url)
        async with HttpDownstream(build_http_transports(2), mapping) as http:
            target = ReplayTarget(BUCKET, settings.failed_rows_prefix or SINK_PREFIX)
            replay = FailedRowsReplay(self._s3, target, http, csv_format(settings), mapping)
            report = await replay.run(ReplayOptions())
        return report.applied + report.already_applied

    def _sink_rows(self, settings: ProcessorSettings) -> int:
        """Rows outstanding in the failed-rows sink (replayed records have moved out of ``rows/``)."""
        prefix = f"{settings.failed_rows_prefix}rows/"
        count = 0
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for item in page.get("Contents", []):
                text = self._s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().decode("utf-8")
                count += len(parse_record(text, item["Key"]).rows)
        return count

    def _account(self, settings: ProcessorSettings, objects: list[_Object], sim: DownstreamSimulator) -> None:
        applied = sim.applied_keys()
        result = self.result
        for item in objects:
            if not item.expected:
                continue
            version = object_version_token(item.ref.version_id, item.ref.etag or "")
            keys = {
                row_idempotency_key(BUCKET, item.ref.key, version, n) for n in range(1, ROWS_PER_OBJECT + 1)
            }
            result.rows_expected += len(keys)
            result.rows_applied_once += len(keys & applied)
        result.rows_in_sink = self._sink_rows(settings)
        result.objects_quarantined = sum(result.quarantine_reasons.values())
        result.lost_rows = max(0, result.rows_expected - result.rows_applied_once - result.rows_in_sink)
        result.duplicate_effects = sim.stats().duplicate_effects
        times = sorted(self._applied_at)
        result.max_stall_s = round(max((b - a for a, b in itertools.pairwise(times)), default=0.0), 2)


def run_chaos(
    s3: S3Client,
    objects_per_kind: int,
    *,
    kinds: list[str] | None = None,
    window_s: float = 2.0,
    progress: Callable[[KindResult], None] | None = None,
) -> dict[str, Any]:
    """Run every fault kind (or ``kinds``); returns the summary with one entry per kind."""
    s3.create_bucket(Bucket=BUCKET)
    results: list[KindResult] = []
    for kind, fault in fault_kinds(window_s).items():
        if kinds and kind not in kinds:
            continue
        result = ChaosRun(s3, kind, fault, objects_per_kind).run()
        results.append(result)
        if progress is not None:
            progress(result)
    return {
        "fault_kinds": len(results),
        "objects_per_kind": objects_per_kind,
        "lost_rows": sum(r.lost_rows for r in results),
        "duplicate_effects": sum(r.duplicate_effects for r in results),
        "recovered_by_redrive": sum(r.recovered_by_redrive for r in results),
        "rows_failed_transient": sum(r.rows_failed_transient for r in results),
        "max_stall_s": max((r.max_stall_s for r in results), default=0.0),
        "kinds": [asdict(r) for r in results],
    }
