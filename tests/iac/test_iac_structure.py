"""Every Terraform file parses, and every module and example has the expected shape."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _iac_support import (
    EXAMPLE_DIRS,
    MODULE_DIRS,
    TERRAFORM_ROOT,
    TF_FILES,
    TFTEST_FILES,
    module_blocks,
    parse_tf,
)

NON_AWS_MODULES = {"dynatrace-dashboard": "dynatrace"}
"""Modules that use another provider than AWS, and that provider."""


def test_the_repository_has_both_modules_and_both_examples() -> None:
    assert [path.name for path in MODULE_DIRS] == [
        "alerting",
        "dynatrace-dashboard",
        "dynatrace-metrics",
        "event-ingest",
        "firehose-backup",
        "firehose-delivery",
        "lambda-function",
        "monitoring",
        "splunk-logs",
        "staggered-dispatcher",
    ]
    assert [path.name for path in EXAMPLE_DIRS] == ["complete", "local", "minimal"]


@pytest.mark.parametrize(
    "path", TF_FILES + TFTEST_FILES, ids=lambda path: str(path.relative_to(TERRAFORM_ROOT))
)
def test_every_tf_file_parses(path: Path) -> None:
    parsed = parse_tf(path)
    assert parsed, f"{path} parsed to nothing"


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=lambda path: path.name)
def test_each_module_has_the_four_file_skeleton_and_a_readme(module_dir: Path) -> None:
    present = {path.name for path in module_dir.iterdir()}
    assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"} <= present


@pytest.mark.parametrize("module_dir", MODULE_DIRS + EXAMPLE_DIRS, ids=lambda path: path.name)
def test_versions_require_terraform_1_5_and_aws_provider_5(module_dir: Path) -> None:
    terraform_blocks = [
        block for path in module_dir.glob("*.tf") for block in parse_tf(path).get("terraform", [])
    ]
    assert len(terraform_blocks) == 1, f"{module_dir.name}: exactly one terraform block"
    block = terraform_blocks[0]
    required = re.fullmatch(r">=\s*(\d+)\.(\d+)(?:\.\d+)?", block["required_version"])
    assert required
    assert (int(required[1]), int(required[2])) >= (1, 5)
    if module_dir.name in NON_AWS_MODULES:
        assert "aws" not in block["required_providers"][0]
        return
    aws = block["required_providers"][0]["aws"]
    assert aws["source"] == "hashicorp/aws"
    provider = re.fullmatch(r">=\s*(\d+)(?:\.\d+)*(?:\s*,\s*<\s*\d+(?:\.\d+)*)?", aws["version"])
    assert provider
    assert int(provider[1]) >= 5


@pytest.mark.parametrize("directory", MODULE_DIRS + EXAMPLE_DIRS, ids=lambda path: path.name)
def test_each_module_and_example_has_a_terraform_test_with_a_mocked_provider(directory: Path) -> None:
    tests = list((directory / "tests").glob("*.tftest.hcl"))
    assert tests, f"{directory.name}: add tests/<name>.tftest.hcl"
    for path in tests:
        parsed = parse_tf(path)
        provider = NON_AWS_MODULES.get(directory.name, "aws")
        assert any(provider in block for block in parsed.get("mock_provider", [])), (
            f"{path.name} must mock the {provider} provider"
        )
        assert parsed.get("run"), f"{path.name} has no run block"


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=lambda path: path.name)
def test_modules_configure_no_provider(module_dir: Path) -> None:
    """A reusable module inherits the caller's provider; only examples configure one."""
    assert not list(module_blocks(module_dir, "provider"))
