"""Autoscaler benchmark: the autoscale scenarios of ``perf-test`` alone; prints ONE JSON line last.

The scenarios live in :mod:`s3stagger.perf.autoscale` (``s3stagger perf-test`` runs them too, with
their keys in its summary). This keeps ``make bench-autoscale`` as the short way to run only them:
``autoscale.json`` and ``autoscale-<scenario>.png`` go to ``--out`` (default ``benchmarks/results/``).

    make bench-autoscale    # or: .venv/bin/python benchmarks/bench_autoscale.py [--scenarios a,b]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from s3stagger.cli.demo import lambda_output_to
from s3stagger.cli.local import quiet_emulator_logs
from s3stagger.perf.autoscale import SCENARIOS, run_autoscale_scenarios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated, of: " + ", ".join(SCENARIOS)
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        print(f"bench-autoscale: unknown scenarios {unknown}; choose from {list(SCENARIOS)}", file=sys.stderr)
        return 2
    log_path = Path(tempfile.gettempdir()) / f"s3stagger-bench-autoscale-{os.getpid()}.log"
    with quiet_emulator_logs(False), lambda_output_to(log_path):
        payload = run_autoscale_scenarios(chosen, args.out, Console(stderr=True))
    payload["load_average_1m"] = round(os.getloadavg()[0], 2)
    (args.out / "autoscale.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
