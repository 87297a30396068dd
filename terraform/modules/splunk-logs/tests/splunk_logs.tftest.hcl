# `terraform test` with a mocked AWS provider: subscriptions -> Firehose (Splunk Event endpoint,
# acknowledgement, token from Secrets Manager, failed events backed up) -> transform Lambda.

mock_provider "aws" {
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_resource "aws_lambda_function" {
    defaults = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:s3stagger-splunk-logs-transform" }
  }
  mock_resource "aws_kinesis_firehose_delivery_stream" {
    defaults = { arn = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/s3stagger-splunk-logs" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::s3stagger-splunk-logs-backup-123456789012" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:mock" }
  }
}

variables {
  log_group_names = {
    processor  = "/aws/lambda/s3stagger-processor"
    notifier   = "/aws/lambda/s3stagger-notifier"
    dispatcher = "/aws/vendedlogs/states/s3stagger-dispatcher"
  }
  hec_endpoint         = "https://http-inputs-acme.splunkcloud.com:443"
  hec_token_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:splunk-hec-AbCdEf"
  package_path         = "../../tests/fixtures/processor.zip"
}

run "ships_every_log_group_through_the_transform_to_the_hec" {
  command = apply

  assert {
    condition     = length(aws_cloudwatch_log_subscription_filter.this) == 3
    error_message = "One subscription filter per log group."
  }

  assert {
    condition     = aws_cloudwatch_log_subscription_filter.this["processor"].destination_arn == aws_kinesis_firehose_delivery_stream.this.arn
    error_message = "The subscriptions must feed the delivery stream."
  }

  assert {
    condition     = one(aws_kinesis_firehose_delivery_stream.this.splunk_configuration).hec_endpoint_type == "Event" && one(aws_kinesis_firehose_delivery_stream.this.splunk_configuration).s3_backup_mode == "FailedEventsOnly"
    error_message = "HEC Event endpoint, failed events backed up."
  }

  assert {
    condition     = one(one(aws_kinesis_firehose_delivery_stream.this.splunk_configuration).secrets_manager_configuration).secret_arn == var.hec_token_secret_arn
    error_message = "The HEC token comes from Secrets Manager."
  }

  assert {
    condition     = one(aws_kinesis_firehose_delivery_stream.this.splunk_configuration).hec_acknowledgment_timeout == 300 && one(aws_kinesis_firehose_delivery_stream.this.splunk_configuration).retry_duration == 3600
    error_message = "Acknowledgement timeout and retry duration defaults."
  }

  assert {
    condition     = module.transform.function.handler == "s3stagger.handlers.transform_logs.handler" && module.transform.function.environment[0].variables.S3STAGGER_SPLUNK_INDEX == "main"
    error_message = "The transform Lambda runs the project's handler with the index setting."
  }

  assert {
    condition     = contains([for p in one(one(one(aws_kinesis_firehose_delivery_stream.this.splunk_configuration).processing_configuration).processors).parameters : p.parameter_value], "${module.transform.function_arn}:$LATEST")
    error_message = "Firehose must run the transform Lambda."
  }
}

run "refuses_a_plain_http_hec_and_an_out_of_range_ack_timeout" {
  command = plan

  variables {
    hec_endpoint                       = "http://splunk.internal:8088"
    hec_acknowledgment_timeout_seconds = 60
  }

  expect_failures = [var.hec_endpoint, var.hec_acknowledgment_timeout_seconds]
}
