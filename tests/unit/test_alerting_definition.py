"""alerting.json: the shipped file is valid; each rule it must obey is checked with a message."""

import copy
from pathlib import Path

import pytest

from s3stagger import definitions
from s3stagger.definitions.alerting import AlertingDefinitionError, load_alerting_definition
from s3stagger.local.mailbox_location import MAILBOX_ENV, default_mailbox

SHIPPED = definitions.read_json("alerting.json")


def test_the_shipped_definition_names_everything() -> None:
    d = load_alerting_definition()
    assert d.alert_queue_name("p") == "p-alerts"
    assert d.alert_dlq_name("p") == "p-alerts-dlq"
    assert d.notifier_function_name("p") == "p-notifier"
    assert d.smtp_secret_name("p") == "p/alerting/smtp"
    assert d.state_path("p") == "/p/alerting/state"
    assert d.rule_names("p", standard_dispatcher=False) == (
        "p-alert-alarm-state-change",
        "p-alert-object-failed",
        "p-alert-object-unrouted",
    )
    assert len(d.rule_names("p")) == 4
    assert d.alarm_description("It broke.", "docs/runbooks/x.md") == "It broke. Runbook: docs/runbooks/x.md"
    assert d.runbook_of("unrouted") == "docs/runbooks/object-unrouted.md"
    for rule in d.rules:  # every template exists
        assert definitions.read_text(rule.event_pattern_template)


def changed(path: list[str], value: object) -> dict:
    data = copy.deepcopy(SHIPPED)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["alert_queue", "visibility_timeout_s"], 60, "6 x notifier.timeout_s"),
        (["alert_dlq", "message_retention_s"], 60, "retain messages longer"),
        (["digest_interval_s"], 3600, "digest_interval_s must be in"),
        (["smtp", "security"], "none", "starttls or tls"),
        (["alarm_description_format"], "{summary}", "needs {summary} and {runbook}"),
        (["rules"], [], "one of each kind"),
        (["state"], {}, "missing or malformed field"),
    ],
)
def test_each_rule_says_what_to_change(path: list[str], value: object, message: str) -> None:
    with pytest.raises(AlertingDefinitionError, match=message):
        load_alerting_definition(changed(path, value))


def test_default_mailbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(MAILBOX_ENV, str(tmp_path / "m.mbox"))
    assert default_mailbox() == tmp_path / "m.mbox"
    monkeypatch.delenv(MAILBOX_ENV)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_mailbox() == tmp_path / "s3stagger" / "mail.mbox"
