# What a Kinesis Data Firehose delivery stream needs around it, the same for every s3stagger stream:
# the S3 backup of what it could not deliver (firehose-backup), the log group and streams it writes
# its delivery errors to, and its role (back up, read the destination's token, log errors, use the
# key, plus the caller's statements). The caller builds the stream itself: its destination differs.

data "aws_caller_identity" "current" {}

locals {
  log_stream_names = toset(["DestinationDelivery", "BackupDelivery"])
}

module "backup" {
  source = "../firehose-backup"

  bucket_name     = "${var.stream_name}-backup-${data.aws_caller_identity.current.account_id}"
  kms_key_arn     = var.kms_key_arn
  expiration_days = var.backup_expiration_days
  force_destroy   = var.force_destroy
  tags            = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/kinesisfirehose/${var.stream_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_stream" "this" {
  for_each = local.log_stream_names

  name           = each.key
  log_group_name = aws_cloudwatch_log_group.this.name
}

data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.stream_name}-firehose"
  assume_role_policy = data.aws_iam_policy_document.trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "this" {
  source_policy_documents = var.policy_json == null ? [] : [var.policy_json]

  statement {
    sid       = "BackUpUndelivered"
    actions   = ["s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:PutObject"]
    resources = [module.backup.bucket_arn, "${module.backup.bucket_arn}/*"]
  }

  statement {
    sid       = "ReadDestinationToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.token_secret_arn]
  }

  statement {
    sid       = "LogDeliveryErrors"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "UseTheKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "delivery"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}
