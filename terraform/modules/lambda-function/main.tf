# One Lambda function as every s3stagger module builds it: the function (JSON logs into its own log
# group, X-Ray when tracing is on, optional VPC), its role (its own log stream writes, X-Ray, and the
# caller's policy) and its log group (retention, KMS). The callers keep what differs: the policy
# JSON, the settings (from the definition files they read) and how the function is invoked.

data "aws_partition" "current" {}

locals {
  role_name = coalesce(var.role_name, "${var.function_name}-role")
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "LambdaAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    dynamic "condition" {
      for_each = var.assume_role_source_account == null ? [] : [var.assume_role_source_account]

      content {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [condition.value]
      }
    }
  }
}

resource "aws_iam_role" "this" {
  name               = local.role_name
  description        = var.role_description
  assume_role_policy = data.aws_iam_policy_document.trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "this" {
  source_policy_documents = [var.policy_json]

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.tracing_enabled ? ["xray"] : []

    content {
      sid = "WriteTraces"
      # X-Ray has no resource-level permissions for these actions: "*" is the only valid resource.
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = var.policy_name
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_iam_role_policy_attachment" "vpc" {
  count = var.vpc_config == null ? 0 : 1

  role       = aws_iam_role.this.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:No caller invokes asynchronously with anything to redrive (synchronous calls, an SQS mapping with its own DLQ, a schedule that runs again); each caller says why where it calls this module.
  #checkov:skip=CKV_AWS_117:The VPC is an input (vpc_config); the callers that reach a private endpoint (processor, notifier) expose it, the others call AWS APIs only.
  #checkov:skip=CKV_AWS_272:Code signing is an input (code_signing_config_arn); the package is built reproducibly by make package.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is an input (reserved_concurrency); the Firehose transform leaves it unset because Firehose bounds its concurrency.
  function_name                  = var.function_name
  description                    = var.description
  role                           = aws_iam_role.this.arn
  handler                        = var.handler
  runtime                        = var.runtime
  architectures                  = [var.architecture]
  filename                       = var.package_path
  source_code_hash               = filebase64sha256(var.package_path)
  timeout                        = var.timeout_seconds
  memory_size                    = var.memory_mb
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn
  code_signing_config_arn        = var.code_signing_config_arn
  tags                           = var.tags

  environment {
    variables = var.environment
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  tracing_config {
    mode = var.tracing_enabled ? "Active" : "PassThrough"
  }

  dynamic "vpc_config" {
    for_each = var.vpc_config == null ? [] : [var.vpc_config]

    content {
      subnet_ids         = vpc_config.value.subnet_ids
      security_group_ids = vpc_config.value.security_group_ids
    }
  }

  depends_on = [aws_iam_role_policy.this, aws_cloudwatch_log_group.this]
}
