"""Terraform and local mode are built from the same definition files (DESIGN.md section 2).

Terraform side: every ``file()``/``templatefile()`` of a module reads ``src/s3stagger/definitions``
through the module's ``definitions_path`` default, and every template placeholder gets a value.
Local side: provisioning the embedded emulator is observed, and must read the same files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _iac_support import (
    DEFINITIONS_DIR,
    MODULE_DIRS,
    TERRAFORM_ROOT,
    file_reads,
    module_locals,
    object_keys,
    unwrap,
)

from s3stagger import definitions
from s3stagger.definitions.model import Definitions, violations
from s3stagger.local.templates import placeholders

DEFINITIONS_PREFIX = "${local.definitions_path}/"
INGEST = TERRAFORM_ROOT / "modules" / "event-ingest"
DISPATCHER = TERRAFORM_ROOT / "modules" / "staggered-dispatcher"
DASHBOARD = TERRAFORM_ROOT / "modules" / "dynatrace-dashboard"
BUILDING_BLOCKS = ("firehose-backup", "firehose-delivery", "lambda-function")
"""Modules other modules call, which read no definition file: their callers pass what they read."""
DEFINITION_MODULES = [path for path in MODULE_DIRS if path.name not in BUILDING_BLOCKS]
"""Modules built from definition files."""


def definition_json(name: str) -> Any:
    return json.loads((DEFINITIONS_DIR / name).read_text(encoding="utf-8"))


def terraform_definition_reads() -> dict[str, set[str]]:
    """Definition file -> modules that read it."""
    readers: dict[str, set[str]] = {}
    for module_dir in MODULE_DIRS:
        for function, path, _ in file_reads(module_dir):
            if function != "filebase64sha256":
                readers.setdefault(path.removeprefix(DEFINITIONS_PREFIX), set()).add(module_dir.name)
    return readers


def for_collections() -> dict[str, list[str]]:
    """What the modules' ``for`` expressions iterate, as the definitions make them."""
    return {
        "local.priorities": list(definition_json("queues.json")["priorities"]),
        "local.key_wildcards": [route["priority"] for route in definition_json("event_rules.json")["routes"]],
    }


def templatefile_calls(module_dir: Path) -> dict[str, list[str]]:
    """Template name -> the vars expression of each ``templatefile`` call on it."""
    calls: dict[str, list[str]] = {}
    for function, path, variables in file_reads(module_dir):
        if function == "templatefile":
            assert variables is not None, f"templatefile({path}) without vars"
            calls.setdefault(path.removeprefix(DEFINITIONS_PREFIX), []).append(variables)
    return calls


@pytest.mark.parametrize("module_dir", DEFINITION_MODULES, ids=lambda path: path.name)
def test_definitions_path_defaults_to_the_package_definitions(module_dir: Path) -> None:
    expression = unwrap(module_locals(module_dir)["definitions_path"])
    match = re.fullmatch(r'coalesce\(var\.definitions_path, "\$\{path\.module\}/([^"]+)"\)', expression)
    assert match, f"{module_dir.name}: definitions_path must default relative to the module: {expression}"
    assert (module_dir / match.group(1)).resolve() == DEFINITIONS_DIR.resolve()
    assert Path(definitions.__file__).parent.resolve() == DEFINITIONS_DIR.resolve()


@pytest.mark.parametrize("module_dir", DEFINITION_MODULES, ids=lambda path: path.name)
def test_every_file_read_is_a_definition_file(module_dir: Path) -> None:
    reads = file_reads(module_dir)
    assert reads
    for function, path, _ in reads:
        if function == "filebase64sha256":
            assert path == "var.package_path", "only the Lambda package is read from outside definitions/"
            continue
        assert path.startswith(DEFINITIONS_PREFIX), (
            f"{module_dir.name}: {function}({path}) bypasses definitions_path"
        )
        assert (DEFINITIONS_DIR / path.removeprefix(DEFINITIONS_PREFIX)).is_file(), f"{path} does not exist"


def test_terraform_reads_the_asl_event_patterns_and_queue_settings() -> None:
    readers = terraform_definition_reads()
    assert readers["dispatcher.asl.json"] == {"staggered-dispatcher"}
    assert readers["event_pattern.json"] == {"event-ingest"}
    assert readers["event_pattern_unrouted.json"] == {"event-ingest", "alerting"}
    assert readers["alarms.json"] == {"monitoring"}
    assert readers["alerting.json"] == {"alerting", "monitoring"}
    assert "event-ingest" in readers["queues.json"]
    assert "event-ingest" in readers["event_rules.json"]


def _without_comments(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_comments(item) for key, item in value.items() if key != "_comment"}
    if isinstance(value, list):
        return [_without_comments(item) for item in value]
    return value


def is_template(name: str) -> bool:
    """A definition file with ``${placeholders}`` outside its ``_comment`` documentation."""
    return bool(placeholders(json.dumps(_without_comments(definition_json(name)))))


def test_templates_are_rendered_only_with_templatefile() -> None:
    """A template read with file() would reach AWS with its ${placeholders} unreplaced."""
    templates = {name for name in terraform_definition_reads() if is_template(name)}
    assert templates == {
        "dispatcher.asl.json",
        "event_pattern.json",
        "event_pattern_unrouted.json",
        "alert_pattern_alarm_state_change.json",
        "alert_pattern_execution_status_change.json",
        "alert_pattern_object_failed.json",
        "dynatrace_dashboard.json",
    }
    for module_dir in MODULE_DIRS:
        for function, path, _ in file_reads(module_dir):
            if path.removeprefix(DEFINITIONS_PREFIX) in templates:
                assert function == "templatefile", f"{module_dir.name}: {path} read with {function}()"


@pytest.mark.parametrize(
    ("module_dir", "template"),
    [
        (DISPATCHER, "dispatcher.asl.json"),
        (INGEST, "event_pattern.json"),
        (INGEST, "event_pattern_unrouted.json"),
        (DASHBOARD, "dynatrace_dashboard.json"),
    ],
)
def test_templatefile_provides_exactly_the_template_placeholders(module_dir: Path, template: str) -> None:
    wanted = placeholders((DEFINITIONS_DIR / template).read_text(encoding="utf-8"))
    calls = templatefile_calls(module_dir)[template]
    local_values = module_locals(module_dir)
    for variables in calls:
        given = object_keys(variables, for_collections(), local_values)
        assert given >= wanted, f"{template}: Terraform gives no value for {sorted(wanted - given)}"
        assert given <= wanted, f"{template}: values for unknown placeholders {sorted(given - wanted)}"


def test_module_priorities_come_from_queues_json() -> None:
    for module_dir in (INGEST, DISPATCHER):
        assert unwrap(module_locals(module_dir)["priorities"]) == "local.queue_definitions.priorities"
    queue_definitions = unwrap(module_locals(INGEST)["queue_definitions"])
    assert queue_definitions == 'jsondecode(file("${local.definitions_path}/queues.json"))'


def test_shared_definitions_pass_the_modules_plan_time_checks() -> None:
    """The defaults deploy: the model's rules (twins of the preconditions) hold for the files as shipped."""
    shipped = Definitions.load(directory=DEFINITIONS_DIR)
    assert violations(shipped) == {}
    assert shipped.processor.runtime == "python3.13"
    assert shipped.processor.architecture == "arm64"


@pytest.fixture
def definition_files_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record every definition file read through ``s3stagger.definitions``."""
    read: list[str] = []
    original = definitions.read_text

    def recording_read_text(name: str) -> str:
        read.append(name)
        return original(name)

    monkeypatch.setattr(definitions, "read_text", recording_read_text)
    return read


def test_local_mode_provisions_from_the_files_terraform_reads(
    definition_files_read: list[str], tmp_path: Path
) -> None:
    from s3stagger.local.alerting import LocalAlertingSettings
    from s3stagger.local.observability import LocalObservabilitySettings
    from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings

    settings = LocalPipelineSettings(
        downstream_url="http://127.0.0.1:9/rows",
        start_scheduler=False,
        alerting=LocalAlertingSettings(mailbox=tmp_path / "alerts.mbox"),
        observability=LocalObservabilitySettings(data_dir=tmp_path / "telemetry"),
        # a STANDARD dispatcher, so the execution-status rule (Standard only) is provisioned too
        dispatcher_type="STANDARD",
    )
    with LocalPipeline(settings) as stack:
        definition = stack.client("stepfunctions").describe_state_machine(
            stateMachineArn=stack.names.state_machine_arn
        )["definition"]

    # The price table is the cost model's (`s3stagger cost`, perf-test), not a resource definition:
    # the definitions model parses it with the rest, no deployment provisions from it.
    local_only = sorted(set(definition_files_read) - set(terraform_definition_reads()) - {"prices.json"})
    terraform_only = sorted(set(terraform_definition_reads()) - set(definition_files_read))
    assert local_only == [], f"local mode provisions from {local_only}; no Terraform module reads them"
    assert terraform_only == [], f"Terraform reads {terraform_only}; local mode does not provision from them"
    template = json.loads((DEFINITIONS_DIR / "dispatcher.asl.json").read_text(encoding="utf-8"))
    assert set(json.loads(definition)["States"]) == set(template["States"])


def definition_locals(module_dir: Path) -> dict[str, str]:
    """Local name -> the definition file it decodes (``x = jsondecode(file(".../queues.json"))``)."""
    found = {}
    for name, expression in module_locals(module_dir).items():
        match = re.fullmatch(
            r'jsondecode\(file\("\$\{local\.definitions_path\}/([^"]+)"\)\)', str(unwrap(expression))
        )
        if match:
            found[name] = match.group(1)
    return found


@pytest.mark.parametrize(
    "module_dir", [path for path in DEFINITION_MODULES if path != DASHBOARD], ids=lambda path: path.name
)
def test_every_setting_the_module_reads_exists_in_its_definition_file(module_dir: Path) -> None:
    """A renamed or removed key fails here, not in `terraform plan` ("Unsupported attribute")."""
    text = "\n".join(path.read_text(encoding="utf-8") for path in module_dir.glob("*.tf"))
    decoded = definition_locals(module_dir)
    assert decoded, f"{module_dir.name} reads no definition file with jsondecode(file(...))"
    checked = 0
    for local_name, file_name in decoded.items():
        for match in re.finditer(rf"\blocal\.{local_name}((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text):
            value: Any = definition_json(file_name)
            for attribute in match.group(1).strip(".").split("."):
                if not isinstance(value, dict):
                    break
                assert attribute in value, (
                    f"{module_dir.name}: local.{local_name}{match.group(1)} is not in {file_name}"
                )
                value = value[attribute]
            checked += 1
    assert checked >= (10 if module_dir in (INGEST, DISPATCHER) else 1)
