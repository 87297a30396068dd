"""Which dead-lettered message a redrive takes, and where an ingest-DLQ event is routed."""

from __future__ import annotations

import pytest

from s3stagger.domain.redrive import DeadLetter, RedriveFilter, Unroutable, dead_letter_reason, route_by_key

PREFIXES = {"high": "high/", "normal": "normal/"}
OLD = DeadLetter("normal/a.csv", "SQSError: throttled", 600.0)


@pytest.mark.parametrize(
    ("selection", "taken"),
    [
        (RedriveFilter(), True),
        (RedriveFilter(key_prefix="normal/"), True),
        (RedriveFilter(key_prefix="high/"), False),
        (RedriveFilter(reason_contains="THROTTLED"), True),
        (RedriveFilter(reason_contains="timeout"), False),
        (RedriveFilter(min_age_s=600), True),
        (RedriveFilter(min_age_s=601), False),
    ],
)
def test_a_filter_takes_what_it_names(selection: RedriveFilter, taken: bool) -> None:
    assert selection.matches(OLD) is taken
    assert selection.narrows is (selection != RedriveFilter())


def test_an_event_is_routed_by_its_key_or_said_unroutable_with_the_reason() -> None:
    assert route_by_key("high/x.csv", PREFIXES, ".csv") == "high"
    assert route_by_key("normal/deep/x.csv", PREFIXES, ".csv") == "normal"
    wrong_place = route_by_key("other/x.csv", PREFIXES, ".csv")
    assert isinstance(wrong_place, Unroutable)
    assert "'high/', 'normal/'" in wrong_place.reason
    assert route_by_key("high/x.txt", PREFIXES, ".csv") == Unroutable(
        "key 'high/x.txt' does not end in '.csv'"
    )
    assert isinstance(route_by_key(None, PREFIXES, ".csv"), Unroutable)


def test_the_reason_is_eventbridges_error_else_the_receive_count() -> None:
    assert dead_letter_reason({"ERROR_CODE": "SQSError", "ERROR_MESSAGE": "denied"}, 1) == "SQSError: denied"
    assert dead_letter_reason({}, 5) == "failed its receives (5 received)"
