"""The processor's delivery decision as a table: attempt outcome + row history + invocation → action."""

from __future__ import annotations

import random

import pytest

from s3stagger.domain.delivery import (
    Delivery,
    DeliveryOutcome,
    DeliveryPolicy,
    InvocationView,
    RowAction,
    RowAttempts,
    attempt_timeout_s,
    decide,
)
from s3stagger.domain.retry import RetryPolicy

# Base 0: the jittered backoff is 0, so a delay above 0 can only come from a Retry-After.
POLICY = DeliveryPolicy(
    retry=RetryPolicy(max_attempts=3, base_delay_s=0.0, max_delay_s=5.0),
    throttle=RetryPolicy(max_attempts=4, base_delay_s=0.0, max_delay_s=5.0),
    deadline_margin_s=10.0,
)
ANSWERED = InvocationView(any_answer=True, remaining_s=None)
SILENT = InvocationView(any_answer=False, remaining_s=None)

OK = Delivery(DeliveryOutcome.APPLIED, 200, "ok")
BAD = Delivery(DeliveryOutcome.REJECTED, 422, "HTTP 422: no")
BUSY = Delivery(DeliveryOutcome.THROTTLED, 429, "HTTP 429: busy", retry_after_s=2.0)
BUSY_NO_HINT = Delivery(DeliveryOutcome.THROTTLED, 429, "HTTP 429: busy")
DOWN = Delivery(DeliveryOutcome.RETRYABLE_ERROR, 503, "HTTP 503: down", retry_after_s=1.5)
REFUSED = Delivery(DeliveryOutcome.UNREACHABLE, None, "cannot connect: refused")
SLOW = Delivery(DeliveryOutcome.TIMED_OUT, None, "timed out: ReadTimeout")
ERROR = Delivery(DeliveryOutcome.RETRYABLE_ERROR, 500, "HTTP 500: bug")
BROKEN = Delivery(DeliveryOutcome.RETRYABLE_ERROR, None, "connection failed: RemoteProtocolError")


Case = tuple[Delivery, RowAttempts, InvocationView, RowAction, RowAttempts, float, str]
"""(attempt, attempts before, invocation, action, attempts after, delay, words of the reason)"""

TABLE: list[Case] = [
    # applied and permanent refusals end the row whatever came before
    (OK, RowAttempts(2, 3), SILENT, RowAction.APPLIED, RowAttempts(2, 3), 0.0, ""),
    (BAD, RowAttempts(), ANSWERED, RowAction.FAILED, RowAttempts(), 0.0, "downstream rejected the row"),
    # 429: its own budget; Retry-After is a floor of the wait; past the budget the object pauses
    (BUSY, RowAttempts(), ANSWERED, RowAction.RETRY, RowAttempts(0, 1), 2.0, ""),
    (BUSY_NO_HINT, RowAttempts(2, 0), ANSWERED, RowAction.RETRY, RowAttempts(2, 1), 0.0, ""),
    (BUSY, RowAttempts(0, 3), ANSWERED, RowAction.PAUSE, RowAttempts(0, 4), 0.0, "throttled 4 times"),
    # a 429 never fails a row, however many failures it had
    (BUSY, RowAttempts(2, 3), ANSWERED, RowAction.PAUSE, RowAttempts(2, 4), 0.0, "saturated"),
    # retryable failures: retried with the Retry-After as floor; a 500 past its attempts fails the row
    (DOWN, RowAttempts(), ANSWERED, RowAction.RETRY, RowAttempts(1, 0), 1.5, ""),
    (SLOW, RowAttempts(1, 0), ANSWERED, RowAction.RETRY, RowAttempts(2, 0), 0.0, ""),
    (ERROR, RowAttempts(2, 0), ANSWERED, RowAction.FAILED, RowAttempts(3, 0), 0.0, "gave up after 3"),
    # away (timed out, refused, broken) or busy (503) past its attempts: the object pauses, no failed row
    (DOWN, RowAttempts(2, 0), ANSWERED, RowAction.PAUSE, RowAttempts(3, 0), 0.0, "HTTP 503"),
    (SLOW, RowAttempts(2, 9), ANSWERED, RowAction.PAUSE, RowAttempts(3, 9), 0.0, "ReadTimeout"),
    (BROKEN, RowAttempts(2, 0), ANSWERED, RowAction.PAUSE, RowAttempts(3, 0), 0.0, "away or busy"),
    # no answer to anything, out of attempts: unreachable, not a failed row
    (REFUSED, RowAttempts(2, 0), SILENT, RowAction.UNREACHABLE, RowAttempts(3, 0), 0.0, "unreachable"),
    (SLOW, RowAttempts(2, 0), SILENT, RowAction.UNREACHABLE, RowAttempts(3, 0), 0.0, "after 3 attempts"),
    (BROKEN, RowAttempts(2, 0), SILENT, RowAction.UNREACHABLE, RowAttempts(3, 0), 0.0, "unreachable"),
    # a 503 answer means it is reachable but busy: pause
    (DOWN, RowAttempts(2, 0), SILENT, RowAction.PAUSE, RowAttempts(3, 0), 0.0, "HTTP 503"),
    # the downstream answered another request, then refused connections (an outage began): pause
    (REFUSED, RowAttempts(2, 0), ANSWERED, RowAction.PAUSE, RowAttempts(3, 0), 0.0, "cannot connect"),
]


@pytest.mark.parametrize("case", TABLE)
def test_decision_table(case: Case) -> None:
    delivery, before, view, action, after, delay_s, reason = case
    decision = decide(delivery, before, view, POLICY, random.Random(1))
    assert decision.action is action
    assert decision.attempts == after
    assert decision.delay_s == pytest.approx(delay_s)
    assert reason in decision.reason
    if action in (RowAction.FAILED, RowAction.PAUSE, RowAction.UNREACHABLE):
        assert decision.reason


@pytest.mark.parametrize(
    ("remaining_s", "action"),
    [
        (None, RowAction.RETRY),  # no deadline
        (60.0, RowAction.RETRY),  # 60 - 2 s wait leaves more than half the 10 s margin
        (7.01, RowAction.RETRY),
        (6.99, RowAction.ABANDON),  # the wait would end inside the last 5 s
        (1.0, RowAction.ABANDON),
    ],
)
def test_a_retry_is_made_only_if_the_wait_ends_before_half_the_deadline_margin(
    remaining_s: float | None, action: RowAction
) -> None:
    view = InvocationView(any_answer=True, remaining_s=remaining_s)
    decision = decide(BUSY, RowAttempts(), view, POLICY, random.Random(1))
    assert decision.action is action
    assert decision.attempts == RowAttempts(0, 1)  # the throttle counts either way
    if action is RowAction.ABANDON:
        assert "no time left" in decision.reason
        assert decision.delay_s == 0.0


def test_final_decisions_are_not_abandoned_near_the_deadline() -> None:
    near = InvocationView(any_answer=True, remaining_s=0.5)
    assert decide(OK, RowAttempts(), near, POLICY, random.Random(1)).action is RowAction.APPLIED
    assert decide(BAD, RowAttempts(), near, POLICY, random.Random(1)).action is RowAction.FAILED
    assert decide(BUSY, RowAttempts(0, 3), near, POLICY, random.Random(1)).action is RowAction.PAUSE


def test_backoff_is_jittered_within_the_exponential_ceiling() -> None:
    jittered = DeliveryPolicy(
        retry=RetryPolicy(max_attempts=9, base_delay_s=0.1, max_delay_s=5.0),
        throttle=POLICY.throttle,
        deadline_margin_s=10.0,
    )
    rng = random.Random(7)
    no_hint = Delivery(DeliveryOutcome.RETRYABLE_ERROR, 500, "HTTP 500")
    delays = [decide(no_hint, RowAttempts(n, 0), ANSWERED, jittered, rng).delay_s for n in range(5)]
    ceilings = [0.1 * 2**n for n in range(5)]
    assert all(0.0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule


@pytest.mark.parametrize(
    ("remaining_s", "timeout_s"),
    [(None, None), (100.0, 30.0), (20.0, 15.0), (5.0, 0.05), (-3.0, 0.05)],
)
def test_an_attempt_ends_before_the_last_half_of_the_margin(
    remaining_s: float | None, timeout_s: float | None
) -> None:
    assert attempt_timeout_s(remaining_s, read_timeout_s=30.0, margin_s=10.0) == timeout_s
