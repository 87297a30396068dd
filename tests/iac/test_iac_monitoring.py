"""Terraform's monitoring module and s3stagger.definitions.alarms.expand make the same alarms.

The module is planned offline (planning new alarms calls no API) from a throw-away root module,
with the resource names ``pipeline_alarm_resources`` gives local mode, and every planned
``aws_cloudwatch_metric_alarm`` is compared with the Python expansion field by field. Terraform
copies a module given by absolute path, so the definitions are passed by ``definitions_path``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from _iac_support import DEFINITIONS_DIR, TERRAFORM_ROOT
from test_iac_terraform import PLUGIN_DIR, needs_offline_provider, run_terraform, terraform_env

from s3stagger.definitions.alarms import (
    AlarmResources,
    ConcreteAlarm,
    expand,
    load_alarm_definitions,
    pipeline_alarm_resources,
)
from s3stagger.definitions.alerting import load_alerting_definition

MONITORING = TERRAFORM_ROOT / "modules" / "monitoring"
STATE_MACHINE_ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:s3stagger-dispatcher"

ROOT_MODULE = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

provider "aws" {
  region                      = "eu-west-1"
  access_key                  = "planning-only"
  secret_key                  = "planning-only"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}

variable "monitoring" {
  type = any
}

module "monitoring" {
  source = "%s"

  definitions_path             = var.monitoring.definitions_path
  name_prefix                  = var.monitoring.name_prefix
  queues                       = var.monitoring.queues
  dead_letter_queues           = var.monitoring.dead_letter_queues
  event_rules                  = var.monitoring.event_rules
  processor                    = var.monitoring.processor
  processor_metrics_dimensions = var.monitoring.processor_metrics_dimensions
  state_machine_arn            = var.monitoring.state_machine_arn
  notifier_function_name       = var.monitoring.notifier_function_name
  autoscaler_function_name     = var.monitoring.autoscaler_function_name
  delivery_streams             = var.monitoring.delivery_streams
}
"""


def module_inputs(resources: AlarmResources) -> dict[str, Any]:
    reserved = resources.processor_reserved_concurrency
    return {
        "definitions_path": DEFINITIONS_DIR.as_posix(),
        "name_prefix": resources.name_prefix,
        "queues": dict(resources.queues),
        "dead_letter_queues": dict(resources.dlqs),
        "event_rules": dict(resources.rules),
        "processor": {
            "function_name": resources.processor_function_name,
            "timeout_seconds": resources.processor_timeout_ms // 1000,
            "reserved_concurrency": reserved,
        },
        "processor_metrics_dimensions": dict(resources.processor_metrics_dimensions),
        "state_machine_arn": resources.dispatcher_state_machine_arn,
        "notifier_function_name": resources.notifier_function_name,
        "autoscaler_function_name": resources.autoscaler_function_name,
        "delivery_streams": dict(resources.delivery_streams),
    }


def as_planned(alarm: ConcreteAlarm) -> dict[str, Any]:
    """What the plan must say for ``alarm`` (the provider's attribute names); the description in the
    format the notifier parses back (alerting.json)."""
    return {
        "alarm_name": alarm.name,
        "alarm_description": load_alerting_definition().alarm_description(alarm.summary, alarm.runbook),
        "namespace": alarm.namespace,
        "metric_name": alarm.metric_name,
        "dimensions": dict(alarm.dimensions),
        "statistic": None if alarm.extended_statistic else alarm.statistic,
        "extended_statistic": alarm.statistic if alarm.extended_statistic else None,
        "period": alarm.period_s,
        "evaluation_periods": alarm.evaluation_periods,
        "datapoints_to_alarm": alarm.datapoints_to_alarm,
        "comparison_operator": alarm.comparison,
        "threshold": pytest.approx(alarm.threshold, rel=1e-12),
        "treat_missing_data": alarm.treat_missing_data,
    }


def planned_alarms(resources: AlarmResources, tmp_path: Path) -> dict[str, dict[str, Any]]:
    root = tmp_path / "root"
    root.mkdir()
    (root / "main.tf").write_text(ROOT_MODULE % MONITORING.as_posix(), encoding="utf-8")
    (root / "terraform.tfvars.json").write_text(
        json.dumps({"monitoring": module_inputs(resources)}), encoding="utf-8"
    )
    env = terraform_env(tmp_path)
    init = run_terraform(["init", "-backend=false", "-input=false", f"-plugin-dir={PLUGIN_DIR}"], root, env)
    assert init.returncode == 0, init.stdout + init.stderr
    plan = run_terraform(["plan", "-input=false", "-refresh=false", "-out=plan.bin"], root, env)
    assert plan.returncode == 0, plan.stdout[-4000:] + plan.stderr[-4000:]
    show = run_terraform(["show", "-json", "plan.bin"], root, env)
    assert show.returncode == 0, show.stderr
    changes = json.loads(show.stdout)["resource_changes"]
    keys = list(as_planned(next(iter(expand(load_alarm_definitions(), resources)))))
    return {
        change["change"]["after"]["alarm_name"]: {key: change["change"]["after"].get(key) for key in keys}
        for change in changes
        if change["type"] == "aws_cloudwatch_metric_alarm"
    }


SHIPPED = pipeline_alarm_resources(
    "s3stagger",
    STATE_MACHINE_ARN,
    alert_dlq_name="s3stagger-alert-dlq",
    notifier_function_name="s3stagger-notifier",
    alert_rule_names=("s3stagger-alarm-state-change",),
)
THREE_PRIORITIES_WITHOUT_ALERTING = AlarmResources(
    name_prefix="team-a",
    queues={p: f"team-a-{p}" for p in ("urgent", "high", "normal")},
    dlqs={**{p: f"team-a-{p}-dlq" for p in ("urgent", "high", "normal")}, "ingest-dlq": "team-a-ingest-dlq"},
    rules={f"object-created-{p}": f"team-a-object-created-{p}" for p in ("urgent", "high", "normal")},
    processor_function_name="team-a-processor",
    processor_timeout_ms=120_000,
    processor_reserved_concurrency=None,
    dispatcher_state_machine_arn=STATE_MACHINE_ARN.replace("s3stagger", "team-a"),
    processor_metrics_dimensions={"service": "team-a-processor"},
)

WITH_DELIVERY_STREAMS = dataclasses.replace(
    SHIPPED,
    delivery_streams={"splunk": "s3stagger-splunk-logs", "dynatrace": "s3stagger-dynatrace-metrics"},
)
ONLY_THE_SPLUNK_STREAM = dataclasses.replace(
    THREE_PRIORITIES_WITHOUT_ALERTING, delivery_streams={"splunk": "team-a-splunk-logs"}
)


@needs_offline_provider
@pytest.mark.parametrize(
    "resources",
    [SHIPPED, THREE_PRIORITIES_WITHOUT_ALERTING, WITH_DELIVERY_STREAMS, ONLY_THE_SPLUNK_STREAM],
    ids=[
        "shipped definitions",
        "3 priorities without alerting",
        "with the splunk and dynatrace streams",
        "only the splunk stream",
    ],
)
def test_terraform_plans_exactly_the_alarms_the_python_expansion_makes(
    resources: AlarmResources, tmp_path: Path
) -> None:
    expected = {alarm.name: as_planned(alarm) for alarm in expand(load_alarm_definitions(), resources)}
    planned = planned_alarms(resources, tmp_path)
    assert sorted(planned) == sorted(expected)
    for name, attributes in expected.items():
        assert planned[name] == attributes, name
