import json

import pytest

from s3stagger import definitions
from s3stagger.local.templates import (
    TemplateError,
    json_string_list_items,
    placeholders,
    render_definition_json,
    render_template,
)

TEMPLATES = ["dispatcher.asl.json", "event_pattern.json", "event_pattern_unrouted.json"]
SETTINGS = [
    "queues.json",
    "event_rules.json",
    "dispatcher.json",
    "processor.json",
    "budget.json",
    "storage.json",
]


def test_render_replaces_every_placeholder() -> None:
    assert render_template("a ${x} b ${y_1} ${x}", {"x": 1, "y_1": "z"}) == "a 1 b z 1"


def test_a_placeholder_without_value_is_named() -> None:
    with pytest.raises(TemplateError, match=r"t: no value for placeholder\(s\) y"):
        render_template("${x}${y}", {"x": 1}, name="t")


def test_a_value_without_placeholder_is_named() -> None:
    with pytest.raises(TemplateError, match=r"unknown placeholder\(s\) z"):
        render_template("${x}", {"x": 1, "z": 2})


def test_only_the_terraform_interpolation_form_counts() -> None:
    # $$.Map... and States.Format('{}') are ASL, not placeholders; %{ directives are not used.
    assert placeholders("$$.Map.Item.Value States.Format('{}-g{}', $.slot) ${name}") == {"name"}


@pytest.mark.parametrize("name", TEMPLATES + SETTINGS)
def test_every_definition_is_valid_json_before_rendering(name: str) -> None:
    json.loads(definitions.read_text(name))
    assert "%{" not in definitions.read_text(name)


@pytest.mark.parametrize("name", SETTINGS)
def test_settings_files_document_themselves(name: str) -> None:
    data = definitions.read_json(name)
    assert isinstance(data.get("_comment"), str)
    assert len(data["_comment"]) > 40


def test_rendered_json_that_breaks_is_reported_with_the_file() -> None:
    values = dict.fromkeys(placeholders(definitions.read_text("event_pattern.json")), 'bad"quote')
    with pytest.raises(TemplateError, match=r"event_pattern\.json: rendered text is not JSON"):
        render_definition_json("event_pattern.json", values)


def test_readme_lists_every_dispatcher_placeholder() -> None:
    readme = definitions.read_text("README.md")
    for name in placeholders(definitions.read_text("dispatcher.asl.json")):
        generic = name.replace("high_", "<priority>_").replace("normal_", "<priority>_")
        assert f"`{name}`" in readme or f"`{generic}`" in readme or name in readme, name


def test_a_generated_list_renders_as_a_json_list_in_a_valid_json_template() -> None:
    template = '{"wildcard": ["${items}"]}'
    json.loads(template)  # valid JSON before rendering
    rendered = render_template(template, {"items": json_string_list_items(['a"b', "c\\d", "é"])})
    assert json.loads(rendered) == {"wildcard": ['a"b', "c\\d", "é"]}
    with pytest.raises(TemplateError, match="at least one item"):
        json_string_list_items([])
