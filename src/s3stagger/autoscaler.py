"""One run of the autoscaler: read the backlog and the downstream's signals, decide, write.

The same :class:`Autoscaler` runs on AWS (``handlers/autoscale.py``, a scheduled Lambda reading
SQS and CloudWatch) and locally (``local/autoscaler.py``, a thread reading the emulator's queues
and the downstream simulator's ``/stats``); only the adapters passed in differ.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from s3stagger.definitions.autoscaler import AutoscalerDefinition
from s3stagger.definitions.model import Definitions
from s3stagger.domain.autoscale import (
    AutoscalePolicy,
    AutoscaleState,
    Backlog,
    Decision,
    DownstreamSignals,
    decide,
)
from s3stagger.errors import S3StaggerError


class BacklogReader(Protocol):
    def read_backlog(self) -> Backlog: ...


class SignalReader(Protocol):
    def read_signals(self) -> DownstreamSignals:
        """What the downstream showed since the previous call (or over the last interval)."""
        ...


class FlightStore(Protocol):
    def load_state(self) -> AutoscaleState | None: ...

    def save(self, decision: Decision) -> None: ...


@dataclass(frozen=True)
class Tick:
    """One run: its inputs and its decision (what is logged and plotted)."""

    backlog: Backlog
    signals: DownstreamSignals
    decision: Decision

    def as_log(self) -> dict[str, object]:
        signals = self.signals
        return {
            **self.decision.as_dict(),
            "backlog_objects": self.backlog.objects,
            "backlog_visible": dict(self.backlog.visible),
            "backlog_in_flight": dict(self.backlog.in_flight),
            "oldest_age_s": self.backlog.oldest_age_s,
            "requests": signals.requests,
            "throttled_429": signals.throttled_429,
            "timeouts": signals.timeouts,
            "errors_5xx": signals.errors_5xx,
            "lambda_throttles": signals.lambda_throttles,
            "latency_ms": signals.latency_ms,
            "calls_in_flight": signals.calls_in_flight,
        }


class Autoscaler:
    """Runs the control law once per :meth:`tick` with the state the previous tick saved."""

    def __init__(
        self,
        policy: AutoscalePolicy,
        backlog: BacklogReader,
        signals: SignalReader,
        store: FlightStore,
        initial: AutoscaleState,
    ) -> None:
        self.policy = policy
        self._backlog = backlog
        self._signals = signals
        self._store = store
        self._initial = initial

    def tick(self) -> Tick:
        state = self._store.load_state() or self._initial
        signals = self._signals.read_signals()
        backlog = self._backlog.read_backlog()
        decision = decide(state, backlog, signals, self.policy)
        self._store.save(decision)
        return Tick(backlog, signals, decision)


class AutoscalerSettingsError(S3StaggerError, ValueError):
    """An autoscaler setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class AutoscalerSettings:
    """The autoscaler function's environment (set by the Terraform module)."""

    queue_urls: Mapping[str, str]
    """``S3STAGGER_QUEUE_URLS``: JSON object, priority -> queue URL (highest priority first)."""
    budget_parameter: str
    flight_parameter: str
    processor_function_name: str
    metrics_namespace: str
    interval_s: float = 60.0
    budget_floor: int | None = None
    budget_cap: int | None = None
    rows_floor: int | None = None
    rows_cap: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AutoscalerSettings:
        def required(name: str) -> str:
            value = env.get(name)
            if not value:
                raise AutoscalerSettingsError(f"{name} is required")
            return value

        def optional_int(name: str) -> int | None:
            value = env.get(name)
            if value in (None, ""):
                return None
            try:
                return int(value)
            except ValueError:
                raise AutoscalerSettingsError(f"{name}={value!r} is not an integer") from None

        queue_urls_text = required("S3STAGGER_QUEUE_URLS")
        try:
            queue_urls = json.loads(queue_urls_text)
        except ValueError:
            raise AutoscalerSettingsError("S3STAGGER_QUEUE_URLS is not JSON") from None
        if not isinstance(queue_urls, dict) or not queue_urls:
            raise AutoscalerSettingsError("S3STAGGER_QUEUE_URLS must be a JSON object priority -> URL")
        try:
            interval_s = float(env.get("S3STAGGER_AUTOSCALE_INTERVAL_S") or 60)
        except ValueError:
            raise AutoscalerSettingsError("S3STAGGER_AUTOSCALE_INTERVAL_S is not a number") from None
        return cls(
            queue_urls={str(key): str(value) for key, value in queue_urls.items()},
            budget_parameter=required("S3STAGGER_BUDGET_PARAMETER"),
            flight_parameter=required("S3STAGGER_FLIGHT_PARAMETER"),
            processor_function_name=required("S3STAGGER_PROCESSOR_FUNCTION_NAME"),
            metrics_namespace=required("POWERTOOLS_METRICS_NAMESPACE"),
            interval_s=interval_s,
            budget_floor=optional_int("S3STAGGER_BUDGET_FLOOR"),
            budget_cap=optional_int("S3STAGGER_BUDGET_CAP"),
            rows_floor=optional_int("S3STAGGER_ROWS_FLOOR"),
            rows_cap=optional_int("S3STAGGER_ROWS_CAP"),
        )

    def policy(self) -> AutoscalePolicy:
        """The law's policy: ``autoscaler.json`` with this deployment's floor and cap."""
        return AutoscalerDefinition.load().policy(
            Definitions.load().budget,
            budget_floor=self.budget_floor,
            budget_cap=self.budget_cap,
            rows_floor=self.rows_floor,
            rows_cap=self.rows_cap,
        )


def initial_state(policy: AutoscalePolicy) -> AutoscaleState:
    """Where the law starts without a saved state: the budget floor, ``initial_rows_in_flight``."""
    return AutoscaleState.initial(
        policy, budget=policy.budget_floor, rows_target=AutoscalerDefinition.load().initial_rows_in_flight
    )
