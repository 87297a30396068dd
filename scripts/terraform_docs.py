#!/usr/bin/env python3
"""Generate, or check, the inputs/outputs tables of each Terraform module README.

The tables are written between ``<!-- BEGIN_TF_DOCS -->`` and ``<!-- END_TF_DOCS -->`` (the markers
terraform-docs uses, so a team can switch to it) from ``variables.tf`` and ``outputs.tf``, parsed
with python-hcl2; no ``terraform`` binary is needed.

Usage::

    python scripts/terraform_docs.py            # rewrite the tables of every module and example
    python scripts/terraform_docs.py --check    # exit 1 and name the READMEs that are stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

REPO_ROOT = Path(__file__).resolve().parent.parent
TERRAFORM_ROOT = REPO_ROOT / "terraform"
BEGIN_MARKER = "<!-- BEGIN_TF_DOCS -->"
END_MARKER = "<!-- END_TF_DOCS -->"
_MARKERS = re.compile(re.escape(BEGIN_MARKER) + r".*?" + re.escape(END_MARKER), re.DOTALL)
_INTERPOLATION = re.compile(r"^\$\{(.*)\}$", re.DOTALL)


class DocsError(ValueError):
    """A module cannot be documented; the message names the file and what to fix."""


@dataclass(frozen=True)
class ModuleInput:
    """A ``variable`` block."""

    name: str
    description: str | None
    type: str | None
    default: Any
    required: bool
    nullable: bool


@dataclass(frozen=True)
class ModuleOutput:
    """An ``output`` block."""

    name: str
    description: str | None
    sensitive: bool


def load_hcl(path: Path) -> dict[str, Any]:
    """Parse one ``.tf`` file; string values come back without their quotes."""
    options = SerializationOptions(strip_string_quotes=True, with_comments=False)
    try:
        with path.open(encoding="utf-8") as handle:
            parsed: dict[str, Any] = hcl2.load(handle, serialization_options=options)
    except Exception as error:
        raise DocsError(f"{path}: not valid HCL: {error}") from error
    return parsed


def unwrap_expression(value: Any) -> Any:
    """``"${map(string)}"`` -> ``"map(string)"``; anything else unchanged."""
    if isinstance(value, str):
        match = _INTERPOLATION.match(value)
        if match:
            return match.group(1)
    return value


def _blocks(parsed: dict[str, Any], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for block in parsed.get(kind, []):
        yield from block.items()


def _hcl_files(module_dir: Path) -> list[Path]:
    return sorted(module_dir.glob("*.tf"))


def read_inputs(module_dir: Path) -> list[ModuleInput]:
    """Every ``variable`` of the module, sorted: required ones first, then by name."""
    inputs = []
    for path in _hcl_files(module_dir):
        for name, body in _blocks(load_hcl(path), "variable"):
            inputs.append(
                ModuleInput(
                    name=name,
                    description=body.get("description"),
                    type=unwrap_expression(body.get("type")),
                    default=body.get("default"),
                    required="default" not in body,
                    nullable=body.get("nullable", True) not in (False, "false"),
                )
            )
    return sorted(inputs, key=lambda item: (not item.required, item.name))


def read_outputs(module_dir: Path) -> list[ModuleOutput]:
    """Every ``output`` of the module, sorted by name."""
    outputs = []
    for path in _hcl_files(module_dir):
        for name, body in _blocks(load_hcl(path), "output"):
            outputs.append(
                ModuleOutput(
                    name=name,
                    description=body.get("description"),
                    sensitive=body.get("sensitive") in (True, "true"),
                )
            )
    return sorted(outputs, key=lambda item: item.name)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return "`" + _cell(text).replace("`", "'") + "`"


def _default(value: Any) -> str:
    value = unwrap_expression(value)
    if value is None:
        return "`null`"
    if isinstance(value, str) and value.startswith("${"):
        return _code(value)
    return _code(json.dumps(value, sort_keys=True))


def render_tables(module_dir: Path) -> str:
    """The Markdown between the markers for ``module_dir``."""
    inputs = read_inputs(module_dir)
    outputs = read_outputs(module_dir)
    lines = [BEGIN_MARKER, "## Inputs", ""]
    if inputs:
        lines += ["| Name | Description | Type | Default | Required |", "|---|---|---|---|:---:|"]
        for item in inputs:
            default = "n/a" if item.required else _default(item.default)
            lines.append(
                f"| `{item.name}` | {_cell(item.description or '')} | {_code(item.type or 'any')} "
                f"| {default} | {'yes' if item.required else 'no'} |"
            )
    else:
        lines.append("No inputs.")
    lines += ["", "## Outputs", ""]
    if outputs:
        lines += ["| Name | Description |", "|---|---|"]
        for output in outputs:
            sensitive = " (sensitive)" if output.sensitive else ""
            lines.append(f"| `{output.name}` | {_cell(output.description or '')}{sensitive} |")
    else:
        lines.append("No outputs.")
    lines.append(END_MARKER)
    return "\n".join(lines)


def updated_readme(module_dir: Path) -> str:
    """The README text of ``module_dir`` with fresh tables."""
    readme = module_dir / "README.md"
    if not readme.is_file():
        raise DocsError(f"{readme} is missing: write a README with {BEGIN_MARKER} and {END_MARKER}")
    text = readme.read_text(encoding="utf-8")
    if not _MARKERS.search(text):
        raise DocsError(f"{readme} has no {BEGIN_MARKER} ... {END_MARKER} section: add the two markers")
    tables = render_tables(module_dir)
    return _MARKERS.sub(lambda _match: tables, text, count=1)


def documented_dirs(root: Path = TERRAFORM_ROOT) -> list[Path]:
    """Every module and example directory (a directory holding ``variables.tf`` or ``outputs.tf``)."""
    return sorted(
        {path.parent for pattern in ("*/*/variables.tf", "*/*/outputs.tf") for path in root.glob(pattern)}
    )


def stale_readmes(root: Path = TERRAFORM_ROOT) -> list[Path]:
    """READMEs whose tables differ from what the module declares."""
    return [
        module_dir / "README.md"
        for module_dir in documented_dirs(root)
        if updated_readme(module_dir) != (module_dir / "README.md").read_text(encoding="utf-8")
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Keep Terraform README inputs/outputs tables in sync.")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if a README is stale")
    parser.add_argument("--root", type=Path, default=TERRAFORM_ROOT)
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_readmes(args.root)
            for readme in stale:
                print(f"stale: {readme} (run `python scripts/terraform_docs.py`)", file=sys.stderr)
            return 1 if stale else 0
        for module_dir in documented_dirs(args.root):
            readme = module_dir / "README.md"
            text = updated_readme(module_dir)
            if text != readme.read_text(encoding="utf-8"):
                readme.write_text(text, encoding="utf-8")
                print(f"updated {readme}")
    except DocsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
