"""`make chaos`: every fault kind of s3stagger.local.chaos over many small objects; lost = 0, duplicates = 0.

Live progress (rich) per kind; writes a report table (docs/chaos.md), the figures (docs/chaos.json)
and a PNG (docs/chaos.png: seconds and rows per kind); prints one JSON line last.

    .venv/bin/python benchmarks/chaos.py --objects-per-kind 1000
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws
from rich.console import Console
from rich.live import Live
from rich.table import Table

from s3stagger.local.chaos import NOT_COVERED, KindResult, fault_kinds, run_chaos

COLUMNS = (
    ("kind", "fault kind"),
    ("objects", "objects"),
    ("rows_expected", "rows expected"),
    ("rows_applied_once", "applied once"),
    ("rows_in_sink", "in sink (reason)"),
    ("objects_quarantined", "quarantined"),
    ("objects_in_dlq", "in DLQ before redrive"),
    ("recovered_by_redrive", "recovered by redrive"),
    ("rows_failed_transient", "failed (transient)"),
    ("lost_rows", "lost"),
    ("duplicate_effects", "duplicate effects"),
    ("max_stall_s", "max stall s"),
    ("seconds", "seconds"),
)


def table_of(results: list[KindResult]) -> Table:
    table = Table(title="chaos")
    for _, title in COLUMNS:
        table.add_column(title)
    for result in results:
        table.add_row(*(str(getattr(result, name)) for name, _ in COLUMNS))
    return table


def markdown(summary: dict[str, Any], command: str) -> str:
    lines = [
        "# Chaos suite (as measured)",
        "",
        f"Command: `{command}`. Processor-level harness (`src/s3stagger/local/chaos.py`): the real",
        "processor, failed-rows sink, downstream simulator and outage proxy, S3 on moto, driven as the",
        "dispatcher drives it; then the dead-lettered objects are redriven and the sink replayed.",
        "max stall s: the longest gap between two invocations that applied rows, within a kind (the",
        "processor's stall; the dispatcher's own stall after its death is not measured here).",
        "Not covered by this harness (they need the local stack's dispatcher and Lambda service): "
        f"{', '.join(NOT_COVERED)}.",
        "",
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for kind in summary["kinds"]:
        lines.append("| " + " | ".join(str(kind[name]) for name, _ in COLUMNS) + " |")
    totals = {k: v for k, v in summary.items() if k != "kinds"}
    lines += ["", "```json", json.dumps(totals, sort_keys=True), "```", ""]
    return "\n".join(lines)


def bar_png(values: list[float], path: Path, width: int = 40, height: int = 200) -> None:
    """A plain bar chart (one bar per kind, scaled to the largest), written without a plotting library."""
    top = max(values, default=0.0) or 1.0
    bar = width - 8
    pixels = []
    for y in range(height):
        row = bytearray([0])  # filter type of the scanline
        for value in values:
            filled = height - y <= value / top * height
            colour = (40, 110, 200) if filled else (255, 255, 255)
            row += bytes(colour) * bar + bytes((255, 255, 255)) * 8
        pixels.append(bytes(row))
    raw = b"".join(pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width * max(len(values), 1), height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects-per-kind", type=int, default=1000)
    parser.add_argument(
        "--window-s", type=float, default=5.0, help="How long an outage or capacity drop lasts."
    )
    parser.add_argument("--kinds", nargs="*", choices=sorted(fault_kinds(1.0)), default=None)
    parser.add_argument("--out-dir", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    for name, value in {"AWS_ACCESS_KEY_ID": "chaos", "AWS_SECRET_ACCESS_KEY": "chaos"}.items():
        os.environ.setdefault(name, value)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    results: list[KindResult] = []
    console = Console(stderr=True)
    started = time.monotonic()
    with mock_aws(), Live(table_of(results), console=console, refresh_per_second=2) as live:

        def progress(result: KindResult) -> None:
            results.append(result)
            live.update(table_of(results))
            if not console.is_terminal:  # a log, not a screen: one line per kind
                console.print(f"{result.kind}: {result.seconds} s, lost {result.lost_rows}", highlight=False)

        summary = run_chaos(
            boto3.client("s3", region_name="us-east-1"),
            args.objects_per_kind,
            kinds=args.kinds,
            window_s=args.window_s,
            progress=progress,
        )
    summary["seconds"] = round(time.monotonic() - started, 1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/chaos.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (args.out_dir / "chaos.md").write_text(markdown(summary, command.strip()), encoding="utf-8")
    (args.out_dir / "chaos.json").write_text(
        json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    bar_png([kind["seconds"] for kind in summary["kinds"]], args.out_dir / "chaos.png")
    print(json.dumps({k: v for k, v in summary.items() if k != "kinds"}, sort_keys=True))
    clean = summary["lost_rows"] == 0 and summary["duplicate_effects"] == 0
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
