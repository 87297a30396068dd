"""``autoscaler.json`` as typed settings: the autoscaler function, its schedule, the flight
parameter, the operator's floor and cap, and the control law's settings.

Read by the autoscaler handler, the local runner and the Terraform module (which passes the same
file to the function and takes its floor and cap as variables, defaulting to these values).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from s3stagger.definitions import read_json
from s3stagger.definitions.model import BudgetDefinition, DefinitionError
from s3stagger.domain.autoscale import AutoscalePolicy

FILE = "autoscaler.json"
LAW_FIELDS = frozenset(
    field.name
    for field in dataclasses.fields(AutoscalePolicy)
    if field.name not in {"budget_floor", "budget_cap", "rows_floor", "rows_cap"}
)


@dataclass(frozen=True)
class AutoscalerDefinition:
    function_name_suffix: str
    handler: str
    schedule_name_suffix: str
    schedule_expression: str
    flight_parameter_suffix: str
    flight_cache_s: float
    """How long a processor keeps the flight parameter it read (seconds)."""
    budget_floor: int | None
    budget_cap: int | None
    rows_floor: int
    rows_cap: int
    initial_rows_in_flight: int
    law: dict[str, Any]

    @classmethod
    def load(cls) -> AutoscalerDefinition:
        return cls.from_data(read_json(FILE))

    @classmethod
    def from_data(cls, raw: Any) -> AutoscalerDefinition:
        """Parse the structure of ``autoscaler.json`` (the definitions model reads it through here)."""
        if not isinstance(raw, dict):
            raise DefinitionError(f"{FILE}: the top level must be a JSON object")
        data = dict(raw)
        data.pop("_comment", None)
        for ignored in ("runtime", "architecture", "timeout_s", "memory_mb"):  # Terraform's
            data.pop(ignored, None)
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        missing = sorted(names - set(data))
        if unknown or missing:
            raise DefinitionError(f"{FILE}: unknown fields {unknown}, missing fields {missing}")
        law = data["law"]
        if not isinstance(law, dict) or not set(law) <= LAW_FIELDS:
            raise DefinitionError(f"{FILE}: law may only set {sorted(LAW_FIELDS)}, got {law!r}")
        return cls(**data)

    def policy(
        self,
        budget: BudgetDefinition,
        *,
        budget_floor: int | None = None,
        budget_cap: int | None = None,
        rows_floor: int | None = None,
        rows_cap: int | None = None,
    ) -> AutoscalePolicy:
        """The law's policy: the operator's floor and cap (arguments, else this file, else the
        budget's clamp) and the ``law`` settings. A floor below the budget's minimum is refused: the
        dispatcher would run more slots than the law shares R among."""
        floor = _first(budget_floor, self.budget_floor, budget.minimum)
        if floor < budget.minimum:
            raise DefinitionError(
                f"{FILE}: budget_floor {floor} is below the budget's minimum {budget.minimum} "
                "(budget.json): the dispatcher would run more slots than the autoscaler shares R among"
            )
        try:
            return AutoscalePolicy(
                budget_floor=floor,
                budget_cap=_first(budget_cap, self.budget_cap, budget.maximum),
                rows_floor=_first(rows_floor, self.rows_floor),
                rows_cap=_first(rows_cap, self.rows_cap),
                **self.law,
            )
        except (TypeError, ValueError) as error:
            raise DefinitionError(f"{FILE}: {error}") from None


def _first(*values: int | None) -> int:
    for value in values:
        if value is not None:
            return value
    raise ValueError("no value")  # pragma: no cover - the last value is always set
