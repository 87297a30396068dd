"""Each test carries the marker of its folder (tests/conftest.py), so `-m <layer>` runs that layer alone."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

TESTS_ROOT = Path(__file__).resolve().parents[1]


def layers_module() -> ModuleType:
    """tests/conftest.py, loaded under its own name (every test folder may have a `conftest`)."""
    spec = importlib.util.spec_from_file_location("tests_layers", TESTS_ROOT / "conftest.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_test_belongs_to_the_layer_of_its_folder() -> None:
    layers = layers_module()
    assert layers.layer_of(TESTS_ROOT / "unit" / "test_limiter.py") == "unit"
    assert layers.layer_of(TESTS_ROOT / "iac" / "deeper" / "test_x.py") == "iac"


@pytest.mark.parametrize("path", ["test_stray.py", "misc/test_x.py"])
def test_a_test_outside_every_layer_is_refused(path: str) -> None:
    with pytest.raises(pytest.UsageError, match="every test lives in one of tests/"):
        layers_module().layer_of(TESTS_ROOT / path)


def test_selecting_the_unit_marker_collects_exactly_tests_unit() -> None:
    collect = ["--collect-only", "-q", "-p", "no:cacheprovider", "-m", "unit", "tests/unit", "tests/repo"]
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pytest", *collect],
        cwd=TESTS_ROOT.parent,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    collected_files = {line.split("::")[0] for line in result.stdout.splitlines() if "::" in line}
    unit_files = {str(path.relative_to(TESTS_ROOT.parent)) for path in TESTS_ROOT.glob("unit/**/test_*.py")}
    assert collected_files == unit_files
