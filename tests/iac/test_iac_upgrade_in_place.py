"""A stack deployed with the modules that built each Lambda themselves upgrades in place.

The processor, autoscaler, notifier and transform moved into the ``lambda-function`` module, the
Firehose backups, roles and error logs of splunk-logs and dynatrace-metrics into
``firehose-delivery``; the ``moved`` blocks of their modules carry the deployed resources over to
the new addresses. ``terraform test`` (mocked provider) applies a root of the previous release's
modules (``git archive`` of :data:`PREVIOUS_RELEASE`), then plans the same root with the current
modules on that state (``state_key``): a resource the plan would create anew has no ARN until it is
applied, so the assertions on the deployed ARNs (and the backup buckets' names, read back as their ids) fail
for every function, role or bucket that would be destroyed and created instead of moved.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from _iac_support import DEFINITIONS_DIR, REPO_ROOT, TERRAFORM_ROOT
from test_iac_terraform import PLUGIN_DIR, needs_offline_provider, run_terraform, terraform_env

PREVIOUS_RELEASE = "695906286436a7c8a52701a90c66e9ee4bb90c72"
DEFINITIONS = "src/s3stagger/definitions"
"""The last commit whose modules built each Lambda themselves (before ``lambda-function``)."""

ROOT = """
module "ingest" {
  source = "%(modules)s//event-ingest"

  definitions_path = var.definitions_path
}

module "dispatcher" {
  source = "%(modules)s//staggered-dispatcher"

  definitions_path        = var.definitions_path
  queues                  = module.ingest.queues
  source_bucket_name      = module.ingest.uploads_bucket_name
  failed_rows_bucket_name = module.ingest.failed_rows_bucket_name
  downstream_url          = "https://api.example.com/v1/rows"
  package_path            = var.package_path
}

module "alerting" {
  source = "%(modules)s//alerting"

  definitions_path    = var.definitions_path
  package_path        = var.package_path
  state_machine_arn   = module.dispatcher.state_machine_arn
  uploads_bucket_name = module.ingest.uploads_bucket_name
  smtp                = { from = "s3stagger@example.com", to = ["oncall@example.com"] }
  vpc_config = {
    subnet_ids         = ["subnet-0123456789abcdef0"]
    security_group_ids = ["sg-0123456789abcdef0"]
  }
}

module "splunk" {
  source = "%(modules)s//splunk-logs"

  definitions_path     = var.definitions_path
  package_path         = var.package_path
  log_group_names      = { processor = module.dispatcher.processor_log_group_name }
  hec_endpoint         = "https://splunk.example.com:8088"
  hec_token_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:splunk-hec-AbCdEf"
}

module "dynatrace" {
  source = "%(modules)s//dynatrace-metrics"

  definitions_path          = var.definitions_path
  dynatrace_endpoint_url    = "https://aws.cloud.dynatrace.com/metrics"
  dynatrace_environment_url = "https://abc12345.live.dynatrace.com"
  api_token_secret_arn      = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dynatrace-token-AbCdEf"
}

variable "definitions_path" {
  type = string
}

variable "package_path" {
  type = string
}

output "deployed" {
  value = {
    processor      = module.dispatcher.processor_function_arn
    processor_role = module.dispatcher.processor_role_arn
    notifier       = module.alerting.notifier_function_arn
    notifier_role  = module.alerting.notifier_role_arn
    splunk_backup  = module.splunk.backup_bucket_name
    dynatrace_backup = module.dynatrace.backup_bucket_name
  }
}

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.61, < 6.0"
    }
  }
}
"""

MOCKS = {
    "aws_iam_role": {"arn": "arn:aws:iam::123456789012:role/mock"},
    "aws_cloudwatch_log_group": {"arn": "arn:aws:logs:eu-west-1:123456789012:log-group:mock"},
    "aws_lambda_function": {"arn": "arn:aws:lambda:eu-west-1:123456789012:function:mock"},
    "aws_sfn_state_machine": {"arn": "arn:aws:states:eu-west-1:123456789012:stateMachine:mock"},
    "aws_sqs_queue": {
        "arn": "arn:aws:sqs:eu-west-1:123456789012:mock",
        "id": "https://sqs.eu-west-1.amazonaws.com/123456789012/mock",
    },
    "aws_ssm_parameter": {"arn": "arn:aws:ssm:eu-west-1:123456789012:parameter/mock"},
    "aws_secretsmanager_secret": {"arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mock-AbCdEf"},
    "aws_cloudwatch_event_rule": {"arn": "arn:aws:events:eu-west-1:123456789012:rule/mock"},
    "aws_kinesis_firehose_delivery_stream": {
        "arn": "arn:aws:firehose:eu-west-1:123456789012:deliverystream/mock"
    },
    "aws_s3_bucket": {"arn": "arn:aws:s3:::mock"},
}
"""Computed attributes the modules validate as ARNs (or use as a queue URL)."""

TEST = """
mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\\"Version\\":\\"2012-10-17\\",\\"Statement\\":[]}" }
  }
%(mocks)s
}

variables {
  definitions_path = "%(definitions)s"
  package_path     = "%(package)s"
}

run "deploy_the_previous_release" {
  command   = apply
  state_key = "stack"

  module {
    source = "../previous"
  }

  variables {
    definitions_path = "%(previous_definitions)s"
  }
}

run "upgrade_to_the_current_modules" {
  command   = plan
  state_key = "stack"

  assert {
    condition     = output.deployed == run.deploy_the_previous_release.deployed
    error_message = "Functions, roles and backup buckets must move to their new addresses, not be recreated."
  }

  assert {
    condition     = module.splunk.firehose_role_arn != null && module.dynatrace.firehose_role_arn != null
    error_message = "The Firehose roles must move to their new addresses, not be destroyed and created."
  }
}
"""


def mock_resources() -> str:
    def defaults(attributes: dict[str, str]) -> str:
        return ", ".join(f'{name} = "{value}"' for name, value in attributes.items())

    return "\n".join(
        f'  mock_resource "{kind}" {{\n    defaults = {{ {defaults(attributes)} }}\n  }}'
        for kind, attributes in MOCKS.items()
    )


def previous_modules(destination: Path) -> None:
    """``terraform/modules`` and the definitions of :data:`PREVIOUS_RELEASE` (a deployed stack was
    built from both), or skip where the history is not at hand."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed: the previous release's modules come from the history")
    archive = subprocess.run(  # noqa: S603 - fixed arguments
        [
            git,
            "-C",
            str(REPO_ROOT),
            "archive",
            "--format=tar",
            PREVIOUS_RELEASE,
            "terraform/modules",
            DEFINITIONS,
        ],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {PREVIOUS_RELEASE[:7]} is not in this checkout (a shallow clone?)")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")


@needs_offline_provider
def test_a_deployed_stack_keeps_its_functions_and_roles(tmp_path: Path) -> None:
    previous_modules(tmp_path / "previous-release")
    shutil.copytree(
        TERRAFORM_ROOT / "modules",
        tmp_path / "current" / "terraform" / "modules",
        ignore=shutil.ignore_patterns(".terraform*", "tests"),
    )
    for name, release in (("previous", "previous-release"), ("root", "current")):
        (tmp_path / name).mkdir()
        modules = tmp_path / release / "terraform" / "modules"
        (tmp_path / name / "main.tf").write_text(ROOT % {"modules": modules}, encoding="utf-8")
    package = tmp_path / "package.zip"
    shutil.copy(TERRAFORM_ROOT / "tests" / "fixtures" / "processor.zip", package)
    (tmp_path / "root" / "tests").mkdir()
    (tmp_path / "root" / "tests" / "upgrade.tftest.hcl").write_text(
        TEST
        % {
            "mocks": mock_resources(),
            "definitions": DEFINITIONS_DIR,
            "previous_definitions": tmp_path / "previous-release" / DEFINITIONS,
            "package": package,
        },
        encoding="utf-8",
    )

    env = terraform_env(tmp_path)
    root = tmp_path / "root"
    init = run_terraform(["init", "-backend=false", "-input=false", f"-plugin-dir={PLUGIN_DIR}"], root, env)
    assert init.returncode == 0, init.stdout + init.stderr
    result = run_terraform(["test"], root, env)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-4000:]
    assert "2 passed, 0 failed" in result.stdout
