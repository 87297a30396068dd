import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3stagger.domain.retry import RetryPolicy, is_retryable_status, parse_retry_after

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("2", 2.0), (" 120 ", 120.0), ("0.05", 0.05), ("0", 0.0), ("-3", 0.0)],
)
def test_retry_after_seconds_forms(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == pytest.approx(seconds)


def test_retry_after_http_date_is_relative_to_now() -> None:
    value = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(value, NOW) == pytest.approx(30.0)


def test_retry_after_http_date_in_the_past_means_now() -> None:
    value = format_datetime(NOW - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(value, NOW) == 0.0


def test_retry_after_without_now_uses_the_clock() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    parsed = parse_retry_after(later)
    assert parsed is not None
    assert 3000 < parsed <= 3600


@pytest.mark.parametrize("value", [None, "", "soon", "nan", "inf", "Mon, 99 Foo 2026"])
def test_unreadable_retry_after_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (429, True),
        (408, True),
        (500, True),
        (503, True),
        (599, True),
        (400, False),
        (404, False),
        (409, False),
        (422, False),
        (301, False),
    ],
)
def test_retryable_statuses(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable


def test_attempts_are_bounded() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.should_retry(n) for n in (1, 2, 3)] == [True, True, False]


@given(
    attempt=st.integers(min_value=1, max_value=40),
    base=st.floats(min_value=0.0, max_value=5.0),
    cap=st.floats(min_value=0.0, max_value=30.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_full_jitter_stays_under_the_exponential_ceiling(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    policy = RetryPolicy(max_attempts=50, base_delay_s=base, max_delay_s=cap)
    delay = policy.delay_s(attempt, random.Random(seed))
    assert 0.0 <= delay <= min(cap, base * 2 ** (attempt - 1)) + 1e-9


def test_jitter_spreads_delays() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=100.0)
    rng = random.Random(7)
    delays = {round(policy.delay_s(4, rng), 6) for _ in range(50)}
    assert len(delays) > 40


@given(retry_after=st.floats(min_value=0.0, max_value=1000.0), seed=st.integers(min_value=0, max_value=1000))
def test_retry_after_is_a_capped_floor(retry_after: float, seed: int) -> None:
    policy = RetryPolicy(base_delay_s=0.01, max_delay_s=5.0)
    delay = policy.delay_s(1, random.Random(seed), retry_after)
    assert delay >= min(retry_after, 5.0)
    assert delay <= 5.0


def test_invalid_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="delays"):
        RetryPolicy(base_delay_s=-1)
