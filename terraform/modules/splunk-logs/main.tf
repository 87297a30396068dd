# Lambda logs to Splunk: CloudWatch Logs subscription filters -> Kinesis Data Firehose (Splunk
# destination, HEC Event endpoint, indexer acknowledgement, token from Secrets Manager) with the
# transform Lambda (CloudWatch Logs records -> HEC events) and an S3 backup of failed events.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  # The transform runs from the processor's package: same runtime and, by default, architecture.
  definitions_path   = coalesce(var.definitions_path, "${path.module}/../../../src/s3stagger/definitions")
  processor_settings = jsondecode(file("${local.definitions_path}/processor.json"))
  architecture       = coalesce(var.architecture, local.processor_settings.architecture)

  partition      = data.aws_partition.current.partition
  region         = data.aws_region.current.name
  account_id     = data.aws_caller_identity.current.account_id
  stream_name    = "${var.name_prefix}-splunk-logs"
  transform_name = "${var.name_prefix}-splunk-logs-transform"
  # Built, not referenced: the stream refers to the transform, so the transform cannot refer back.
  delivery_stream_arn = "arn:${local.partition}:firehose:${local.region}:${local.account_id}:deliverystream/${local.stream_name}"
}

# -- the transform Lambda --------------------------------------------------------------------------

data "aws_iam_policy_document" "transform" {
  statement {
    sid       = "PutOverflowBack"
    actions   = ["firehose:PutRecordBatch"]
    resources = [local.delivery_stream_arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "UseTheKey"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

# Firehose invokes the transform synchronously and retries it itself; records it cannot transform go
# to the backup bucket (no Lambda DLQ), and it bounds the transform's concurrency by its own
# buffering (no reserved concurrency to take from the pipeline's functions). It reads nothing but
# its event and calls only Firehose: no VPC.
module "transform" {
  source = "../lambda-function"

  function_name           = local.transform_name
  description             = "s3stagger: Firehose transformation of CloudWatch Logs records into Splunk HEC events."
  role_name               = local.transform_name
  handler                 = "s3stagger.handlers.transform_logs.handler"
  runtime                 = local.processor_settings.runtime
  architecture            = local.architecture
  package_path            = var.package_path
  timeout_seconds         = 120
  memory_mb               = 512
  policy_name             = "transform"
  policy_json             = data.aws_iam_policy_document.transform.json
  log_retention_days      = var.log_retention_days
  kms_key_arn             = var.kms_key_arn
  code_signing_config_arn = var.code_signing_config_arn
  tags                    = var.tags

  environment = {
    S3STAGGER_SPLUNK_INDEX      = var.splunk_index
    S3STAGGER_SPLUNK_SOURCETYPE = var.splunk_sourcetype
  }
}

# A stack deployed before the lambda-function module keeps its transform (no destroy and create).
moved {
  from = aws_cloudwatch_log_group.transform
  to   = module.transform.aws_cloudwatch_log_group.this
}

moved {
  from = aws_iam_role.transform
  to   = module.transform.aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.transform
  to   = module.transform.aws_iam_role_policy.this
}

moved {
  from = aws_lambda_function.transform
  to   = module.transform.aws_lambda_function.this
}

# -- the delivery stream ---------------------------------------------------------------------------

data "aws_iam_policy_document" "firehose_transform" {
  statement {
    sid       = "Transform"
    actions   = ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"]
    resources = [module.transform.function_arn, "${module.transform.function_arn}:*"]
  }
}

module "delivery" {
  source = "../firehose-delivery"

  stream_name            = local.stream_name
  token_secret_arn       = var.hec_token_secret_arn
  policy_json            = data.aws_iam_policy_document.firehose_transform.json
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
  destination = "splunk"
  tags        = var.tags

  server_side_encryption {
    enabled  = true
    key_type = var.kms_key_arn == null ? "AWS_OWNED_CMK" : "CUSTOMER_MANAGED_CMK"
    key_arn  = var.kms_key_arn
  }

  splunk_configuration {
    hec_endpoint               = var.hec_endpoint
    hec_endpoint_type          = "Event"
    hec_acknowledgment_timeout = var.hec_acknowledgment_timeout_seconds
    retry_duration             = var.retry_duration_seconds
    s3_backup_mode             = "FailedEventsOnly"
    buffering_size             = var.buffering.size_mb
    buffering_interval         = var.buffering.interval_seconds

    secrets_manager_configuration {
      enabled    = true
      secret_arn = var.hec_token_secret_arn
      role_arn   = module.delivery.role_arn
    }

    s3_configuration {
      role_arn            = module.delivery.role_arn
      bucket_arn          = module.delivery.backup_bucket_arn
      prefix              = "splunk-failed/"
      error_output_prefix = "errors/!{firehose:error-output-type}/"
      compression_format  = "GZIP"
      kms_key_arn         = var.kms_key_arn

      cloudwatch_logging_options {
        enabled         = true
        log_group_name  = module.delivery.log_group_name
        log_stream_name = module.delivery.log_stream_names.backup
      }
    }

    processing_configuration {
      enabled = true

      processors {
        type = "Lambda"

        parameters {
          parameter_name  = "LambdaArn"
          parameter_value = "${module.transform.function_arn}:$LATEST"
        }

        parameters {
          parameter_name  = "RoleArn"
          parameter_value = module.delivery.role_arn
        }

        parameters {
          parameter_name  = "BufferSizeInMBs"
          parameter_value = tostring(var.buffering.transform_size_mb)
        }

        parameters {
          parameter_name  = "BufferIntervalInSeconds"
          parameter_value = tostring(var.buffering.transform_interval)
        }
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

# -- the subscriptions -----------------------------------------------------------------------------

data "aws_iam_policy_document" "logs_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["logs.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:*"]
    }
  }
}

resource "aws_iam_role" "subscription" {
  name               = "${local.stream_name}-subscription"
  assume_role_policy = data.aws_iam_policy_document.logs_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "subscription" {
  statement {
    actions   = ["firehose:PutRecord", "firehose:PutRecordBatch"]
    resources = [aws_kinesis_firehose_delivery_stream.this.arn]
  }
}

resource "aws_iam_role_policy" "subscription" {
  name   = "put-records"
  role   = aws_iam_role.subscription.id
  policy = data.aws_iam_policy_document.subscription.json
}

resource "aws_cloudwatch_log_subscription_filter" "this" {
  for_each = var.log_group_names

  name            = "${local.stream_name}-${each.key}"
  log_group_name  = each.value
  filter_pattern  = var.filter_pattern
  destination_arn = aws_kinesis_firehose_delivery_stream.this.arn
  role_arn        = aws_iam_role.subscription.arn

  depends_on = [aws_iam_role_policy.subscription]
}
