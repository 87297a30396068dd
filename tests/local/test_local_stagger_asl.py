"""The dispatcher ASL computes the same stagger delay as StaggerPolicy (run in the emulator).

The states under test are taken from the shipped template, rendered with each configuration, and
wired into a small state machine: Setup → (per case) HighBatch/NormalBatch → StaggerMode →
[StaggerOffsets] → (per index) a Map whose ItemSelector computes the delay with the
shipped ProcessBatch ItemSelector's ``delayS`` expression.
"""

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from s3stagger import definitions
from s3stagger.domain.stagger import StaggerPolicy
from s3stagger.local.emulator import Emulator
from s3stagger.local.templates import placeholders, render_template

CONFIGS = [
    {
        "backlog_depth": 20,
        "priorities": {
            "high": {"spacing_s": 0, "max_delay_s": 0},
            "normal": {"spacing_s": 1, "max_delay_s": 4},
        },
    },
    {
        "backlog_depth": 5,
        "priorities": {
            "high": {"spacing_s": 2, "max_delay_s": 7},
            "normal": {"spacing_s": 3, "max_delay_s": 30},
        },
    },
    {
        "backlog_depth": 0,
        "priorities": {
            "high": {"spacing_s": 1, "max_delay_s": 0},
            "normal": {"spacing_s": 5, "max_delay_s": 4},
        },
    },
]
INDICES = list(range(12))


def depths_for(backlog: int) -> list[int]:
    return sorted({0, max(0, backlog - 1), backlog, backlog + 7})


@pytest.fixture(scope="module")
def sfn() -> Iterator[Any]:
    with Emulator() as emulator:
        yield boto3.client("stepfunctions", **emulator.client_settings())


def render(stagger: dict[str, Any]) -> dict[str, Any]:
    template = definitions.read_text("dispatcher.asl.json")
    values: dict[str, object] = dict.fromkeys(placeholders(template), 1)
    values.update(
        {
            name: f"x-{name}"
            for name in placeholders(template)
            if name.endswith(("_url", "_arn", "_name", "source"))
        }
    )
    values["stagger_backlog_depth"] = stagger["backlog_depth"]
    for priority, spacing in stagger["priorities"].items():
        values[f"stagger_{priority}_spacing_s"] = spacing["spacing_s"]
        values[f"stagger_{priority}_max_delay_s"] = spacing["max_delay_s"]
    return json.loads(render_template(template, values))


def grid_machine(asl: dict[str, Any], cases: list[dict[str, Any]]) -> dict[str, Any]:
    top = asl["States"]

    def take(states: dict[str, Any], name: str, rewire: dict[str, str]) -> dict[str, Any]:
        state = json.loads(json.dumps(states[name]))
        for key in ("Next", "Default"):
            if state.get(key) in rewire:
                state[key] = rewire[state[key]]
        for choice in state.get("Choices", []):
            if choice["Next"] in rewire:
                choice["Next"] = rewire[choice["Next"]]
        return state

    delay = top["ProcessBatch"]["ItemSelector"]["delayS.$"]
    per_case = {
        name: take(top, name, {"QueueDepth": "StaggerMode", "ProcessBatch": "Indices"})
        for name in (
            "HighBatch",
            "NormalBatch",
            "StaggerMode",
            "StaggerOffsets",
        )
    }
    per_case["ByPriority"] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.priority", "StringEquals": "high", "Next": "HighBatch"}],
        "Default": "NormalBatch",
    }
    per_case["Indices"] = {
        "Type": "Map",
        "ItemsPath": "$.indices",
        "ItemSelector": {"index.$": "$$.Map.Item.Index", "seconds.$": delay},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "Delay",
            "States": {"Delay": {"Type": "Pass", "End": True}},
        },
        "End": True,
    }
    setup = take(top, "Setup", {"ReadBudget": "Cases"})
    return {
        "StartAt": "Setup",
        "States": {
            "Setup": setup,
            "Cases": {
                "Type": "Map",
                "ItemsPath": "$$.Execution.Input.cases",
                "ItemSelector": {
                    "settings.$": "$.settings",
                    "priority.$": "$$.Map.Item.Value.priority",
                    "depth": {"value.$": "$$.Map.Item.Value.depth"},
                    "indices.$": "$$.Map.Item.Value.indices",
                    "received": {"Messages": []},
                    "batch": {"iteration": 0},
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "ByPriority",
                    "States": per_case,
                },
                "End": True,
            },
        },
    }


@pytest.mark.parametrize("stagger", CONFIGS, ids=["shipped-like", "spaced", "zero-cap"])
def test_asl_delay_equals_stagger_policy(sfn: Any, stagger: dict[str, Any]) -> None:
    policy = StaggerPolicy.from_definition(stagger)
    cases = [
        {"priority": priority, "depth": depth, "indices": INDICES}
        for priority in ("high", "normal")
        for depth in depths_for(stagger["backlog_depth"])
    ]
    machine = grid_machine(render(stagger), cases)
    arn = sfn.create_state_machine(
        name=f"grid-{CONFIGS.index(stagger)}",
        definition=json.dumps(machine),
        roleArn="arn:aws:iam::123456789012:role/x",
    )["stateMachineArn"]
    execution = sfn.start_execution(
        stateMachineArn=arn, input=json.dumps({"slot": "s", "generation": 0, "lease": {}, "cases": cases})
    )["executionArn"]
    deadline = time.monotonic() + 60
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "grid execution did not finish"
        time.sleep(0.1)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    results = json.loads(described["output"])
    asl = {
        (case["priority"], case["depth"], item["index"]): item["seconds"]
        for case, items in zip(cases, results, strict=True)
        for item in items
    }
    python = {
        (case["priority"], case["depth"], index): policy.delay_s(index, case["depth"], case["priority"])
        for case in cases
        for index in INDICES
    }
    assert asl == python
    assert len(set(python.values())) > 1 or stagger["backlog_depth"] == 0  # the grid is not trivial
