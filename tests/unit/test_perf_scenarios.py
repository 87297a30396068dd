"""perf-test's catalogue of scenarios and dispatchers, and the stand-ins' pure helpers."""

import json

import pytest

from s3stagger.perf import scenarios
from s3stagger.perf.stand_ins import mapping_caps, processor_event


def test_every_scenario_has_distinct_rows_and_keys_under_its_priority_prefix() -> None:
    for quick in (False, True):
        for scenario in scenarios.scenarios(quick).values():
            objects = list(scenario.sample_objects({"high": "high/", "normal": "normal/"}))
            assert len(objects) == scenario.objects
            assert sum(o.rows for o in objects) == scenario.rows
            assert len({o.key for o in objects}) == len(objects)
            bodies = [line for o in objects for line in o.body.decode().splitlines()[1:]]
            assert len(set(bodies)) == len(bodies) == scenario.rows, "no two rows share a body"
    full, quick_size = scenarios.scenarios(False), scenarios.scenarios(True)
    assert set(full) == set(quick_size) == {"demo", "skewed", "burst", "spread", "priority-mix"}
    assert quick_size["demo"].rows < full["demo"].rows
    skewed = full["skewed"]
    assert max(g.rows for g in skewed.groups) >= 100 * min(g.rows for g in skewed.groups)
    assert full["spread"].upload_spread_s > 0
    assert full["burst"].upload_spread_s == 0


def test_selection_keeps_the_order_given_and_names_what_is_unknown() -> None:
    known = scenarios.scenarios(True)
    assert [s.name for s in scenarios.select(["skewed", "demo"], known)] == ["skewed", "demo"]
    assert len(scenarios.select(None, known)) == len(known)
    with pytest.raises(scenarios.ScenarioError, match=r"unknown scenario.*nope.*known: demo"):
        scenarios.select(["nope"], known)
    assert scenarios.select_dispatchers(None) == list(scenarios.DISPATCHERS)
    assert scenarios.select_dispatchers(["no-stagger"]) == ["no-stagger"]
    with pytest.raises(scenarios.ScenarioError, match="unknown dispatcher"):
        scenarios.select_dispatchers(["v3"])


def test_the_mapping_caps_add_up_to_the_budget_and_respect_the_aws_minimum() -> None:
    assert mapping_caps(10, ["high", "normal"]) == {"high": 2, "normal": 8}
    assert mapping_caps(20, ["high", "normal"]) == {"high": 4, "normal": 16}
    assert mapping_caps(2, ["high", "normal"]) == {"high": 2, "normal": 2}, (
        "2 is the least MaximumConcurrency"
    )
    assert mapping_caps(7, ["only"]) == {"only": 7}


def test_processor_event_of_a_message_body() -> None:
    event = {"detail": {"object": {"key": "k"}}}
    assert processor_event(json.dumps(event)) == {"object": event, "cursor": None}
    continuation = {"continuation": {"object": event, "cursor": {"next_row": 3}}}
    assert processor_event(json.dumps(continuation)) == {"object": event, "cursor": {"next_row": 3}}
    assert processor_event("not json") is None
    assert processor_event("[1]") is None
