# `terraform test` with a mocked AWS provider: the backup, the error logs and the role of a stream.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::mock" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/kinesisfirehose/s3stagger-example" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/s3stagger-example-firehose" }
  }
}

variables {
  stream_name            = "s3stagger-example"
  token_secret_arn       = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:example-token-AbCdEf"
  log_retention_days     = 365
  backup_expiration_days = 90
}

run "builds_the_backup_the_error_logs_and_the_role" {
  command = apply

  assert {
    condition     = output.log_group_name == "/aws/kinesisfirehose/s3stagger-example" && aws_cloudwatch_log_group.this.retention_in_days == 365 && output.log_stream_names == { destination = "DestinationDelivery", backup = "BackupDelivery" }
    error_message = "Delivery errors go to /aws/kinesisfirehose/<stream_name>, one stream for the destination and one for the backup."
  }

  assert {
    condition     = aws_iam_role.this.name == "s3stagger-example-firehose" && aws_iam_role_policy.this.name == "delivery" && output.role_arn == aws_iam_role.this.arn
    error_message = "The stream's role is <stream_name>-firehose with the delivery policy."
  }
}
