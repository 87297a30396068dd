# Pipeline metrics to Dynatrace: a CloudWatch metric stream (AWS/SQS, AWS/Lambda, AWS/States,
# AWS/Events and the processor's EMF namespace) -> Kinesis Data Firehose HTTP endpoint at
# Dynatrace's AWS ingest (API token from Secrets Manager, dt-url attribute, GZIP), failed data to
# an encrypted S3 backup. Optionally, the settings of Dynatrace's Lambda layer (off by default).

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  definitions_path   = coalesce(var.definitions_path, "${path.module}/../../../src/s3stagger/definitions")
  processor_settings = jsondecode(file("${local.definitions_path}/processor.json"))
  namespaces = coalesce(var.namespaces, [
    "AWS/SQS",
    "AWS/Lambda",
    "AWS/States",
    "AWS/Events",
    local.processor_settings.environment.POWERTOOLS_METRICS_NAMESPACE,
  ])
  account_id  = data.aws_caller_identity.current.account_id
  region      = data.aws_region.current.name
  stream_name = "${var.name_prefix}-dynatrace-metrics"
  # Inputs and the backup bucket, named for the grants below.
  backup_bucket_arn    = module.backup.bucket_arn
  api_token_secret_arn = var.api_token_secret_arn

  layer_environment = var.lambda_layer.enabled ? merge(
    {
      AWS_LAMBDA_EXEC_WRAPPER = "/opt/dynatrace"
      DT_TENANT               = var.lambda_layer.tenant
      DT_CLUSTER_ID           = var.lambda_layer.cluster_id
      DT_CONNECTION_BASE_URL  = var.lambda_layer.connection_base_url
    },
    var.lambda_layer.connection_auth_token == null ? {} : { DT_CONNECTION_AUTH_TOKEN = var.lambda_layer.connection_auth_token },
  ) : {}
}

module "backup" {
  source = "../firehose-backup"

  bucket_name     = "${local.stream_name}-backup-${local.account_id}"
  kms_key_arn     = var.kms_key_arn
  expiration_days = var.backup_expiration_days
  force_destroy   = var.force_destroy
  tags            = var.tags
}

resource "aws_cloudwatch_log_group" "stream" {
  name              = "/aws/kinesisfirehose/${local.stream_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_stream" "stream" {
  for_each = toset(["DestinationDelivery", "BackupDelivery"])

  name           = each.key
  log_group_name = aws_cloudwatch_log_group.stream.name
}

data "aws_iam_policy_document" "firehose_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "firehose" {
  name               = "${local.stream_name}-firehose"
  assume_role_policy = data.aws_iam_policy_document.firehose_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "firehose" {
  statement {
    sid       = "BackUpFailedData"
    actions   = ["s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:PutObject"]
    resources = [local.backup_bucket_arn, "${local.backup_bucket_arn}/*"]
  }

  statement {
    sid       = "ReadApiToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.api_token_secret_arn]
  }

  statement {
    sid       = "LogDeliveryErrors"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.stream.arn}:*"]
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

resource "aws_iam_role_policy" "firehose" {
  name   = "delivery"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose.json
}

resource "aws_kinesis_firehose_delivery_stream" "this" {
  name        = local.stream_name
  destination = "http_endpoint"
  tags        = var.tags

  server_side_encryption {
    enabled  = true
    key_type = var.kms_key_arn == null ? "AWS_OWNED_CMK" : "CUSTOMER_MANAGED_CMK"
    key_arn  = var.kms_key_arn
  }

  http_endpoint_configuration {
    name               = "Dynatrace"
    url                = var.dynatrace_endpoint_url
    role_arn           = aws_iam_role.firehose.arn
    s3_backup_mode     = "FailedDataOnly"
    retry_duration     = var.retry_duration_seconds
    buffering_size     = 1
    buffering_interval = 60

    secrets_manager_configuration {
      enabled    = true
      secret_arn = var.api_token_secret_arn
      role_arn   = aws_iam_role.firehose.arn
    }

    request_configuration {
      content_encoding = "GZIP"

      common_attributes {
        name  = "dt-url"
        value = var.dynatrace_environment_url
      }
    }

    s3_configuration {
      role_arn            = aws_iam_role.firehose.arn
      bucket_arn          = module.backup.bucket_arn
      prefix              = "dynatrace-failed/"
      error_output_prefix = "errors/!{firehose:error-output-type}/"
      compression_format  = "GZIP"
      kms_key_arn         = var.kms_key_arn

      cloudwatch_logging_options {
        enabled         = true
        log_group_name  = aws_cloudwatch_log_group.stream.name
        log_stream_name = aws_cloudwatch_log_stream.stream["BackupDelivery"].name
      }
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.stream.name
      log_stream_name = aws_cloudwatch_log_stream.stream["DestinationDelivery"].name
    }
  }

  depends_on = [aws_iam_role_policy.firehose]
}

data "aws_iam_policy_document" "metric_stream_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["streams.metrics.cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "metric_stream" {
  name               = "${local.stream_name}-stream"
  assume_role_policy = data.aws_iam_policy_document.metric_stream_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "metric_stream" {
  statement {
    actions   = ["firehose:PutRecord", "firehose:PutRecordBatch"]
    resources = [aws_kinesis_firehose_delivery_stream.this.arn]
  }
}

resource "aws_iam_role_policy" "metric_stream" {
  name   = "put-records"
  role   = aws_iam_role.metric_stream.id
  policy = data.aws_iam_policy_document.metric_stream.json
}

resource "aws_cloudwatch_metric_stream" "this" {
  name          = local.stream_name
  role_arn      = aws_iam_role.metric_stream.arn
  firehose_arn  = aws_kinesis_firehose_delivery_stream.this.arn
  output_format = var.output_format
  tags          = var.tags

  dynamic "include_filter" {
    for_each = toset(local.namespaces)

    content {
      namespace = include_filter.value
    }
  }

  depends_on = [aws_iam_role_policy.metric_stream]
}
