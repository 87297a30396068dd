import pytest

from s3stagger.domain.deadline import DispatchDeadline, bounded_remaining
from s3stagger.domain.model import InvalidRequestError

STARTED = "2026-11-30T20:00:00.000Z"
EPOCH = 1_796_068_800.0  # 2026-11-30T20:00:00Z


def test_the_deadline_is_start_plus_budget_in_aws_and_emulator_formats() -> None:
    aws = DispatchDeadline.from_event({"object": {}, "deadline": {"started_at": STARTED, "after_s": 240}})
    moto = DispatchDeadline.from_event(
        {"deadline": {"started_at": "2026-11-30T20:00:00.000000+00:00", "after_s": 240}}
    )
    assert aws == moto == DispatchDeadline(EPOCH + 240)
    assert aws is not None
    assert aws.remaining_s(clock=lambda: EPOCH + 200) == 40


@pytest.mark.parametrize("event", [{"object": {}}, {"deadline": None}, "not a mapping"])
def test_no_deadline_without_one(event: object) -> None:
    assert DispatchDeadline.from_event(event) is None


@pytest.mark.parametrize(
    "spec",
    [
        {"after_s": 1},
        {"started_at": "yesterday", "after_s": 1},
        {"started_at": STARTED, "after_s": -1},
        {"started_at": STARTED, "after_s": "240"},
        {"started_at": STARTED, "after_s": True},
        "240",
    ],
)
def test_a_malformed_deadline_is_an_invalid_request(spec: object) -> None:
    with pytest.raises(InvalidRequestError, match="deadline"):
        DispatchDeadline.from_event({"deadline": spec})


def test_remaining_time_is_the_smaller_of_the_invocation_and_the_deadline() -> None:
    deadline = DispatchDeadline(EPOCH + 60)
    now = EPOCH
    bounded = bounded_remaining(lambda: 300.0, deadline, clock=lambda: now)
    assert bounded is not None
    assert bounded() == 60
    now = EPOCH + 59
    assert bounded() == 1
    lambda_only = bounded_remaining(lambda: 5.0, deadline, clock=lambda: EPOCH)
    assert lambda_only is not None
    assert lambda_only() == 5
    without_context = bounded_remaining(None, deadline, clock=lambda: EPOCH)
    assert without_context is not None
    assert without_context() == 60
    endless = bounded_remaining(lambda: None, deadline, clock=lambda: EPOCH)
    assert endless is not None
    assert endless() == 60


def test_without_a_deadline_the_invocation_time_is_unchanged() -> None:
    def remaining() -> float:
        return 12.0

    assert bounded_remaining(remaining, None) is remaining
    assert bounded_remaining(None, None) is None
