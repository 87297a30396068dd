"""Dynatrace's line protocol: lines written by the project parse back; bad lines say why."""

from __future__ import annotations

import pytest

from s3stagger.domain.dynatrace_lines import (
    LineError,
    PayloadKind,
    Summary,
    count_line,
    gauge_line,
    parse_line,
    summary_line,
)

NOW = 1_764_540_000_000


def test_written_lines_parse_back() -> None:
    dims = {"queuename": 'odd "name" \\ here', "aws.region": "us-east-1"}
    gauge = parse_line(gauge_line("cloud.aws.sqs.visible", dims, 12, NOW), NOW)
    assert (gauge.kind, gauge.value, dict(gauge.dimensions), gauge.timestamp_ms) == (
        PayloadKind.GAUGE,
        12.0,
        dims,
        NOW,
    )
    summary = parse_line(summary_line("s3stagger.rows", {}, Summary(1, 5, 9, 3)), NOW)
    assert summary.kind is PayloadKind.SUMMARY
    assert summary.summary == Summary(1.0, 5.0, 9.0, 3)
    assert summary.value == 3.0
    count = parse_line(count_line("s3stagger.errors", {"f": "p"}, 2.5), NOW)
    assert (count.kind, count.value) == (PayloadKind.COUNT_DELTA, 2.5)


@pytest.mark.parametrize(
    "line",
    [
        "my.metric 5",
        "my.metric gauge,5.5",
        "my.metric,dim=unquoted gauge,1",
        'my.metric,a="x, y",b="z" count,delta=-3',
        "my.metric gauge,min=1,max=1,sum=1,count=1 " + str(NOW - 3_599_000),
        "_under.score-ok 1 " + str(NOW + 599_000),
    ],
)
def test_valid_lines(line: str) -> None:
    parse_line(line, NOW)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("ab 1", "3 to 255"),
        ("x" * 256 + " 1", "3 to 255"),
        ("1metric 1", "not starting with a digit"),
        ("my.-metric 1", "sections"),
        ("my..metric 1", "sections"),
        ("my.mëtric 1", "sections"),
        ("dt.my.metric 1", "reserved"),
        ('my.metric,Dim="v" 1', "lower-case"),
        ('my.metric,d="v",d="w" 1', "twice"),
        ('my.metric,d="v 1', "not closed"),
        ('my.metric,d="" 1', "1 to 250"),
        ('my.metric,d="' + "v" * 251 + '" 1', "1 to 250"),
        ("my.metric," + ",".join(f'd{i}="v"' for i in range(51)) + " 1", "at most 50"),
        ("my.metric", "payload is required"),
        ("my.metric gauge,abc", "not a number"),
        ("my.metric NaN", "finite"),
        ("my.metric count,5", "absolute counts"),
        ("my.metric histogram,5", "expected gauge or count"),
        ("my.metric gauge,min=1,max=2,sum=3", "all of min, max, sum and count"),
        ("my.metric gauge,min=3,max=2,sum=3,count=1", "greater than max"),
        ("my.metric gauge,min=1,max=2,sum=3,count=0", "positive integer"),
        ("my.metric gauge,min=1,max=2,sum=3,count=1.5", "positive integer"),
        ("my.metric 1 " + str(NOW - 3_601_000), "out of range"),
        ("my.metric 1 " + str(NOW + 601_000), "out of range"),
        ("my.metric 1 1764540000.5", "milliseconds"),
        ("my.metric 1 2 3", "expected"),
    ],
)
def test_invalid_lines_say_why(line: str, says: str) -> None:
    with pytest.raises(LineError, match=None) as raised:
        parse_line(line, NOW)
    assert says in str(raised.value)
