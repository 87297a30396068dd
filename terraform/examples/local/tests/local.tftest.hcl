# `terraform test` (Terraform >= 1.7) with a mocked AWS provider: the root local mode applies to the
# emulator (tests/iac/test_iac_parity.py applies it for real). The Lambda package is the small
# fixture zip (terraform/tests/fixtures): no `make package` needed.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "us-east-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_resource "aws_sfn_state_machine" {
    defaults = { arn = "arn:aws:states:us-east-1:123456789012:stateMachine:s3stagger-dispatcher" }
  }
}

variables {
  endpoint_url     = "http://127.0.0.1:5000"
  definitions_path = "../../../src/s3stagger/definitions"
  downstream_url   = "http://127.0.0.1:8000/rows"
  package_path     = "../../tests/fixtures/processor.zip"
}

run "names_what_it_builds_as_local_mode_does" {
  command = apply

  assert {
    condition     = output.resource_names.bucket == "s3stagger-uploads" && output.resource_names.failed_rows_bucket == "s3stagger-failed-rows"
    error_message = "Bucket names must be local mode's (no account-region qualifier)."
  }

  assert {
    condition     = output.resource_names.account_id == "123456789012"
    error_message = "The account id must come from the state machine's ARN."
  }

  assert {
    condition     = output.resource_names.rule_names == ["s3stagger-object-created-high", "s3stagger-object-created-normal", "s3stagger-object-unrouted"]
    error_message = "Rule names must follow event_rules.json."
  }
}

run "refuses_an_endpoint_with_a_path" {
  command = plan

  variables {
    endpoint_url = "http://127.0.0.1:5000/api"
  }

  expect_failures = [var.endpoint_url]
}
