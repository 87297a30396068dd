data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  # The shared definition files: local mode (s3stagger.local) provisions from the very same files.
  definitions_path    = coalesce(var.definitions_path, "${path.module}/../../../src/s3stagger/definitions")
  queue_definitions   = jsondecode(file("${local.definitions_path}/queues.json"))
  dispatcher_settings = jsondecode(file("${local.definitions_path}/dispatcher.json"))
  processor_settings  = jsondecode(file("${local.definitions_path}/processor.json"))
  budget_settings     = jsondecode(file("${local.definitions_path}/budget.json"))
  storage             = jsondecode(file("${local.definitions_path}/storage.json"))

  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  priorities = local.queue_definitions.priorities

  function_name        = "${var.name_prefix}-${local.processor_settings.function_name_suffix}"
  state_machine_name   = "${var.name_prefix}-${local.dispatcher_settings.state_machine_name_suffix}"
  schedule_name        = "${var.name_prefix}-${local.dispatcher_settings.schedule_name_suffix}"
  budget_parameter     = "/${var.name_prefix}/${local.budget_settings.parameter_name_suffix}"
  dispatcher_log_group = "/aws/vendedlogs/states/${local.state_machine_name}"
  lease_queue_name     = "${var.name_prefix}-${local.queue_definitions.lease_queue.name_suffix}"

  # Known before creation, so the state machine's role can name its own state machine (no cycle).
  state_machine_arn      = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.state_machine_name}"
  event_bus_arn          = "arn:${local.partition}:events:${local.region}:${local.account_id}:event-bus/${local.dispatcher_settings.event_bus_name}"
  source_bucket_arn      = "arn:${local.partition}:s3:::${var.source_bucket_name}"
  failed_rows_bucket_arn = "arn:${local.partition}:s3:::${var.failed_rows_bucket_name}"

  architecture         = coalesce(var.architecture, local.processor_settings.architecture)
  timeout_seconds      = coalesce(var.processor.timeout_seconds, local.processor_settings.timeout_s)
  memory_mb            = coalesce(var.processor.memory_mb, local.processor_settings.memory_mb)
  reserved_concurrency = coalesce(var.processor.reserved_concurrency, local.processor_settings.reserved_concurrency)
  failed_rows_prefix   = lookup(var.processor.environment, "S3STAGGER_FAILED_ROWS_PREFIX", lookup(local.processor_settings.environment, "S3STAGGER_FAILED_ROWS_PREFIX", local.storage.failed_rows_prefix))

  processor_environment = merge(
    local.processor_settings.environment,
    { POWERTOOLS_LOG_LEVEL = var.processor.log_level },
    local.downstream_api_environment,
    var.processor.environment,
    {
      S3STAGGER_DOWNSTREAM_URL     = var.downstream_url
      S3STAGGER_FAILED_ROWS_BUCKET = var.failed_rows_bucket_name
      S3STAGGER_FAILED_ROWS_PREFIX = local.failed_rows_prefix
      S3STAGGER_FLIGHT_PARAMETER   = local.autoscaler_flight_parameter
    },
  )

  state_machine_type = coalesce(var.dispatcher.state_machine_type, local.dispatcher_settings.state_machine_type)

  dispatcher = {
    schedule_expression     = coalesce(var.dispatcher.schedule_expression, local.dispatcher_settings.schedule_expression)
    receive_claim_s         = coalesce(var.dispatcher.receive_claim_s, local.dispatcher_settings.receive_claim_s)
    failure_retry_delay_s   = coalesce(var.dispatcher.failure_retry_delay_s, local.dispatcher_settings.failure_retry_delay_s)
    lease_s                 = coalesce(var.dispatcher.lease_s, local.dispatcher_settings.lease_s)
    time_budget_s           = coalesce(var.dispatcher.time_budget_s, local.dispatcher_settings.time_budget_s)
    max_calls_per_slot      = coalesce(var.dispatcher.max_calls_per_slot, local.dispatcher_settings.max_calls_per_slot[local.state_machine_type])
    max_partials_per_object = coalesce(var.dispatcher.max_partials_per_object, local.dispatcher_settings.max_partials_per_object)
    idle_polls              = local.dispatcher_settings.idle_polls
    idle_wait_s             = local.dispatcher_settings.idle_wait_s
  }

  # An Express execution lasts at most 300 s: time_budget_s leaves the rest for its last calls.
  express_max_time_budget_s = 270

  budget = {
    initial = coalesce(var.concurrency_budget.initial, local.budget_settings.default)
    minimum = coalesce(var.concurrency_budget.minimum, local.budget_settings.minimum)
    maximum = coalesce(var.concurrency_budget.maximum, local.budget_settings.maximum)
  }

  # Every ${placeholder} of dispatcher.asl.json (definitions/README.md lists where each comes from).
  # Per-priority values are joined with "," in queues.json order (first = highest); the ASL splits
  # them, so any number of priorities runs on the same states.
  state_machine_template_values = {
    processor_function_arn  = module.processor.function_arn
    budget_parameter_name   = aws_ssm_parameter.concurrency_budget.name
    budget_default          = local.budget.initial
    budget_minimum          = local.budget.minimum
    budget_maximum          = local.budget.maximum
    event_bus_name          = local.dispatcher_settings.event_bus_name
    event_source            = local.dispatcher_settings.event_source
    receive_claim_s         = local.dispatcher.receive_claim_s
    failure_retry_delay_s   = local.dispatcher.failure_retry_delay_s
    lease_s                 = local.dispatcher.lease_s
    lease_queue_url         = aws_sqs_queue.lease.id
    time_budget_s           = local.dispatcher.time_budget_s
    max_calls_per_slot      = local.dispatcher.max_calls_per_slot
    max_partials_per_object = local.dispatcher.max_partials_per_object
    idle_polls              = local.dispatcher.idle_polls
    idle_wait_s             = local.dispatcher.idle_wait_s
    stagger_backlog_depth   = local.dispatcher_settings.stagger.backlog_depth
    queue_urls              = join(",", [for priority in local.priorities : var.queues[priority].url])
    stagger_spacing_s       = join(",", [for priority in local.priorities : local.dispatcher_settings.stagger.priorities[priority].spacing_s])
    stagger_max_delay_s     = join(",", [for priority in local.priorities : local.dispatcher_settings.stagger.priorities[priority].max_delay_s])
  }

  # The lease is taken for lease_s and renewed by every processor call while it runs (keep-alive): it
  # must outlast a dispatcher's longest stretch between calls (a stagger wait, the idle looks) and a
  # margin, so a dead dispatcher's lease frees itself within lease_s of its last call.
  longest_stagger_delay_s = max([for priority in local.priorities : local.dispatcher_settings.stagger.priorities[priority].max_delay_s]...)
  lease_margin_s          = 20
  minimum_lease_s         = local.longest_stagger_delay_s + local.dispatcher.idle_polls * local.dispatcher.idle_wait_s + local.lease_margin_s
}

# --- Dispatcher lease: a FIFO queue whose single token a running dispatcher holds ---------------
# One message group, so at most one token is in flight: one dispatcher at a time across schedule
# slots. Nothing seeds it here: a dispatcher that finds no token anywhere puts one back.

resource "aws_sqs_queue" "lease" {
  name                              = local.lease_queue_name
  fifo_queue                        = true
  message_retention_seconds         = local.queue_definitions.lease_queue.message_retention_s
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 300
  tags                              = var.tags

  lifecycle {
    precondition {
      condition     = local.dispatcher.lease_s >= local.minimum_lease_s
      error_message = "dispatcher.lease_s (${local.dispatcher.lease_s} s) must be at least the longest stagger delay + idle_polls x idle_wait_s + ${local.lease_margin_s} s (${local.minimum_lease_s} s), or the lease lapses between two processor calls of a running dispatcher and a second one starts. Raise dispatcher.lease_s."
    }
    # Here, on a resource that indexes no queue, so a plan without a priority's queue says which
    # (the state machine and its role would only report an invalid index).
    precondition {
      condition     = length(setsubtract(local.priorities, keys(var.queues))) == 0
      error_message = "queues lacks priorities ${join(", ", setsubtract(local.priorities, keys(var.queues)))} (queues.json lists ${join(", ", local.priorities)}): pass the event-ingest module's queues output."
    }
  }
}

data "aws_iam_policy_document" "lease" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.lease.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "lease" {
  queue_url = aws_sqs_queue.lease.id
  policy    = data.aws_iam_policy_document.lease.json
}

# --- Concurrency budget (the autoscaler rewrites the value; Terraform only creates it) ---------

resource "aws_ssm_parameter" "concurrency_budget" {
  #checkov:skip=CKV2_AWS_34:The budget is a non-secret integer that Step Functions reads with ssm:GetParameter; a SecureString would add a KMS decrypt per batch for nothing.
  name        = local.budget_parameter
  description = "Objects the ${local.state_machine_name} state machine processes at once (clamped to ${local.budget.minimum}-${local.budget.maximum}); written by the autoscaler."
  type        = "String"
  value       = tostring(local.budget.initial)
  tags        = var.tags

  lifecycle {
    ignore_changes = [value]

    precondition {
      condition     = 1 <= local.budget.minimum && local.budget.minimum <= local.budget.initial && local.budget.initial <= local.budget.maximum && local.budget.maximum <= 40
      error_message = "concurrency_budget (or budget.json): need 1 <= minimum (${local.budget.minimum}) <= initial (${local.budget.initial}) <= maximum (${local.budget.maximum}) <= 40 (an inline Map runs at most 40 iterations at once)."
    }
  }
}

# --- Logs ---------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "dispatcher" {
  name              = local.dispatcher_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# --- Processor Lambda ---------------------------------------------------------------------------

data "aws_iam_policy_document" "processor" {
  statement {
    sid       = "ReadUploadedObjects"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${local.source_bucket_arn}/*"]
  }

  statement {
    sid = "SeeDeletedObjectsAsNotFound"
    # Without ListBucket S3 answers 403, not 404, for a deleted object: the processor would retry
    # it as a transient error instead of rejecting it once.
    actions   = ["s3:ListBucket"]
    resources = [local.source_bucket_arn]
  }

  statement {
    sid       = "WriteFailedRows"
    actions   = ["s3:PutObject"]
    resources = ["${local.failed_rows_bucket_arn}/${local.failed_rows_prefix}*"]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "UseDataKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

# The dispatcher invokes the processor synchronously: a failure is caught by the state machine and
# the SQS message reaches its redrive DLQ (no Lambda DLQ). The VPC is an input (vpc_config); the
# default reaches S3 and an HTTPS downstream without one.
module "processor" {
  source = "../lambda-function"

  function_name           = local.function_name
  description             = "s3stagger processor: streams the rows of one CSV object to the downstream API, within the dispatcher's concurrency budget."
  role_description        = "Role of the ${local.function_name} Lambda: read uploads, write failed rows, write its own logs."
  handler                 = local.processor_settings.handler
  runtime                 = local.processor_settings.runtime
  architecture            = local.architecture
  package_path            = var.package_path
  timeout_seconds         = local.timeout_seconds
  memory_mb               = local.memory_mb
  reserved_concurrency    = local.reserved_concurrency
  environment             = local.processor_environment
  policy_name             = "processor"
  policy_json             = data.aws_iam_policy_document.processor.json
  log_retention_days      = var.log_retention_days
  kms_key_arn             = var.kms_key_arn
  tracing_enabled         = var.tracing_enabled
  vpc_config              = var.vpc_config
  code_signing_config_arn = var.code_signing_config_arn
  tags                    = var.tags
}

# A stack deployed before the lambda-function module keeps its processor (no destroy and create).
moved {
  from = aws_cloudwatch_log_group.processor
  to   = module.processor.aws_cloudwatch_log_group.this
}

moved {
  from = aws_iam_role.processor
  to   = module.processor.aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.processor
  to   = module.processor.aws_iam_role_policy.this
}

moved {
  from = aws_iam_role_policy_attachment.processor_vpc
  to   = module.processor.aws_iam_role_policy_attachment.vpc
}

moved {
  from = aws_lambda_function.processor
  to   = module.processor.aws_lambda_function.this
}

# --- Dispatcher state machine -------------------------------------------------------------------

data "aws_iam_policy_document" "states_trust" {
  statement {
    sid     = "StepFunctionsAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "dispatcher" {
  name               = "${local.state_machine_name}-role"
  description        = "Role of the ${local.state_machine_name} state machine: drain the priority queues into the processor."
  assume_role_policy = data.aws_iam_policy_document.states_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "dispatcher" {
  statement {
    sid = "DrainPriorityQueuesAndHoldLease"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:SendMessage",
      "sqs:GetQueueAttributes",
    ]
    resources = concat([for priority in local.priorities : var.queues[priority].arn], [aws_sqs_queue.lease.arn])
  }

  statement {
    sid       = "InvokeProcessor"
    actions   = ["lambda:InvokeFunction", "lambda:GetFunctionConcurrency"]
    resources = [module.processor.function_arn, "${module.processor.function_arn}:*"]
  }

  statement {
    sid       = "ReadConcurrencyBudget"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.concurrency_budget.arn]
  }

  statement {
    sid       = "PublishFailureEvents"
    actions   = ["events:PutEvents"]
    resources = [local.event_bus_arn]
  }

  statement {
    sid       = "ContinueAsNewExecution"
    actions   = ["states:StartExecution"]
    resources = [local.state_machine_arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "UseQueueAndStateKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }

  statement {
    sid = "DeliverExecutionLogs"
    # CloudWatch Logs vended delivery has no resource-level permissions: "*" is the only valid resource.
    actions = [
      "logs:CreateLogDelivery",
      "logs:GetLogDelivery",
      "logs:UpdateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:DescribeResourcePolicies",
      "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.tracing_enabled ? ["xray"] : []

    content {
      sid = "WriteTraces"
      # X-Ray has no resource-level permissions for these actions: "*" is the only valid resource.
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "dispatcher" {
  name   = "dispatcher"
  role   = aws_iam_role.dispatcher.id
  policy = data.aws_iam_policy_document.dispatcher.json
}

resource "aws_sfn_state_machine" "dispatcher" {
  #checkov:skip=CKV_AWS_285:Execution logging is on (level state_machine_log_level); execution data (message bodies, object keys, cursors) stays out of the logs: it is not needed to see a failure, and an Express dispatcher pays for every logged byte.
  name       = local.state_machine_name
  type       = local.state_machine_type
  role_arn   = aws_iam_role.dispatcher.arn
  definition = templatefile("${local.definitions_path}/dispatcher.asl.json", local.state_machine_template_values)
  tags       = var.tags

  # Express keeps no history: its executions are observed through this log group (and the AWS/States
  # metrics). Execution data stays out of the logs (object keys and cursors are not needed to alert).
  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.dispatcher.arn}:*"
    include_execution_data = false
    level                  = var.state_machine_log_level
  }

  tracing_configuration {
    enabled = var.tracing_enabled
  }

  dynamic "encryption_configuration" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      type                              = "CUSTOMER_MANAGED_KMS_KEY"
      kms_key_id                        = encryption_configuration.value
      kms_data_key_reuse_period_seconds = 300
    }
  }

  lifecycle {
    precondition {
      condition     = alltrue([for queue in values(var.queues) : queue.visibility_timeout_seconds >= local.timeout_seconds])
      error_message = "Every queue's visibility timeout must be at least the processor timeout (${local.timeout_seconds} s), so a consumer that does not extend visibility cannot lose a message mid-call. Raise queue_overrides.visibility_timeout_seconds in the event-ingest module, or lower processor.timeout_seconds."
    }
    precondition {
      condition     = local.budget.maximum <= local.reserved_concurrency
      error_message = "concurrency_budget.maximum (${local.budget.maximum}) exceeds the processor's reserved concurrency (${local.reserved_concurrency}): the dispatcher would be throttled. Lower concurrency_budget.maximum or raise processor.reserved_concurrency."
    }
    precondition {
      condition     = local.state_machine_type != "EXPRESS" || local.dispatcher.time_budget_s <= local.express_max_time_budget_s
      error_message = "dispatcher.time_budget_s (${local.dispatcher.time_budget_s} s) must be at most ${local.express_max_time_budget_s} s for an EXPRESS dispatcher: an execution lasts at most 300 s and its last calls need the rest. Lower it, or use state_machine_type = \"STANDARD\"."
    }
  }

  depends_on = [aws_iam_role_policy.dispatcher]
}

# --- Schedule: starts the dispatcher; a start that finds the lease held ends at once ------------

data "aws_iam_policy_document" "scheduler_trust" {
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

resource "aws_iam_role" "scheduler" {
  name               = "${local.schedule_name}-role"
  description        = "Role of the ${local.schedule_name} schedule: start the ${local.state_machine_name} state machine."
  assume_role_policy = data.aws_iam_policy_document.scheduler_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "StartDispatcher"
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.dispatcher.arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "UseScheduleAndStateKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "scheduler"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_scheduler_schedule" "dispatcher" {
  name                = local.schedule_name
  description         = "Starts the ${local.state_machine_name} state machine."
  schedule_expression = local.dispatcher.schedule_expression
  state               = var.dispatcher.schedule_enabled ? "ENABLED" : "DISABLED"
  kms_key_arn         = var.kms_key_arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_sfn_state_machine.dispatcher.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode({ slot = "<aws.scheduler.scheduled-time>" })

    retry_policy {
      maximum_event_age_in_seconds = 60
      maximum_retry_attempts       = 2
    }
  }

  depends_on = [aws_iam_role_policy.scheduler]
}
