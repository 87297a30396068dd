"""The dispatcher ASL waits as long as StaggerPolicy says (run in the emulator).

The states under test are taken from the shipped template, rendered with each configuration, and
wired into a small state machine: the shipped Setup, then a Map over the grid whose iterations run
the shipped rule of RouteMessage that picks a slot's first message, StaggerSpacing, StaggerMode,
Backlog, StaggerDelay, StaggerOver and StaggerWaited. The queue depth comes from the case (the
first read at the receive, then one read per second of waiting, where QueueDepth reads it from
SQS); the calls that would hold the message, wait a step and extend visibility before the invoke
are replaced by Passes, the last of which returns the seconds waited.
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


def depth_profiles(backlog: int, seconds: int) -> list[list[int]]:
    """The depth read after 0..seconds seconds of waiting: steady ones, and a backlog that forms
    during the wait (after 1 s, after 3 s)."""
    steady = sorted({0, max(0, backlog - 1), backlog, backlog + 7})
    rising = [[0 if s < after else backlog + 7 for s in range(seconds + 1)] for after in (1, 3)]
    return [[depth] * (seconds + 1) for depth in steady] + rising


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
    rewire = {"ExtendVisibility": "Waited", "HoldForStagger": "Stagger"}

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
    tested = ("StaggerSpacing", "StaggerMode", "Backlog", "StaggerDelay", "StaggerOver", "StaggerWaited")
    per_case = {name: take(slot, name) for name in tested}
    per_case["FirstMessage"] = first_message
    per_case["StaggerMode"]["Default"] = "Backlog"  # the first read: the case's depth at the receive
    per_case["QueueDepth"] = {  # a read during the wait
        "Type": "Pass",
        "Parameters": {"value.$": "States.ArrayGetItem($.depths, $.stagger.waitedS)"},
        "ResultPath": "$.depth",
        "Next": "Backlog",
    }
    per_case["Stagger"] = {"Type": "Pass", "Next": "StaggerWaited"}
    per_case["Waited"] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.stagger.waitedS", "IsPresent": True, "Next": "Delayed"}],
        "Default": "NoDelay",
    }
    per_case["NoDelay"] = {"Type": "Pass", "Result": 0, "End": True}
    per_case["Delayed"] = {"Type": "Pass", "InputPath": "$.stagger.waitedS", "End": True}
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
                    "depths.$": "$$.Map.Item.Value.depths",
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
def test_asl_wait_equals_stagger_policy(sfn: Any, stagger: dict[str, Any]) -> None:
    policy = StaggerPolicy.from_definition(stagger)
    priorities = list(stagger["priorities"])
    seconds = max(p["max_delay_s"] for p in stagger["priorities"].values())
    cases = [
        {"queueIndex": index, "depth": depths[0], "depths": depths, "slot": slot, "calls": calls}
        for index in range(len(priorities))
        for depths in depth_profiles(stagger["backlog_depth"], seconds)
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
        python, planned = [], []
        for case in cases:
            priority, first = priorities[case["queueIndex"]], case["calls"] == 1 and generation == 0
            python.append(
                policy.waited_s(case["slot"], case["depths"].__getitem__, priority, first_in_slot=first)
            )
            planned.append(policy.delay_s(case["slot"], case["depth"], priority, first_in_slot=first))
        assert asl == python
        # the grid is not trivial: delays differ, and a backlog that formed cut some short
        assert len(set(python)) > 1 or stagger["backlog_depth"] == 0 or generation > 0
        cut_short = sum(waited < delay for waited, delay in zip(python, planned, strict=True))
        assert cut_short or stagger["backlog_depth"] == 0 or generation > 0
