"""Deterministic sample CSV objects for ``s3stagger demo``/``simulate`` and the benchmarks.

Pure: no I/O. Every row carries a ``record_id`` that is unique across the files of one run
(``<run_id>-<file>-<row>``), so two distinct rows never share a body and a downstream that
fingerprints bodies sees a duplicate effect only when the *same* row is applied twice.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass

SAMPLE_HEADER: tuple[str, ...] = ("record_id", "customer_id", "amount", "currency", "created_at")
"""Columns of every generated file, in order."""

_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK")


@dataclass(frozen=True)
class SampleObject:
    """One generated CSV object: where it goes and what it holds."""

    key: str
    body: bytes
    rows: int
    """Data rows, header excluded."""


def run_id_for_seed(seed: int) -> str:
    """A short identifier of a generation run, derived from its seed (same seed, same id)."""
    # Reproducible test data, not a secret: a seeded PRNG is the point (same seed, same files).
    return f"r{random.Random(seed).getrandbits(32):08x}"  # nosec B311


def sample_object_key(prefix: str, run_id: str, file_index: int) -> str:
    """The S3 key of file ``file_index`` of a run: ``<prefix><run_id>/part-<index>.csv``."""
    return f"{prefix}{run_id}/part-{file_index:05d}.csv"


def sample_csv(run_id: str, file_index: int, rows: int, seed: int) -> str:
    """CSV text (header + ``rows`` data rows) of file ``file_index``; deterministic in its inputs."""
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    # Reproducible test data, not a secret: a seeded PRNG is the point (same seed, same rows).
    rng = random.Random(f"{seed}:{file_index}")  # nosec B311
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SAMPLE_HEADER)
    for row_index in range(rows):
        writer.writerow(
            (
                f"{run_id}-{file_index:05d}-{row_index:05d}",
                f"c{rng.randrange(1, 100_000):05d}",
                f"{rng.randrange(1, 1_000_000) / 100:.2f}",
                rng.choice(_CURRENCIES),
                f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T"
                f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
            )
        )
    return buffer.getvalue()


def sample_objects(
    files: int, rows: int, seed: int, prefix: str = "", first_index: int = 0
) -> Iterator[SampleObject]:
    """Yield ``files`` generated objects of ``rows`` rows each, keys under ``prefix``.

    Files are numbered from ``first_index``; a run split over several prefixes (e.g. ``high/`` and
    ``normal/``) keeps its rows distinct by giving each part its own index range.
    """
    if files < 0:
        raise ValueError(f"files must be >= 0, got {files}")
    if first_index < 0:
        raise ValueError(f"first_index must be >= 0, got {first_index}")
    run_id = run_id_for_seed(seed)
    for file_index in range(first_index, first_index + files):
        text = sample_csv(run_id, file_index, rows, seed)
        yield SampleObject(
            key=sample_object_key(prefix, run_id, file_index), body=text.encode("utf-8"), rows=rows
        )
