data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  # The shared definition files: local mode (s3stagger.local.alerting) provisions from the same ones.
  definitions_path    = coalesce(var.definitions_path, "${path.module}/../../../src/s3stagger/definitions")
  alerting            = jsondecode(file("${local.definitions_path}/alerting.json"))
  event_rules         = jsondecode(file("${local.definitions_path}/event_rules.json"))
  dispatcher_settings = jsondecode(file("${local.definitions_path}/dispatcher.json"))

  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  sse_kms    = var.kms_key_arn != null

  notifier             = local.alerting.notifier
  alert_queue_name     = "${var.name_prefix}-${local.alerting.alert_queue.name_suffix}"
  alert_dlq_name       = "${var.name_prefix}-${local.alerting.alert_dlq.name_suffix}"
  function_name        = "${var.name_prefix}-${local.notifier.function_name_suffix}"
  secret_name          = "${var.name_prefix}/${local.alerting.smtp.secret_name_suffix}"
  state_path           = "/${var.name_prefix}/${local.alerting.state.parameter_path_suffix}"
  state_parameters_arn = "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${local.state_path}/*"
  architecture         = coalesce(var.architecture, local.notifier.architecture)
  smtp_secret_arn      = var.smtp_secret_arn != null ? var.smtp_secret_arn : aws_secretsmanager_secret.smtp[0].arn

  smtp = {
    host      = coalesce(var.smtp.host, "email-smtp.${local.region}.amazonaws.com")
    port      = coalesce(var.smtp.port, local.alerting.smtp.port)
    security  = coalesce(var.smtp.security, local.alerting.smtp.security)
    timeout_s = coalesce(var.smtp.timeout_s, local.alerting.smtp.timeout_s)
    ca_file   = var.smtp.ca_file != null ? var.smtp.ca_file : local.alerting.smtp.ca_file
  }

  # The notifier's settings (s3stagger.notifier.NotifierSettings.from_environ): alerting.json's
  # environment with every setting it leaves to the deployment (null) filled in.
  notifier_environment = merge(
    { for name, value in local.notifier.environment : name => value if value != null },
    {
      S3STAGGER_SMTP_HOST               = local.smtp.host
      S3STAGGER_SMTP_PORT               = tostring(local.smtp.port)
      S3STAGGER_SMTP_SECURITY           = local.smtp.security
      S3STAGGER_SMTP_FROM               = var.smtp.from
      S3STAGGER_SMTP_TO                 = join(",", var.smtp.to)
      S3STAGGER_SMTP_SECRET_ID          = local.smtp_secret_arn
      S3STAGGER_SMTP_TIMEOUT_S          = tostring(local.smtp.timeout_s)
      S3STAGGER_ALERT_DIGEST_INTERVAL_S = tostring(local.alerting.digest_interval_s)
      S3STAGGER_ALERT_STATE_PATH        = local.state_path
      S3STAGGER_ALERT_QUEUE_URL         = aws_sqs_queue.alerts.id
      S3STAGGER_RUNBOOK_BASE_URL        = var.runbook_base_url
    },
    local.smtp.ca_file == null ? {} : { S3STAGGER_SMTP_CA_FILE = local.smtp.ca_file },
  )

  # Rules: alerting.json's, without the execution rule for an Express dispatcher (no such events).
  rules = {
    for rule in local.alerting.rules : rule.kind => merge(rule, { name = "${var.name_prefix}-${rule.name_suffix}" })
    if var.dispatcher_type == "STANDARD" || !try(rule.standard_only, false)
  }

  unrouted_key_wildcards = coalesce(var.unrouted_key_wildcards, [for route in local.event_rules.routes : "${route.key_prefix}*${local.event_rules.object_suffix}"])

  # Each rule kind's pattern, rendered from the template alerting.json names for it
  # (tests/iac/test_iac_alerting.py checks the names). The unrouted template writes
  # ["${key_wildcards}"], so the value is the JSON list without its outer brackets and quotes, as
  # in the event-ingest module.
  event_patterns = {
    alarm = templatefile("${local.definitions_path}/alert_pattern_alarm_state_change.json", {
      alarm_name_prefix = "${var.name_prefix}-"
    })
    execution_failed = templatefile("${local.definitions_path}/alert_pattern_execution_status_change.json", {
      state_machine_arn = var.state_machine_arn
    })
    object_failed = templatefile("${local.definitions_path}/alert_pattern_object_failed.json", {
      event_source = local.dispatcher_settings.event_source
    })
    unrouted = templatefile("${local.definitions_path}/event_pattern_unrouted.json", {
      bucket_name   = var.uploads_bucket_name
      key_wildcards = trimsuffix(trimprefix(jsonencode(local.unrouted_key_wildcards), "[\""), "\"]")
    })
  }
}

# --- Alert queue and its DLQ --------------------------------------------------------------------

resource "aws_sqs_queue" "alert_dead_letter" {
  name                              = local.alert_dlq_name
  message_retention_seconds         = local.alerting.alert_dlq.message_retention_s
  sqs_managed_sse_enabled           = local.sse_kms ? null : true
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = local.sse_kms ? 300 : null
  tags                              = var.tags
}

resource "aws_sqs_queue" "alerts" {
  name                              = local.alert_queue_name
  visibility_timeout_seconds        = local.alerting.alert_queue.visibility_timeout_s
  message_retention_seconds         = local.alerting.alert_queue.message_retention_s
  receive_wait_time_seconds         = local.alerting.alert_queue.receive_wait_time_s
  sqs_managed_sse_enabled           = local.sse_kms ? null : true
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = local.sse_kms ? 300 : null
  tags                              = var.tags

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.alert_dead_letter.arn
    maxReceiveCount     = local.alerting.alert_queue.max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "alert_dead_letter" {
  queue_url = aws_sqs_queue.alert_dead_letter.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.alerts.arn]
  })
}

# Only EventBridge, only on behalf of this module's rules, only over TLS. The DLQ also receives the
# events a rule target could not deliver (dead_letter_config).
locals {
  # Queue -> its ARN, its URL.
  alert_queue_arn = {
    alerts      = aws_sqs_queue.alerts.arn
    dead_letter = aws_sqs_queue.alert_dead_letter.arn
  }
  alert_queue_url = {
    alerts      = aws_sqs_queue.alerts.id
    dead_letter = aws_sqs_queue.alert_dead_letter.id
  }
}

data "aws_iam_policy_document" "alert_queue" {
  for_each = toset(keys(local.alert_queue_arn))

  statement {
    sid       = "AlertEventsFromTheRules"
    actions   = ["sqs:SendMessage"]
    resources = [local.alert_queue_arn[each.key]]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for rule in aws_cloudwatch_event_rule.alert : rule.arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [local.alert_queue_arn[each.key]]

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

resource "aws_sqs_queue_policy" "alert_queue" {
  for_each = local.alert_queue_url

  queue_url = each.value
  policy    = data.aws_iam_policy_document.alert_queue[each.key].json
}

# --- EventBridge rules: alarm state changes, failed executions, failed objects, unrouted objects --

resource "aws_cloudwatch_event_rule" "alert" {
  for_each = local.rules

  name          = each.value.name
  description   = each.value.description
  event_pattern = local.event_patterns[each.key]
  tags          = var.tags
}

resource "aws_cloudwatch_event_target" "alert" {
  for_each = local.rules

  rule      = aws_cloudwatch_event_rule.alert[each.key].name
  target_id = local.alert_queue_name
  arn       = aws_sqs_queue.alerts.arn

  retry_policy {
    maximum_retry_attempts       = local.event_rules.target_retry_policy.maximum_retry_attempts
    maximum_event_age_in_seconds = local.event_rules.target_retry_policy.maximum_event_age_s
  }

  dead_letter_config {
    arn = aws_sqs_queue.alert_dead_letter.arn
  }
}

# --- SMTP credentials ---------------------------------------------------------------------------

resource "aws_secretsmanager_secret" "smtp" {
  count = var.smtp_secret_arn == null ? 1 : 0
  #checkov:skip=CKV2_AWS_57:SMTP credentials are issued by the relay or derived from an IAM key for SES; rotate them there and put the new value, a rotation Lambda cannot mint them.

  name        = local.secret_name
  description = "SMTP user and password of the central mail server for ${local.function_name}: {\"username\": ..., \"password\": ...}."
  kms_key_id  = var.kms_key_arn
  tags        = var.tags
}

# --- Notifier Lambda ----------------------------------------------------------------------------

data "aws_iam_policy_document" "notifier" {
  statement {
    sid = "ConsumeAlerts"
    # The event source mapping receives with the function's role; SendMessage schedules a digest
    # (a message delayed by the digest interval) on the same queue.
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:SendMessage"]
    resources = [aws_sqs_queue.alerts.arn]
  }

  statement {
    sid       = "KeepDedupeAndDigestState"
    actions   = ["ssm:GetParameter", "ssm:PutParameter"]
    resources = [local.state_parameters_arn]
  }

  statement {
    sid       = "ReadSmtpCredentials"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.smtp_secret_arn]
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

# Invoked by an SQS event source mapping, not asynchronously: a failed alert returns to the alert
# queue and, after max_receive_count receives, moves to the alert DLQ. The VPC is an input
# (vpc_config) for a private relay; SES's SMTP interface and the AWS APIs are reached without one.
module "notifier" {
  source = "../lambda-function"

  function_name              = local.function_name
  description                = "s3stagger notifier: mails pipeline alerts (alarms, failed executions and objects, unrouted uploads) through the central SMTP server, deduplicated and digested."
  role_description           = "Role of the ${local.function_name} Lambda: read alerts, keep dedupe and digest state, read the SMTP secret, write its own logs."
  assume_role_source_account = local.account_id
  handler                    = local.notifier.handler
  runtime                    = local.notifier.runtime
  architecture               = local.architecture
  package_path               = var.package_path
  timeout_seconds            = local.notifier.timeout_s
  memory_mb                  = local.notifier.memory_mb
  reserved_concurrency       = local.notifier.reserved_concurrency
  environment                = local.notifier_environment
  policy_name                = "notifier"
  policy_json                = data.aws_iam_policy_document.notifier.json
  log_retention_days         = var.log_retention_days
  kms_key_arn                = var.kms_key_arn
  tracing_enabled            = var.tracing_enabled
  vpc_config                 = var.vpc_config
  code_signing_config_arn    = var.code_signing_config_arn
  tags                       = var.tags
}

# A stack deployed before the lambda-function module keeps its notifier (no destroy and create).
moved {
  from = aws_cloudwatch_log_group.notifier
  to   = module.notifier.aws_cloudwatch_log_group.this
}

moved {
  from = aws_iam_role.notifier
  to   = module.notifier.aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.notifier
  to   = module.notifier.aws_iam_role_policy.this
}

moved {
  from = aws_iam_role_policy_attachment.notifier_vpc
  to   = module.notifier.aws_iam_role_policy_attachment.vpc
}

moved {
  from = aws_lambda_function.notifier
  to   = module.notifier.aws_lambda_function.this
}

resource "aws_lambda_event_source_mapping" "alerts" {
  event_source_arn                   = aws_sqs_queue.alerts.arn
  function_name                      = module.notifier.function_arn
  batch_size                         = local.notifier.event_source_mapping.batch_size
  maximum_batching_window_in_seconds = local.notifier.event_source_mapping.maximum_batching_window_s
  function_response_types            = local.notifier.event_source_mapping.function_response_types
  tags                               = var.tags

  # The fewest pollers SQS allows: the notifier runs at reserved concurrency 1 (its state is a
  # read-modify-write), so more pollers would only be throttled and burn receive counts.
  scaling_config {
    maximum_concurrency = 2
  }
}
