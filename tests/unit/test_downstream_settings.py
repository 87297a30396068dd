import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3stagger.local.downstream.model import body_fingerprint
from s3stagger.local.downstream.model import percentile as _percentile
from s3stagger.local.downstream.settings import (
    LatencySpec,
    SimulatorSettings,
    SimulatorSettingsError,
    capacity_at,
    format_retry_after,
    next_change_after,
    parse_capacity_schedule,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fixed:0.2", LatencySpec("fixed", 0.2, 0.2)),
        ("FIXED:0", LatencySpec("fixed", 0.0, 0.0)),
        (" uniform:0.1,0.3 ", LatencySpec("uniform", 0.1, 0.3)),
        ("uniform:2,2", LatencySpec("uniform", 2.0, 2.0)),
        ("slow-api", LatencySpec("uniform", 5.0, 30.0)),
        ("seed", LatencySpec("uniform", 5.0, 30.0)),  # the deprecated name still reads
    ],
)
def test_latency_forms_are_parsed(text: str, expected: LatencySpec) -> None:
    assert LatencySpec.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus", "expected fixed:SECONDS"),
        ("fixed", "expected fixed:SECONDS"),
        ("uniform:0.1", "expected fixed:SECONDS"),
        ("fixed:fast", "not a number"),
        ("uniform:a,b", "not a number"),
        ("fixed:-1", "must be >= 0"),
        ("uniform:0.3,0.1", "below its lower bound"),
        ("fixed:nan", "finite"),
        ("fixed:inf", "finite"),
    ],
)
def test_bad_latency_says_what_is_wrong_and_the_expected_form(text: str, message: str) -> None:
    with pytest.raises(SimulatorSettingsError, match=message) as raised:
        LatencySpec.parse(text)
    assert repr(text) in str(raised.value)


def test_a_fixed_latency_cannot_have_two_values() -> None:
    with pytest.raises(SimulatorSettingsError, match="one value"):
        LatencySpec("fixed", 0.1, 0.2)


@given(st.floats(0, 100), st.floats(0, 100), st.integers())
def test_uniform_samples_stay_within_bounds_and_describe_round_trips(a: float, b: float, seed: int) -> None:
    spec = LatencySpec.uniform(min(a, b), max(a, b))
    rng = random.Random(seed)
    samples = [spec.sample(rng) for _ in range(20)]
    assert all(spec.low_s <= value <= spec.high_s for value in samples)
    assert LatencySpec.parse(spec.describe()) == spec


def test_fixed_latency_always_samples_its_value_and_seeded_draws_repeat() -> None:
    assert {LatencySpec.fixed(0.25).sample(random.Random()) for _ in range(10)} == {0.25}
    seeded = LatencySpec.slow_api()
    first = [seeded.sample(random.Random(7)) for _ in range(3)]
    assert first == [seeded.sample(random.Random(7)) for _ in range(3)]
    assert seeded.mean_s == 17.5
    assert LatencySpec.parse(LatencySpec.fixed(0.2).describe()) == LatencySpec.fixed(0.2)


def test_capacity_schedule_is_parsed_in_order() -> None:
    assert parse_capacity_schedule("30:10, 60:50") == ((30.0, 10), (60.0, 50))
    assert parse_capacity_schedule("0.5:0") == ((0.5, 0),)
    assert parse_capacity_schedule("") == ()
    assert parse_capacity_schedule(" , ") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("30", "expected AT_SECONDS:CAPACITY"),
        ("30:ten", "expected AT_SECONDS:CAPACITY"),
        ("x:1", "expected AT_SECONDS:CAPACITY"),
        ("30:1.5", "expected AT_SECONDS:CAPACITY"),
        ("-1:5", "must be >= 0 seconds"),
        ("10:-5", "integer >= 0"),
        ("60:5,30:10", "must increase"),
        ("30:5,30:10", "must increase"),
    ],
)
def test_bad_capacity_schedule_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(SimulatorSettingsError, match=message):
        parse_capacity_schedule(text)


def test_capacity_in_force_follows_the_schedule() -> None:
    schedule = ((10.0, 3), (20.0, 0), (30.0, 8))
    assert [capacity_at(5, schedule, t) for t in (0, 9.99, 10, 15, 20, 29, 30, 1e6)] == [
        5,
        5,
        3,
        3,
        0,
        0,
        8,
        8,
    ]
    assert capacity_at(5, (), 100) == 5
    assert [next_change_after(schedule, t) for t in (0, 10, 25, 30)] == [10.0, 20.0, 30.0, None]


@pytest.mark.parametrize(
    ("seconds", "header"),
    [
        (0.05, "0.05"),
        (0.0001, "0.001"),
        (0, "0.001"),
        (0.2, "0.2"),
        (0.9999, "1"),
        (1, "1"),
        (1.2, "2"),
        (17.5, "18"),
    ],
)
def test_retry_after_is_whole_seconds_from_one_second_else_fractional(seconds: float, header: str) -> None:
    assert format_retry_after(seconds) == header


def test_retry_after_defaults_to_the_mean_latency_scaled() -> None:
    assert SimulatorSettings(
        latency=LatencySpec.slow_api(), time_scale=0.01
    ).retry_after_seconds() == pytest.approx(0.175)
    assert SimulatorSettings(retry_after_s=2, time_scale=0.5).retry_after_seconds() == 1.0


def test_settings_normalise_the_schedule_and_know_the_highest_capacity() -> None:
    settings = SimulatorSettings(capacity=4, capacity_schedule=[(1, 9), (2.5, 2)])  # type: ignore[arg-type]
    assert settings.capacity_schedule == ((1.0, 9), (2.5, 2))
    assert settings.max_capacity == 9
    assert SimulatorSettings(capacity=4).max_capacity == 4


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"capacity": 0}, "capacity must be an integer >= 1"),
        ({"capacity": True}, "capacity must be an integer >= 1"),
        ({"overload": "drop"}, "not one of reject, queue"),
        ({"error_rate": 1.5}, "between 0 and 1"),
        ({"error_rate": -0.1}, "between 0 and 1"),
        ({"time_scale": -1}, "time scale"),
        ({"time_scale": float("inf")}, "time scale"),
        ({"retry_after_s": -1}, "retry-after"),
        ({"port": 70000}, "port"),
        ({"max_body_bytes": 0}, "max body bytes"),
        ({"capacity_schedule": ((1, 2, 3),)}, "must be \\(seconds since start, capacity\\)"),
        ({"capacity_schedule": ((1, 2.5),)}, "integer >= 0"),
        ({"capacity_schedule": ((1, True),)}, "integer >= 0"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SimulatorSettingsError, match=message):
        SimulatorSettings(**changes)  # type: ignore[arg-type]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert _percentile(values, 0.5) == 50.0
    assert _percentile(values, 0.95) == 95.0
    assert _percentile([3.0], 0.95) == 3.0
    assert _percentile([], 0.5) is None


def test_body_fingerprint_ignores_key_order_but_not_values() -> None:
    assert body_fingerprint({"a": 1, "b": [1, 2]}) == body_fingerprint({"b": [1, 2], "a": 1})
    assert body_fingerprint({"a": 1}) != body_fingerprint({"a": "1"})
