"""What the processor needs of its memory setting: prints ONE JSON line (not a test; no thresholds).

The processor waits on the downstream almost all the time, so its Lambda memory (which also sets
its CPU share: 1,769 MB = one vCPU) is billed mostly for waiting. This measures, in a fresh Python
process that holds nothing but the handler (S3 is a moto server in the parent process, the
downstream the simulator in its own), the process's peak resident memory — what Lambda reports as
"Max Memory Used", less its runtime client — and the CPU time per row, for a small and a large
object at a few rows in flight. docs/performance.md sizes ``processor.json`` ``memory_mb`` from it.

    .venv/bin/python benchmarks/processor_memory.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

BUCKET = "s3stagger-memory"
CASES = ((50, 2), (50, 10), (1200, 10), (1200, 25))
"""(rows of the object, rows in flight)."""
LATENCY_S = 0.02


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ``ru_maxrss`` would keep the forking parent's peak
    across the exec)."""
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def child(endpoint: str, rows_url: str) -> dict[str, Any]:
    """Import the handler, then process each case's object; peak RSS after import and after all."""
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",  # moto only
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - moto only
        AWS_DEFAULT_REGION="us-east-1",
        S3STAGGER_DOWNSTREAM_URL=rows_url,
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    from s3stagger.handlers import process_object

    process_object.logger.setLevel("WARNING")
    after_import = peak_rss_mb()
    cases = []
    for rows, in_flight in CASES:
        os.environ["S3STAGGER_MAX_CONCURRENCY"] = str(in_flight)
        os.environ["S3STAGGER_INITIAL_CONCURRENCY"] = str(in_flight)
        cpu_started = time.process_time()
        answer = process_object.handler({"bucket": BUCKET, "key": f"normal/{rows}.csv"}, None)
        cpu_s = time.process_time() - cpu_started
        cases.append(
            {
                "rows": rows,
                "rows_in_flight": in_flight,
                "status": answer["status"],
                "cpu_ms_per_row": round(1000 * cpu_s / max(1, answer["rows_applied"]), 3),
                "peak_rss_mb": round(peak_rss_mb(), 1),
            }
        )
    return {"rss_after_import_mb": round(after_import, 1), "cases": cases}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3])))
        return
    # imported here, not in the measured child: moto's server and boto3 would count in its memory
    import boto3
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from bench_processor import _rows_object, start_simulator  # type: ignore[import-not-found]

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    simulator, base_url = start_simulator(capacity=50, latency_s=LATENCY_S)
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",  # noqa: S106 - moto only
        )
        s3.create_bucket(Bucket=BUCKET)
        for rows in {rows for rows, _ in CASES}:
            s3.put_object(Bucket=BUCKET, Key=f"normal/{rows}.csv", Body=_rows_object(rows))
        output = subprocess.run(  # noqa: S603 - this very script, fixed arguments
            [sys.executable, __file__, "--child", endpoint, f"{base_url}/rows"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(output.strip().splitlines()[-1])
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)
        server.stop()
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
