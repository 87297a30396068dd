"""The definitions model: strict parsing with file and field named, each cross-file rule once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from s3stagger import definitions
from s3stagger.definitions.model import (
    DEFINITION_FILES,
    RULES,
    DefinitionError,
    Definitions,
    Deployment,
    violations,
)
from s3stagger.errors import S3StaggerError
from s3stagger.local.provision import unrouted_event_pattern

DEFINITIONS_DIR = Path(definitions.__file__).parent


def load(overrides: dict[str, dict[str, Any]], **kwargs: Any) -> Definitions:
    return Definitions.load(overrides, **kwargs)


def test_the_shipped_definitions_load_and_break_no_rule() -> None:
    loaded = Definitions.load()
    assert violations(loaded) == {}
    assert loaded.priorities == tuple(definitions.read_json("queues.json")["priorities"])
    assert loaded.processor.timeout_s == definitions.read_json("processor.json")["timeout_s"]
    assert loaded.key_wildcards() == {"high": "high/*.csv", "normal": "normal/*.csv"}


def test_every_settings_file_is_listed_once() -> None:
    listed = [file.name for file in DEFINITION_FILES]
    on_disk = sorted(
        path.name
        for path in DEFINITIONS_DIR.glob("*.json")
        if "_comment" in json.loads(path.read_text(encoding="utf-8"))
    )
    assert sorted(listed) == on_disk
    assert len(set(listed)) == len(listed)


def test_a_definition_error_is_a_project_error() -> None:
    assert issubclass(DefinitionError, S3StaggerError)


# -- strict parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"processor.json": {"timeout_s": "300"}}, "processor.json: timeout_s must be an integer, got '300'"),
        ({"processor.json": {"timeout_s": True}}, "processor.json: timeout_s must be an integer, got True"),
        (
            {"processor.json": {"timeout_s": 901}},
            r"processor.json: timeout_s must be within 1\.\.900, got 901",
        ),
        (
            {"queues.json": {"queue": {"max_receive_count": 0}}},
            "queues.json: queue.max_receive_count must be",
        ),
        (
            {"queues.json": {"queue": {"sqs_managed_sse": "yes"}}},
            "queues.json: queue.sqs_managed_sse must be true",
        ),
        ({"queues.json": {"priorities": []}}, "queues.json: priorities must be a non-empty list"),
        ({"queues.json": {"priorities": ["high", "high"]}}, "queues.json: priorities lists a name twice"),
        (
            {"dispatcher.json": {"state_machine_type": "SYNC"}},
            "dispatcher.json: state_machine_type must be one of EXPRESS, STANDARD, got 'SYNC'",
        ),
        (
            {"dispatcher.json": {"max_calls_per_slot": {"STANDARD": 0}}},
            r"dispatcher.json: max_calls_per_slot\.STANDARD must be",
        ),
        (
            {"dispatcher.json": {"event_source": ""}},
            "dispatcher.json: event_source must be a non-empty string",
        ),
        (
            {"dispatcher.json": {"stagger": {"backlog": 1}}},
            "dispatcher.json: override of unknown field stagger.backlog",
        ),
        (
            {"event_rules.json": {"routes": []}},
            "event_rules.json: routes must be a non-empty list of objects",
        ),
        (
            {"event_rules.json": {"routes": [{"priority": "high"}]}},
            r"event_rules.json: routes\[0\]\.key_prefix is missing",
        ),
        (
            {"event_rules.json": {"routes": [{"priority": "high", "key_prefix": "h/", "suffix": ".csv"}]}},
            r"event_rules.json: unknown field\(s\) suffix in routes\[0\]",
        ),
        (
            {"processor.json": {"environment": {"A": 1}}},
            "processor.json: environment must be an object of strings",
        ),
        ({"budget.json": {"nope": 1}}, "budget.json: override of unknown field nope"),
        ({"colours.json": {}}, r"overrides name unknown definition file\(s\) colours.json"),
    ],
)
def test_a_malformed_field_is_named_with_its_file(overrides: dict[str, dict[str, Any]], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        load(overrides)


def test_a_stagger_spacing_the_asl_cannot_build_is_named() -> None:
    stagger = {"backlog_depth": 1, "priorities": {"high": {"spacing_s": 1, "max_delay_s": 5000}}}
    with pytest.raises(
        DefinitionError, match=r"dispatcher.json: stagger.priorities.high: max_delay_s // spacing_s"
    ):
        load({"dispatcher.json": {"stagger": stagger}})


@pytest.fixture
def definitions_dir(tmp_path: Path) -> Path:
    """A copy of the shipped definition files to edit."""
    for path in DEFINITIONS_DIR.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def edit(directory: Path, name: str, **changes: Any) -> None:
    path = directory / name
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_an_unknown_field_in_a_file_is_refused(definitions_dir: Path) -> None:
    edit(definitions_dir, "storage.json", uploads_suffix="x")
    with pytest.raises(DefinitionError, match=r"storage.json: unknown field\(s\) uploads_suffix$"):
        Definitions.load(directory=definitions_dir)


def test_an_unknown_field_in_a_nested_object_is_refused(definitions_dir: Path) -> None:
    queues = json.loads((definitions_dir / "queues.json").read_text(encoding="utf-8"))
    queues["lease_queue"]["fifo"] = True
    (definitions_dir / "queues.json").write_text(json.dumps(queues), encoding="utf-8")
    with pytest.raises(DefinitionError, match=r"queues.json: unknown field\(s\) fifo in lease_queue$"):
        Definitions.load(directory=definitions_dir)


def test_a_missing_or_broken_file_is_named(definitions_dir: Path) -> None:
    (definitions_dir / "budget.json").write_text("{", encoding="utf-8")
    with pytest.raises(DefinitionError, match=r"budget\.json: not JSON"):
        Definitions.load(directory=definitions_dir)
    (definitions_dir / "budget.json").unlink()
    with pytest.raises(DefinitionError, match=r"budget\.json: no such definition file"):
        Definitions.load(directory=definitions_dir)
    (definitions_dir / "budget.json").write_text("[]", encoding="utf-8")
    with pytest.raises(DefinitionError, match=r"budget\.json: the top level must be a JSON object, got list"):
        Definitions.load(directory=definitions_dir)


# -- the rules: each stated once, each refusing what it claims --------------------------------

REFUSED: dict[str, tuple[dict[str, dict[str, Any]], str]] = {
    "routes_match_priorities": (
        {"event_rules.json": {"routes": [{"priority": "high", "key_prefix": "high/"}]}},
        r"routes \['high'\] and queues.json priorities \['high', 'normal'\] must name the same",
    ),
    "key_prefixes_are_literal": (
        {
            "event_rules.json": {
                "routes": [
                    {"priority": "high", "key_prefix": "h*/"},
                    {"priority": "normal", "key_prefix": "n/"},
                ]
            }
        },
        r"key_prefix 'h\*/' of priority 'high' must not contain",
    ),
    "stagger_covers_priorities": (
        {
            "dispatcher.json": {
                "stagger": {
                    "backlog_depth": 1,
                    "priorities": {
                        name: {"spacing_s": 0, "max_delay_s": 0} for name in ("high", "normal", "urgent")
                    },
                }
            }
        },
        r"stagger.priorities \['high', 'normal', 'urgent'\] must be exactly",
    ),
    "dlq_retains_longer_than_queue": (
        {"queues.json": {"dlq": {"message_retention_s": 345600}}},
        "dlq.message_retention_s=345600 must exceed queue.message_retention_s=345600",
    ),
    "queue_visibility_covers_processor_timeout": (
        {"queues.json": {"queue": {"visibility_timeout_s": 299}}},
        "queue.visibility_timeout_s=299 must be at least processor.json timeout_s=300",
    ),
    "lease_outlasts_a_hold": (
        {"dispatcher.json": {"lease_s": 26}},  # the longest stagger delay 4 + 3 idle looks x 1 s + 20
        r"lease_s=26 must be >= the longest stagger delay \+ idle_polls x idle_wait_s \+ 20 s \(27\)",
    ),
    "express_time_budget_fits": (
        {"dispatcher.json": {"time_budget_s": 271, "lease_s": 1000}},
        "time_budget_s=271 must be <= 270 for an EXPRESS dispatcher",
    ),
    "budget_in_order_within_inline_map": (
        {"budget.json": {"maximum": 41}, "processor.json": {"reserved_concurrency": 50}},
        r"need 1 <= minimum \(1\) <= default \(5\) <= maximum \(41\) <= 40",
    ),
    "budget_within_reserved_concurrency": (
        {"processor.json": {"reserved_concurrency": 39}},
        "maximum=40 exceeds processor.json reserved_concurrency=39",
    ),
    "bucket_names_fit": (
        {"storage.json": {"failed_rows_bucket_suffix": "f" * 54}},
        r"bucket name s3stagger-f+ \(failed_rows\) is 64 characters; S3 allows 63",
    ),
}


def test_every_rule_has_a_refused_case() -> None:
    assert set(REFUSED) == {rule.name for rule in RULES}


@pytest.mark.parametrize("rule", sorted(REFUSED))
def test_a_rule_refuses_its_case(rule: str) -> None:
    overrides, message = REFUSED[rule]
    with pytest.raises(DefinitionError, match=message):
        load(overrides)


@pytest.mark.parametrize(
    ("overrides", "accepted"),
    [
        ({"dispatcher.json": {"lease_s": 27}}, "lease at the minimum"),
        ({"dispatcher.json": {"time_budget_s": 270, "lease_s": 874}}, "Express time budget at the maximum"),
        ({"queues.json": {"queue": {"visibility_timeout_s": 300}}}, "queue visibility equal to the timeout"),
        ({"processor.json": {"reserved_concurrency": None}}, "no reserved concurrency"),
        ({"budget.json": {"minimum": 40, "default": 40}}, "minimum = default = maximum = 40"),
    ],
)
def test_the_boundaries_are_accepted(overrides: dict[str, dict[str, Any]], accepted: str) -> None:
    assert violations(load(overrides)) == {}, accepted


def test_every_broken_rule_is_reported_on_one_line() -> None:
    with pytest.raises(DefinitionError) as raised:
        load({"processor.json": {"timeout_s": 900, "reserved_concurrency": 39}})
    message = str(raised.value)
    assert "\n" not in message
    assert "reserved_concurrency=39" in message
    assert "queue.visibility_timeout_s=360" in message


def test_the_name_prefix_and_qualifier_count_in_bucket_names() -> None:
    shipped = Definitions.load()
    assert violations(Deployment(shipped, "p" * 55))["bucket_names_fit"].startswith("bucket name ppp")
    assert "bucket_names_fit" not in violations(Deployment(shipped, "p" * 50))
    qualified = Deployment(shipped, "p" * 30, bucket_qualifier="-123456789012-eu-west-1")
    assert "(failed_rows) is 65 characters" in violations(qualified)["bucket_names_fit"]


# -- priorities: a list, not two slots --------------------------------------------------------

THREE = {
    "queues.json": {"priorities": ["urgent", "high", "normal"]},
    "event_rules.json": {
        "routes": [
            {"priority": "urgent", "key_prefix": "urgent/"},
            {"priority": "high", "key_prefix": "high/"},
            {"priority": "normal", "key_prefix": "normal/"},
        ]
    },
    "dispatcher.json": {
        "stagger": {
            "backlog_depth": 20,
            "priorities": {
                "urgent": {"spacing_s": 0, "max_delay_s": 0},
                "high": {"spacing_s": 0, "max_delay_s": 0},
                "normal": {"spacing_s": 1, "max_delay_s": 4},
            },
        }
    },
}


def test_a_third_priority_is_a_definition_change_only() -> None:
    loaded = load(THREE)
    assert loaded.priorities == ("urgent", "high", "normal")
    assert loaded.event_rules.key_prefix("urgent") == "urgent/"
    pattern = unrouted_event_pattern("b", list(loaded.key_wildcards().values()))
    assert pattern["detail"]["object"]["key"] == [
        {"anything-but": {"wildcard": ["urgent/*.csv", "high/*.csv", "normal/*.csv"]}}
    ]


def test_a_priority_without_route_is_refused() -> None:
    with pytest.raises(DefinitionError, match="must name the same priorities"):
        load({**THREE, "event_rules.json": {"routes": THREE["event_rules.json"]["routes"][1:]}})


def test_a_key_prefix_the_pattern_must_escape_stays_one_wildcard() -> None:
    pattern = unrouted_event_pattern("b", ['a"b/*.csv', "n/*.csv"])
    assert pattern["detail"]["object"]["key"][0]["anything-but"]["wildcard"] == ['a"b/*.csv', "n/*.csv"]
