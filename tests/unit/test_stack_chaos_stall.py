"""The stall of a full-stack chaos kind: the longest time no row was applied while rows were due."""

from __future__ import annotations

from s3stagger.local.stack_chaos import longest_stall


def test_the_longest_flat_stretch_before_every_row_is_applied() -> None:
    timeline = [(0.0, 0), (1.0, 5), (2.0, 5), (9.5, 5), (10.0, 8), (11.0, 10), (40.0, 10)]
    assert longest_stall(timeline, 10) == 9.0  # 1.0 → 10.0 at 5 rows; the idle tail after 10 rows is no stall


def test_no_rows_at_all_is_one_stall_as_long_as_the_run() -> None:
    assert longest_stall([(0.0, 0), (3.0, 0), (7.5, 0)], 4) == 7.5
    assert longest_stall([], 4) == 0.0


def test_the_stall_counts_from_the_fault_on() -> None:
    timeline = [(0.0, 0), (20.0, 0), (21.0, 4), (30.0, 4), (50.0, 8), (51.0, 10)]
    assert longest_stall(timeline, 10, after=30.0) == 20.0  # 30.0 → 50.0, not the 21 s start-up
    assert longest_stall(timeline, 10, after=0.0) == 29.0  # 21.0 → 50.0
    assert longest_stall([(0.0, 0), (5.0, 10), (9.0, 10)], 10, after=6.0) == 0.0  # done before it
