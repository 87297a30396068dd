"""The local alarm evaluator against the semantics CloudWatch documents.

Rows of the documentation's table "How alarm state is evaluated when data is missing" (3 datapoints
to alarm out of 3 evaluation periods, an evaluation range of 5 periods; ``X`` breaching, ``0`` not
breaching, ``-`` missing; oldest first; the alarm starts in OK), then M-of-N and transitions.
"""

import pytest

from s3stagger.domain.alarm_evaluation import (
    AlarmDefinitionError,
    AlarmRule,
    AlarmState,
    Comparison,
    Datapoint,
    MissingData,
    Statistic,
    evaluate,
    period_datapoints,
)

OK, ALARM, INSUFFICIENT = AlarmState.OK, AlarmState.ALARM, AlarmState.INSUFFICIENT_DATA


def rule(m: int = 3, n: int = 3, missing: MissingData = MissingData.MISSING) -> AlarmRule:
    return AlarmRule(
        period_s=60,
        evaluation_periods=n,
        datapoints_to_alarm=m,
        comparison=Comparison.GREATER,  # a value > 0 breaches
        threshold=0,
        treat_missing_data=missing,
        statistic=Statistic.SUM,
    )


def points(pattern: str) -> list[Datapoint]:
    values = {"X": 1.0, "0": 0.0, "-": None}
    return [Datapoint(60.0 * i, values[c]) for i, c in enumerate(pattern.split())]


# documented table: pattern -> state for missing, ignore (current OK), breaching, notBreaching
DOCUMENTED = [
    ("0 - X - X", OK, OK, OK, OK),
    ("- - - - 0", OK, OK, OK, OK),
    ("- - - - -", INSUFFICIENT, OK, ALARM, OK),
    ("0 X X - X", ALARM, ALARM, ALARM, ALARM),
    ("- - X - -", ALARM, OK, ALARM, OK),
]


@pytest.mark.parametrize(("pattern", "missing", "ignore", "breaching", "not_breaching"), DOCUMENTED)
def test_documented_missing_data_table(
    pattern: str, missing: AlarmState, ignore: AlarmState, breaching: AlarmState, not_breaching: AlarmState
) -> None:
    got = [
        evaluate(rule(missing=treatment), points(pattern), OK).state
        for treatment in (
            MissingData.MISSING,
            MissingData.IGNORE,
            MissingData.BREACHING,
            MissingData.NOT_BREACHING,
        )
    ]
    assert got == [missing, ignore, breaching, not_breaching]


def test_ignore_keeps_whatever_state_the_alarm_is_in() -> None:
    assert evaluate(rule(missing=MissingData.IGNORE), points("- - - - -"), ALARM).state is ALARM
    assert evaluate(rule(missing=MissingData.IGNORE), points("- - X - -"), INSUFFICIENT).state is INSUFFICIENT


@pytest.mark.parametrize(
    ("m", "n", "pattern", "expected"),
    [
        (2, 3, "0 0 0 X X", ALARM),  # 2 of the last 3 breach
        (2, 3, "0 0 X 0 X", ALARM),
        (2, 3, "0 X X 0 0", OK),  # the breaches are older than the last 3
        (3, 5, "X 0 X 0 X", ALARM),
        (3, 5, "X 0 X 0 0", OK),
        (1, 1, "X X X X 0", OK),  # ALARM -> OK as soon as the newest is fine
        (1, 1, "0 0 0 0 X", ALARM),
    ],
)
def test_m_out_of_n(m: int, n: int, pattern: str, expected: AlarmState) -> None:
    assert evaluate(rule(m, n), points(pattern)[-(n + 2) :], OK).state is expected


def test_real_datapoints_from_further_back_fill_the_range_before_missing_data_counts() -> None:
    # 3 real datapoints in a range of 5: the newest 3 real ones decide, missing ones do not matter
    evaluation = evaluate(rule(missing=MissingData.BREACHING), points("X - X - X"), OK)
    assert evaluation.state is ALARM
    assert [p.value for p in evaluation.evaluated] == [1.0, 1.0, 1.0]
    assert evaluate(rule(missing=MissingData.BREACHING), points("0 - X - X"), OK).state is OK


def test_reason_reads_like_cloudwatch() -> None:
    evaluation = evaluate(rule(1, 1), points("0 0 0 0 X"), OK)
    assert evaluation.reason.startswith("Threshold Crossed: 1 out of the last 1 datapoints [1 (")
    assert "was greater than the threshold (0)" in evaluation.reason


def test_transitions_ok_alarm_ok_over_time() -> None:
    alarm = AlarmRule(10, 2, 2, Comparison.GREATER_OR_EQUAL, 5, MissingData.NOT_BREACHING, Statistic.MAXIMUM)
    samples: list[tuple[float, float]] = []
    state = INSUFFICIENT
    seen = []
    for second, value in enumerate([0] * 20 + [7] * 30 + [1] * 30):
        samples.append((1000.0 + second, float(value)))
        state = evaluate(alarm, period_datapoints(samples, alarm, 1000.0 + second + 1), state).state
        if not seen or seen[-1] is not state:
            seen.append(state)
    assert seen == [OK, ALARM, OK]


def test_period_datapoints_aggregate_each_closed_period() -> None:
    alarm = AlarmRule(10, 1, 1, Comparison.GREATER, 0, MissingData.MISSING, Statistic.SUM)
    samples = [(101.0, 1.0), (105.0, 2.0), (121.0, 4.0), (135.0, 8.0)]  # 135 is in the open period
    datapoints = period_datapoints(samples, alarm, now=132.0)
    assert [(p.start, p.value) for p in datapoints] == [(100.0, 3.0), (110.0, None), (120.0, 4.0)]


@pytest.mark.parametrize(
    ("statistic", "expected"),
    [
        (Statistic.SUM, 6.0),
        (Statistic.AVERAGE, 2.0),
        (Statistic.MAXIMUM, 3.0),
        (Statistic.MINIMUM, 1.0),
        (Statistic.SAMPLE_COUNT, 3.0),
    ],
)
def test_statistics(statistic: Statistic, expected: float) -> None:
    assert statistic.of([1.0, 2.0, 3.0]) == expected
    assert statistic.of([]) is None


@pytest.mark.parametrize(
    ("comparison", "breaching"),
    [
        (Comparison.GREATER_OR_EQUAL, [False, True, True]),
        (Comparison.GREATER, [False, False, True]),
        (Comparison.LESS, [True, False, False]),
        (Comparison.LESS_OR_EQUAL, [True, True, False]),
    ],
)
def test_comparisons(comparison: Comparison, breaching: list[bool]) -> None:
    assert [comparison.breaches(v, 5) for v in (4, 5, 6)] == breaching


def test_settings_cloudwatch_refuses_are_refused() -> None:
    with pytest.raises(AlarmDefinitionError, match="datapoints_to_alarm"):
        AlarmRule(60, 2, 3, Comparison.GREATER, 0, MissingData.MISSING)
    with pytest.raises(AlarmDefinitionError, match="period"):
        AlarmRule(0, 1, 1, Comparison.GREATER, 0, MissingData.MISSING)
