"""The downstream simulator as a client sees it: a real HTTP server on loopback, driven with httpx."""

from __future__ import annotations

import email.utils
import gc
import json
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest

from s3stagger.local.downstream import (
    DownstreamSimulator,
    LatencySpec,
    SimulatorSettings,
    SimulatorStats,
)
from s3stagger.local.downstream.server import TIMER_LAG_MAX_S

WAIT_LIMIT_S = 10.0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll until ``condition`` holds; fail (not hang) if it never does."""
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def post_row(client: httpx.Client, url: str, key: str | None, body: object) -> httpx.Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post(url, json=body, headers=headers)


def post_row_alone(url: str, key: str, body: object) -> httpx.Response:
    """One row on its own connection (closed afterwards), for requests sent from worker threads."""
    with httpx.Client(timeout=WAIT_LIMIT_S) as client:
        return post_row(client, url, key, body)


def burst(sim: DownstreamSimulator, count: int) -> list[httpx.Response]:
    """``count`` rows sent at once from separate connections (threads released by a barrier)."""
    barrier = threading.Barrier(count)

    def send(index: int) -> httpx.Response:
        with httpx.Client(timeout=WAIT_LIMIT_S) as client:
            barrier.wait(WAIT_LIMIT_S)
            return post_row(client, sim.rows_url, f"burst-{index}", {"row": index})

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(send, range(count)))


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=WAIT_LIMIT_S) as http:
        yield http


def test_rows_are_applied_once_and_a_repeated_key_is_replayed(client: httpx.Client) -> None:
    with DownstreamSimulator(SimulatorSettings(latency=LatencySpec.fixed(0))) as sim:
        first = post_row(client, sim.rows_url, "obj#1", {"id": 1, "name": "a"})
        repeat = post_row(client, sim.rows_url, "obj#1", {"name": "a", "id": 1})
        stats = sim.stats()
        assert first.status_code == 200
        assert "Idempotent-Replayed" not in first.headers
        assert repeat.status_code == 200
        assert repeat.headers["Idempotent-Replayed"] == "true"
        assert (stats.requests, stats.effects_applied, stats.duplicate_deliveries) == (2, 1, 1)
        assert stats.duplicate_effects == 0
        assert sim.applied_keys() == frozenset({"obj#1"})


def test_the_same_body_under_a_new_key_is_a_duplicate_effect(client: httpx.Client) -> None:
    with DownstreamSimulator(SimulatorSettings(latency=LatencySpec.fixed(0))) as sim:
        post_row(client, sim.rows_url, "key-a", {"id": 7})
        second = post_row(client, sim.rows_url, "key-b", {"id": 7})
        post_row(client, sim.rows_url, "key-c", {"id": 8})
        stats = sim.stats()
    assert second.status_code == 200
    assert (stats.effects_applied, stats.duplicate_effects, stats.duplicate_deliveries) == (3, 1, 0)


def test_a_key_reused_with_a_different_body_is_refused(client: httpx.Client) -> None:
    with DownstreamSimulator(SimulatorSettings(latency=LatencySpec.fixed(0))) as sim:
        post_row(client, sim.rows_url, "key-a", {"id": 1})
        conflict = post_row(client, sim.rows_url, "key-a", {"id": 2})
        stats = sim.stats()
    assert conflict.status_code == 422
    assert "already used with a different body" in conflict.json()["error"]
    assert (stats.effects_applied, stats.key_conflicts_422) == (1, 1)


def test_reject_mode_answers_429_over_capacity_and_never_serves_more_than_capacity() -> None:
    settings = SimulatorSettings(capacity=3, latency=LatencySpec.fixed(0.3), overload="reject", seed=1)
    with DownstreamSimulator(settings) as sim:
        responses = burst(sim, 12)
        stats = sim.stats()
    codes = Counter(response.status_code for response in responses)
    assert codes[429] > 0
    assert codes[200] + codes[429] == 12
    assert 1 <= stats.peak_concurrency <= 3
    assert stats.throttled_429 == codes[429]
    assert stats.effects_applied == codes[200]
    throttled = next(response for response in responses if response.status_code == 429)
    assert float(throttled.headers["Retry-After"]) > 0
    assert throttled.json() == {"error": "over capacity", "capacity": 3}


def test_reject_mode_throttles_exactly_when_every_slot_is_taken(client: httpx.Client) -> None:
    settings = SimulatorSettings(capacity=2, latency=LatencySpec.fixed(1.0), time_scale=1.0)
    with DownstreamSimulator(settings) as sim, ThreadPoolExecutor(2) as pool:
        holders = [pool.submit(post_row_alone, sim.rows_url, f"h{i}", i) for i in (1, 2)]
        wait_until(lambda: sim.stats().in_flight == 2, "both slots to be taken")
        over = post_row(client, sim.rows_url, "over", 3)
        assert over.status_code == 429
        assert over.headers["Retry-After"] == "1"
        assert [holder.result().status_code for holder in holders] == [200, 200]
        stats = sim.stats()
    assert (stats.peak_concurrency, stats.throttled_429, stats.effects_applied, stats.in_flight) == (
        2,
        1,
        2,
        0,
    )


def test_queue_mode_makes_requests_wait_for_a_slot_instead_of_refusing() -> None:
    settings = SimulatorSettings(capacity=1, latency=LatencySpec.fixed(0.5), overload="queue")
    with DownstreamSimulator(settings) as sim, ThreadPoolExecutor(3) as pool:
        pending: list[Future[httpx.Response]] = []
        for index in range(3):
            pending.append(pool.submit(post_row_alone, sim.rows_url, f"q{index}", index))
            wait_until(lambda n=index: sim.stats().requests == n + 1, "the request to arrive")
        snapshot = sim.stats()
        assert (snapshot.in_flight, snapshot.queued) in {(1, 2), (1, 1)}  # the first may just have finished
        responses = [future.result() for future in pending]
        stats = sim.stats()
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert (stats.peak_concurrency, stats.throttled_429, stats.effects_applied, stats.queued) == (1, 0, 3, 0)
    assert stats.latency_p95_ms is not None
    assert stats.latency_p50_ms is not None
    assert stats.latency_p95_ms >= stats.latency_p50_ms


def test_queue_mode_burst_is_answered_in_full_within_capacity() -> None:
    settings = SimulatorSettings(
        capacity=4, latency=LatencySpec.uniform(0.01, 0.05), overload="queue", seed=3
    )
    with DownstreamSimulator(settings) as sim:
        responses = burst(sim, 16)
        stats = sim.stats()
    assert all(response.status_code == 200 for response in responses)
    assert 1 <= stats.peak_concurrency <= 4
    assert (stats.effects_applied, stats.throttled_429, stats.in_flight, stats.queued) == (16, 0, 0, 0)


def injected_codes(seed: int, count: int) -> list[int]:
    settings = SimulatorSettings(latency=LatencySpec.fixed(0), error_rate=0.2, seed=seed)
    with DownstreamSimulator(settings) as sim, httpx.Client() as client:
        codes = [post_row(client, sim.rows_url, f"e{i}", {"i": i}).status_code for i in range(count)]
        stats = sim.stats()
    assert stats.errors_5xx == codes.count(503)
    assert stats.effects_applied == codes.count(200)
    return codes


def test_injected_errors_follow_the_rate_and_repeat_with_the_seed() -> None:
    codes = injected_codes(seed=1, count=400)
    assert set(codes) == {200, 503}
    assert 40 <= codes.count(503) <= 120  # 20 % of 400 = 80; a binomial sd is 8
    assert injected_codes(seed=1, count=400) == codes
    assert injected_codes(seed=2, count=400) != codes


def test_an_injected_error_carries_retry_after_and_a_retry_applies_the_row(client: httpx.Client) -> None:
    settings = SimulatorSettings(latency=LatencySpec.fixed(0), error_rate=0.5, seed=5, retry_after_s=0.05)
    with DownstreamSimulator(settings) as sim:
        answers = []
        for _ in range(50):
            answers.append(post_row(client, sim.rows_url, "same-row", {"id": 1}))
            if answers[-1].status_code == 200:
                break
        stats = sim.stats()
    assert [answer.status_code for answer in answers[:-1]] == [503] * (len(answers) - 1)
    assert answers[-1].status_code == 200
    failed = [answer for answer in answers if answer.status_code == 503]
    assert all(answer.headers["Retry-After"] == "0.05" for answer in failed)
    assert (stats.effects_applied, stats.errors_5xx, stats.duplicate_effects) == (1, len(failed), 0)


def test_time_scale_compresses_latency_and_retry_after(client: httpx.Client) -> None:
    settings = SimulatorSettings(capacity=1, latency=LatencySpec.slow_api(), time_scale=0.001)
    with DownstreamSimulator(settings) as sim:
        assert post_row(client, sim.rows_url, "fast", {"i": 1}).status_code == 200
        stats = sim.stats()
    assert stats.latency_p50_ms is not None
    assert stats.service_mean_ms is not None
    lower_bound_ms = 5.0 - TIMER_LAG_MAX_S * 1000  # scaled lower bound (5 s x 0.001) less the lag allowance
    assert stats.latency_p50_ms >= stats.service_mean_ms >= lower_bound_ms
    assert settings.retry_after_seconds() == pytest.approx(0.0175)


def test_retry_after_can_be_an_http_date(client: httpx.Client) -> None:
    settings = SimulatorSettings(
        capacity=1,
        latency=LatencySpec.fixed(0),
        error_rate=1.0,
        retry_after_s=120,
        retry_after_http_date=True,
    )
    with DownstreamSimulator(settings) as sim:
        response = post_row(client, sim.rows_url, "k", {})
    assert response.status_code == 503
    retry_at = email.utils.parsedate_to_datetime(response.headers["Retry-After"]).timestamp()
    assert 60 < retry_at - time.time() <= 121


def test_the_capacity_schedule_changes_capacity_over_time(client: httpx.Client) -> None:
    settings = SimulatorSettings(capacity=2, latency=LatencySpec.fixed(0), capacity_schedule=((0.2, 5),))
    with DownstreamSimulator(settings) as sim:
        assert sim.stats().capacity == 2
        wait_until(lambda: sim.stats().capacity == 5, "the scheduled capacity")
        sim.reset()
        assert sim.stats().capacity == 2  # reset restarts the schedule's clock


def test_a_scheduled_outage_throttles_and_queued_requests_resume_when_capacity_returns(
    client: httpx.Client,
) -> None:
    outage = ((0.0, 0), (0.5, 1))
    with DownstreamSimulator(
        SimulatorSettings(latency=LatencySpec.fixed(0), capacity_schedule=outage)
    ) as sim:
        refused = post_row(client, sim.rows_url, "r", {})
        assert refused.status_code == 429
    queue = SimulatorSettings(latency=LatencySpec.fixed(0), capacity_schedule=outage, overload="queue")
    with DownstreamSimulator(queue) as sim:
        waited = post_row(client, sim.rows_url, "q", {})
        stats = sim.stats()
    assert waited.status_code == 200
    assert stats.elapsed_s >= 0.5
    assert (stats.effects_applied, stats.peak_concurrency, stats.capacity) == (1, 1, 1)


def test_stats_endpoint_reports_the_same_figures_as_stats(client: httpx.Client) -> None:
    settings = SimulatorSettings(latency=LatencySpec.fixed(0), error_rate=0.3, seed=4)
    with DownstreamSimulator(settings) as sim:
        for index in range(20):
            post_row(client, sim.rows_url, f"s{index % 15}", {"i": index % 15})
        post_row(client, sim.rows_url, None, {})
        served = client.get(f"{sim.url}/stats")
        direct = sim.stats()
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "application/json"
    from_endpoint = SimulatorStats.from_dict(served.json()).as_dict()
    from_method = direct.as_dict()
    assert from_endpoint.pop("elapsed_s") <= from_method.pop("elapsed_s")
    assert from_endpoint == from_method
    assert direct.requests == 21
    assert direct.bad_requests_400 == 1
    assert direct.effects_applied + direct.duplicate_deliveries + direct.errors_5xx == 20
    assert direct.errors_5xx > 0
    assert direct.duplicate_deliveries > 0


def test_every_request_is_accounted_for_under_a_mixed_concurrent_load() -> None:
    settings = SimulatorSettings(capacity=4, latency=LatencySpec.uniform(0.0, 0.02), error_rate=0.2, seed=9)
    with DownstreamSimulator(settings) as sim:

        def client_session(worker: int) -> Counter[int]:
            codes: Counter[int] = Counter()
            with httpx.Client(timeout=WAIT_LIMIT_S) as client:
                for index in range(15):
                    key = f"row-{(worker * 15 + index) % 40}"  # workers overlap: duplicates on purpose
                    body = {"row": (worker * 15 + index) % 40}
                    codes[post_row(client, sim.rows_url, key, body).status_code] += 1
                codes[post_row(client, sim.rows_url, None, {}).status_code] += 1
            return codes

        with ThreadPoolExecutor(8) as pool:
            codes = sum(pool.map(client_session, range(8)), Counter[int]())
        stats = sim.stats()
        applied = sim.applied_keys()
    assert stats.requests == 8 * 16 == codes.total()
    assert stats.throttled_429 == codes[429]
    assert stats.errors_5xx == codes[503]
    assert stats.bad_requests_400 == codes[400] == 8
    assert stats.effects_applied + stats.duplicate_deliveries == codes[200]
    assert stats.effects_applied == len(applied)
    assert applied <= {f"row-{i}" for i in range(40)}
    assert stats.duplicate_effects == 0
    assert 1 <= stats.peak_concurrency <= 4
    assert (stats.in_flight, stats.queued) == (0, 0)


def test_a_client_that_gives_up_while_queued_has_its_row_applied_and_a_retry_is_replayed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = SimulatorSettings(capacity=1, latency=LatencySpec.fixed(0.3), overload="queue")
    with DownstreamSimulator(settings) as sim, ThreadPoolExecutor(1) as pool:
        holder = pool.submit(post_row_alone, sim.rows_url, "holder", 1)
        wait_until(lambda: sim.stats().in_flight == 1, "the slot to be taken")
        with httpx.Client(timeout=0.05) as impatient, pytest.raises(httpx.ReadTimeout):
            post_row(impatient, sim.rows_url, "impatient", 2)
        assert holder.result().status_code == 200
        wait_until(lambda: sim.stats().effects_applied == 2, "the abandoned row to be served")
        with httpx.Client(timeout=WAIT_LIMIT_S) as client:
            retry = post_row(client, sim.rows_url, "impatient", 2)
        stats = sim.stats()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert (stats.effects_applied, stats.duplicate_deliveries, stats.duplicate_effects) == (2, 1, 0)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_reset_clears_counters_and_the_idempotency_store(client: httpx.Client) -> None:
    with DownstreamSimulator(SimulatorSettings(latency=LatencySpec.fixed(0))) as sim:
        post_row(client, sim.rows_url, "k1", {"i": 1})
        answer = client.post(f"{sim.url}/reset")
        assert answer.status_code == 200
        assert answer.json()["reset"] is True
        assert sim.stats().requests == 0
        again = post_row(client, sim.rows_url, "k1", {"i": 1})
        assert "Idempotent-Replayed" not in again.headers
        assert sim.stats().effects_applied == 1
        sim.reset()
        stats = sim.stats()
    assert (stats.requests, stats.effects_applied, stats.peak_concurrency, stats.duplicate_effects) == (
        0,
        0,
        0,
        0,
    )
    assert stats.latency_p50_ms is None
    assert stats.service_mean_ms is None


@pytest.mark.parametrize(
    ("headers", "content", "message"),
    [
        ({}, b'{"id": 1}', "missing Idempotency-Key header"),
        ({"Idempotency-Key": ""}, b'{"id": 1}', "missing Idempotency-Key header"),
        ({"Idempotency-Key": "k"}, b"id=1", "body is not valid JSON"),
        ({"Idempotency-Key": "k"}, b"", "body is not valid JSON"),
        ({"Idempotency-Key": "k"}, b'{"id": "\xff"}', "body is not valid JSON"),
    ],
)
def test_malformed_rows_get_a_400_that_says_why(
    client: httpx.Client, headers: dict[str, str], content: bytes, message: str
) -> None:
    with DownstreamSimulator(SimulatorSettings(latency=LatencySpec.fixed(0))) as sim:
        response = client.post(sim.rows_url, content=content, headers=headers)
        stats = sim.stats()
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert (stats.requests, stats.bad_requests_400, stats.effects_applied) == (1, 1, 0)


def test_an_oversized_body_gets_413_and_the_server_keeps_serving(client: httpx.Client) -> None:
    with DownstreamSimulator(SimulatorSettings(latency=LatencySpec.fixed(0), max_body_bytes=100)) as sim:
        too_big = client.post(sim.rows_url, json={"x": "y" * 200}, headers={"Idempotency-Key": "big"})
        chunked = client.post(
            sim.rows_url, content=iter([b'{"x": "', b"y" * 200, b'"}']), headers={"Idempotency-Key": "big2"}
        )
        fine = post_row(client, sim.rows_url, "small", {"x": 1})
        stats = sim.stats()
    assert too_big.status_code == 413
    assert "exceeds 100 bytes" in too_big.json()["error"]
    assert chunked.status_code == 413
    assert fine.status_code == 200
    assert (stats.bad_requests_400, stats.effects_applied) == (2, 1)


def test_unknown_paths_and_methods_are_answered_clearly(client: httpx.Client) -> None:
    with DownstreamSimulator() as sim:
        missing = client.get(f"{sim.url}/nope")
        wrong_method = client.get(sim.rows_url)
        health = client.get(f"{sim.url}/healthz?probe=1")
    assert missing.status_code == 404
    assert "/rows" in missing.json()["error"]
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "POST"
    assert health.json() == {"status": "ok"}


def test_a_malformed_http_request_gets_400_and_the_connection_closes() -> None:
    with DownstreamSimulator() as sim:
        with socket.create_connection(("127.0.0.1", sim.port), timeout=WAIT_LIMIT_S) as raw:
            raw.sendall(b"THIS IS NOT HTTP\r\n\r\n")
            answer = b""
            while chunk := raw.recv(4096):
                answer += chunk
        assert sim.running
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"malformed HTTP request" in answer


def test_keep_alive_serves_many_rows_on_one_connection() -> None:
    with DownstreamSimulator(SimulatorSettings(latency=LatencySpec.fixed(0))) as sim:
        with socket.create_connection(("127.0.0.1", sim.port), timeout=WAIT_LIMIT_S) as raw:
            stream = raw.makefile("rb")
            for index in range(3):
                body = json.dumps({"i": index}).encode()
                head = b"POST /rows HTTP/1.1\r\nHost: x\r\nIdempotency-Key: ka-%d\r\n" % index
                raw.sendall(head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                status = stream.readline()
                length = 0
                while (line := stream.readline()) != b"\r\n":
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                stream.read(length)
                assert status.startswith(b"HTTP/1.1 200")
        stats = sim.stats()
    assert (stats.effects_applied, stats.connections_opened) == (3, 1)


def test_a_client_asking_to_close_gets_its_answer_then_the_connection_ends() -> None:
    with DownstreamSimulator(SimulatorSettings(latency=LatencySpec.fixed(0))) as sim:
        with socket.create_connection(("127.0.0.1", sim.port), timeout=WAIT_LIMIT_S) as raw:
            raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := raw.recv(4096):  # ends only because the server closes
                answer += chunk
        assert sim.running
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(b'{"status": "ok"}')


def test_a_client_expecting_100_continue_is_told_to_send_its_body() -> None:
    body = json.dumps({"id": 1, "note": "x" * 2000}).encode()
    with DownstreamSimulator(SimulatorSettings(latency=LatencySpec.fixed(0))) as sim:
        with socket.create_connection(("127.0.0.1", sim.port), timeout=WAIT_LIMIT_S) as raw:
            stream = raw.makefile("rb")
            head = b"POST /rows HTTP/1.1\r\nHost: x\r\nIdempotency-Key: big\r\nExpect: 100-continue\r\n"
            raw.sendall(head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
            interim = stream.readline()
            assert stream.readline() == b"\r\n"
            raw.sendall(body)
            final = stream.readline()
        stats = sim.stats()
    assert interim.startswith(b"HTTP/1.1 100")
    assert final.startswith(b"HTTP/1.1 200")
    assert stats.effects_applied == 1


def test_a_given_port_is_used_and_a_busy_port_is_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        with pytest.raises(OSError, match=r"could not listen on 127\.0\.0\.1"):
            DownstreamSimulator(SimulatorSettings(port=port)).start()
    with DownstreamSimulator(SimulatorSettings(port=port)) as sim:
        assert sim.url == f"http://127.0.0.1:{port}"
        assert sim.rows_url == f"http://127.0.0.1:{port}/rows"


def test_stop_ends_in_flight_requests_joins_its_thread_and_frees_the_port() -> None:
    sim = DownstreamSimulator(
        SimulatorSettings(latency=LatencySpec.fixed(30), overload="queue", capacity=1)
    ).start()
    port = sim.port
    with ThreadPoolExecutor(2) as pool:
        pending = [pool.submit(post_row_alone, sim.rows_url, f"slow{i}", i) for i in (1, 2)]
        wait_until(lambda: sim.stats().queued == 1, "one request in service and one queued")
        thread = sim._thread
        sim.stop()
        for future in pending:
            with pytest.raises(httpx.TransportError):
                future.result()
    assert thread is not None
    assert not thread.is_alive()
    assert not sim.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz")
    sim.stop()  # stopping twice is harmless
    with pytest.raises(RuntimeError, match="not running"):
        sim.stats()


@pytest.mark.filterwarnings("error::ResourceWarning", "error::pytest.PytestUnraisableExceptionWarning")
def test_stop_completes_while_clients_keep_connecting() -> None:
    sim = DownstreamSimulator(SimulatorSettings(latency=LatencySpec.fixed(0))).start()
    port, thread = sim.port, sim._thread
    done = threading.Event()
    connected: list[int] = []

    def keep_connecting() -> None:
        for _ in range(2000):  # bounded: ends once the port is closed, or after 2,000 connections
            if done.is_set():
                return
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1.0) as raw:
                    raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    connected.append(1)
            except OSError:
                return

    connector = threading.Thread(target=keep_connecting)
    connector.start()
    try:
        wait_until(lambda: len(connected) >= 5, "clients to be connecting")
        sim.stop()
    finally:
        done.set()
        connector.join(WAIT_LIMIT_S)
    assert thread is not None
    assert not thread.is_alive()
    gc.collect()  # a transport left unclosed would warn here (ResourceWarning), failing the test


def test_starting_twice_is_refused() -> None:
    with DownstreamSimulator() as sim, pytest.raises(RuntimeError, match="already running"):
        sim.start()
