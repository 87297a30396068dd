"""Least-privilege IAM and the secure defaults the modules promise, read from the HCL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _iac_support import EXAMPLE_DIRS, MODULE_DIRS, TERRAFORM_ROOT, module_blocks, resources, unwrap

INGEST = TERRAFORM_ROOT / "modules" / "event-ingest"
DISPATCHER = TERRAFORM_ROOT / "modules" / "staggered-dispatcher"
LAMBDA = TERRAFORM_ROOT / "modules" / "lambda-function"

ACTIONS_WITHOUT_RESOURCE_LEVEL_PERMISSIONS = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "cloudwatch:GetMetricData",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
)
"""Actions whose only valid resource is "*" (AWS service authorization reference)."""


def policy_statements(directory: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(document name, statement)`` of every aws_iam_policy_document, dynamic statements included."""
    for kind, name, body in resources(directory, "data"):
        if kind != "aws_iam_policy_document":
            continue
        for statement in body.get("statement", []):
            yield name, statement
        for dynamic in body.get("dynamic", []):
            for content in dynamic.get("statement", {}).get("content", []):
                yield name, content


def all_statements() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (directory.name, name, statement)
        for directory in MODULE_DIRS + EXAMPLE_DIRS
        for name, statement in policy_statements(directory)
    ]


def conditions(statement: dict[str, Any]) -> dict[str, list[Any]]:
    return {item["variable"]: item["values"] for item in statement.get("condition", [])}


def is_allow(statement: dict[str, Any]) -> bool:
    return statement.get("effect", "Allow") == "Allow"


def test_the_policy_documents_are_found() -> None:
    documents = {(directory, name) for directory, name, _ in all_statements()}
    assert ("staggered-dispatcher", "dispatcher") in documents
    assert ("staggered-dispatcher", "processor") in documents
    assert ("event-ingest", "priority_queue") in documents
    assert ("complete", "pipeline_key") in documents


@pytest.mark.parametrize(
    ("directory", "document", "statement"),
    all_statements(),
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_no_allow_statement_grants_a_wildcard_action(
    directory: str, document: str, statement: dict[str, Any]
) -> None:
    if not is_allow(statement):
        return
    for action in statement["actions"]:
        assert "*" not in action, f"{directory}/{document}: {action} allows a wildcard action"


@pytest.mark.parametrize(
    ("directory", "document", "statement"),
    all_statements(),
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_wildcard_denies_are_only_transport_guards(
    directory: str, document: str, statement: dict[str, Any]
) -> None:
    if is_allow(statement):
        return
    assert set(conditions(statement)) <= {"aws:SecureTransport", "s3:TlsVersion"}, f"{directory}/{document}"


def as_list(value: Any) -> list[Any]:
    """A list attribute, or a single expression that computes one (``${concat(...)}``)."""
    return value if isinstance(value, list) else [value]


OWN_RESOURCE_REFERENCE = re.compile(
    r"\b(aws_[a-z0-9_]+\.[a-z0-9_]+|module\.[a-z0-9_]+\.[a-z0-9_]*arn|local\.[a-z0-9_]+_arn"
    r"|var\.[a-z0-9_]+_secret_arn|var\.queues|statement\.value)\b"
)
"""A module's own resources, a child module's, or the one secret a caller names."""


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=lambda path: path.name)
def test_module_grants_name_the_modules_own_resources(module_dir: Path) -> None:
    for document, statement in policy_statements(module_dir):
        if not is_allow(statement) or document.endswith("trust"):
            continue
        for resource in as_list(statement["resources"]):
            if resource == "*":
                unscoped = set(statement["actions"]) - ACTIONS_WITHOUT_RESOURCE_LEVEL_PERMISSIONS
                assert not unscoped, (
                    f"{module_dir.name}/{document}: {sorted(unscoped)} granted on every resource"
                )
            else:
                assert OWN_RESOURCE_REFERENCE.search(resource), f"{module_dir.name}/{document}: {resource}"
                assert "arn:" not in resource.split("${")[0], (
                    f"{module_dir.name}/{document}: literal ARN {resource}"
                )


def test_service_principals_in_resource_policies_are_bound_to_the_modules_rules() -> None:
    """EventBridge may send to a queue only on behalf of this module's rules, not any rule or role."""
    found = 0
    for document, statement in policy_statements(INGEST):
        principals = statement.get("principals", [])
        if is_allow(statement) and any(p["type"] == "Service" for p in principals):
            found += 1
            assert [p["identifiers"] for p in principals] == [["events.amazonaws.com"]], document
            source_arns = as_list(conditions(statement)["aws:SourceArn"])
            assert all("aws_cloudwatch_event_rule." in str(arn) for arn in source_arns), document
        assert not any(p["type"] == "AWS" for p in principals), f"{document} grants to an AWS principal"
    assert found == 2


@pytest.mark.parametrize("document", ["states_trust", "scheduler_trust"])
def test_service_roles_guard_against_the_confused_deputy(document: str) -> None:
    (statement,) = [statement for name, statement in policy_statements(DISPATCHER) if name == document]
    assert conditions(statement)["aws:SourceAccount"] == ["${local.account_id}"]


def _resource_bodies(module_dir: Path, kind: str) -> list[dict[str, Any]]:
    return [body for resource_type, _, body in resources(module_dir, "resource") if resource_type == kind]


def test_buckets_block_public_access_are_versioned_encrypted_and_tls_only() -> None:
    (public_access,) = _resource_bodies(INGEST, "aws_s3_bucket_public_access_block")
    for setting in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        assert public_access[setting] is True
    (versioning,) = _resource_bodies(INGEST, "aws_s3_bucket_versioning")
    assert versioning["versioning_configuration"][0]["status"] == "Enabled"
    (encryption,) = _resource_bodies(INGEST, "aws_s3_bucket_server_side_encryption_configuration")
    default = encryption["rule"][0]["apply_server_side_encryption_by_default"][0]
    assert unwrap(default["sse_algorithm"]) == 'local.sse_kms ? "aws:kms" : "AES256"'
    (ownership,) = _resource_bodies(INGEST, "aws_s3_bucket_ownership_controls")
    assert ownership["rule"][0]["object_ownership"] == "BucketOwnerEnforced"
    bucket_denies = [s for name, s in policy_statements(INGEST) if name == "bucket" and not is_allow(s)]
    assert conditions(bucket_denies[0]) == {"aws:SecureTransport": ["false"]}


QUEUELESS_MODULES = {
    "firehose-delivery",
    "lambda-function",
    "monitoring",
    "firehose-backup",
    "splunk-logs",
    "dynatrace-metrics",
    "dynatrace-dashboard",
}


@pytest.mark.parametrize(
    "module_dir",
    [path for path in MODULE_DIRS if path.name not in QUEUELESS_MODULES],
    ids=lambda path: path.name,
)
def test_every_queue_is_encrypted(module_dir: Path) -> None:
    queues = _resource_bodies(module_dir, "aws_sqs_queue")
    assert queues
    for queue in queues:
        assert unwrap(queue["kms_master_key_id"]) == "var.kms_key_arn"
        assert "sqs_managed_sse_enabled" in queue


def test_every_rule_target_has_a_retry_policy_and_a_dead_letter_queue() -> None:
    targets = _resource_bodies(INGEST, "aws_cloudwatch_event_target")
    assert len(targets) == 2
    for target in targets:
        assert target["retry_policy"][0]["maximum_retry_attempts"]
        assert target["retry_policy"][0]["maximum_event_age_in_seconds"]
        assert unwrap(target["dead_letter_config"][0]["arn"]) == "aws_sqs_queue.ingest_dead_letter.arn"


def test_dead_letter_retention_is_checked_against_the_source_queue() -> None:
    (dlq,) = [
        body for kind, name, body in resources(INGEST) if kind == "aws_sqs_queue" and name == "dead_letter"
    ]
    (precondition,) = dlq["lifecycle"][0]["precondition"]
    assert unwrap(precondition["condition"]) == (
        "local.queue_settings.dlq_message_retention_seconds > local.queue_settings.message_retention_seconds"
    )
    assert "queue_overrides.dlq_message_retention_seconds" in precondition["error_message"]


def lambda_module_calls(directory: Path) -> dict[str, dict[str, Any]]:
    """Name -> arguments of every call of the lambda-function module in ``directory``."""
    return {
        name: body
        for name, body in module_blocks(directory, "module")
        if body["source"] == "../lambda-function"
    }


def test_every_lambda_is_built_by_the_lambda_function_module() -> None:
    """One place builds a function, its role and its log group: no module repeats the block."""
    built_by = {
        directory.name
        for directory in MODULE_DIRS + EXAMPLE_DIRS
        for kind, _, _ in resources(directory)
        if kind == "aws_lambda_function"
    }
    assert built_by == {"lambda-function"}
    callers = {
        directory.name: sorted(lambda_module_calls(directory)) for directory in MODULE_DIRS + EXAMPLE_DIRS
    }
    assert {name: calls for name, calls in callers.items() if calls} == {
        "alerting": ["notifier"],
        "splunk-logs": ["transform"],
        "staggered-dispatcher": ["autoscaler", "processor"],
    }


def test_lambda_and_state_machine_trace_and_log_with_retention() -> None:
    variables = dict(module_blocks(DISPATCHER, "variable"))
    assert variables["tracing_enabled"]["default"] is True
    assert variables["log_retention_days"]["default"] >= 365
    (function,) = _resource_bodies(LAMBDA, "aws_lambda_function")
    assert unwrap(function["tracing_config"][0]["mode"]) == 'var.tracing_enabled ? "Active" : "PassThrough"'
    assert unwrap(function["source_code_hash"]) == "filebase64sha256(var.package_path)"
    assert unwrap(function["logging_config"][0]["log_group"]) == "aws_cloudwatch_log_group.this.name"
    (function_logs,) = _resource_bodies(LAMBDA, "aws_cloudwatch_log_group")
    calls = lambda_module_calls(DISPATCHER)
    assert set(calls) == {"processor", "autoscaler"}
    for call in calls.values():
        assert unwrap(call["tracing_enabled"]) == "var.tracing_enabled"
        assert unwrap(call["package_path"]) == "var.package_path"
    processor = calls["processor"]
    assert unwrap(processor["runtime"]) == "local.processor_settings.runtime"
    assert unwrap(processor["architecture"]) == "local.architecture"
    (state_machine,) = _resource_bodies(DISPATCHER, "aws_sfn_state_machine")
    assert unwrap(state_machine["tracing_configuration"][0]["enabled"]) == "var.tracing_enabled"
    logging = state_machine["logging_configuration"][0]
    assert unwrap(logging["level"]) == "var.state_machine_log_level"
    # an Express dispatcher is observed through its log group; bodies and cursors stay out of it
    assert logging["include_execution_data"] is False
    for log_group in [function_logs, *_resource_bodies(DISPATCHER, "aws_cloudwatch_log_group")]:
        assert unwrap(log_group["retention_in_days"]) == "var.log_retention_days"
        assert unwrap(log_group["kms_key_id"]) == "var.kms_key_arn"
    for call in calls.values():
        assert unwrap(call["log_retention_days"]) == "var.log_retention_days"
        assert unwrap(call["kms_key_arn"]) == "var.kms_key_arn"


def test_the_budget_parameter_value_belongs_to_the_autoscaler() -> None:
    parameters = _resource_bodies(DISPATCHER, "aws_ssm_parameter")
    assert len(parameters) == 2  # the budget and the autoscaler's flight parameter
    for parameter in parameters:
        assert [unwrap(item) for item in parameter["lifecycle"][0]["ignore_changes"]] == ["value"]


def test_the_processor_can_tell_a_deleted_object_from_a_forbidden_one() -> None:
    """Without s3:ListBucket S3 answers 403, not 404: a deleted object must be REJECTED once."""
    grants = {
        action: as_list(statement["resources"])
        for name, statement in policy_statements(DISPATCHER)
        if name == "processor" and is_allow(statement)
        for action in statement["actions"]
    }
    assert grants["s3:ListBucket"] == ["${local.source_bucket_arn}"]
    assert grants["s3:GetObject"] == ["${local.source_bucket_arn}/*"]
    assert grants["s3:PutObject"] == ["${local.failed_rows_bucket_arn}/${local.failed_rows_prefix}*"]
