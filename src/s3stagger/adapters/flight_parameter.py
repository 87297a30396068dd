"""The flight parameter: what the autoscaler decided, in one SSM String parameter (JSON).

``{"rows_in_flight_per_object": 9, "rows_in_flight_target": 18, "budget": 2, "reason": "probe",
"state": {...}}``. The autoscaler writes it (with the budget parameter, an integer, which the
dispatcher reads); every processor invocation reads ``rows_in_flight_per_object`` as the ceiling
of its adaptive limit (:class:`FlightParameterReader`, cached for a few seconds so a burst of
invocations costs one read); the autoscaler reads ``state`` back at its next run (it keeps no
memory of its own).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from s3stagger.domain.autoscale import AutoscaleState, Decision

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

LOGGER = logging.getLogger(__name__)


def flight_record(decision: Decision) -> dict[str, Any]:
    """The JSON the flight parameter holds for ``decision``."""
    return {
        **decision.as_dict(),
        "state": dataclasses.asdict(decision.state),
    }


def state_of(record: Any) -> AutoscaleState | None:
    """The law's state in a flight record; None when absent or not understood (start afresh)."""
    if not isinstance(record, dict) or not isinstance(record.get("state"), dict):
        return None
    try:
        return AutoscaleState(**record["state"])
    except TypeError:
        return None


class SsmFlightStore:
    """Reads the last decision's state; writes the budget and flight parameters."""

    def __init__(self, ssm: SSMClient, budget_parameter: str, flight_parameter: str) -> None:
        self._ssm = ssm
        self.budget_parameter = budget_parameter
        self.flight_parameter = flight_parameter

    def load_state(self) -> AutoscaleState | None:
        try:
            value = self._ssm.get_parameter(Name=self.flight_parameter)["Parameter"]["Value"]
        except self._ssm.exceptions.ParameterNotFound:
            return None
        try:
            return state_of(json.loads(value))
        except ValueError:
            return None

    def save(self, decision: Decision) -> None:
        self._ssm.put_parameter(
            Name=self.flight_parameter,
            Value=json.dumps(flight_record(decision), sort_keys=True),
            Type="String",
            Overwrite=True,
        )
        self._ssm.put_parameter(
            Name=self.budget_parameter,
            Value=str(decision.plan.objects_in_flight),
            Type="String",
            Overwrite=True,
        )


class FlightParameterReader:
    """The autoscaler's figures for the processor, read at most once per ``ttl_s``; thread-safe.

    :meth:`rows_in_flight_per_object` is the ceiling of the processor's adaptive limit; None when
    the parameter is missing, unreadable or holds no figure: the processor then keeps its
    configured ``S3STAGGER_MAX_CONCURRENCY`` (a pinned, autoscaler-free deployment works as before).
    :meth:`budget` is the concurrency budget the autoscaler last set (None: unknown), which ends a
    dispatcher execution whose budget it outgrew (:class:`s3stagger.domain.deadline.OutgrownBudget`).
    """

    _written_at: float | None
    """When the parameter was last written (SSM's LastModifiedDate, seconds since the epoch)."""

    def __init__(
        self,
        ssm: SSMClient,
        name: str,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ssm = ssm
        self.name = name
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._record: dict[str, Any] = {}
        self._written_at = None

    def rows_in_flight_per_object(self) -> int | None:
        return _count(self._fresh_record().get("rows_in_flight_per_object"))

    def rows_in_flight_target(self) -> int | None:
        """R, the total rows in flight the autoscaler aims at (None: unknown)."""
        return _count(self._fresh_record().get("rows_in_flight_target"))

    def budget(self, written_after: float | None = None) -> int | None:
        """The autoscaler's budget; with ``written_after`` (epoch seconds) only if the parameter was
        written since: an older one was there when the dispatcher read its budget, so a budget
        parameter that differs from it was set by someone else (by hand, while the autoscaler is off)."""
        budget = _count(self._fresh_record().get("budget"))
        if written_after is not None and (self._written_at is None or self._written_at <= written_after):
            return None
        return budget

    def _fresh_record(self) -> dict[str, Any]:
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._ttl_s:
                self._record = self._read()
                self._read_at = now
            return self._record

    def _read(self) -> dict[str, Any]:
        try:
            parameter = self._ssm.get_parameter(Name=self.name)["Parameter"]
            record = json.loads(parameter["Value"])
        except (ClientError, BotoCoreError, ValueError) as error:
            LOGGER.warning(
                "flight parameter %s not read (%s); keeping the configured ceiling", self.name, error
            )
            return {}
        modified = parameter.get("LastModifiedDate")
        self._written_at = modified.timestamp() if modified is not None else None
        return record if isinstance(record, dict) else {}


def _count(value: Any) -> int | None:
    """A figure of the record: an integer >= 1, else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value
