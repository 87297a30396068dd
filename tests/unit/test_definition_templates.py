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


def _targets(state: dict[str, object]) -> set[str]:
    """Every state ``state`` can go to next (Next, Default, a Choice rule, a Catch)."""
    found = {state[key] for key in ("Next", "Default") if isinstance(state.get(key), str)}
    for branch in ("Choices", "Catch"):
        rules = state.get(branch, [])
        assert isinstance(rules, list)
        found |= {rule["Next"] for rule in rules}
    return {str(name) for name in found}


def test_every_processor_call_starts_with_a_fresh_claim_and_no_hold_is_longer() -> None:
    """The only way into InvokeProcessor is ExtendVisibility to receive_claim_s: however long the
    way from the receive took (a stagger wait, Lambda's refusals), the call's start has the whole
    claim, and no hold the dispatcher sets can outlive it by more than the wait it covers."""
    slot = json.loads(definitions.read_text("dispatcher.asl.json"))["States"]["RunSlots"]["ItemProcessor"][
        "States"
    ]
    into_call = {name for name, state in slot.items() if "InvokeProcessor" in _targets(state)}
    assert into_call == {"ExtendVisibility"}
    assert slot["ExtendVisibility"]["Parameters"]["VisibilityTimeout.$"] == "$.settings.receiveClaimS"
    holds = {
        name: state["Parameters"]["VisibilityTimeout.$"]
        for name, state in slot.items()
        if state.get("Resource", "").endswith("sqs:changeMessageVisibility")
    }
    assert holds == {
        "HoldForStagger": "States.MathAdd($.stagger.delayS, $.settings.receiveClaimS)",
        "ExtendVisibility": "$.settings.receiveClaimS",
        "HoldForRetry": "States.MathAdd($.retry.waitS, $.settings.receiveClaimS)",
        "ReleaseForRetry": "$.settings.failureRetryDelayS",
    }
