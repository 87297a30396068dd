"""The dispatcher ASL computes the same stagger delay as StaggerPolicy (run in the emulator).

The states under test are taken from the shipped template, rendered with each configuration, and
wired into a small state machine: the shipped Setup, then a Map over the grid whose iterations run
the shipped rule of RouteMessage that picks a slot's first message, StaggerSpacing, StaggerMode,
Backlog and StaggerDelay, with the queue depth given (QueueDepth reads it from SQS) and the calls
that would extend visibility, wait and invoke replaced by a Pass that returns the delay.
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
    {
        "backlog_depth": 3,
        "priorities": {
            "urgent": {"spacing_s": 0, "max_delay_s": 0},
            "high": {"spacing_s": 1, "max_delay_s": 2},
            "bulk": {"spacing_s": 2, "max_delay_s": 9},
        },
    },
]
SLOTS = list(range(12))
ROUNDS = [1, 2]
"""The slot's processor call this message starts: 1 = its first message (staggered in a scheduled
execution, generation 0; a continuation never is), 2 = a later one."""


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
    priorities = list(stagger["priorities"].values())
    values["queue_urls"] = ",".join(f"x-queue-{index}" for index in range(len(priorities)))
    values["stagger_backlog_depth"] = stagger["backlog_depth"]
    values["stagger_spacing_s"] = ",".join(str(p["spacing_s"]) for p in priorities)
    values["stagger_max_delay_s"] = ",".join(str(p["max_delay_s"]) for p in priorities)
    return json.loads(render_template(template, values))


def grid_machine(asl: dict[str, Any]) -> dict[str, Any]:
    top = asl["States"]
    slot = top["RunSlots"]["ItemProcessor"]["States"]
    rewire = {
        "ExtendVisibility": "NoDelay",
        "QueueDepth": "Backlog",
        "HoldForStagger": "Delayed",
    }

    def take(states: dict[str, Any], name: str) -> dict[str, Any]:
        state = json.loads(json.dumps(states[name]))
        for key in ("Next", "Default"):
            if state.get(key) in rewire:
                state[key] = rewire[state[key]]
        for choice in state.get("Choices", []):
            if choice["Next"] in rewire:
                choice["Next"] = rewire[choice["Next"]]
        return state

    first_message = take(slot, "RouteMessage")
    first_message["Choices"] = [c for c in first_message["Choices"] if c["Next"] == "StaggerSpacing"]
    assert len(first_message["Choices"]) == 1, "RouteMessage has one rule for a slot's first message"
    tested = ("StaggerSpacing", "StaggerMode", "Backlog", "StaggerDelay")
    per_case = {name: take(slot, name) for name in tested}
    per_case["FirstMessage"] = first_message
    per_case["NoDelay"] = {"Type": "Pass", "Result": 0, "End": True}
    per_case["Delayed"] = {"Type": "Pass", "InputPath": "$.stagger.delayS", "End": True}
    setup = json.loads(json.dumps(top["Setup"]))
    setup["Next"] = "Cases"
    return {
        "StartAt": "Setup",
        "States": {
            "Setup": setup,
            "Cases": {
                "Type": "Map",
                "ItemsPath": "$$.Execution.Input.cases",
                "ItemSelector": {
                    "settings.$": "$.settings",
                    "slotIndex.$": "$$.Map.Item.Value.slot",
                    "depth": {"value.$": "$$.Map.Item.Value.depth"},
                    "work": {
                        "queueIndex.$": "$$.Map.Item.Value.queueIndex",
                        "queueUrl": "x-queue",
                        "calls.$": "$$.Map.Item.Value.calls",
                    },
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "FirstMessage",
                    "States": per_case,
                },
                "End": True,
            },
        },
    }


@pytest.mark.parametrize("stagger", CONFIGS, ids=["shipped-like", "spaced", "zero-cap", "three-priorities"])
def test_asl_delay_equals_stagger_policy(sfn: Any, stagger: dict[str, Any]) -> None:
    policy = StaggerPolicy.from_definition(stagger)
    priorities = list(stagger["priorities"])
    cases = [
        {"queueIndex": index, "depth": depth, "slot": slot, "calls": calls}
        for index in range(len(priorities))
        for depth in depths_for(stagger["backlog_depth"])
        for slot in SLOTS
        for calls in ROUNDS
    ]
    arn = sfn.create_state_machine(
        name=f"grid-{CONFIGS.index(stagger)}",
        definition=json.dumps(grid_machine(render(stagger))),
        roleArn="arn:aws:iam::123456789012:role/x",
    )["stateMachineArn"]
    for generation in (0, 1):  # a scheduled execution, then a continuation (never staggered)
        run = {"slot": "s", "generation": generation, "token": {"ReceiptHandle": "r"}}
        started = sfn.start_execution(
            stateMachineArn=arn, name=f"g{generation}", input=json.dumps({"run": run, "cases": cases})
        )
        deadline = time.monotonic() + 120
        while (described := sfn.describe_execution(executionArn=started["executionArn"]))[
            "status"
        ] == "RUNNING":
            assert time.monotonic() < deadline, "grid execution did not finish"
            time.sleep(0.2)
        assert described["status"] == "SUCCEEDED", described.get("cause")
        asl = [int(seconds) for seconds in json.loads(described["output"])]
        python = [
            policy.delay_s(
                case["slot"],
                case["depth"],
                priorities[case["queueIndex"]],
                first_in_slot=case["calls"] == 1 and generation == 0,
            )
            for case in cases
        ]
        assert asl == python
        # the grid is not trivial
        assert len(set(python)) > 1 or stagger["backlog_depth"] == 0 or generation > 0
