# `terraform test` (Terraform >= 1.7) with a mocked AWS provider: the example wires both modules,
# the key and the alerting together. The Lambda package is a small fixture zip (terraform/tests/fixtures):
# no `make package` needed.

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
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:mock" }
  }
  mock_resource "aws_lambda_function" {
    defaults = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:s3stagger-processor" }
  }
  mock_resource "aws_sfn_state_machine" {
    defaults = { arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:s3stagger-dispatcher" }
  }
  mock_resource "aws_sqs_queue" {
    defaults = { arn = "arn:aws:sqs:eu-west-1:123456789012:mock", id = "https://sqs.eu-west-1.amazonaws.com/123456789012/mock" }
  }
  mock_resource "aws_ssm_parameter" {
    defaults = { arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/s3stagger/concurrency-budget" }
  }
  mock_resource "aws_sns_topic" {
    defaults = { arn = "arn:aws:sns:eu-west-1:123456789012:s3stagger-alerts" }
  }
  mock_resource "aws_cloudwatch_event_rule" {
    defaults = { arn = "arn:aws:events:eu-west-1:123456789012:rule/mock" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::mock" }
  }
}

variables {
  region         = "eu-west-1"
  downstream_url = "https://api.example.com/v1/rows"
  alert_email    = "oncall@example.com"
  package_path   = "../../tests/fixtures/processor.zip"
}

run "deploys_the_pattern_with_a_customer_key_and_alerting" {
  command = apply

  assert {
    condition     = aws_kms_key.pipeline.enable_key_rotation
    error_message = "The customer key must rotate."
  }

  assert {
    condition     = toset(keys(aws_cloudwatch_metric_alarm.dead_letter_not_empty)) == toset(["high", "normal", "ingest", "alerts"])
    error_message = "Every dead-letter queue needs an alarm."
  }

  assert {
    condition     = length(aws_sns_topic_subscription.alert_email) == 1
    error_message = "alert_email must subscribe to the alerts topic."
  }

  assert {
    condition     = output.budget_parameter_name == "/s3stagger/concurrency-budget"
    error_message = "The budget parameter must follow budget.json."
  }
}
