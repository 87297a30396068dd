"""The chaos suite at CI size: every fault kind over a few objects, nothing lost, nothing applied twice."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from s3stagger.local.chaos import TRANSIENT_KINDS, fault_kinds, run_chaos

OBJECTS = 3


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


def test_every_fault_kind_loses_nothing_and_applies_nothing_twice(s3: Any) -> None:
    summary = run_chaos(s3, OBJECTS, window_s=0.5)
    assert summary["fault_kinds"] == len(fault_kinds(0.5)) >= 10
    assert summary["lost_rows"] == 0
    assert summary["duplicate_effects"] == 0
    assert summary["rows_failed_transient"] == 0
    by_kind = {kind["kind"]: kind for kind in summary["kinds"]}
    for kind in TRANSIENT_KINDS:
        assert by_kind[kind]["rows_applied_once"] == by_kind[kind]["rows_expected"] == OBJECTS * 5
    assert by_kind["poison_objects"]["objects_quarantined"] == OBJECTS
    assert by_kind["deleted_before_processed"]["quarantine_reasons"] == {"object_gone": OBJECTS}
    assert by_kind["overwritten_while_processed"]["quarantine_reasons"] == {"object_changed": OBJECTS}
    assert by_kind["processor_crash_mid_object"]["invocations"] > OBJECTS


def test_the_command_writes_the_report_and_ends_with_one_json_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    import chaos

    argv = ["--objects-per-kind", "2", "--window-s", "0.3", "--kinds", "storm_503", "poison_objects"]
    assert chaos.main([*argv, "--stack-kinds", "--out-dir", str(tmp_path)]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (last["fault_kinds"], last["objects_per_kind"], last["lost_rows"]) == (2, 2, 0)
    assert "| storm_503 | 2 | 10 | 10 |" in (tmp_path / "chaos.md").read_text()
    figures = json.loads((tmp_path / "chaos.json").read_text())
    storm = figures["kinds"][0]
    assert storm["timeline"][-1][1] == 10  # rows applied over time, ending at every row
    assert (tmp_path / "chaos.png").read_bytes().startswith(b"\x89PNG")
