import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3stagger.domain.limiter import AimdLimiter


def test_grows_by_one_per_success_while_at_least_half_the_limit_is_in_flight() -> None:
    limiter = AimdLimiter(initial=4, maximum=10)
    limiter.on_success(in_flight=2)
    assert limiter.limit == 5
    limiter.on_success(in_flight=2)  # 2 * 2 < 5: the limit is not the bottleneck
    assert limiter.limit == 5
    limiter.on_success(in_flight=3)
    assert limiter.limit == 6


def test_never_grows_above_the_maximum() -> None:
    limiter = AimdLimiter(initial=9, maximum=10)
    for _ in range(5):
        limiter.on_success(in_flight=10)
    assert limiter.limit == 10
    assert limiter.peak == 10


def test_throttle_and_timeout_multiply_by_the_backoff_ratio() -> None:
    limiter = AimdLimiter(initial=20, maximum=40)
    limiter.on_throttle()
    assert limiter.limit == 18
    limiter.on_timeout()
    assert limiter.limit == 16  # floor(18 * 0.9) = 16
    assert limiter.decreases == 2
    assert limiter.lowest == 16


def test_never_drops_below_one() -> None:
    limiter = AimdLimiter(initial=2, maximum=5)
    for _ in range(10):
        limiter.on_throttle()
    assert limiter.limit == 1
    limiter.on_success(in_flight=1)
    assert limiter.limit == 2


def test_initial_value_is_clamped_into_range() -> None:
    assert AimdLimiter(initial=50, maximum=8).limit == 8
    assert AimdLimiter(initial=0, maximum=8).limit == 1


@pytest.mark.parametrize(("maximum", "ratio"), [(0, 0.9), (5, 0.0), (5, 1.0)])
def test_invalid_parameters_are_refused(maximum: int, ratio: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        AimdLimiter(initial=1, maximum=maximum, backoff_ratio=ratio)


@given(
    maximum=st.integers(min_value=1, max_value=200),
    initial=st.integers(min_value=-5, max_value=300),
    events=st.lists(st.one_of(st.integers(min_value=0, max_value=300), st.none(), st.just(-1)), max_size=300),
    avoidance=st.booleans(),
)
def test_limit_always_stays_between_one_and_the_maximum(
    maximum: int, initial: int, events: list[int | None], avoidance: bool
) -> None:
    limiter = AimdLimiter(initial=initial, maximum=maximum, congestion_avoidance=avoidance)
    for event in events:
        before = limiter.limit
        if event is None:
            limiter.on_throttle()
            assert limiter.limit <= before
            assert limiter.limit < before or before == 1
        elif event == -1:
            limiter.on_timeout()
            assert limiter.limit <= before
        else:
            limiter.on_success(in_flight=event)
            assert limiter.limit - before in (0, 1)
        assert 1 <= limiter.limit <= maximum
        assert limiter.lowest <= limiter.limit <= limiter.peak <= maximum


@given(st.integers(min_value=1, max_value=100))
def test_sustained_healthy_load_settles_at_the_maximum(maximum: int) -> None:
    limiter = AimdLimiter(initial=1, maximum=maximum)
    for _ in range(maximum):
        limiter.on_success(in_flight=limiter.limit)
    assert limiter.limit == maximum


def test_after_a_drop_growth_is_one_per_window_of_limit_successes() -> None:
    limiter = AimdLimiter(initial=10, maximum=40)
    limiter.on_throttle()
    assert limiter.limit == 9
    for _ in range(8):
        limiter.on_success(in_flight=9)
    assert limiter.limit == 9
    limiter.on_success(in_flight=9)
    assert limiter.limit == 10
    for _ in range(9):
        limiter.on_success(in_flight=10)
    assert limiter.limit == 10
    limiter.on_success(in_flight=10)
    assert limiter.limit == 11


def test_without_congestion_avoidance_growth_stays_one_per_success() -> None:
    limiter = AimdLimiter(initial=10, maximum=40, congestion_avoidance=False)
    limiter.on_throttle()
    limiter.on_success(in_flight=9)
    limiter.on_success(in_flight=10)
    assert limiter.limit == 11


def test_a_drop_restarts_the_growth_window() -> None:
    limiter = AimdLimiter(initial=20, maximum=40)
    limiter.on_timeout()  # 18
    for _ in range(17):
        limiter.on_success(in_flight=18)
    limiter.on_throttle()  # 16, window restarts
    for _ in range(15):
        limiter.on_success(in_flight=16)
    assert limiter.limit == 16
    limiter.on_success(in_flight=16)
    assert limiter.limit == 17


def test_a_raised_maximum_restarts_slow_start_up_to_it() -> None:
    limiter = AimdLimiter(initial=10, maximum=10)
    limiter.on_throttle()  # 9, congestion avoidance: +1 per window of 9 successes
    limiter.on_success(in_flight=9)
    assert limiter.limit == 9
    limiter.set_maximum(10)  # not raised above where it was: still one per window
    limiter.on_success(in_flight=9)
    assert limiter.limit == 9
    limiter.set_maximum(14)  # the autoscaler raised the share: +1 per success up to it
    for _ in range(10):
        limiter.on_success(in_flight=limiter.limit)
    assert limiter.limit == 14
    limiter.on_throttle()  # a refusal ends slow start again
    limiter.set_maximum(14)
    before = limiter.limit
    limiter.on_success(in_flight=before)
    assert limiter.limit == before
