import pytest

from s3stagger.domain.deadline import DispatchDeadline, LoweredBudget, OutgrownBudget, bounded_remaining
from s3stagger.domain.model import InvalidRequestError

STARTED = "2026-11-30T20:00:00.000Z"
EPOCH = 1_796_068_800.0  # 2026-11-30T20:00:00Z


def test_the_deadline_is_start_plus_budget_in_aws_and_emulator_formats() -> None:
    aws = DispatchDeadline.from_event({"object": {}, "deadline": {"started_at": STARTED, "after_s": 240}})
    moto = DispatchDeadline.from_event(
        {"deadline": {"started_at": "2026-11-30T20:00:00.000000+00:00", "after_s": 240}}
    )
    assert aws == moto == DispatchDeadline(EPOCH + 240, started_at_s=EPOCH)
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


@pytest.mark.parametrize(("budget", "expected"), [(4, 4), (None, None), (0, None), (2.5, None), (True, None)])
def test_the_deadline_carries_the_budget_read_when_it_is_a_count(
    budget: object, expected: int | None
) -> None:
    spec = {"started_at": STARTED, "after_s": 240, "budget": budget}
    assert DispatchDeadline.from_event({"deadline": spec}) == DispatchDeadline(EPOCH + 240, expected, EPOCH)


def test_a_lowered_budget_is_noticed_once_below_the_executions_and_stays_so() -> None:
    autoscaled: list[int | None] = [None]
    lowered = LoweredBudget(3, lambda: autoscaled[0])
    assert not lowered.lowered  # the autoscaler's budget is not known
    autoscaled[0] = 3
    assert not lowered.lowered  # the execution runs the budget
    autoscaled[0] = 2
    assert lowered.lowered  # one slot too many: the slots end at their objects' ends
    autoscaled[0] = 5
    assert lowered.lowered  # the calls took no further message: the raised budget is the continuation's


def test_an_outgrown_budget_ends_the_call_after_its_grace() -> None:
    now = EPOCH
    autoscaled = [4]
    outgrown = OutgrownBudget(4, lambda: autoscaled[0], grace_s=5, margin_s=2, clock=lambda: now)
    bounded = bounded_remaining(lambda: 300.0, DispatchDeadline(EPOCH + 240, 4), lambda: now, outgrown)
    assert bounded is not None
    assert bounded() == 240  # the budget as the execution read it: no early end
    autoscaled[0] = 3
    assert bounded() == 240  # a lowered budget settles through the rows' share, not here
    now = EPOCH + 10
    autoscaled[0] = 6
    assert bounded() == 7  # noticed now: 5 s of rows, then the margin
    assert outgrown.noticed_at == EPOCH + 10
    autoscaled[0] = 4  # noticed once is enough: the execution's slots are too few
    now = EPOCH + 16
    assert bounded() == 1


def test_an_unknown_budget_never_ends_the_call_early() -> None:
    outgrown = OutgrownBudget(4, lambda: None, grace_s=5, margin_s=2, clock=lambda: EPOCH)
    assert outgrown.remaining_s() is None
    assert outgrown.noticed_at is None
