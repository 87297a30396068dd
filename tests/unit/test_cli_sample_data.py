import csv
import io
import subprocess  # nosec B404 - runs bandit from the venv
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3stagger.cli import sample_data
from s3stagger.cli.sample_data import (
    SAMPLE_HEADER,
    run_id_for_seed,
    sample_csv,
    sample_object_key,
    sample_objects,
)


def _rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8"))))


def test_each_object_has_the_header_and_the_requested_number_of_rows() -> None:
    objects = list(sample_objects(files=3, rows=7, seed=42, prefix="high/"))
    assert len(objects) == 3
    for item in objects:
        parsed = _rows(item.body)
        assert tuple(parsed[0]) == SAMPLE_HEADER
        assert len(parsed) - 1 == item.rows == 7
        assert all(len(row) == len(SAMPLE_HEADER) for row in parsed)
        assert item.key.startswith("high/")
        assert item.key.endswith(".csv")


def test_keys_are_distinct_and_carry_the_run_id() -> None:
    objects = list(sample_objects(files=25, rows=1, seed=3))
    run_id = run_id_for_seed(3)
    assert len({item.key for item in objects}) == 25
    assert all(item.key.startswith(f"{run_id}/") for item in objects)
    assert objects[4].key == sample_object_key("", run_id, 4)


def test_generation_is_deterministic_in_the_seed() -> None:
    first = [item.body for item in sample_objects(files=2, rows=5, seed=9)]
    again = [item.body for item in sample_objects(files=2, rows=5, seed=9)]
    other = [item.body for item in sample_objects(files=2, rows=5, seed=10)]
    assert first == again
    assert first != other
    assert run_id_for_seed(9) != run_id_for_seed(10)


@given(files=st.integers(1, 6), rows=st.integers(0, 30), seed=st.integers(0, 2**31))
def test_no_two_rows_of_a_run_share_a_body(files: int, rows: int, seed: int) -> None:
    bodies = [tuple(row) for item in sample_objects(files, rows, seed) for row in _rows(item.body)[1:]]
    assert len(bodies) == files * rows
    assert len(set(bodies)) == len(bodies)


def test_zero_rows_gives_a_header_only_file() -> None:
    assert sample_csv("r1", 0, 0, seed=1).splitlines() == [",".join(SAMPLE_HEADER)]


@pytest.mark.parametrize(("files", "rows"), [(-1, 1), (1, -1)])
def test_negative_sizes_are_refused(files: int, rows: int) -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        list(sample_objects(files, rows, seed=1))


def test_first_index_numbers_files_on_and_refuses_negative_values() -> None:
    parts = list(sample_objects(2, 1, seed=4, prefix="high/")) + list(
        sample_objects(2, 1, seed=4, prefix="normal/", first_index=2)
    )
    assert [item.key.rsplit("/", 1)[-1] for item in parts] == [
        "part-00000.csv",
        "part-00001.csv",
        "part-00002.csv",
        "part-00003.csv",
    ]
    assert len({item.body.splitlines()[1] for item in parts}) == 4
    with pytest.raises(ValueError, match="first_index"):
        list(sample_objects(1, 1, seed=4, first_index=-1))


def test_the_seeded_generator_passes_bandit() -> None:
    """The seeded PRNG is deliberate (reproducible data) and says so, so the pre-commit hook passes."""
    bandit = Path(sys.executable).parent / "bandit"
    if not bandit.exists():
        pytest.skip(f"bandit is not installed next to {sys.executable}")
    module = Path(sample_data.__file__)
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    result = subprocess.run(  # noqa: S603 - the venv's bandit on a project file
        [str(bandit), "-q", "-c", str(pyproject), str(module)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
