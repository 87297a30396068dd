"""Module interfaces: typed, described variables and outputs, and READMEs that list exactly them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from _iac_support import EXAMPLE_DIRS, MODULE_DIRS, TERRAFORM_ROOT, load_script, module_blocks

DOCUMENTED_DIRS = MODULE_DIRS + EXAMPLE_DIRS
docs = load_script("terraform_docs")

_TABLE_NAME = re.compile(r"^\|\s*`([^`]+)`\s*\|")


def readme_table_names(readme: Path, heading: str) -> list[str]:
    """Names in the first column of the table under ``## <heading>`` (read from the Markdown)."""
    names: list[str] = []
    in_section = False
    for line in readme.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            in_section = line.strip() == f"## {heading}"
            continue
        match = _TABLE_NAME.match(line) if in_section else None
        if match:
            names.append(match.group(1))
    return names


@pytest.mark.parametrize("module_dir", DOCUMENTED_DIRS, ids=lambda path: path.name)
def test_every_variable_is_typed_and_described(module_dir: Path) -> None:
    variables = dict(module_blocks(module_dir, "variable"))
    assert variables, f"{module_dir.name} declares no variable"
    for name, body in variables.items():
        assert body.get("type"), f"{module_dir.name}: variable {name} has no type"
        assert not re.search(r"\bany\b", str(body["type"])), f"{module_dir.name}: variable {name} uses any"
        description = body.get("description") or ""
        assert len(description) >= 20, (
            f"{module_dir.name}: variable {name} needs a description that says what it is"
        )
        assert description.rstrip().endswith((".", ")")), (
            f"{module_dir.name}: variable {name}: end the description"
        )


@pytest.mark.parametrize("module_dir", DOCUMENTED_DIRS, ids=lambda path: path.name)
def test_every_output_is_described(module_dir: Path) -> None:
    outputs = dict(module_blocks(module_dir, "output"))
    assert outputs, f"{module_dir.name} declares no output"
    for name, body in outputs.items():
        assert len(body.get("description") or "") >= 10, f"{module_dir.name}: output {name} is not described"


@pytest.mark.parametrize("module_dir", DOCUMENTED_DIRS, ids=lambda path: path.name)
def test_readme_lists_exactly_the_inputs_and_outputs(module_dir: Path) -> None:
    readme = module_dir / "README.md"
    variables = {name for name, _ in module_blocks(module_dir, "variable")}
    outputs = {name for name, _ in module_blocks(module_dir, "output")}
    listed_inputs = readme_table_names(readme, "Inputs")
    listed_outputs = readme_table_names(readme, "Outputs")
    assert len(listed_inputs) == len(set(listed_inputs)), "an input is listed twice"
    assert set(listed_inputs) == variables
    assert len(listed_outputs) == len(set(listed_outputs)), "an output is listed twice"
    assert set(listed_outputs) == outputs


def test_readme_tables_are_what_the_generator_writes() -> None:
    """Descriptions, types and defaults too, not only names: `python scripts/terraform_docs.py` fixes it."""
    assert docs.stale_readmes(TERRAFORM_ROOT) == []
    assert docs.main(["--check"]) == 0


def test_required_inputs_are_marked_required_in_the_table() -> None:
    readme = TERRAFORM_ROOT / "modules" / "staggered-dispatcher" / "README.md"
    rows = {
        match.group(1): line
        for line in readme.read_text(encoding="utf-8").splitlines()
        if (match := _TABLE_NAME.match(line))
    }
    assert rows["downstream_url"].rstrip().endswith("| yes |")
    assert rows["name_prefix"].rstrip().endswith("| no |")
    assert '`"s3stagger"`' in rows["name_prefix"]


@pytest.fixture
def module_copy(tmp_path: Path) -> Path:
    root = tmp_path / "terraform"
    shutil.copytree(TERRAFORM_ROOT / "modules" / "event-ingest", root / "modules" / "event-ingest")
    return root


def test_generator_detects_and_fixes_a_new_variable(module_copy: Path) -> None:
    module_dir = module_copy / "modules" / "event-ingest"
    with (module_dir / "variables.tf").open("a", encoding="utf-8") as handle:
        handle.write(
            '\nvariable "extra_setting" {\n  type        = number\n  description = "An extra knob."\n}\n'
        )

    assert docs.main(["--check", "--root", str(module_copy)]) == 1
    assert "extra_setting" not in readme_table_names(module_dir / "README.md", "Inputs")

    assert docs.main(["--root", str(module_copy)]) == 0
    assert "extra_setting" in readme_table_names(module_dir / "README.md", "Inputs")
    assert docs.main(["--check", "--root", str(module_copy)]) == 0


def test_generator_refuses_a_readme_without_markers(
    module_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = module_copy / "modules" / "event-ingest" / "README.md"
    readme.write_text("# event-ingest\n", encoding="utf-8")

    assert docs.main(["--check", "--root", str(module_copy)]) == 2
    assert "BEGIN_TF_DOCS" in capsys.readouterr().err


def test_generator_names_the_file_with_invalid_hcl(
    module_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    variables = module_copy / "modules" / "event-ingest" / "variables.tf"
    variables.write_text('variable "broken" {\n  type = \n', encoding="utf-8")

    assert docs.main(["--check", "--root", str(module_copy)]) == 2
    assert "variables.tf" in capsys.readouterr().err
