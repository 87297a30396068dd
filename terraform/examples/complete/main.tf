# The whole pattern with realistic settings: one customer KMS key for data and logs, both
# modules, and alerting (failed objects and non-empty DLQs) through an encrypted SNS topic.

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
    sid       = "EventBridgeDeliversToEncryptedQueuesAndTopic"
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
    sid       = "CloudWatchAlarmsPublishToEncryptedTopic"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
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
    timeout_seconds      = 300
    memory_mb            = 512
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

# --- Alerting: failed objects (dispatcher events) and messages in a DLQ -------------------------

resource "aws_sns_topic" "alerts" {
  name              = "${var.name_prefix}-alerts"
  kms_master_key_id = aws_kms_key.pipeline.arn
}

resource "aws_sns_topic_subscription" "alert_email" {
  count = var.alert_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alert_email
}

resource "aws_cloudwatch_event_rule" "processing_failed" {
  name          = "${var.name_prefix}-processing-failed"
  description   = "Objects the dispatcher could not process (the message is retried, then moves to its DLQ)."
  event_pattern = module.dispatcher.failure_event_pattern
}

resource "aws_cloudwatch_event_target" "processing_failed" {
  rule      = aws_cloudwatch_event_rule.processing_failed.name
  target_id = "${var.name_prefix}-alerts"
  arn       = aws_sns_topic.alerts.arn

  retry_policy {
    maximum_retry_attempts       = 185
    maximum_event_age_in_seconds = 86400
  }

  dead_letter_config {
    arn = aws_sqs_queue.alerts_dead_letter.arn
  }
}

# Failure events EventBridge could not publish to the topic: kept 14 days, alarmed below.
resource "aws_sqs_queue" "alerts_dead_letter" {
  name                              = "${var.name_prefix}-alerts-dlq"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.pipeline.arn
  kms_data_key_reuse_period_seconds = 300
}

data "aws_iam_policy_document" "alerts_dead_letter" {
  statement {
    sid       = "UndeliverableFailureEvents"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.alerts_dead_letter.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.processing_failed.arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.alerts_dead_letter.arn]

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

resource "aws_sqs_queue_policy" "alerts_dead_letter" {
  queue_url = aws_sqs_queue.alerts_dead_letter.id
  policy    = data.aws_iam_policy_document.alerts_dead_letter.json
}

locals {
  dead_letter_queues = merge(
    { for priority, queue in module.ingest.queues : priority => queue.dlq_name },
    { ingest = module.ingest.ingest_dlq_name, alerts = aws_sqs_queue.alerts_dead_letter.name },
  )
}

resource "aws_cloudwatch_metric_alarm" "dead_letter_not_empty" {
  for_each = local.dead_letter_queues

  alarm_name          = "${each.value}-not-empty"
  alarm_description   = "Messages wait in ${each.value}: inspect them, fix the cause, then redrive (StartMessageMoveTask)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

data "aws_iam_policy_document" "alerts_topic" {
  statement {
    sid       = "FailureEventsFromTheRule"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.processing_failed.arn]
    }
  }

  statement {
    sid       = "DeadLetterAlarms"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${var.name_prefix}-*"]
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts_topic.json
}
