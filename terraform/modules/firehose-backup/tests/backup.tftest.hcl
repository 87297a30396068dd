# `terraform test` with a mocked AWS provider: a private, encrypted, expiring backup bucket.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
}

variables {
  bucket_name = "s3stagger-splunk-logs-backup"
}

run "backup_bucket_is_encrypted_private_and_expires" {
  command = apply

  assert {
    condition     = one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default[0].sse_algorithm == "AES256"
    error_message = "Without a KMS key the backup must still be encrypted (SSE-S3)."
  }

  assert {
    condition     = aws_s3_bucket_public_access_block.this.restrict_public_buckets && aws_s3_bucket_public_access_block.this.block_public_policy
    error_message = "The backup bucket must not be public."
  }

  assert {
    condition     = one(aws_s3_bucket_lifecycle_configuration.this.rule).expiration[0].days == 90
    error_message = "Backups expire after 90 days by default."
  }
}

run "a_customer_key_turns_on_sse_kms" {
  command = apply

  variables {
    kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  }

  assert {
    condition     = one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default[0].sse_algorithm == "aws:kms"
    error_message = "A KMS key must be used for SSE-KMS."
  }
}

run "a_bad_bucket_name_is_refused" {
  command = plan

  variables {
    bucket_name = "Bad_Name"
  }

  expect_failures = [var.bucket_name]
}
