# The whole pattern with realistic settings: one customer KMS key for data, logs and alerts, the
# ingest and dispatcher modules, health alarms and a dashboard (monitoring), and event-driven
# alerting by email through the central SMTP server (alerting).

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  # Objects in flight at most, and rows in flight per object: together they stay near the
  # downstream's capacity; the processor's adaptive limiter absorbs the rest (429 -> back off).
  budget_maximum     = 10
  rows_in_flight_max = max(1, floor(var.downstream_capacity / local.budget_maximum))

  package_path = coalesce(var.package_path, "${path.root}/../../../dist/s3stagger-lambda-${var.architecture}.zip")

  processor_timeout_seconds = 300
}

# --- One customer-managed key for buckets, queues, logs, state machine and alerts --------------

data "aws_iam_policy_document" "pipeline_key" {
  #checkov:skip=CKV_AWS_109:A key policy, not an IAM policy: "*" as resource means this key only, and only the account root may administer it.
  #checkov:skip=CKV_AWS_111:A key policy, not an IAM policy: "*" as resource means this key only; service principals are bound by aws:SourceAccount or an encryption-context condition.
  #checkov:skip=CKV_AWS_356:A key policy, not an IAM policy: "*" is the only valid resource in a key policy and means this key.
  statement {
    sid = "AccountAdministersAndDelegatesToIam"
    actions = [
      "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:CreateGrant", "kms:Decrypt", "kms:DeleteAlias",
      "kms:DescribeKey", "kms:DisableKey", "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation",
      "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:GetKeyPolicy",
      "kms:GetKeyRotationStatus", "kms:ListAliases", "kms:ListGrants", "kms:ListKeyPolicies",
      "kms:ListResourceTags", "kms:ListRetirableGrants", "kms:PutKeyPolicy", "kms:ReEncryptFrom",
      "kms:ReEncryptTo", "kms:RetireGrant", "kms:RevokeGrant", "kms:RotateKeyOnDemand",
      "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource", "kms:UpdateAlias",
      "kms:UpdateKeyDescription",
    ]
    resources = ["*"] # in a key policy, "*" is this key

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "EventBridgeDeliversToEncryptedQueues"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "LogDeliveryReadsEncryptedExecutionData"
    actions   = ["kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid = "CloudWatchLogsEncryptsThisAccountsLogGroups"
    actions = [
      "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
      "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "pipeline" {
  description             = "${var.name_prefix}: uploads, failed rows, queues, logs, state machine data and alerts"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.pipeline_key.json
}

resource "aws_kms_alias" "pipeline" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.pipeline.key_id
}

# --- The pattern ------------------------------------------------------------------------------

module "ingest" {
  source = "../../modules/event-ingest"

  name_prefix = var.name_prefix
  kms_key_arn = aws_kms_key.pipeline.arn

  # Keep replaced or deleted uploads a quarter for audits, then let them expire.
  noncurrent_version_expiration_days = 90
}

module "dispatcher" {
  source = "../../modules/staggered-dispatcher"

  name_prefix             = var.name_prefix
  queues                  = module.ingest.queues
  source_bucket_name      = module.ingest.uploads_bucket_name
  failed_rows_bucket_name = module.ingest.failed_rows_bucket_name
  downstream_url          = var.downstream_url
  package_path            = local.package_path
  architecture            = var.architecture
  kms_key_arn             = aws_kms_key.pipeline.arn
  log_retention_days      = 365

  processor = {
    timeout_seconds      = local.processor_timeout_seconds
    reserved_concurrency = local.budget_maximum
    environment = {
      S3STAGGER_MAX_CONCURRENCY = tostring(local.rows_in_flight_max)
    }
  }

  concurrency_budget = {
    initial = 5
    minimum = 1
    maximum = local.budget_maximum
  }
}

# --- Alerting: alarm state changes, failed executions and objects, unrouted uploads -> email ----

module "alerting" {
  source = "../../modules/alerting"

  name_prefix         = var.name_prefix
  package_path        = local.package_path
  architecture        = var.architecture
  state_machine_arn   = module.dispatcher.state_machine_arn
  uploads_bucket_name = module.ingest.uploads_bucket_name
  unrouted_key_wildcards = [
    for priority in module.ingest.priorities : "${module.ingest.key_prefixes[priority]}*${module.ingest.object_suffix}"
  ]
  kms_key_arn        = aws_kms_key.pipeline.arn
  log_retention_days = 365
  runbook_base_url   = var.runbook_base_url

  smtp = {
    host     = var.smtp.host
    port     = var.smtp.port
    security = var.smtp.security
    from     = var.alert_from
    to       = var.alert_emails
  }
  smtp_secret_arn = var.smtp.secret_arn
  vpc_config      = var.smtp.vpc_config
}

# --- Health alarms (alarms.json) and the dashboard; their state changes reach alerting by ----------
# --- EventBridge, so they need no action.

module "monitoring" {
  source = "../../modules/monitoring"

  name_prefix = var.name_prefix
  queues      = { for priority, queue in module.ingest.queues : priority => queue.name }
  dead_letter_queues = merge(
    { for priority, queue in module.ingest.queues : priority => queue.dlq_name },
    { ingest-dlq = module.ingest.ingest_dlq_name, alert-dlq = module.alerting.alert_dlq_name },
  )
  event_rules = merge(
    { for name, arn in module.ingest.event_rule_arns : trimprefix(name, "${var.name_prefix}-") => name },
    module.alerting.event_rules,
  )
  processor = {
    function_name        = module.dispatcher.processor_function_name
    timeout_seconds      = local.processor_timeout_seconds
    reserved_concurrency = local.budget_maximum
  }
  state_machine_arn        = module.dispatcher.state_machine_arn
  notifier_function_name   = module.alerting.notifier_function_name
  autoscaler_function_name = module.dispatcher.autoscaler_function_name
  delivery_streams = {
    splunk    = one(module.splunk_logs[*].delivery_stream_name)
    dynatrace = one(module.dynatrace_metrics[*].delivery_stream_name)
  }
  runbook_base_url = var.runbook_base_url
  alarm_actions    = compact([var.alarm_topic_arn])
}

# --- Observability: Lambda logs to Splunk, metrics to Dynatrace (each off until configured) -------

module "splunk_logs" {
  source = "../../modules/splunk-logs"
  count  = var.splunk == null ? 0 : 1

  name_prefix = var.name_prefix
  log_group_names = {
    processor  = module.dispatcher.processor_log_group_name
    dispatcher = module.dispatcher.dispatcher_log_group_name
    notifier   = module.alerting.notifier_log_group_name
  }
  hec_endpoint         = var.splunk.hec_endpoint
  hec_token_secret_arn = var.splunk.hec_token_secret_arn
  splunk_index         = var.splunk.index
  package_path         = local.package_path
  architecture         = var.architecture
  tags                 = var.tags
}

module "dynatrace_metrics" {
  source = "../../modules/dynatrace-metrics"
  count  = var.dynatrace == null ? 0 : 1

  name_prefix               = var.name_prefix
  dynatrace_endpoint_url    = var.dynatrace.endpoint_url
  dynatrace_environment_url = var.dynatrace.environment_url
  api_token_secret_arn      = var.dynatrace.api_token_secret_arn
  tags                      = var.tags
}
