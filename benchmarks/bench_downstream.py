"""Throughput of the downstream simulator itself: can it serve C / L rows per second?

Runs the simulator at capacity C = 20 and latency L = 20 ms (ideal C / L = 1,000 rows/s) twice:
``s3stagger downstream`` in its own process, and a :class:`DownstreamSimulator` in the client's
process. The client keeps exactly C rows in flight with plain threads (``httpx.Client``), split over
``--client-processes`` processes so the client's own GIL is not what is measured. Prints one JSON line.

    .venv/bin/python benchmarks/bench_downstream.py [--rows 6000] [--client-processes 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import subprocess
import sys
import threading
import time
from typing import Any

import httpx

from s3stagger.local.downstream import DownstreamSimulator, LatencySpec, SimulatorSettings

CAPACITY = 20
LATENCY_S = 0.02
LISTENING = re.compile(r"listening on (http://\S+)")


def send_rows(rows_url: str, first: int, count: int, threads: int, start_at: float) -> list[int]:
    """Send rows ``first .. first+count-1`` with ``threads`` rows in flight; return non-200 codes."""
    rows = iter(range(first, first + count))
    lock = threading.Lock()
    failures: list[int] = []
    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    with httpx.Client(limits=limits, timeout=30.0) as client:

        def worker() -> None:
            while True:
                with lock:
                    index = next(rows, None)
                if index is None:
                    return
                body = {"row": index, "name": f"name-{index}", "amount": index * 3}
                answer = client.post(rows_url, json=body, headers={"Idempotency-Key": f"bench#{index}"})
                if answer.status_code != 200:
                    failures.append(answer.status_code)

        time.sleep(max(0.0, start_at - time.time()))
        workers = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
    return failures


def _client_process(rows_url: str, first: int, count: int, threads: int, start_at: float) -> None:
    sys.exit(1 if send_rows(rows_url, first, count, threads, start_at) else 0)


def drive(rows_url: str, rows: int, processes: int) -> float:
    """Rows per second achieved with ``CAPACITY`` rows in flight over ``processes`` client processes."""
    threads = [CAPACITY // processes + (1 if i < CAPACITY % processes else 0) for i in range(processes)]
    shares = [rows * t // CAPACITY for t in threads]
    shares[-1] += rows - sum(shares)
    start_at = time.time() + 1.0  # let every process import and connect before the clock starts
    firsts = [sum(shares[:i]) for i in range(processes)]
    clients = [
        multiprocessing.Process(
            target=_client_process, args=(rows_url, firsts[i], shares[i], threads[i], start_at)
        )
        for i in range(processes)
    ]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    elapsed = time.time() - start_at
    if any(client.exitcode != 0 for client in clients):
        raise SystemExit("a client process saw a non-200 answer or failed")
    return rows / elapsed


def figures(label: str, rows_per_s: float, stats: dict[str, Any]) -> dict[str, Any]:
    ideal = CAPACITY / LATENCY_S
    return {
        "simulator": label,
        "rows_per_s": round(rows_per_s, 1),
        "utilization": round(rows_per_s / ideal, 3),
        "peak_concurrency": stats["peak_concurrency"],
        "throttled_429": stats["throttled_429"],
        "effects_applied": stats["effects_applied"],
        "service_mean_ms": stats["service_mean_ms"],
        "latency_p95_ms": stats["latency_p95_ms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--client-processes", type=int, default=2)
    options = parser.parse_args()

    command = [
        sys.executable,
        "-c",
        "from s3stagger.cli.app import main; main()",
        "downstream",
        "--port",
        "0",
    ]
    command += ["--capacity", str(CAPACITY), "--latency", f"fixed:{LATENCY_S}"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # noqa: S603
    try:
        assert server.stdout is not None
        match = LISTENING.match(server.stdout.readline())
        if match is None:
            raise SystemExit("the simulator did not print its URL")
        base_url = match.group(1)
        rate = drive(f"{base_url}/rows", options.rows, options.client_processes)
        separate = figures("own process", rate, httpx.get(f"{base_url}/stats").json())
    finally:
        server.terminate()
        server.wait(10)

    settings = SimulatorSettings(capacity=CAPACITY, latency=LatencySpec.fixed(LATENCY_S))
    with DownstreamSimulator(settings) as simulator:  # the client's threads share the simulator's GIL
        start_at = time.time() + 0.2
        failures = send_rows(simulator.rows_url, 0, options.rows, CAPACITY, start_at)
        rate = options.rows / (time.time() - start_at)
        if failures:
            raise SystemExit(f"non-200 answers in process: {sorted(set(failures))}")
        in_process = figures("client's process", rate, simulator.stats().as_dict())

    print(json.dumps({"capacity": CAPACITY, "latency_ms": LATENCY_S * 1000, "runs": [separate, in_process]}))


if __name__ == "__main__":
    main()
