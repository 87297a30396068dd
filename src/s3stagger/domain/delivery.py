"""What one delivery attempt of a row came to, and what the processor does next: a pure decision.

:func:`decide` maps an attempt's :class:`Delivery` (and how many attempts the row has had, and what
the invocation knows so far) to one :class:`RowDecision`:

========================  ===========================================================================
``APPLIED``               2xx: the row is done.
``FAILED``                a permanent refusal (other 4xx), or 5xx/408 answers (503 aside) past
                          ``max_attempts``: the row goes to the failed-rows sink with ``reason``.
``RETRY``                 wait ``delay_s`` (full-jitter backoff, never shorter than a Retry-After),
                          then try again.
``PAUSE``                 stop taking rows; the row stays unfinished, so the invocation answers
                          PARTIAL with its cursor at (or before) this row: a row throttled
                          ``max_throttled_attempts`` times (the downstream is saturated; a 429 never
                          sends a row to the sink), or out of attempts on timeouts, refused
                          connections or 503s after the downstream had answered (away or busy).
``UNREACHABLE``           no HTTP answer to any request of the invocation and this row exhausted its
                          attempts: abandon the invocation (the caller's retry handles it), record
                          nothing as failed.
``ABANDON``               a retry is due but the deadline leaves no time for it: the row stays
                          unfinished and the cursor points at it.
``STOP``                  a permanent refusal with the status that refuses most of the object's
                          recent rows (the breaker, :mod:`s3stagger.domain.breaker`): a systemic
                          cause (credentials, a wrong URL), not this row. Stop the object: the
                          invocation fails naming the status, no row goes to the sink for it, and
                          the unsent rows wait for a redrive once the cause is fixed.
========================  ===========================================================================

Policy lives here only: the processor carries the decision out (limiter feedback, counters, the
sink, sleeping). A new rule is one more line in :func:`decide` or :func:`_give_up`, with the fact it
needs added to :class:`InvocationView` — as the breaker is (``refusing_status`` and ``STOP``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from enum import StrEnum
from http import HTTPStatus

from s3stagger.domain.retry import RetryPolicy, is_retryable_status


class DeliveryOutcome(StrEnum):
    """How one attempt ended, as the downstream client classifies it."""

    APPLIED = "applied"
    """2xx: the row is applied (or was already, for a replayed key)."""
    THROTTLED = "throttled"
    """429: over the downstream's capacity; retry later, lower the concurrency."""
    TIMED_OUT = "timed_out"
    """No answer in time: retry; counts as overload."""
    UNREACHABLE = "unreachable"
    """Could not connect: retry."""
    RETRYABLE_ERROR = "retryable_error"
    """5xx or 408, or a broken connection: retry."""
    REJECTED = "rejected"
    """Any other 4xx: permanent; the row goes to the failed-rows sink."""


@dataclass(frozen=True)
class Delivery:
    """The outcome of one attempt."""

    outcome: DeliveryOutcome
    status: int | None
    """HTTP status, or ``None`` when no answer came (connection error, timeout)."""
    detail: str
    retry_after_s: float | None = None
    latency_s: float = 0.0


class RowAction(StrEnum):
    APPLIED = "applied"
    FAILED = "failed"
    RETRY = "retry"
    PAUSE = "pause"
    UNREACHABLE = "unreachable"
    ABANDON = "abandon"
    STOP = "stop"


@dataclass(frozen=True)
class RowAttempts:
    """What one row has been through so far; the two budgets are counted apart."""

    failures: int = 0
    """Retryable failures: 5xx, 408, timeouts, connection errors."""
    throttles: int = 0
    """429 answers."""


@dataclass(frozen=True)
class InvocationView:
    """What the invocation knows when a row's attempt ends."""

    any_answer: bool
    """Some request of this invocation (this attempt included) got an HTTP answer."""
    remaining_s: float | None
    """Seconds left in the invocation, or ``None`` when there is no deadline."""
    refusing_status: int | None = None
    """The permanent status that would refuse most of the object's recent rows if this attempt's
    refusal counted too (the breaker's window), or ``None``."""


@dataclass(frozen=True)
class DeliveryPolicy:
    """The retry budgets and the deadline margin of the processor."""

    retry: RetryPolicy
    """For retryable failures."""
    throttle: RetryPolicy
    """For 429s: its ``max_attempts`` is the throttle budget of a row."""
    deadline_margin_s: float


@dataclass(frozen=True)
class RowDecision:
    action: RowAction
    attempts: RowAttempts
    """The row's attempts counted after this one."""
    reason: str = ""
    """Why (``FAILED``, ``PAUSE``, ``UNREACHABLE``, ``ABANDON``); the sink records it for ``FAILED``."""
    delay_s: float = 0.0
    """How long to wait before the next attempt (``RETRY``)."""


def outcome_of_status(status: int, retryable: frozenset[int] = frozenset()) -> DeliveryOutcome:
    """How an HTTP answer classifies; ``retryable`` adds statuses retried like a 5xx (409, 423...)."""
    if 200 <= status <= 299:
        return DeliveryOutcome.APPLIED
    if status == 429:
        return DeliveryOutcome.THROTTLED
    if is_retryable_status(status) or status in retryable:
        return DeliveryOutcome.RETRYABLE_ERROR
    return DeliveryOutcome.REJECTED


def decide(
    delivery: Delivery,
    attempts: RowAttempts,
    view: InvocationView,
    policy: DeliveryPolicy,
    rng: random.Random,
) -> RowDecision:
    """What to do with a row after the attempt that ended in ``delivery``."""
    outcome = delivery.outcome
    if outcome is DeliveryOutcome.APPLIED:
        return RowDecision(RowAction.APPLIED, attempts)
    if outcome is DeliveryOutcome.REJECTED:
        if delivery.status is not None and delivery.status == view.refusing_status:
            reason = (
                f"downstream refuses most rows of the object with HTTP {delivery.status}: {delivery.detail}"
            )
            return RowDecision(RowAction.STOP, attempts, reason)
        return RowDecision(RowAction.FAILED, attempts, f"downstream rejected the row: {delivery.detail}")
    if outcome is DeliveryOutcome.THROTTLED:
        decision = _after_throttle(delivery, attempts, policy.throttle, rng)
    else:
        decision = _after_failure(delivery, attempts, view, policy.retry, rng)
    return _within_deadline(decision, view.remaining_s, policy.deadline_margin_s)


def _after_throttle(
    delivery: Delivery, attempts: RowAttempts, policy: RetryPolicy, rng: random.Random
) -> RowDecision:
    # A 429 says "not now", not "this row is bad": it never sends a row to the sink.
    counted = replace(attempts, throttles=attempts.throttles + 1)
    if not policy.should_retry(counted.throttles):
        reason = f"downstream saturated: row throttled {counted.throttles} times ({delivery.detail})"
        return RowDecision(RowAction.PAUSE, counted, reason)
    delay = policy.delay_s(counted.throttles, rng, delivery.retry_after_s)
    return RowDecision(RowAction.RETRY, counted, delay_s=delay)


def _after_failure(
    delivery: Delivery, attempts: RowAttempts, view: InvocationView, policy: RetryPolicy, rng: random.Random
) -> RowDecision:
    counted = replace(attempts, failures=attempts.failures + 1)
    if policy.should_retry(counted.failures):
        delay = policy.delay_s(counted.failures, rng, delivery.retry_after_s)
        return RowDecision(RowAction.RETRY, counted, delay_s=delay)
    return _give_up(delivery, counted, view)


def _give_up(delivery: Delivery, attempts: RowAttempts, view: InvocationView) -> RowDecision:
    """A row out of retryable attempts: unreachable downstream, a paused object, or a failed row.

    A downstream that is away (no answer: refused, timed out) or busy (503) says nothing about the
    row, so the row is never recorded as failed for it: the object pauses (PARTIAL at this row) and
    is retried later. Only when nothing of the invocation got an answer is it abandoned as a whole.
    """
    if delivery.status is None and not view.any_answer:
        reason = (
            f"downstream unreachable: no answer to any request after {attempts.failures} attempts "
            f"({delivery.detail})"
        )
        return RowDecision(RowAction.UNREACHABLE, attempts, reason)
    if delivery.status is None or delivery.status == HTTPStatus.SERVICE_UNAVAILABLE:
        reason = f"downstream away or busy after {attempts.failures} attempts: {delivery.detail}"
        return RowDecision(RowAction.PAUSE, attempts, reason)
    return RowDecision(
        RowAction.FAILED, attempts, f"gave up after {attempts.failures} attempts: {delivery.detail}"
    )


def _within_deadline(decision: RowDecision, remaining_s: float | None, margin_s: float) -> RowDecision:
    """A retry that would end inside the last half of the deadline margin is not made."""
    if decision.action is not RowAction.RETRY or remaining_s is None:
        return decision
    if remaining_s - decision.delay_s < margin_s / 2:
        reason = f"no time left to wait {decision.delay_s:.3f} s and retry"
        return replace(decision, action=RowAction.ABANDON, reason=reason, delay_s=0.0)
    return decision


def attempt_timeout_s(remaining_s: float | None, read_timeout_s: float, margin_s: float) -> float | None:
    """The timeout of one attempt: the read timeout, shortened so the attempt ends before the margin.

    ``None`` (no deadline) keeps the client's own timeouts; never below 50 ms.
    """
    if remaining_s is None:
        return None
    return max(0.05, min(read_timeout_s, remaining_s - margin_s / 2))
