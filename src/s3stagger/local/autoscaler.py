"""The local autoscaler runner: the AWS autoscaler's code on a thread, every ``interval_s``.

On AWS an EventBridge Scheduler schedule runs ``handlers/autoscale.py`` every minute, reading SQS
and the processor's EMF metrics in CloudWatch. Locally :class:`LocalAutoscalerRunner` runs the same
:class:`~s3stagger.autoscaler.Autoscaler` (same law, same SQS backlog reader, same SSM flight
store, against the emulator) with one stand-in: :class:`SimulatorSignals` reads the downstream
simulator's ``/stats`` (moto keeps no metrics from EMF lines), as differences between two looks.
Every tick is kept (:attr:`LocalAutoscalerRunner.history`) for the live view and the plots.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from s3stagger.adapters.autoscaler_inputs import SqsBacklog
from s3stagger.adapters.flight_parameter import SsmFlightStore
from s3stagger.autoscaler import Autoscaler, Tick, initial_state
from s3stagger.definitions.autoscaler import AutoscalerDefinition
from s3stagger.definitions.model import DEFAULT_NAME_PREFIX, Definitions
from s3stagger.domain.autoscale import AutoscalePolicy, AutoscaleState, DownstreamSignals
from s3stagger.local.alarm_evaluator import MetricKey, metric_key
from s3stagger.local.downstream import DownstreamSimulator, SimulatorStats
from s3stagger.local.pipeline import LocalPipeline

LOGGER = logging.getLogger(__name__)


class SimulatorSignals:
    """The downstream's signals since the previous look, from the simulator's stats."""

    def __init__(
        self,
        stats: Callable[[], SimulatorStats],
        clock: Callable[[], float] = time.monotonic,
        calls: Callable[[], int] | None = None,
    ) -> None:
        """``calls``: the processor calls running now (the local Lambda runtime's count)."""
        self._stats = stats
        self._clock = clock
        self._calls = calls
        self._last = stats()
        self._last_at = clock()

    def read_signals(self) -> DownstreamSignals:
        now, stats = self._clock(), self._stats()
        last, interval = self._last, max(1e-6, now - self._last_at)
        self._last, self._last_at = stats, now
        requests = stats.requests - last.requests
        answered = stats.answered - last.answered
        # the mean latency of the interval's answers (the processor's EMF average over a period on
        # AWS); a median over the simulator's recent window lagged: after a queueing spell it read
        # 1.5 s for 40 s at 4 requests a second, and the law held R at 1 row all that time
        latency = None
        if requests > 0 and answered > 0:
            latency = round((stats.response_time_total_ms - last.response_time_total_ms) / answered, 3)
        return DownstreamSignals(
            requests=max(0, requests),
            throttled_429=max(0, stats.throttled_429 - last.throttled_429),
            errors_5xx=max(0, stats.errors_5xx - last.errors_5xx),
            latency_ms=latency,
            interval_s=interval,
            calls_in_flight=None if self._calls is None else self._calls(),
        )


def flight_parameter_name(budget_parameter: str, suffix: str) -> str:
    """``/<prefix>/<suffix>`` beside the budget parameter ``/<prefix>/concurrency-budget``."""
    return f"{budget_parameter.rsplit('/', 1)[0]}/{suffix}"


@dataclass(frozen=True)
class TimedTick:
    at_s: float
    """Seconds since the runner started."""
    tick: Tick
    capacity: int
    """The downstream's capacity at that moment (the simulator's; for plots, never for the law)."""


class LocalAutoscalerRunner:
    """A thread running :meth:`Autoscaler.tick` every ``interval_s`` until stopped."""

    def __init__(
        self,
        stack: LocalPipeline,
        stats: Callable[[], SimulatorStats],
        policy: AutoscalePolicy,
        initial: AutoscaleState,
        *,
        flight_parameter: str,
        interval_s: float = 1.0,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s={interval_s} must be > 0")
        self.interval_s = interval_s
        self._stats = stats
        self.autoscaler = Autoscaler(
            policy,
            SqsBacklog(stack.client("sqs"), stack.names.queue_urls),
            SimulatorSignals(stats, calls=lambda: stack.processor_counters().in_flight),
            SsmFlightStore(stack.client("ssm"), stack.names.budget_parameter, flight_parameter),
            initial,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._history: list[TimedTick] = []
        self._started = time.monotonic()
        self.runs = 0
        """Ticks attempted (a Lambda's Invocations on AWS); ``failures`` of them raised (Errors)."""
        self.failures = 0

    @property
    def history(self) -> list[TimedTick]:
        with self._lock:
            return list(self._history)

    @property
    def last(self) -> TimedTick | None:
        with self._lock:
            return self._history[-1] if self._history else None

    def tick(self) -> Tick | None:
        self.runs += 1
        try:
            tick = self.autoscaler.tick()
        except Exception:
            LOGGER.exception("local autoscaler: tick failed")
            self.failures += 1
            return None
        timed = TimedTick(time.monotonic() - self._started, tick, self._stats().capacity)
        with self._lock:
            self._history.append(timed)
        LOGGER.debug("autoscaler decision %s", tick.as_log())
        return tick

    def start(self) -> LocalAutoscalerRunner:
        if self._thread is not None:
            raise RuntimeError("the autoscaler is already running")
        self._started = time.monotonic()
        self.tick()  # the budget and flight parameters exist before the first object is processed
        self._thread = threading.Thread(target=self._run, name="s3stagger-autoscaler", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.tick()


class AutoscalerRunMetrics:
    """The local runner's runs as the autoscaler Lambda's ``AWS/Lambda`` metrics on AWS, for the
    local alarm evaluator (``autoscaler-errors``): Invocations and Errors per look, published only
    when it ran, as CloudWatch does."""

    gauge = False

    def __init__(self, runner: LocalAutoscalerRunner, function_name: str) -> None:
        self._runner = runner
        self._dimensions = {"FunctionName": function_name}
        self._last = (0, 0)

    def sample(self, now: float) -> list[tuple[MetricKey, float]]:
        runs, failures = self._runner.runs, self._runner.failures
        last_runs, last_failures = self._last
        self._last = (runs, failures)
        if runs == last_runs:
            return []
        return [
            (metric_key("AWS/Lambda", "Invocations", self._dimensions), float(runs - last_runs)),
            (metric_key("AWS/Lambda", "Errors", self._dimensions), float(failures - last_failures)),
        ]


def autoscaler_function_name(name_prefix: str) -> str:
    """``<name_prefix>-autoscaler``: what the Lambda is called on AWS (and its alarm's dimension)."""
    return f"{name_prefix}-{AutoscalerDefinition.load().function_name_suffix}"


def autoscaled_processor_environment(
    interval_s: float, name_prefix: str = DEFAULT_NAME_PREFIX
) -> dict[str, str]:
    """The processor reads the flight parameter, keeping it for half an autoscaler interval.

    ``S3STAGGER_MAX_CONCURRENCY`` becomes the law's ``max_rows_per_object``: an invocation takes at
    most twice that many rows ahead, so a fixed-budget sizing (C // budget, e.g. 2) would cap every
    object at 4 rows in flight whatever share the autoscaler gives it (measured: rows in service
    stayed far below R). The flight parameter, written before the first object, sets the share.
    """
    definition = AutoscalerDefinition.load()
    definitions = Definitions.load()
    budget_parameter = f"/{name_prefix}/{definitions.budget.parameter_name_suffix}"
    return {
        "S3STAGGER_FLIGHT_PARAMETER": flight_parameter_name(
            budget_parameter, definition.flight_parameter_suffix
        ),
        "S3STAGGER_FLIGHT_CACHE_S": str(interval_s / 2),
        "S3STAGGER_MAX_CONCURRENCY": str(definition.policy(definitions.budget).max_rows_per_object),
    }


def start_local_autoscaler(
    stack: LocalPipeline,
    simulator: DownstreamSimulator,
    interval_s: float,
    initial: tuple[int, int] | None = None,
) -> LocalAutoscalerRunner:
    """Run the autoscaler on ``stack`` every ``interval_s`` (policy from ``autoscaler.json``).

    A lowered budget reaches the dispatcher at its next execution, at most the dispatcher's
    ``time_budget_s`` later: the law keeps sharing rows as if the old budget ran that long.
    """
    definitions = stack.settings.load_definitions()
    policy = AutoscalerDefinition.load().policy(definitions.budget)
    settle_ticks = math.ceil(definitions.dispatcher.time_budget_s / interval_s) + 1
    policy = dataclasses.replace(policy, budget_settle_ticks=settle_ticks)
    state = (
        initial_state(policy)
        if initial is None
        else AutoscaleState.initial(policy, budget=initial[0], rows_target=initial[1])
    )
    runner = LocalAutoscalerRunner(
        stack,
        simulator.stats,
        policy,
        state,
        flight_parameter=stack.names.flight_parameter
        or flight_parameter_name(
            stack.names.budget_parameter, AutoscalerDefinition.load().flight_parameter_suffix
        ),
        interval_s=interval_s,
    )
    evaluator = stack.alerting.evaluator if stack.alerting is not None else None
    if evaluator is not None:  # local alerting runs: the autoscaler-errors alarm watches it
        evaluator.add_source(AutoscalerRunMetrics(runner, autoscaler_function_name(stack.names.name_prefix)))
    return runner.start()


def autoscaler_progress(runner: LocalAutoscalerRunner | None) -> dict[str, int | None]:
    """The live view's figures: the last budget and rows-in-flight target (None without one)."""
    last = runner.last if runner is not None else None
    if last is None:
        return {"autoscaler_budget": None, "rows_in_flight_target": None}
    decision = last.tick.decision
    return {
        "autoscaler_budget": decision.plan.objects_in_flight,
        "rows_in_flight_target": decision.rows_in_flight_target,
    }
