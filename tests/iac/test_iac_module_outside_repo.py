"""A team's own infrastructure repository uses the modules without this repository's layout.

Terraform installs a module given by an absolute path (or from a registry or archive) as a package
of its own under ``.terraform/modules``, where ``../../../src/s3stagger/definitions`` does not
exist. With ``definitions_path`` (the one documented input for it) pointing at a copy of the
definition files, both modules, copied out of the repository, initialise from the offline provider
mirror and pass ``terraform test`` against a mocked provider. The folder of the modules is the
package (``<folder>//staggered-dispatcher``, as ``git::…//terraform/modules/…`` does for a
repository), so the dispatcher finds ``../lambda-function`` inside it.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from _iac_support import DEFINITIONS_DIR, TERRAFORM_ROOT
from test_iac_terraform import PLUGIN_DIR, needs_offline_provider, run_terraform, terraform_env

ROOT = """
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.61, < 6.0"
    }
  }
}

provider "aws" {}

module "ingest" {
  source           = "%(modules)s//event-ingest"
  definitions_path = "${path.root}/s3stagger-definitions"
}

module "dispatcher" {
  source                  = "%(modules)s//staggered-dispatcher"
  definitions_path        = "${path.root}/s3stagger-definitions"
  queues                  = module.ingest.queues
  source_bucket_name      = module.ingest.uploads_bucket_name
  failed_rows_bucket_name = module.ingest.failed_rows_bucket_name
  downstream_url          = "https://api.example.com/v1/rows"
  package_path            = "${path.root}/lambda.zip"
}

output "state_machine_name" {
  value = module.dispatcher.state_machine_name
}
"""

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
}

run "plans_from_a_copy_outside_the_repository" {
  command = plan

  assert {
    condition     = output.state_machine_name == "s3stagger-dispatcher"
    error_message = "The names must come from the copied definitions."
  }
}
"""


@needs_offline_provider
def test_modules_copied_out_of_the_repository_plan_with_definitions_path(tmp_path: Path) -> None:
    infrastructure = tmp_path / "team-infrastructure"
    modules = tmp_path / "vendored" / "s3stagger-modules"  # referred to by an absolute path
    for name in ("event-ingest", "staggered-dispatcher", "lambda-function"):
        shutil.copytree(
            TERRAFORM_ROOT / "modules" / name, modules / name, ignore=shutil.ignore_patterns("tests")
        )
    shutil.copytree(
        DEFINITIONS_DIR, infrastructure / "s3stagger-definitions", ignore=shutil.ignore_patterns("*.py")
    )
    with zipfile.ZipFile(infrastructure / "lambda.zip", "w") as archive:
        archive.writestr("README.txt", "placeholder")
    (infrastructure / "main.tf").write_text(ROOT % {"modules": modules}, encoding="utf-8")
    (infrastructure / "tests").mkdir()
    (infrastructure / "tests" / "outside.tftest.hcl").write_text(TEST, encoding="utf-8")
    assert not (tmp_path / "src").exists()  # nothing of this repository's layout around it

    env = terraform_env(tmp_path)
    init = run_terraform(
        ["init", "-backend=false", "-input=false", f"-plugin-dir={PLUGIN_DIR}"], infrastructure, env
    )
    assert init.returncode == 0, init.stdout + init.stderr
    result = run_terraform(["test"], infrastructure, env)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-4000:]
    assert "1 passed, 0 failed" in result.stdout
