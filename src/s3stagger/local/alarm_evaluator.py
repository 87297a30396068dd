"""The local alarm evaluator: stands in for CloudWatch's alarm evaluation, which moto does not do.

moto stores alarms (``PutMetricAlarm``) but never evaluates them and emits no state-change event.
:class:`LocalAlarmEvaluator` samples metrics from the running local stack every ``tick_s``,
evaluates every alarm of ``alarms.json`` with :mod:`s3stagger.domain.alarm_evaluation` (the
semantics CloudWatch documents), and on a state change

- records the state in moto (``SetAlarmState``), so ``describe_alarms`` and ``s3stagger monitor``
  show it, and
- puts the AWS-shaped "CloudWatch Alarm State Change" event on the default bus, so the alerting
  rule, the alert queue and the notifier run as on AWS.

It also puts the "Step Functions Execution Status Change" event for each dispatcher execution
that ends FAILED, TIMED_OUT or ABORTED (Step Functions would; moto does not).

**Time scale.** Every alarm period is multiplied by ``time_scale`` (local default ``1/20``: a 60 s
period lasts 3 s), so an alarm of "15 periods of 60 s" decides in 45 s locally; thresholds,
statistics, M-of-N and missing-data treatment are unchanged. Metrics are sampled twice per scaled
period; a period shorter than one round of sampling on a busy machine would see gaps (missing
data), hence not less than about 2 s.

**Metric sources** (what local mode can measure; a metric no source gives is *missing* and its
alarm follows its ``treat_missing_data``):

==============================  ===============================================================
AWS/SQS                         ``ApproximateNumberOfMessagesVisible`` (queue attribute, sampled);
                                ``ApproximateAgeOfOldestMessage`` approximated as the time since
                                the queue was last seen with no visible message
AWS/Lambda                      ``Invocations``, ``Errors``, ``Throttles`` (per-tick deltas of the
                                local Lambda runtime's counters, published only when the function
                                was invoked or throttled, as CloudWatch does),
                                ``ConcurrentExecutions`` (in flight)
AWS/States                      ``ExecutionsFailed``, ``ExecutionsTimedOut``, ``ExecutionsAborted``
                                (new terminal executions per tick)
processor EMF namespace         every metric of the processor's EMF lines, when its output goes to a
                                file (``LocalAlertingSettings.emf_log``; the demo's log file)
not measured locally            Lambda ``Duration``, ``ExecutionThrottled``, EventBridge rule
                                metrics
==============================  ===============================================================
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from s3stagger.definitions.alarms import ConcreteAlarm
from s3stagger.domain.alarm_evaluation import (
    AlarmRule,
    AlarmState,
    Comparison,
    MissingData,
    Statistic,
    evaluate,
    period_datapoints,
)
from s3stagger.domain.alarm_events import (
    AlarmStateRecord,
    alarm_state_change_entry,
    execution_status_change_entry,
    reason_data,
)
from s3stagger.domain.emf import parse_emf_line
from s3stagger.local.lambda_runtime import FunctionCounters

LOGGER = logging.getLogger(__name__)
PUT_EVENTS_MAX_ENTRIES = 10
PUBLISHED_NAMESPACES = frozenset({"AWS/Lambda"})

MetricKey = tuple[str, str, tuple[tuple[str, str], ...]]
"""``(namespace, metric name, sorted dimensions)``."""


def metric_key(namespace: str, name: str, dimensions: Mapping[str, str]) -> MetricKey:
    return namespace, name, tuple(sorted(dimensions.items()))


class MetricSource(Protocol):
    gauge: bool
    """True: a level that lasts until the next sample (queue depth), so a sampling gap is filled with
    the last value; False: events counted when they happen (a gap means none happened)."""

    def sample(self, now: float) -> Iterable[tuple[MetricKey, float]]: ...


class SqsQueueMetrics:
    """Queue gauges sampled from the emulator's queue attributes."""

    gauge = True

    def __init__(self, client: Any, queue_urls: Mapping[str, str]) -> None:
        self._client = client
        self._queue_urls = dict(queue_urls)  # queue name -> URL
        self._not_empty_since: dict[str, float] = {}

    def sample(self, now: float) -> Iterable[tuple[MetricKey, float]]:
        for name, url in self._queue_urls.items():
            try:
                attributes = self._client.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]
            except (ClientError, BotoCoreError):
                continue  # a queue that cannot be read gives no datapoint (missing)
            visible = int(attributes["ApproximateNumberOfMessages"])
            since = self._not_empty_since.setdefault(name, now) if visible else None
            if not visible:
                self._not_empty_since.pop(name, None)
            dimensions = {"QueueName": name}
            yield metric_key("AWS/SQS", "ApproximateNumberOfMessagesVisible", dimensions), float(visible)
            age = 0.0 if since is None else now - since
            yield metric_key("AWS/SQS", "ApproximateAgeOfOldestMessage", dimensions), age


class LambdaRuntimeMetrics:
    """Function metrics from the local Lambda runtime's counters (deltas per tick)."""

    gauge = False

    def __init__(self, counters: Callable[[str], FunctionCounters], function_names: Sequence[str]) -> None:
        self._counters = counters
        self._names = list(function_names)
        self._last: dict[str, FunctionCounters] = {}

    def sample(self, now: float) -> Iterable[tuple[MetricKey, float]]:
        for name in self._names:
            current = self._counters(name)
            last = self._last.get(name, FunctionCounters())
            self._last[name] = current
            invocations = current.invocations - last.invocations
            throttles = current.throttles - last.throttles
            dimensions = {"FunctionName": name}
            if throttles:
                yield metric_key("AWS/Lambda", "Throttles", dimensions), float(throttles)
            if invocations or current.in_flight:
                yield metric_key("AWS/Lambda", "Invocations", dimensions), float(invocations)
                yield metric_key("AWS/Lambda", "Errors", dimensions), float(current.errors - last.errors)
                yield metric_key("AWS/Lambda", "ConcurrentExecutions", dimensions), float(current.in_flight)


TERMINAL_FAILURES = {
    "FAILED": "ExecutionsFailed",
    "TIMED_OUT": "ExecutionsTimedOut",
    "ABORTED": "ExecutionsAborted",
}


class DispatcherExecutionMetrics:
    """New failed / timed-out / aborted dispatcher executions; each also becomes a status-change event."""

    gauge = False

    def __init__(
        self, client: Any, state_machine_arn: str, on_terminal: Callable[[Mapping[str, Any]], None]
    ) -> None:
        self._client = client
        self._arn = state_machine_arn
        self._on_terminal = on_terminal
        self._seen: set[str] = set()
        self._primed = False

    def sample(self, now: float) -> Iterable[tuple[MetricKey, float]]:
        dimensions = {"StateMachineArn": self._arn}
        for status, metric in TERMINAL_FAILURES.items():
            try:
                executions = self._client.list_executions(stateMachineArn=self._arn, statusFilter=status)[
                    "executions"
                ]
            except (ClientError, BotoCoreError):
                continue
            new = [e for e in executions if e["executionArn"] not in self._seen]
            self._seen.update(e["executionArn"] for e in new)
            if self._primed:
                for execution in new:
                    self._on_terminal(execution)
            yield metric_key("AWS/States", metric, dimensions), float(len(new) if self._primed else 0)
        self._primed = True


class EmfLogMetrics:
    """The processor's EMF lines, read as they are appended to its log file (what CloudWatch Logs
    would extract); lines written before the evaluator started are skipped."""

    gauge = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = path.stat().st_size if path.exists() else 0
        self._partial = ""

    def sample(self, now: float) -> Iterable[tuple[MetricKey, float]]:
        if not self.path.exists():
            return
        with self.path.open("r", encoding="utf-8", errors="replace") as log:
            log.seek(self._offset)
            text = log.read()
            self._offset = log.tell()
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            for point in parse_emf_line(line):
                yield metric_key(point.namespace, point.name, point.dimensions), point.value


@dataclass
class TrackedAlarm:
    alarm: ConcreteAlarm
    rule: AlarmRule
    arn: str
    state: AlarmStateRecord
    transitions: list[tuple[AlarmState, AlarmState, float]] = field(default_factory=list)


class LocalAlarmEvaluator:
    """Evaluates ``alarms`` every ``tick_s`` on the sources' samples; a thread while started."""

    def __init__(
        self,
        alarms: Sequence[ConcreteAlarm],
        sources: Sequence[MetricSource],
        *,
        cloudwatch: Any,
        events: Any,
        region: str,
        account_id: str,
        description: Callable[[ConcreteAlarm], str],
        time_scale: float,
        tick_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cloudwatch = cloudwatch
        self._events = events
        self._sources = list(sources)
        self._description = description
        self.time_scale = time_scale
        self._clock = clock
        now = clock()
        self.alarms: dict[str, TrackedAlarm] = {}
        for alarm in alarms:
            rule = AlarmRule(
                period_s=alarm.period_s * time_scale,
                evaluation_periods=alarm.evaluation_periods,
                datapoints_to_alarm=alarm.datapoints_to_alarm,
                comparison=Comparison(alarm.comparison),
                threshold=alarm.threshold,
                treat_missing_data=MissingData(alarm.treat_missing_data),
                statistic=Statistic(alarm.statistic) if not alarm.extended_statistic else Statistic.MAXIMUM,
            )
            self.alarms[alarm.name] = TrackedAlarm(
                alarm,
                rule,
                f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{alarm.name}",
                AlarmStateRecord(AlarmState.INSUFFICIENT_DATA, "Unchecked: Initial alarm creation", "", now),
            )
        self.shortest_period_s = min((t.rule.period_s for t in self.alarms.values()), default=1.0)
        self.tick_s = tick_s or max(0.25, self.shortest_period_s / 2)
        horizon = max(
            (t.rule.period_s * (t.rule.range_periods + 1) for t in self.alarms.values()), default=60
        )
        self._horizon_s = horizon
        self._samples: dict[MetricKey, deque[tuple[float, float]]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.events_put = 0

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> LocalAlarmEvaluator:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="local-alarm-evaluator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except Exception:  # the evaluator must outlive a failed call; say so and go on
                LOGGER.exception("local alarm evaluation failed")

    def add_source(self, source: MetricSource) -> None:
        """One more metric source, for a component started after the stack (the local autoscaler)."""
        self._sources.append(source)

    # -- one tick -----------------------------------------------------------------------------
    def tick(self) -> list[tuple[str, AlarmState, AlarmState]]:
        """Sample every source, evaluate every alarm; the transitions made (stops early when asked)."""
        now = self._clock()
        published: list[tuple[MetricKey, float]] = []
        for source in self._sources:
            if self._stop.is_set():
                return []
            for key, value in source.sample(now):
                self.record(key, value, now, gauge=source.gauge)
                if key[0] in PUBLISHED_NAMESPACES:
                    published.append((key, value))
        self._publish_metrics(published, now)
        changes: list[tuple[str, AlarmState, AlarmState]] = []
        entries: list[dict[str, Any]] = []
        with self._lock:
            for tracked in self.alarms.values():
                alarm = tracked.alarm
                key = metric_key(alarm.namespace, alarm.metric_name, alarm.dimensions)
                samples = list(self._samples.get(key, ()))
                datapoints = period_datapoints(samples, tracked.rule, now)
                evaluation = evaluate(tracked.rule, datapoints, tracked.state.value)
                if evaluation.state is tracked.state.value:
                    continue
                data = reason_data(evaluation, alarm.statistic, alarm.period_s, alarm.threshold, now)
                new = AlarmStateRecord(evaluation.state, evaluation.reason, data, now)
                previous, tracked.state = tracked.state, new
                tracked.transitions.append((previous.value, new.value, now))
                changes.append((alarm.name, previous.value, new.value))
                entries.append(self._state_change(tracked, previous, new))
        for tracked_name, _, state in changes:
            if self._stop.is_set():
                break
            self._record_state(self.alarms[tracked_name], state)
        for start in range(0, len(entries), PUT_EVENTS_MAX_ENTRIES):
            self.put_events(entries[start : start + PUT_EVENTS_MAX_ENTRIES])
        return changes

    def record(self, key: MetricKey, value: float, now: float, *, gauge: bool = False) -> None:
        """Keep a sample; for a gauge, first fill a gap since its last sample (a tick that took long
        on a busy machine) with the last value, which held until now — not with missing data."""
        with self._lock:
            series = self._samples[key]
            if gauge and series:
                last_time, last_value = series[-1]
                filled = last_time + self.tick_s
                while filled < now - self.tick_s / 2:
                    series.append((filled, last_value))
                    filled += self.tick_s
            series.append((now, value))
            while series and series[0][0] < now - self._horizon_s:
                series.popleft()

    def _record_state(self, tracked: TrackedAlarm, state: AlarmState) -> None:
        """Keep moto's copy of the alarm in step, so ``describe_alarms`` (and ``monitor``) show it."""
        try:
            self._cloudwatch.set_alarm_state(
                AlarmName=tracked.alarm.name,
                StateValue=state.value,
                StateReason=tracked.state.reason[:1023],
                StateReasonData=tracked.state.reason_data,
            )
        except (ClientError, BotoCoreError):
            LOGGER.warning("could not record state %s of alarm %s in the emulator", state, tracked.alarm.name)

    def _state_change(
        self, tracked: TrackedAlarm, previous: AlarmStateRecord, new: AlarmStateRecord
    ) -> dict[str, Any]:
        alarm = tracked.alarm
        return alarm_state_change_entry(
            alarm_name=alarm.name,
            alarm_arn=tracked.arn,
            description=self._description(alarm),
            namespace=alarm.namespace,
            metric_name=alarm.metric_name,
            dimensions=alarm.dimensions,
            statistic=alarm.statistic,
            period_s=alarm.period_s,
            previous=previous,
            current=new,
        )

    def _publish_metrics(self, samples: Sequence[tuple[MetricKey, float]], now: float) -> None:
        """Put the Lambda figures into the emulator's CloudWatch too, where ``monitor`` reads them
        (AWS publishes them itself; moto has no source for them)."""
        for start in range(0, len(samples), 20):
            data = [
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions],
                    "Timestamp": now,
                    "Value": value,
                }
                for (_, name, dimensions), value in samples[start : start + 20]
            ]
            try:
                self._cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data)
            except (ClientError, BotoCoreError):
                LOGGER.warning("could not put Lambda metrics into the emulator's CloudWatch")
                return

    def put_events(self, entries: Sequence[Mapping[str, Any]]) -> None:
        answer = self._events.put_events(Entries=[dict(entry) for entry in entries])
        if answer.get("FailedEntryCount"):
            LOGGER.warning(
                "the bus refused %s event(s): %s", answer["FailedEntryCount"], answer.get("Entries")
            )
        self.events_put += len(entries) - int(answer.get("FailedEntryCount") or 0)

    def execution_ended(self, execution: Mapping[str, Any], sfn: Any) -> None:
        """Put the status-change event of a dispatcher execution that ended badly."""
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        self.put_events([execution_status_change_entry(described)])

    # -- what others read ---------------------------------------------------------------------
    def states(self) -> dict[str, AlarmState]:
        with self._lock:
            return {name: tracked.state.value for name, tracked in self.alarms.items()}

    def fired(self) -> list[str]:
        """Names of the alarms that went to ALARM at least once, in the order they first did."""
        with self._lock:
            firsts = [
                (next(at for _, to, at in t.transitions if to is AlarmState.ALARM), name)
                for name, t in self.alarms.items()
                if any(to is AlarmState.ALARM for _, to, _ in t.transitions)
            ]
        return [name for _, name in sorted(firsts)]
