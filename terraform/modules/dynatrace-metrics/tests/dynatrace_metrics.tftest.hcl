# `terraform test` with a mocked AWS provider: metric stream of the pipeline's namespaces ->
# Firehose HTTP endpoint at Dynatrace (token from Secrets Manager, dt-url, GZIP), failed data backed up.

mock_provider "aws" {
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_resource "aws_kinesis_firehose_delivery_stream" {
    defaults = { arn = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/s3stagger-dynatrace-metrics" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::s3stagger-dynatrace-metrics-backup-123456789012" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:mock" }
  }
}

variables {
  dynatrace_endpoint_url    = "https://aws.cloud.dynatrace.com/metrics"
  dynatrace_environment_url = "https://abc12345.live.dynatrace.com"
  api_token_secret_arn      = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dynatrace-api-AbCdEf"
}

run "streams_the_pipeline_namespaces_to_dynatrace" {
  command = apply

  assert {
    condition     = toset([for f in aws_cloudwatch_metric_stream.this.include_filter : f.namespace]) == toset(["AWS/SQS", "AWS/Lambda", "AWS/States", "AWS/Events", "s3stagger"])
    error_message = "The stream sends the four AWS namespaces and the processor's EMF namespace."
  }

  assert {
    condition     = one(one(aws_kinesis_firehose_delivery_stream.this.http_endpoint_configuration).request_configuration).content_encoding == "GZIP"
    error_message = "Dynatrace's ingest takes GZIP."
  }

  assert {
    condition     = one(one(one(aws_kinesis_firehose_delivery_stream.this.http_endpoint_configuration).request_configuration).common_attributes).value == "https://abc12345.live.dynatrace.com"
    error_message = "The dt-url common attribute names the environment."
  }

  assert {
    condition     = one(aws_kinesis_firehose_delivery_stream.this.http_endpoint_configuration).s3_backup_mode == "FailedDataOnly"
    error_message = "Failed data goes to the backup bucket."
  }

  assert {
    condition     = one(one(aws_kinesis_firehose_delivery_stream.this.http_endpoint_configuration).secrets_manager_configuration).secret_arn == var.api_token_secret_arn
    error_message = "The API token comes from Secrets Manager."
  }

  assert {
    condition     = length(output.lambda_layer_arns) == 0 && length(output.lambda_layer_environment) == 0
    error_message = "The Lambda layer is off by default."
  }
}

run "the_lambda_layer_settings_when_enabled" {
  command = plan

  variables {
    lambda_layer = {
      enabled             = true
      layer_arn           = "arn:aws:lambda:eu-west-1:725887861453:layer:Dynatrace_OneAgent_1_300_python_arm:1"
      tenant              = "abc12345"
      cluster_id          = "-1234567890"
      connection_base_url = "https://abc12345.live.dynatrace.com"
    }
  }

  assert {
    condition     = output.lambda_layer_environment.AWS_LAMBDA_EXEC_WRAPPER == "/opt/dynatrace" && output.lambda_layer_environment.DT_TENANT == "abc12345"
    error_message = "The layer needs the exec wrapper and the DT_* settings."
  }
}

run "refuses_a_trailing_slash_in_dt_url" {
  command = plan

  variables {
    dynatrace_environment_url = "https://abc12345.live.dynatrace.com/"
  }

  expect_failures = [var.dynatrace_environment_url]
}
