"""The alerting module renders each alert rule from the template alerting.json names for its kind,
and sets every notifier setting alerting.json leaves to the deployment (read from the HCL)."""

from __future__ import annotations

import json
import re

from _iac_support import DEFINITIONS_DIR, TERRAFORM_ROOT

ALERTING = TERRAFORM_ROOT / "modules" / "alerting"
MAIN = (ALERTING / "main.tf").read_text(encoding="utf-8")
DEFINITION = json.loads((DEFINITIONS_DIR / "alerting.json").read_text(encoding="utf-8"))


def test_each_rule_kind_is_rendered_from_the_template_alerting_json_names() -> None:
    rendered = dict(re.findall(r'(\w+) = templatefile\("\$\{local\.definitions_path\}/([^"]+)"', MAIN))
    assert {rule["kind"]: rule["event_pattern_template"] for rule in DEFINITION["rules"]} == rendered


def test_every_notifier_setting_left_to_the_deployment_is_set() -> None:
    left_open = {name for name, value in DEFINITION["notifier"]["environment"].items() if value is None}
    set_by_module = set(re.findall(r"\b(S3STAGGER_[A-Z_]+)\s*=", MAIN))
    assert left_open <= set_by_module, f"the module leaves {sorted(left_open - set_by_module)} unset"
    assert set_by_module <= set(DEFINITION["notifier"]["environment"]), (
        "a setting alerting.json does not know"
    )
