"""Processor benchmark: prints ONE JSON line of figures (not a test; no thresholds enforced here).

1. A 20,000-row object (moto S3, in this process) through the ``process_object`` handler against the
   downstream simulator at capacity C = 20 and latency L = 20 ms, run as ``s3stagger downstream`` in
   a separate process so the two do not share a GIL. Reports rows/s, utilization = rows/s ÷ (C / L),
   the 429 rate (429s ÷ requests) and peak concurrency, both from the simulator's stats, the
   process's peak RSS and CPU per row, the load average, and — measured just before, against the
   same simulator — what a minimal raw-socket client achieves (``raw_client_utilization``): on a
   shared, loaded machine that, not C / L, is the ceiling the processor's figure should be read
   against.
2. Peak RSS of the CSV reader alone on a 1 MB and on a 100 MB object, each in a fresh subprocess
   (so one peak cannot mask the other), the data generated as a stream of chunks.

    make bench-processor            # or: .venv/bin/python benchmarks/bench_processor.py [--rows N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CAPACITY = 20
LATENCY_S = 0.020
ROWS = 20_000
READER_SIZES_MB = (1, 100)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generated_csv(total_bytes: int, chunk_bytes: int = 64 * 1024) -> Iterator[bytes]:
    """A CSV object of about ``total_bytes``, produced chunk by chunk (never whole in memory)."""
    yield b"id,name,amount,note\n"
    produced, number = 0, 0
    while produced < total_bytes:
        lines = []
        size = 0
        while size < chunk_bytes:
            number += 1
            line = f'{number},customer {number},{number % 997}.25,"note, with comma {number}"\n'.encode()
            lines.append(line)
            size += len(line)
        chunk = b"".join(lines)
        produced += len(chunk)
        yield chunk


def reader_only(size_mb: int) -> dict[str, Any]:
    """Stream a generated object of ``size_mb`` MiB through the CSV reader; report rows and peak RSS."""
    from s3stagger.domain.csv_rows import CsvFormat, CsvObjectReader, DataRow

    baseline = peak_rss_mb()
    reader = CsvObjectReader(generated_csv(size_mb * 1024 * 1024), CsvFormat())
    header = reader.read_header()
    rows = sum(1 for row in reader.rows(header.columns) if isinstance(row, DataRow))
    return {
        "size_mb": size_mb,
        "rows": rows,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "baseline_rss_mb": round(baseline, 1),
    }


def start_simulator(capacity: int, latency_s: float) -> tuple[subprocess.Popen[str], str]:
    cli = shutil.which("s3stagger", path=str(Path(sys.executable).parent)) or "s3stagger"
    process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [
            cli,
            "downstream",
            "--port",
            "0",
            "--capacity",
            str(capacity),
            "--latency",
            f"fixed:{latency_s}",
            "--overload",
            "reject",
            "--seed",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("listening on "):
            return process, line.split("listening on ", 1)[1].strip()
        if not line and process.poll() is not None:
            break
    process.terminate()
    raise RuntimeError("the downstream simulator did not start")


async def _raw_client_rows_per_s(base_url: str, connections: int, rows: int) -> float:
    """Rows/s a minimal keep-alive HTTP/1.1 client (raw asyncio streams, near-zero CPU) gets from
    the simulator: the ceiling this machine allows right now, to read the processor's figure against.
    """
    host, port = base_url.removeprefix("http://").split(":")
    per_connection = max(1, rows // connections)

    async def one_connection(number: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for index in range(per_connection):
                body = json.dumps({"calibration": [number, index]}).encode()
                head = (
                    f"POST /rows HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                    f"Idempotency-Key: calibration-{number}-{index}\r\nContent-Length: {len(body)}\r\n\r\n"
                )
                writer.write(head.encode() + body)
                await writer.drain()
                headers = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in headers.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(one_connection(number) for number in range(connections)))
    return per_connection * connections / (time.monotonic() - started)


def processor_run(rows: int, capacity: int, latency_s: float, max_concurrency: int) -> dict[str, Any]:
    import boto3
    import httpx
    from moto import mock_aws

    fake_credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}  # moto only
    os.environ.update(fake_credentials, AWS_DEFAULT_REGION="us-east-1")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    simulator, base_url = start_simulator(capacity, latency_s)
    try:
        ceiling = asyncio.run(_raw_client_rows_per_s(base_url, capacity, min(rows, 4000)))
        httpx.post(f"{base_url}/reset", timeout=10).raise_for_status()
        with mock_aws():
            from s3stagger.handlers import process_object

            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket="s3stagger-bench")
            body = b"".join(generated_csv(0)) if rows == 0 else _rows_object(rows)
            s3.put_object(Bucket="s3stagger-bench", Key="normal/bench.csv", Body=body)
            os.environ.update(
                S3STAGGER_DOWNSTREAM_URL=f"{base_url}/rows",
                S3STAGGER_MAX_CONCURRENCY=str(max_concurrency),
                S3STAGGER_INITIAL_CONCURRENCY=str(max_concurrency),
                POWERTOOLS_METRICS_DISABLED="true",
                POWERTOOLS_LOG_LEVEL="WARNING",
            )
            process_object.logger.setLevel("WARNING")
            started, cpu_started = time.monotonic(), time.process_time()
            answer = process_object.handler({"bucket": "s3stagger-bench", "key": "normal/bench.csv"}, None)
            elapsed, cpu_s = time.monotonic() - started, time.process_time() - cpu_started
        stats = httpx.get(f"{base_url}/stats", timeout=10).json()
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)
    rows_per_s = answer["rows_applied"] / elapsed
    return {
        "rows": rows,
        "capacity": capacity,
        "latency_ms": latency_s * 1000,
        "max_concurrency": max_concurrency,
        "status": answer["status"],
        "rows_applied": answer["rows_applied"],
        "rows_failed": answer["rows_failed"],
        "seconds": round(elapsed, 3),
        "rows_per_s": round(rows_per_s, 1),
        "utilization": round(rows_per_s / (capacity / latency_s), 3),
        "raw_client_rows_per_s": round(ceiling, 1),
        "raw_client_utilization": round(ceiling / (capacity / latency_s), 3),
        "requests": stats["requests"],
        "rate_429": round(stats["throttled_429"] / max(1, stats["requests"]), 4),
        "peak_concurrency": stats["peak_concurrency"],
        "duplicate_effects": stats["duplicate_effects"],
        "retries": answer["retries"],
        "final_limit": answer["concurrency_limit"],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "cpu_ms_per_row": round(1000 * cpu_s / max(1, answer["rows_applied"]), 3),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def _rows_object(rows: int) -> bytes:
    lines = [b"id,name,amount,note\n"]
    lines.extend(
        f'{n},customer {n},{n % 997}.25,"note, with comma {n}"\n'.encode() for n in range(1, rows + 1)
    )
    return b"".join(lines)


def in_subprocess(*arguments: str) -> dict[str, Any]:
    output = subprocess.run(  # noqa: S603 - this very script, fixed arguments
        [sys.executable, __file__, *arguments], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--capacity", type=int, default=CAPACITY)
    parser.add_argument("--latency-ms", type=float, default=LATENCY_S * 1000)
    parser.add_argument("--max-concurrency", type=int, default=None, help="default: the capacity C")
    parser.add_argument("--reader-only", type=int, metavar="MB", help=argparse.SUPPRESS)
    parser.add_argument("--processor-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader_only is not None:
        print(json.dumps(reader_only(args.reader_only)))
        return
    processor_args = [
        "--processor-only",
        "--rows",
        str(args.rows),
        "--capacity",
        str(args.capacity),
        "--latency-ms",
        str(args.latency_ms),
    ]
    if args.max_concurrency is not None:
        processor_args += ["--max-concurrency", str(args.max_concurrency)]
    if args.processor_only:
        result = processor_run(
            args.rows, args.capacity, args.latency_ms / 1000, args.max_concurrency or args.capacity
        )
        print(json.dumps(result))
        return
    figures = in_subprocess(*processor_args)
    readers = [in_subprocess("--reader-only", str(size)) for size in READER_SIZES_MB]
    figures["csv_reader"] = {
        f"{r['size_mb']}MB": {"rows": r["rows"], "peak_rss_mb": r["peak_rss_mb"]} for r in readers
    }
    figures["csv_reader_rss_difference_mb"] = round(readers[-1]["peak_rss_mb"] - readers[0]["peak_rss_mb"], 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
