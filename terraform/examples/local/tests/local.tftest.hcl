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
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:us-east-1:123456789012:log-group:mock" }
  }
  mock_resource "aws_lambda_function" {
    defaults = { arn = "arn:aws:lambda:us-east-1:123456789012:function:s3stagger-processor" }
  }
  mock_resource "aws_sqs_queue" {
    defaults = { arn = "arn:aws:sqs:us-east-1:123456789012:mock", id = "https://sqs.us-east-1.amazonaws.com/123456789012/mock" }
  }
  mock_resource "aws_ssm_parameter" {
    defaults = { arn = "arn:aws:ssm:us-east-1:123456789012:parameter/mock" }
  }
  mock_resource "aws_cloudwatch_event_rule" {
    defaults = { arn = "arn:aws:events:us-east-1:123456789012:rule/mock" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::mock" }
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
    condition     = output.resource_names.state_machine_name == "s3stagger-dispatcher" && output.resource_names.function_name == "s3stagger-processor"
    error_message = "Names must be local mode's (<name_prefix>-<suffix of the definitions>)."
  }

  assert {
    condition     = output.resource_names.account_id == "123456789012"
    error_message = "The account id must come from the state machine's ARN."
  }

  assert {
    condition     = jsonencode(output.resource_names.rule_names) == jsonencode(["s3stagger-object-created-high", "s3stagger-object-created-normal", "s3stagger-object-unrouted"])
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
