# `terraform test` (Terraform >= 1.7) with a mocked AWS provider: no account, no credentials.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  # Computed ARNs other resources validate.
  mock_resource "aws_sqs_queue" {
    defaults = { arn = "arn:aws:sqs:eu-west-1:123456789012:mock" }
  }
  mock_resource "aws_cloudwatch_event_rule" {
    defaults = { arn = "arn:aws:events:eu-west-1:123456789012:rule/mock" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::mock" }
  }
}

run "routes_each_priority_from_the_shared_definitions" {
  command = apply

  assert {
    condition     = aws_s3_bucket.this["uploads"].bucket == "s3stagger-uploads-123456789012-eu-west-1"
    error_message = "The uploads bucket must be <name_prefix>-uploads-<account>-<region>."
  }

  assert {
    condition     = aws_s3_bucket_notification.uploads.eventbridge
    error_message = "The uploads bucket must send its events to EventBridge."
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.object_created["high"].event_pattern).detail.object.key[0].wildcard == "high/*.csv"
    error_message = "The high rule must match high/*.csv."
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.object_unrouted.event_pattern).detail.object.key[0]["anything-but"].wildcard == ["high/*.csv", "normal/*.csv"]
    error_message = "The unrouted rule must match every key no route matches."
  }

  assert {
    condition     = aws_cloudwatch_event_rule.object_created["normal"].name == "s3stagger-object-created-normal"
    error_message = "Rule names must follow event_rules.json."
  }

  assert {
    condition     = aws_sqs_queue.priority["high"].name == "s3stagger-high" && aws_sqs_queue.dead_letter["high"].name == "s3stagger-high-dlq"
    error_message = "Queue names must follow queues.json."
  }

  assert {
    condition     = jsondecode(aws_sqs_queue.priority["normal"].redrive_policy).maxReceiveCount == 5
    error_message = "The redrive policy must use queues.json max_receive_count."
  }

  assert {
    condition     = aws_sqs_queue.dead_letter["normal"].message_retention_seconds > aws_sqs_queue.priority["normal"].message_retention_seconds
    error_message = "A DLQ must keep messages longer than its queue."
  }

  assert {
    condition = alltrue([
      for target in aws_cloudwatch_event_target.priority_queue :
      target.retry_policy[0].maximum_retry_attempts == 185 && target.dead_letter_config[0].arn == aws_sqs_queue.ingest_dead_letter.arn
    ])
    error_message = "Every rule target needs the shared RetryPolicy and the ingest DLQ."
  }

  assert {
    condition     = aws_sqs_queue.priority["high"].sqs_managed_sse_enabled && one(one(aws_s3_bucket_server_side_encryption_configuration.this["uploads"].rule).apply_server_side_encryption_by_default).sse_algorithm == "AES256"
    error_message = "Without a customer key, queues and buckets use AWS-managed encryption."
  }
}

run "uses_the_customer_key_everywhere_when_given" {
  command = apply

  variables {
    kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
  }

  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.this["failed_rows"].rule).apply_server_side_encryption_by_default).sse_algorithm == "aws:kms"
    error_message = "With a customer key, buckets use SSE-KMS."
  }

  assert {
    condition     = aws_sqs_queue.ingest_dead_letter.kms_master_key_id == var.kms_key_arn
    error_message = "With a customer key, queues use it."
  }
}

run "rejects_a_dlq_that_forgets_before_its_queue" {
  command = plan

  variables {
    queue_overrides = { dlq_message_retention_seconds = 60 }
  }

  expect_failures = [aws_sqs_queue.dead_letter]
}

run "rejects_a_prefix_for_an_unknown_priority" {
  command = plan

  variables {
    key_prefixes = { urgent = "urgent/" }
  }

  expect_failures = [aws_sqs_queue.priority]
}

run "rejects_an_invalid_bucket_name" {
  command = plan

  variables {
    bucket_names = { uploads = "Not_A_Bucket" }
  }

  expect_failures = [var.bucket_names]
}

run "rejects_a_prefix_that_makes_bucket_names_too_long" {
  command = plan

  variables {
    name_prefix = "a-very-long-prefix-for-a-bucket"
  }

  expect_failures = [aws_s3_bucket.this]
}
