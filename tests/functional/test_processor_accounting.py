"""Property: whatever mix of valid and invalid rows an object holds, and however it is split into
invocations, every data row is either applied exactly once or recorded as failed."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from _processor_support import BUCKET, invoke, moto_s3, processor_env, read_failed_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3stagger.local.downstream import DownstreamSimulator, LatencySpec, SimulatorSettings

ROW_KINDS = ("ok", "formula", "ragged", "bad_utf8", "blank", "quoted_newline")
_keys = itertools.count()


@pytest.fixture(scope="module")
def environment() -> Iterator[tuple[Any, DownstreamSimulator, pytest.MonkeyPatch]]:
    with pytest.MonkeyPatch.context() as monkeypatch, moto_s3(monkeypatch) as s3:
        settings = SimulatorSettings(capacity=8, latency=LatencySpec.fixed(0.001), seed=21, error_rate=0.05)
        with DownstreamSimulator(settings) as sim:
            yield s3, sim, monkeypatch


def build_object(kinds: list[str], crlf: bool) -> tuple[bytes, int, int]:
    """The object's bytes, and how many data rows should be applied and failed."""
    newline = b"\r\n" if crlf else b"\n"
    lines = [b"id,name,amount"]
    applied = failed = 0
    for number, kind in enumerate(kinds, start=1):
        if kind == "ok":
            lines.append(b"%d,name %d,%d.5" % (number, number, number))
            applied += 1
        elif kind == "formula":
            lines.append(b"%d,=cmd|' /C calc'!A0,-%d" % (number, number))
            applied += 1
        elif kind == "quoted_newline":
            lines.append(b'%d,"two' % number + newline + b'lines",%d' % number)
            applied += 1
        elif kind == "ragged":
            lines.append(b"%d,only-two" % number)
            failed += 1
        elif kind == "bad_utf8":
            lines.append(b"%d,caf\xe9,%d" % (number, number))
            failed += 1
        else:
            lines.append(b"")
    return newline.join(lines) + newline, applied, failed


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kinds=st.lists(st.sampled_from(ROW_KINDS), min_size=1, max_size=60),
    crlf=st.booleans(),
    rows_per_invocation=st.integers(min_value=1, max_value=70),
)
def test_every_data_row_is_applied_once_or_recorded_as_failed(
    environment: tuple[Any, DownstreamSimulator, pytest.MonkeyPatch],
    kinds: list[str],
    crlf: bool,
    rows_per_invocation: int,
) -> None:
    s3, sim, monkeypatch = environment
    body, expected_applied, expected_failed = build_object(kinds, crlf)
    key = f"normal/property-{next(_keys)}.csv"
    etag = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"]
    processor_env(
        monkeypatch,
        sim.rows_url,
        MAX_CONCURRENCY=4,
        MAX_ATTEMPTS=20,
        MAX_ROWS_PER_INVOCATION=rows_per_invocation,
    )
    sim.reset()
    event = {"object": {"bucket": BUCKET, "key": key, "etag": etag}, "cursor": None}
    answers = [invoke(event)]
    while answers[-1]["status"] == "PARTIAL":
        assert len(answers) <= len(kinds) + 1
        answers.append(invoke({"object": event["object"], "cursor": answers[-1]["cursor"]}))
    stats = sim.stats()
    assert answers[-1]["status"] == "COMPLETE"
    assert sum(a["rows_applied"] for a in answers) == expected_applied
    assert sum(a["rows_failed"] for a in answers) == expected_failed
    assert stats.effects_applied == expected_applied
    assert stats.duplicate_effects == 0
    recorded = [
        row
        for answer in answers
        if answer["failed_rows_object"]
        for row in read_failed_rows(s3, answer["failed_rows_object"])
    ]
    assert len(recorded) == expected_failed
    assert all(not row["name"].startswith(("=", "+", "-", "@")) for row in recorded)
