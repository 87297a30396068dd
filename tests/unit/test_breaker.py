"""The breaker's window as a table: which sequences of settled rows trip it, which refusals it releases."""

from __future__ import annotations

import pytest

from s3stagger.domain.breaker import BreakerSettings, RejectionWindow

SETTINGS = BreakerSettings(window=5, ratio=0.8, min_rows=3)


def feed(window: RejectionWindow[int], statuses: list[int | None]) -> list[int]:
    """Settle rows 1.. with these refusal statuses (None = applied); return the rows released."""
    released: list[int] = []
    for number, status in enumerate(statuses, start=1):
        released += window.settle(status, number if status is not None else None)
    return released


@pytest.mark.parametrize(
    ("before", "status", "trips"),
    [
        ([], 401, False),  # one row: below min_rows
        ([401], 401, False),  # two rows: below min_rows
        ([401, 401], 401, True),  # 3 of 3
        ([None, 401], 401, False),  # 2 of 3 < ceil(0.8 * 3)
        ([None, 401, 401], 401, False),  # 3 of 4 < ceil(0.8 * 4) = 4
        ([401, 401, 401], 401, True),  # 4 of 4
        ([None, None, 401, 401], 401, False),  # 3 of 5 < 4
        ([None, 401, 401, 401], 401, True),  # 4 of 5
        ([403, 403, 401, 401], 401, False),  # two statuses: neither refuses most
        ([None, 401, 401, 401, 401], 401, True),  # the oldest (applied) leaves the window: 5 of 5
        ([401, None, None, 401, 401], 401, False),  # the oldest 401 leaves: 3 of 5
    ],
)
def test_one_more_refusal_trips_only_when_its_status_refuses_most_of_the_window(
    before: list[int | None], status: int, trips: bool
) -> None:
    window: RejectionWindow[int] = RejectionWindow(SETTINGS)
    feed(window, before)
    assert window.would_trip(status) is trips


def test_refusals_are_held_while_in_the_window_and_released_once_pushed_out() -> None:
    window: RejectionWindow[int] = RejectionWindow(SETTINGS)
    assert feed(window, [404, None, None, None, None]) == []  # row 1 is still in the window
    assert window.settle(None) == [1]  # now it is out: an isolated refusal
    assert window.settle(422, 7) == []
    assert window.release_all() == [7]
    assert window.release_all() == []


@pytest.mark.parametrize(
    ("window", "ratio", "min_rows"), [(0, 0.8, 1), (5, 0.8, 6), (5, 0.8, 0), (5, 0.0, 3), (5, 1.5, 3)]
)
def test_breaker_settings_are_checked(window: int, ratio: float, min_rows: int) -> None:
    with pytest.raises(ValueError, match="breaker"):
        BreakerSettings(window=window, ratio=ratio, min_rows=min_rows)
