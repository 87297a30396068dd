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

module "delivery" {
  source = "../firehose-delivery"

  stream_name            = local.stream_name
  token_secret_arn       = var.api_token_secret_arn
  kms_key_arn            = var.kms_key_arn
  log_retention_days     = var.log_retention_days
  backup_expiration_days = var.backup_expiration_days
  force_destroy          = var.force_destroy
  tags                   = var.tags
}

# A stack deployed before the firehose-delivery module keeps its backup, role and logs in place.
moved {
  from = module.backup
  to   = module.delivery.module.backup
}

moved {
  from = aws_cloudwatch_log_group.stream
  to   = module.delivery.aws_cloudwatch_log_group.this
}

moved {
  from = aws_cloudwatch_log_stream.stream
  to   = module.delivery.aws_cloudwatch_log_stream.this
}

moved {
  from = aws_iam_role.firehose
  to   = module.delivery.aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.firehose
  to   = module.delivery.aws_iam_role_policy.this
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
    role_arn           = module.delivery.role_arn
    s3_backup_mode     = "FailedDataOnly"
    retry_duration     = var.retry_duration_seconds
    buffering_size     = 1
    buffering_interval = 60

    secrets_manager_configuration {
      enabled    = true
      secret_arn = var.api_token_secret_arn
      role_arn   = module.delivery.role_arn
    }

    request_configuration {
      content_encoding = "GZIP"

      common_attributes {
        name  = "dt-url"
        value = var.dynatrace_environment_url
      }
    }

    s3_configuration {
      role_arn            = module.delivery.role_arn
      bucket_arn          = module.delivery.backup_bucket_arn
      prefix              = "dynatrace-failed/"
      error_output_prefix = "errors/!{firehose:error-output-type}/"
      compression_format  = "GZIP"
      kms_key_arn         = var.kms_key_arn

      cloudwatch_logging_options {
        enabled         = true
        log_group_name  = module.delivery.log_group_name
        log_stream_name = module.delivery.log_stream_names.backup
      }
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = module.delivery.log_group_name
      log_stream_name = module.delivery.log_stream_names.destination
    }
  }

  depends_on = [module.delivery]
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
