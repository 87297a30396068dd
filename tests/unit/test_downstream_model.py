"""The downstream simulator's rules on their own: no sockets, no event loop, a fake clock."""

from __future__ import annotations

import email.utils

import pytest

from s3stagger.errors import S3StaggerError
from s3stagger.local.downstream.model import (
    DownstreamModel,
    RequestRefusedError,
    RowRequest,
    parse_row_request,
)
from s3stagger.local.downstream.settings import LatencySpec, SimulatorSettings


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeWaiter:
    def __init__(self, cancelled: bool = False) -> None:
        self.admitted = False
        self.cancelled = cancelled

    def done(self) -> bool:
        return self.admitted or self.cancelled

    def set_result(self, result: None, /) -> None:
        assert not self.done(), "a waiter is admitted once"
        self.admitted = True


def model(clock: FakeClock | None = None, **settings: object) -> DownstreamModel:
    return DownstreamModel(SimulatorSettings(**settings), clock=clock or FakeClock())  # type: ignore[arg-type]


def test_slots_are_taken_up_to_capacity_and_peak_is_kept() -> None:
    downstream = model(capacity=2)
    assert [downstream.try_acquire() for _ in range(3)] == [True, True, False]
    downstream.release()
    assert downstream.try_acquire()
    downstream.release()
    downstream.release()
    stats = downstream.snapshot()
    assert (stats.in_flight, stats.peak_concurrency) == (0, 2)


def test_a_freed_slot_goes_to_the_first_waiter_still_waiting() -> None:
    downstream = model(capacity=1)
    assert downstream.try_acquire()
    gone, first, second = FakeWaiter(cancelled=True), FakeWaiter(), FakeWaiter()
    for waiter in (gone, first, second):
        downstream.wait(waiter)
    assert not downstream.try_acquire(), "no jumping the queue"
    downstream.release()
    assert (first.admitted, second.admitted) == (True, False)
    assert downstream.snapshot().queued == 1
    downstream.stop_waiting(second)
    assert downstream.snapshot().queued == 0


def test_the_capacity_schedule_follows_the_clock_and_a_reset_restarts_it() -> None:
    clock = FakeClock()
    downstream = model(clock, capacity=1, capacity_schedule=((10.0, 3),))
    assert downstream.capacity_now() == 1
    clock.now += 10
    assert downstream.capacity_now() == 3
    waiter = FakeWaiter()
    downstream.wait(waiter)
    assert waiter.admitted, "a raised capacity admits at once"
    downstream.release()
    downstream.clear()
    assert downstream.capacity_now() == 1


def test_the_ledger_applies_once_replays_the_same_body_and_refuses_another() -> None:
    downstream = model()
    first = downstream.complete_row(RowRequest("k1", {"a": 1}), False, 100.0, 100.0)
    replay = downstream.complete_row(RowRequest("k1", {"a": 1}), False, 100.0, 100.0)
    conflict = downstream.complete_row(RowRequest("k1", {"a": 2}), False, 100.0, 100.0)
    same_body_new_key = downstream.complete_row(RowRequest("k2", {"a": 1}), False, 100.0, 100.0)
    assert (first.status, first.headers) == (200, ())
    assert (replay.status, replay.headers) == (200, (("Idempotent-Replayed", "true"),))
    assert conflict.status == 422
    assert same_body_new_key.status == 200
    stats = downstream.snapshot()
    assert stats.effects_applied == 2
    assert stats.duplicate_deliveries == 1
    assert stats.key_conflicts_422 == 1
    assert stats.duplicate_effects == 1
    assert downstream.applied_keys() == {"k1", "k2"}


def test_an_injected_failure_is_a_503_that_applies_nothing() -> None:
    downstream = model(retry_after_s=2.0)
    reply = downstream.complete_row(RowRequest("k", {}), True, 100.0, 100.0)
    assert (reply.status, reply.headers) == (503, (("Retry-After", "2"),))
    assert downstream.snapshot().errors_5xx == 1
    assert downstream.applied_keys() == frozenset()


def test_another_injected_status_is_answered_without_retry_after() -> None:
    downstream = model(retry_after_s=2.0, error_status=500)
    reply = downstream.complete_row(RowRequest("k", {}), True, 100.0, 100.0)
    assert (reply.status, reply.headers) == (500, ())
    assert downstream.applied_keys() == frozenset()


@pytest.mark.parametrize("status", [429, 499, 600])
def test_an_injected_status_must_be_a_server_error(status: int) -> None:
    with pytest.raises(S3StaggerError, match="error status must be a 5xx status"):
        SimulatorSettings(error_status=status)


def test_response_and_service_times_come_from_the_clock() -> None:
    clock = FakeClock()
    downstream = model(clock)
    clock.now = 100.5
    downstream.complete_row(RowRequest("k", {}), False, arrived=100.0, admitted=100.25)
    stats = downstream.snapshot()
    assert stats.latency_p50_ms == stats.latency_p95_ms == 500.0
    assert stats.service_mean_ms == 250.0


def test_seeded_draws_repeat_and_the_error_rate_decides_failures() -> None:
    settings = {"latency": LatencySpec.uniform(0.1, 0.3), "seed": 7, "error_rate": 0.5, "time_scale": 2.0}
    sequences = []
    for _ in range(2):
        downstream = model(**settings)  # type: ignore[arg-type]
        sequences.append([downstream.draw_service() for _ in range(20)])
    draws = sequences
    assert draws[0] == draws[1]
    assert all(0.2 <= latency <= 0.6 for latency, _ in draws[0])
    assert {fail for _, fail in draws[0]} == {True, False}
    assert not any(fail for _, fail in (model(error_rate=0.0).draw_service() for _ in range(20)))


def test_a_throttle_counts_and_advises_retry_after_as_seconds_or_a_date() -> None:
    downstream = model(capacity=3, retry_after_s=0.25)
    reply = downstream.throttle()
    assert (reply.status, reply.payload["capacity"]) == (429, 3)
    assert reply.headers == (("Retry-After", "0.25"),)
    assert downstream.snapshot().throttled_429 == 1
    dated = DownstreamModel(
        SimulatorSettings(retry_after_s=30.0, retry_after_http_date=True), wall_clock=lambda: 1_000_000.0
    )
    (name, value), *_ = dated.throttle().headers
    assert name == "Retry-After"
    parsed = email.utils.parsedate_to_datetime(value)
    assert parsed.timestamp() == 1_000_030.0


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({}, b"{}", "missing Idempotency-Key"),
        ({"idempotency-key": "  "}, b"{}", "missing Idempotency-Key"),
        ({"idempotency-key": "k"}, b"{not json", "not valid JSON"),
        ({"idempotency-key": "k"}, b"\xff", "not valid JSON"),
    ],
)
def test_malformed_row_requests_are_refused_with_400(
    headers: dict[str, str], body: bytes, message: str
) -> None:
    with pytest.raises(RequestRefusedError, match=message) as raised:
        parse_row_request(headers, body)
    assert raised.value.status == 400
    assert isinstance(raised.value, S3StaggerError)
    downstream = model()
    downstream.note_row_request()
    assert downstream.refuse(raised.value).status == 400
    oversized = downstream.refuse(RequestRefusedError(413, "too big"), counted=False, close=True)
    assert oversized.close
    stats = downstream.snapshot()
    assert (stats.requests, stats.bad_requests_400) == (2, 2)


def test_a_well_formed_row_request_keeps_key_and_body() -> None:
    assert parse_row_request({"idempotency-key": " k "}, b'{"a": [1]}') == RowRequest("k", {"a": [1]})


def test_connections_are_counted_and_a_clear_forgets_every_figure() -> None:
    downstream = model()
    downstream.note_connection()
    downstream.note_row_request()
    downstream.complete_row(RowRequest("k", {}), False, 100.0, 100.0)
    assert downstream.snapshot().connections_opened == 1
    downstream.clear()
    stats = downstream.snapshot()
    assert (stats.requests, stats.connections_opened, stats.effects_applied) == (0, 0, 0)
    assert stats.latency_p50_ms is None
    assert stats.service_mean_ms is None
    assert downstream.applied_keys() == frozenset()
