"""Rendering of the ``definitions/`` templates as Terraform's ``templatefile`` would.

Placeholders are ``${identifier}`` only. Rendering is strict both ways: a placeholder without a
value, or a value without a placeholder, is an error, so a template and its callers cannot drift
apart silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from s3stagger import definitions
from s3stagger.errors import S3StaggerError

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TemplateError(S3StaggerError, ValueError):
    """A template and the values given for it do not match."""


def placeholders(template: str) -> set[str]:
    """The names of the ``${name}`` placeholders in ``template``."""
    return set(PLACEHOLDER.findall(template))


def render_template(template: str, values: Mapping[str, object], *, name: str = "template") -> str:
    """Replace every ``${name}`` in ``template`` with ``str(values[name])``."""
    wanted = placeholders(template)
    missing = sorted(wanted - set(values))
    unused = sorted(set(values) - wanted)
    if missing:
        raise TemplateError(f"{name}: no value for placeholder(s) {', '.join(missing)}")
    if unused:
        raise TemplateError(f"{name}: value(s) given for unknown placeholder(s) {', '.join(unused)}")
    return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), template)


def json_string_list_items(items: Sequence[str]) -> str:
    """The text of a JSON list of strings without its outer ``["`` and ``"]``.

    A template keeps a generated list valid JSON before rendering by writing it as ``["${name}"]``;
    this value turns that into the whole list, each item JSON-escaped. Terraform computes the same
    with ``trimsuffix(trimprefix(jsonencode(items), "[\""), "\"]")``.
    """
    if not items:
        raise TemplateError("a generated list needs at least one item")
    return json.dumps(list(items))[2:-2]


def render_definition_json(file_name: str, values: Mapping[str, object]) -> Any:
    """Render the definition template ``file_name`` and parse the result as JSON."""
    rendered = render_template(definitions.read_text(file_name), values, name=file_name)
    try:
        return json.loads(rendered)
    except json.JSONDecodeError as error:
        raise TemplateError(f"{file_name}: rendered text is not JSON: {error}") from error
