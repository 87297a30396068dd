"""Every Terraform ``precondition`` of the modules has its twin rule in the definitions model.

Terraform refuses a bad deployment at plan time; local mode refuses it when it loads the
definitions (:mod:`s3stagger.definitions.model`). Both must refuse the same inputs:

- every precondition found in ``terraform/modules/*`` (python-hcl2) is mapped in :data:`TWINS` to a
  named model rule; a new or changed precondition without its twin fails here;
- every model rule is a twin or listed in :data:`MODEL_ONLY` with the reason Terraform needs none;
- each twin carries cases at the rule's boundary: the model refuses the refused ones with that rule
  and no other, and accepts the accepted ones;
- where ``terraform`` and an offline AWS provider exist, ``terraform test`` plans the module with a
  mocked provider over the very same definition files (``definitions_path``) and variables, and
  must fail exactly the refused cases on the precondition's resource.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _iac_support import DEFINITIONS_DIR, MODULE_DIRS, parse_tf
from test_iac_terraform import PLUGIN_DIR, needs_offline_provider, run_terraform, terraform_env

from s3stagger.definitions.model import (
    QUEUE_URLS_RULE,
    RULE_NAMES,
    DefinitionError,
    Definitions,
    Deployment,
    require_queue_urls,
    violations,
)

INGEST = "event-ingest"
DISPATCHER = "staggered-dispatcher"
TERRAFORM_BUCKET_QUALIFIER = "-123456789012-eu-west-1"
"""What the module appends to bucket names with the tests' mocked account and region."""


@dataclass(frozen=True)
class Precondition:
    module: str
    address: str
    condition: str


def module_preconditions(module_dir: Path) -> Iterator[Precondition]:
    """Every ``precondition`` in a module's resources, data sources and outputs."""

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "precondition":
                    yield from (item["condition"] for item in value)
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    for path in sorted(module_dir.glob("*.tf")):
        parsed = parse_tf(path)
        for kind in ("resource", "data"):
            for block in parsed.get(kind, []):
                for block_type, named in block.items():
                    for name, body in named.items():
                        address = f"{'data.' if kind == 'data' else ''}{block_type}.{name}"
                        for condition in walk(body):
                            yield Precondition(module_dir.name, address, condition)
        for block in parsed.get("output", []):
            for name, body in block.items():
                for condition in walk(body):
                    yield Precondition(module_dir.name, f"output.{name}", condition)


def all_preconditions() -> list[Precondition]:
    return [item for module_dir in MODULE_DIRS for item in module_preconditions(module_dir)]


@dataclass(frozen=True)
class Case:
    """One input both sides judge: edits of the definition files plus the module's own variables."""

    edits: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Definition file -> fields replaced in the copy both sides read (nested objects merge)."""
    name_prefix: str = "s3stagger"
    key_prefixes: Mapping[str, str] = field(default_factory=dict)
    """event-ingest ``key_prefixes``: priority -> key prefix, replacing or adding that route."""
    queue_priorities: tuple[str, ...] | None = None
    """staggered-dispatcher ``queues``: the priorities given a queue (default: every one)."""


@dataclass(frozen=True)
class Twin:
    rule: str
    refused: tuple[Case, ...]
    accepted: tuple[Case, ...]


def budget(**values: int) -> Mapping[str, Mapping[str, Any]]:
    return {"budget.json": values}


TWINS: dict[tuple[str, str, str], Twin] = {
    (INGEST, "aws_s3_bucket.this", "${length(each.value) <= 63}"): Twin(
        "bucket_names_fit",
        refused=(Case(name_prefix="p" * 29),),  # p...p-failed-rows-<account>-<region>: 64 characters
        accepted=(Case(name_prefix="p" * 28),),
    ),
    (
        INGEST,
        "aws_sqs_queue.dead_letter",
        "${local.queue_settings.dlq_message_retention_seconds > "
        "local.queue_settings.message_retention_seconds}",
    ): Twin(
        "dlq_retains_longer_than_queue",
        refused=(Case({"queues.json": {"dlq": {"message_retention_s": 345600}}}),),
        accepted=(Case({"queues.json": {"dlq": {"message_retention_s": 345601}}}),),
    ),
    (
        INGEST,
        "aws_sqs_queue.priority",
        "${length(setsubtract(keys(var.key_prefixes), local.priorities)) == 0}",
    ): Twin(
        "routes_match_priorities",
        refused=(Case(key_prefixes={"urgent": "urgent/"}),),
        accepted=(Case(key_prefixes={"high": "urgent/"}),),
    ),
    (
        INGEST,
        "aws_sqs_queue.priority",
        '${alltrue([for prefix in values(local.key_prefixes) : !can(regex("[*\\\\\\\\]", prefix))])}',
    ): Twin(
        "key_prefixes_are_literal",
        refused=(Case(key_prefixes={"high": "high*/"}), Case(key_prefixes={"normal": "normal\\"})),
        accepted=(Case(key_prefixes={"high": "high+/"}),),
    ),
    (
        INGEST,
        "aws_sqs_queue.priority",
        "${length(setsubtract(local.priorities, keys(local.key_prefixes))) == 0 && "
        "length(setsubtract(keys(local.key_prefixes), local.priorities)) == 0}",
    ): Twin(
        "routes_match_priorities",
        refused=(Case({"event_rules.json": {"routes": [{"priority": "high", "key_prefix": "high/"}]}}),),
        accepted=(
            Case(
                {
                    "event_rules.json": {
                        "routes": [
                            {"priority": "normal", "key_prefix": "n/"},
                            {"priority": "high", "key_prefix": "h/"},
                        ]
                    }
                }
            ),
        ),
    ),
    (DISPATCHER, "aws_sqs_queue.lease", "${local.dispatcher.lease_s >= local.minimum_lease_s}"): Twin(
        "lease_outlasts_a_hold",
        # 240 (time budget) + 600 (visibility extension) + the longest stagger delay, 4
        refused=(Case({"dispatcher.json": {"lease_s": 26}}),),
        accepted=(Case({"dispatcher.json": {"lease_s": 27}}),),
    ),
    (
        DISPATCHER,
        "aws_sfn_state_machine.dispatcher",
        '${local.state_machine_type != "EXPRESS" || '
        "local.dispatcher.time_budget_s <= local.express_max_time_budget_s}",
    ): Twin(
        "express_time_budget_fits",
        refused=(Case({"dispatcher.json": {"time_budget_s": 271, "lease_s": 1000}}),),
        accepted=(
            Case({"dispatcher.json": {"time_budget_s": 270, "lease_s": 1000}}),
            Case(
                {"dispatcher.json": {"state_machine_type": "STANDARD", "time_budget_s": 271, "lease_s": 1000}}
            ),
        ),
    ),
    (
        DISPATCHER,
        "aws_ssm_parameter.concurrency_budget",
        "${1 <= local.budget.minimum && local.budget.minimum <= local.budget.initial && "
        "local.budget.initial <= local.budget.maximum && local.budget.maximum <= 40}",
    ): Twin(
        "budget_in_order_within_inline_map",
        refused=(
            Case(budget(minimum=6)),
            Case(budget(default=41, maximum=41) | {"processor.json": {"reserved_concurrency": 50}}),
            Case(budget(minimum=0)),
        ),
        accepted=(
            Case(budget(minimum=5)),
            Case(
                budget(minimum=40, default=40, maximum=40) | {"processor.json": {"reserved_concurrency": 50}}
            ),
        ),
    ),
    (
        DISPATCHER,
        "aws_sfn_state_machine.dispatcher",
        "${alltrue([for queue in values(var.queues) : "
        "queue.visibility_timeout_seconds >= local.timeout_seconds])}",
    ): Twin(
        "queue_visibility_covers_processor_timeout",
        refused=(Case({"processor.json": {"timeout_s": 361}}),),  # the queues' visibility is 360
        accepted=(Case({"processor.json": {"timeout_s": 360}}),),
    ),
    (
        DISPATCHER,
        "aws_sfn_state_machine.dispatcher",
        "${local.budget.maximum <= local.reserved_concurrency}",
    ): Twin(
        "budget_within_reserved_concurrency",
        refused=(Case({"processor.json": {"reserved_concurrency": 39}}),),
        accepted=(Case({"processor.json": {"reserved_concurrency": 40}}),),
    ),
    (
        DISPATCHER,
        "aws_sqs_queue.lease",
        "${length(setsubtract(local.priorities, keys(var.queues))) == 0}",
    ): Twin(
        QUEUE_URLS_RULE,
        refused=(Case(queue_priorities=("high",)),),
        accepted=(Case(queue_priorities=("normal", "high")),),
    ),
}

TERRAFORM_ONLY = {
    (
        "monitoring",
        "aws_cloudwatch_metric_alarm.this",
        "${length(local.unknown_threshold_overrides) == 0}",
    ): (
        "threshold_overrides is a variable of the monitoring module only (local mode evaluates the shared "
        "thresholds); the precondition checks its keys against alarms.json"
    ),
}
"""Preconditions on a module's own variables, which the definitions model does not have: no twin."""

MODEL_ONLY = {
    "stagger_covers_priorities": (
        "Terraform fails the plan by itself on a priority without stagger settings (its template values "
        "index stagger.priorities[priority]); the model also refuses a stagger entry for no priority"
    ),
}


# -- the same inputs, as each side reads them --------------------------------------------------


def merged(base: Any, edits: Mapping[str, Any]) -> Any:
    result = dict(base)
    for key, value in edits.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def write_definitions(case: Case, directory: Path) -> Path:
    """The shipped definition files with ``case.edits`` applied: what both sides read."""
    directory.mkdir(parents=True)
    for path in DEFINITIONS_DIR.iterdir():
        if path.suffix in {".json", ".md"}:
            shutil.copy(path, directory / path.name)
    for name, edits in case.edits.items():
        data = json.loads((directory / name).read_text(encoding="utf-8"))
        (directory / name).write_text(json.dumps(merged(data, edits)), encoding="utf-8")
    return directory


def model_refusals(case: Case, directory: Path) -> set[str]:
    """The rules the model names for ``case`` (the module variables translated to what they mean)."""
    routes = json.loads((directory / "event_rules.json").read_text(encoding="utf-8"))["routes"]
    routes = [
        {**route, "key_prefix": case.key_prefixes.get(route["priority"], route["key_prefix"])}
        for route in routes
    ]
    routed = {route["priority"] for route in routes}
    routes += [
        {"priority": p, "key_prefix": prefix} for p, prefix in case.key_prefixes.items() if p not in routed
    ]
    loaded = Definitions.read({"event_rules.json": {"routes": routes}}, directory=directory)
    refused = set(violations(Deployment(loaded, case.name_prefix, TERRAFORM_BUCKET_QUALIFIER)))
    priorities = loaded.priorities if case.queue_priorities is None else case.queue_priorities
    try:
        require_queue_urls(loaded, {priority: f"https://sqs/{priority}" for priority in priorities})
    except DefinitionError:
        refused.add(QUEUE_URLS_RULE)
    return refused


@dataclass(frozen=True)
class TwinCase:
    case_id: str
    precondition: Precondition
    twin: Twin
    case: Case
    refused: bool


def cases() -> list[TwinCase]:
    """Every case of every twin, each with an id that names its rule and verdict."""
    found = []
    for (module, address, condition), twin in TWINS.items():
        for refused, group in ((True, twin.refused), (False, twin.accepted)):
            for case in group:
                verdict = "refused" if refused else "accepted"
                case_id = f"{twin.rule}_{verdict}_{len(found):02d}"
                found.append(TwinCase(case_id, Precondition(module, address, condition), twin, case, refused))
    return found


# -- without terraform ------------------------------------------------------------------------


def test_every_precondition_has_its_twin_rule() -> None:
    found = {(item.module, item.address, item.condition) for item in all_preconditions()}
    assert len(found) >= 11, "the HCL parser found fewer preconditions than the modules have"
    without_twin = sorted(found - set(TWINS) - set(TERRAFORM_ONLY))
    assert not without_twin, (
        f"preconditions without a twin rule in s3stagger.definitions.model: {without_twin}; "
        "state the rule in the model's RULES and map it in TWINS with its boundary cases"
    )
    stale = sorted(set(TWINS) - found)
    assert not stale, f"TWINS maps preconditions the modules no longer have: {stale}"


def test_every_model_rule_is_a_twin_or_says_why_not() -> None:
    twinned = {twin.rule for twin in TWINS.values()}
    assert twinned <= RULE_NAMES
    assert twinned | set(MODEL_ONLY) == RULE_NAMES
    assert not twinned & set(MODEL_ONLY)


@pytest.mark.parametrize("judged", cases(), ids=lambda judged: judged.case_id)
def test_the_model_judges_each_case_as_its_precondition(judged: TwinCase, tmp_path: Path) -> None:
    got = model_refusals(judged.case, write_definitions(judged.case, tmp_path / "definitions"))
    assert got == ({judged.twin.rule} if judged.refused else set()), judged.precondition.condition


# -- with terraform: the real preconditions over the same files ---------------------------------


def hcl(value: Any) -> str:
    """A Python value as an HCL expression (JSON is valid HCL expression syntax)."""
    return json.dumps(value)


def terraform_variables(case: Case, module: str, definitions_dir: Path, package: Path) -> dict[str, Any]:
    variables: dict[str, Any] = {"definitions_path": str(definitions_dir), "name_prefix": case.name_prefix}
    if module == INGEST:
        variables["key_prefixes"] = dict(case.key_prefixes)
        return variables
    queues = json.loads((definitions_dir / "queues.json").read_text(encoding="utf-8"))
    priorities = queues["priorities"] if case.queue_priorities is None else case.queue_priorities
    variables["queues"] = {
        priority: {
            "url": f"https://sqs.eu-west-1.amazonaws.com/123456789012/{case.name_prefix}-{priority}",
            "arn": f"arn:aws:sqs:eu-west-1:123456789012:{case.name_prefix}-{priority}",
            "visibility_timeout_seconds": queues["queue"]["visibility_timeout_s"],
        }
        for priority in priorities
    }
    variables["package_path"] = str(package)
    return variables


def mocks_and_defaults(module_dir: Path) -> str:
    """The module's own test file up to its first run: the mocked provider and the default variables."""
    (test_file,) = (module_dir / "tests").glob("*.tftest.hcl")
    text = test_file.read_text(encoding="utf-8")
    return text[: text.index('\nrun "')]


@needs_offline_provider
@pytest.mark.parametrize("module", [INGEST, DISPATCHER])
def test_terraform_refuses_what_the_model_refuses(module: str, tmp_path: Path) -> None:
    module_dir = next(path for path in MODULE_DIRS if path.name == module)
    # every module, for the ones it calls (../lambda-function), without their tests
    shutil.copytree(
        module_dir.parent, tmp_path / "modules", ignore=shutil.ignore_patterns(".terraform*", "tests")
    )
    workspace = tmp_path / "modules" / module
    package = tmp_path / "package.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("README.txt", "placeholder: a plan only hashes the package\n")
    runs = [mocks_and_defaults(module_dir)]
    expected: dict[str, bool] = {}
    for judged in cases():
        if judged.precondition.module != module:
            continue
        definitions_dir = write_definitions(judged.case, tmp_path / "definitions" / judged.case_id)
        variables = terraform_variables(judged.case, module, definitions_dir, package)
        body = "\n".join(f"    {name} = {hcl(value)}" for name, value in variables.items())
        failures = f"\n  expect_failures = [{judged.precondition.address}]\n" if judged.refused else ""
        runs.append(
            f'run "{judged.case_id}" {{\n  command = plan\n\n  variables {{\n{body}\n  }}\n{failures}}}\n'
        )
        expected[judged.case_id] = judged.refused
    (workspace / "tests").mkdir()
    (workspace / "tests" / "twins.tftest.hcl").write_text("\n".join(runs), encoding="utf-8")

    env = terraform_env(tmp_path)
    init = run_terraform(
        ["init", "-backend=false", "-input=false", f"-plugin-dir={PLUGIN_DIR}"], workspace, env
    )
    assert init.returncode == 0, init.stdout + init.stderr
    result = run_terraform(["test"], workspace, env)
    outcomes = dict(re.findall(r'run "([^"]+)"\.\.\. (pass|fail|skip)', result.stdout))
    wrong = sorted(case_id for case_id, outcome in outcomes.items() if outcome == "fail")
    assert not wrong, (
        f"Terraform and the model disagree on {wrong} (a refused case must fail the precondition's "
        f"resource, an accepted one must plan):\n{result.stdout[-6000:]}{result.stderr[-4000:]}"
    )
    assert outcomes == dict.fromkeys(expected, "pass"), result.stdout[-4000:] + result.stderr[-4000:]
