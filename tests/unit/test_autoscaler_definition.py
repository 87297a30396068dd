"""autoscaler.json as typed settings: the shipped file loads, the floor and cap resolve in order."""

from __future__ import annotations

import dataclasses

import pytest

from s3stagger.autoscaler import initial_state
from s3stagger.definitions.autoscaler import AutoscalerDefinition
from s3stagger.definitions.model import DefinitionError, Definitions


def test_the_shipped_file_gives_a_valid_policy_bounded_by_the_budget_clamp() -> None:
    definition = AutoscalerDefinition.load()
    budget = Definitions.load().budget
    policy = definition.policy(budget)
    assert (policy.budget_floor, policy.budget_cap) == (budget.minimum, budget.maximum)
    assert (policy.rows_floor, policy.rows_cap) == (definition.rows_floor, definition.rows_cap)
    state = initial_state(policy)
    assert (state.budget, state.rows_target) == (budget.minimum, definition.initial_rows_in_flight)


def test_the_operator_floor_and_cap_win() -> None:
    policy = AutoscalerDefinition.load().policy(
        Definitions.load().budget, budget_floor=3, budget_cap=3, rows_cap=30
    )
    assert (policy.budget_floor, policy.budget_cap, policy.rows_cap) == (3, 3, 30)


def test_a_floor_above_the_cap_is_one_clear_error() -> None:
    with pytest.raises(DefinitionError, match=r"autoscaler\.json: need 1 <= budget_floor"):
        AutoscalerDefinition.load().policy(Definitions.load().budget, budget_floor=9, budget_cap=3)


def test_a_floor_below_the_budgets_minimum_is_one_clear_error() -> None:
    budget = dataclasses.replace(Definitions.load().budget, minimum=2)
    with pytest.raises(DefinitionError, match=r"budget_floor 1 is below the budget's minimum 2"):
        AutoscalerDefinition.load().policy(budget, budget_floor=1)


def test_an_unknown_law_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import s3stagger.definitions.autoscaler as module

    original = module.read_json

    def with_typo(name: str) -> object:
        data = dict(original(name))
        data["law"] = {**data["law"], "bakcoff_ratio": 0.5}
        return data

    monkeypatch.setattr(module, "read_json", with_typo)
    with pytest.raises(DefinitionError, match="law may only set"):
        AutoscalerDefinition.load()
    monkeypatch.setattr(module, "read_json", lambda name: {**original(name), "extra": 1})
    with pytest.raises(DefinitionError, match="unknown fields \\['extra'\\]"):
        AutoscalerDefinition.load()
