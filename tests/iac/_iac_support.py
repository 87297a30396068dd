"""Reading the Terraform sources without a ``terraform`` binary: python-hcl2 plus small helpers.

The scripts under ``scripts/`` are loaded by path (they are tools, not part of the package).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_ROOT = REPO_ROOT / "terraform"
DEFINITIONS_DIR = REPO_ROOT / "src" / "s3stagger" / "definitions"
MODULE_DIRS = sorted(path for path in (TERRAFORM_ROOT / "modules").iterdir() if path.is_dir())
EXAMPLE_DIRS = sorted(path for path in (TERRAFORM_ROOT / "examples").iterdir() if path.is_dir())
TF_FILES = sorted(TERRAFORM_ROOT.rglob("*.tf"))
TFTEST_FILES = sorted(TERRAFORM_ROOT.rglob("*.tftest.hcl"))
# Terraform providers come from a local mirror only (`terraform providers mirror` layout), never the
# network; scripts/terraform_hook.sh has the same default.
DEFAULT_TF_PLUGIN_DIR = Path("/opt/tf-plugins")
TF_PLUGIN_DIR = Path(os.environ.get("S3STAGGER_TF_PLUGIN_DIR", DEFAULT_TF_PLUGIN_DIR))


def holds_aws_provider(plugin_dir: Path) -> bool:
    return any(plugin_dir.glob("registry.terraform.io/hashicorp/aws/*/*/terraform-provider-aws*"))


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` as a module."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@cache
def parse_tf(path: Path) -> dict[str, Any]:
    """One ``.tf`` file as python-hcl2 returns it, string quotes stripped."""
    docs = load_script("terraform_docs")
    parsed: dict[str, Any] = docs.load_hcl(path)
    return parsed


def module_blocks(module_dir: Path, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(label, body)`` of every top-level block ``kind`` (variable, output, locals...) in a module."""
    for path in sorted(module_dir.glob("*.tf")):
        for block in parse_tf(path).get(kind, []):
            if kind == "locals":
                yield "locals", block
            else:
                yield from block.items()


def module_locals(module_dir: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for _, block in module_blocks(module_dir, "locals"):
        merged.update({key: value for key, value in block.items() if not key.startswith("__")})
    return merged


def resources(module_dir: Path, kind: str = "resource") -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(type, name, body)`` of every resource (or data source with ``kind="data"``)."""
    for resource_type, named in module_blocks(module_dir, kind):
        for name, body in named.items():
            yield resource_type, name, body


def unwrap(expression: Any) -> Any:
    """``"${expr}"`` -> ``"expr"``."""
    if isinstance(expression, str) and expression.startswith("${") and expression.endswith("}"):
        return expression[2:-1]
    return expression


def split_top_level(text: str, separators: str = ",") -> list[str]:
    """Split ``text`` on any of ``separators`` outside brackets and string literals."""
    parts: list[str] = []
    depth = 0
    in_string = False
    current: list[str] = []
    previous = ""
    for char in text:
        if char == '"' and previous != "\\":
            in_string = not in_string
        elif not in_string:
            if char in "([{":
                depth += 1
            elif char in ")]}":
                depth -= 1
            elif char in separators and depth == 0:
                if "".join(current).strip():
                    parts.append("".join(current).strip())
                current = []
                previous = char
                continue
        current.append(char)
        previous = char
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def call_arguments(expression: str, function: str) -> list[list[str]]:
    """The top-level-split arguments of every call of ``function`` in ``expression``."""
    calls = []
    for match in re.finditer(rf"\b{re.escape(function)}\(", expression):
        start = match.end()
        depth = 1
        index = start
        in_string = False
        while depth:
            char = expression[index]
            if char == '"' and expression[index - 1] != "\\":
                in_string = not in_string
            elif not in_string:
                depth += {"(": 1, ")": -1}.get(char, 0)
            index += 1
        calls.append(split_top_level(expression[start : index - 1]))
    return calls


def file_reads(module_dir: Path) -> list[tuple[str, str, str | None]]:
    """Every ``file(...)``/``templatefile(...)`` in a module: ``(function, path, vars expression)``."""
    reads: list[tuple[str, str, str | None]] = []
    text = "\n".join(path.read_text(encoding="utf-8") for path in sorted(module_dir.glob("*.tf")))
    for function in ("templatefile", "file", "filebase64sha256"):
        for arguments in call_arguments(text, function):
            path = arguments[0].strip().strip('"')
            reads.append((function, path, arguments[1] if len(arguments) > 1 else None))
    return reads


def object_keys(
    expression: str | dict[str, Any], collections: dict[str, list[str]], local_values: dict[str, Any]
) -> set[str]:
    """Keys of a Terraform object expression: a literal, ``merge(...)`` of them, ``for`` objects, or a local.

    ``collections`` gives, for each collection a ``for`` iterates (``local.priorities``), its keys.
    """
    if isinstance(expression, dict):  # an object literal the HCL parser already read
        return set(expression)
    expression = unwrap(expression.strip())
    if expression.startswith("local."):
        return object_keys(local_values[expression.removeprefix("local.")], collections, local_values)
    if expression.startswith("merge("):
        keys: set[str] = set()
        for argument in call_arguments(expression, "merge")[0]:
            keys |= object_keys(argument, collections, local_values)
        return keys
    if not (expression.startswith("{") and expression.endswith("}")):
        raise AssertionError(f"not an object expression: {expression}")
    body = expression[1:-1].strip()
    comprehension = re.match(r'for\s+(\w+)(?:\s*,\s*\w+)?\s+in\s+([\w.]+)\s*:\s*"([^"]+)"\s*=>', body)
    if comprehension:
        variable, collection, template = comprehension.groups()
        return {template.replace("${" + variable + "}", item) for item in collections[collection]}
    return {split_top_level(entry, "=")[0].strip() for entry in split_top_level(body, ",\n")}
