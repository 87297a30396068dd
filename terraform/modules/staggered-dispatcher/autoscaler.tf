# --- Autoscaler (docs/autoscaling.md) -----------------------------------------------------------
# A Lambda an EventBridge Scheduler schedule runs every minute: it reads the priority queues' depth
# and the processor's EMF metrics, applies the control law (s3stagger.domain.autoscale) and writes
# the concurrency budget (read by the dispatcher per execution) and the flight parameter (rows in
# flight per object, read by every processor invocation; the law's state).

locals {
  autoscaler_settings         = jsondecode(file("${local.definitions_path}/autoscaler.json"))
  autoscaler_function_name    = "${var.name_prefix}-${local.autoscaler_settings.function_name_suffix}"
  autoscaler_schedule_name    = "${var.name_prefix}-${local.autoscaler_settings.schedule_name_suffix}"
  autoscaler_flight_parameter = "/${var.name_prefix}/${local.autoscaler_settings.flight_parameter_suffix}"
  autoscaler_namespace        = coalesce(var.autoscaler.metrics_namespace, local.processor_settings.environment.POWERTOOLS_METRICS_NAMESPACE)

  autoscaler_budget_floor = coalesce(var.autoscaler.budget_floor, local.autoscaler_settings.budget_floor, local.budget.minimum)
  autoscaler_budget_cap   = coalesce(var.autoscaler.budget_cap, local.autoscaler_settings.budget_cap, local.budget.maximum)
  autoscaler_rows_floor   = coalesce(var.autoscaler.rows_floor, local.autoscaler_settings.rows_floor)
  autoscaler_rows_cap     = coalesce(var.autoscaler.rows_cap, local.autoscaler_settings.rows_cap)

  autoscaler_environment = {
    S3STAGGER_QUEUE_URLS              = jsonencode({ for priority, queue in var.queues : priority => queue.url })
    S3STAGGER_BUDGET_PARAMETER        = aws_ssm_parameter.concurrency_budget.name
    S3STAGGER_FLIGHT_PARAMETER        = local.autoscaler_flight_parameter
    S3STAGGER_PROCESSOR_FUNCTION_NAME = local.function_name
    S3STAGGER_BUDGET_FLOOR            = tostring(local.autoscaler_budget_floor)
    S3STAGGER_BUDGET_CAP              = tostring(local.autoscaler_budget_cap)
    S3STAGGER_ROWS_FLOOR              = tostring(local.autoscaler_rows_floor)
    S3STAGGER_ROWS_CAP                = tostring(local.autoscaler_rows_cap)
    POWERTOOLS_METRICS_NAMESPACE      = local.autoscaler_namespace
    POWERTOOLS_SERVICE_NAME           = "s3stagger-autoscaler"
  }
}

# --- The flight parameter: rows in flight per object and the law's state (JSON) -----------------

resource "aws_ssm_parameter" "autoscaler_flight" {
  #checkov:skip=CKV2_AWS_34:Non-secret figures every processor invocation reads; a SecureString would add a KMS decrypt per read for nothing.
  name        = local.autoscaler_flight_parameter
  description = "Rows in flight per object (and the autoscaler's state), written by ${local.autoscaler_function_name}, read by every processor invocation."
  type        = "String"
  value       = "{}"
  tags        = var.tags

  lifecycle {
    ignore_changes = [value]
  }
}

# --- Function -----------------------------------------------------------------------------------

data "aws_iam_policy_document" "autoscaler" {
  statement {
    sid       = "ReadQueueDepths"
    actions   = ["sqs:GetQueueAttributes"]
    resources = [for queue in values(var.queues) : queue.arn]
  }

  statement {
    sid = "ReadMetrics"
    # GetMetricData has no resource-level permissions: "*" is the only valid resource.
    actions   = ["cloudwatch:GetMetricData"]
    resources = ["*"]
  }

  statement {
    sid       = "ReadAndWriteTheParameters"
    actions   = ["ssm:GetParameter", "ssm:PutParameter"]
    resources = [aws_ssm_parameter.concurrency_budget.arn, aws_ssm_parameter.autoscaler_flight.arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "UseKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

# A failed run is replaced by the next scheduled one a minute later (nothing to redrive; the Errors
# alarm reports it). It reads SQS, CloudWatch and SSM only: no VPC resource to reach, and the
# processor's vpc_config does not apply here.
module "autoscaler" {
  source = "../lambda-function"

  function_name           = local.autoscaler_function_name
  description             = "s3stagger autoscaler: sets the concurrency budget and rows in flight from queue depth and the downstream's health."
  role_description        = "Role of the ${local.autoscaler_function_name} Lambda: read queue depths and metrics, write the budget and flight parameters."
  handler                 = local.autoscaler_settings.handler
  runtime                 = local.autoscaler_settings.runtime
  architecture            = local.autoscaler_settings.architecture
  package_path            = var.package_path
  timeout_seconds         = local.autoscaler_settings.timeout_s
  memory_mb               = local.autoscaler_settings.memory_mb
  reserved_concurrency    = 1 # one run at a time: each reads the state the previous one wrote
  environment             = local.autoscaler_environment
  policy_name             = "autoscaler"
  policy_json             = data.aws_iam_policy_document.autoscaler.json
  log_retention_days      = var.log_retention_days
  kms_key_arn             = var.kms_key_arn
  tracing_enabled         = var.tracing_enabled
  code_signing_config_arn = var.code_signing_config_arn
  tags                    = var.tags
}

moved {
  from = aws_cloudwatch_log_group.autoscaler
  to   = module.autoscaler.aws_cloudwatch_log_group.this
}

moved {
  from = aws_iam_role.autoscaler
  to   = module.autoscaler.aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.autoscaler
  to   = module.autoscaler.aws_iam_role_policy.this
}

moved {
  from = aws_lambda_function.autoscaler
  to   = module.autoscaler.aws_lambda_function.this
}

# --- The processor reads the flight parameter ---------------------------------------------------

data "aws_iam_policy_document" "processor_reads_flight" {
  statement {
    sid       = "ReadFlightParameter"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.autoscaler_flight.arn]
  }
}

resource "aws_iam_role_policy" "processor_reads_flight" {
  name   = "read-autoscaler-flight"
  role   = module.processor.role_name
  policy = data.aws_iam_policy_document.processor_reads_flight.json
}

# --- Schedule -----------------------------------------------------------------------------------

data "aws_iam_policy_document" "autoscaler_scheduler_trust" {
  statement {
    sid     = "SchedulerAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "autoscaler_scheduler" {
  name               = "${local.autoscaler_schedule_name}-role"
  description        = "Lets EventBridge Scheduler invoke ${local.autoscaler_function_name}."
  assume_role_policy = data.aws_iam_policy_document.autoscaler_scheduler_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "autoscaler_scheduler" {
  statement {
    sid       = "InvokeAutoscaler"
    actions   = ["lambda:InvokeFunction"]
    resources = [module.autoscaler.function_arn]
  }
}

resource "aws_iam_role_policy" "autoscaler_scheduler" {
  name   = "invoke-autoscaler"
  role   = aws_iam_role.autoscaler_scheduler.id
  policy = data.aws_iam_policy_document.autoscaler_scheduler.json
}

resource "aws_scheduler_schedule" "autoscaler" {
  name                = local.autoscaler_schedule_name
  description         = "Runs ${local.autoscaler_function_name}."
  schedule_expression = coalesce(var.autoscaler.schedule_expression, local.autoscaler_settings.schedule_expression)
  state               = var.autoscaler.enabled ? "ENABLED" : "DISABLED"
  kms_key_arn         = var.kms_key_arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = module.autoscaler.function_arn
    role_arn = aws_iam_role.autoscaler_scheduler.arn

    retry_policy {
      maximum_event_age_in_seconds = 60
      maximum_retry_attempts       = 0
    }
  }

  depends_on = [aws_iam_role_policy.autoscaler_scheduler]
}

# Its errors alarm is alarms.json's `autoscaler-errors`, made by the monitoring module like every
# other health alarm (pass it `autoscaler_function_name`).
