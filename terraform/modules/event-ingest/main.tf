data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  # The shared definition files: local mode (s3stagger.local) provisions from the very same files.
  definitions_path  = coalesce(var.definitions_path, "${path.module}/../../../src/s3stagger/definitions")
  queue_definitions = jsondecode(file("${local.definitions_path}/queues.json"))
  event_rules       = jsondecode(file("${local.definitions_path}/event_rules.json"))
  storage           = jsondecode(file("${local.definitions_path}/storage.json"))

  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name

  bucket_names = {
    uploads     = coalesce(var.bucket_names.uploads, "${var.name_prefix}-${local.storage.uploads_bucket_suffix}-${local.account_id}-${local.region}")
    failed_rows = coalesce(var.bucket_names.failed_rows, "${var.name_prefix}-${local.storage.failed_rows_bucket_suffix}-${local.account_id}-${local.region}")
  }

  # Priorities in the order the dispatcher serves them (first = highest), as queues.json lists them.
  priorities    = local.queue_definitions.priorities
  object_suffix = local.event_rules.object_suffix
  key_prefixes = {
    for route in local.event_rules.routes : route.priority => lookup(var.key_prefixes, route.priority, route.key_prefix)
  }
  key_wildcards = { for priority, prefix in local.key_prefixes : priority => "${prefix}*${local.object_suffix}" }
  # The unrouted rule's anything-but list: every route's wildcard, in route order. The template holds
  # it as ["${key_wildcards}"] (valid JSON before rendering), so the value is the JSON list without its
  # outer [" and "]; local mode computes the same (s3stagger.local.templates.json_string_list_items).
  unrouted_key_wildcards = trimsuffix(trimprefix(jsonencode([for route in local.event_rules.routes : local.key_wildcards[route.priority]]), "[\""), "\"]")

  queue_settings = {
    visibility_timeout_seconds    = coalesce(var.queue_overrides.visibility_timeout_seconds, local.queue_definitions.queue.visibility_timeout_s)
    message_retention_seconds     = coalesce(var.queue_overrides.message_retention_seconds, local.queue_definitions.queue.message_retention_s)
    receive_wait_time_seconds     = coalesce(var.queue_overrides.receive_wait_time_seconds, local.queue_definitions.queue.receive_wait_time_s)
    max_receive_count             = coalesce(var.queue_overrides.max_receive_count, local.queue_definitions.queue.max_receive_count)
    dlq_message_retention_seconds = coalesce(var.queue_overrides.dlq_message_retention_seconds, local.queue_definitions.dlq.message_retention_s)
  }

  target_retry_policy = {
    maximum_retry_attempts       = coalesce(var.target_retry_policy.maximum_retry_attempts, local.event_rules.target_retry_policy.maximum_retry_attempts)
    maximum_event_age_in_seconds = coalesce(var.target_retry_policy.maximum_event_age_in_seconds, local.event_rules.target_retry_policy.maximum_event_age_s)
  }

  # Rule names as event_rules.json documents them (local mode uses the same).
  routed_rule_names  = { for priority in local.priorities : priority => "${var.name_prefix}-object-created-${priority}" }
  unrouted_rule_name = "${var.name_prefix}-object-unrouted"

  sse_kms = var.kms_key_arn != null
}

# --- Buckets: uploads (the pipeline's input) and failed_rows (the processor's sink) ---------------

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_144:Cross-region replication is a data-residency and cost decision for the adopting team; uploads are transient inputs the pipeline consumes.
  #checkov:skip=CKV_AWS_18:Access logging is an input (access_logging -> aws_s3_bucket_logging below); it needs a log bucket this module must not invent.
  #checkov:skip=CKV_AWS_145:SSE-KMS with a customer key is an input (kms_key_arn); the default SSE-S3 encrypts every object at rest without a key policy to manage.
  #checkov:skip=CKV2_AWS_62:Only the uploads bucket feeds the pipeline (EventBridge notifications below); the failed-rows sink must not trigger anything.
  for_each = local.bucket_names

  bucket        = each.value
  force_destroy = var.force_destroy
  tags          = var.tags

  lifecycle {
    precondition {
      condition     = length(each.value) <= 63
      error_message = "Bucket name ${each.value} is ${length(each.value)} characters; S3 allows 63. Shorten name_prefix or set bucket_names.${each.key}."
    }
  }
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = local.bucket_names

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = local.bucket_names

  bucket                  = aws_s3_bucket.this[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = local.bucket_names

  bucket = aws_s3_bucket.this[each.key].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = local.bucket_names

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = local.sse_kms ? "aws:kms" : "AES256"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = local.sse_kms
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = local.bucket_names

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_logging" "this" {
  for_each = { for role, name in local.bucket_names : role => name if var.access_logging != null }

  bucket        = aws_s3_bucket.this[each.key].id
  target_bucket = var.access_logging.target_bucket
  target_prefix = "${var.access_logging.target_prefix}${each.key}/"
}

data "aws_iam_policy_document" "bucket" {
  for_each = local.bucket_names

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this[each.key].arn, "${aws_s3_bucket.this[each.key].arn}/*"]

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

  statement {
    sid       = "DenyOutdatedTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this[each.key].arn, "${aws_s3_bucket.this[each.key].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each = local.bucket_names

  bucket = aws_s3_bucket.this[each.key].id
  policy = data.aws_iam_policy_document.bucket[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_bucket_notification" "uploads" {
  bucket      = aws_s3_bucket.this["uploads"].id
  eventbridge = true
}

# --- Queues: one per priority, each with its redrive DLQ; one DLQ for undeliverable events ------

resource "aws_sqs_queue" "dead_letter" {
  for_each = toset(local.priorities)

  name                              = "${var.name_prefix}-${each.key}-dlq"
  message_retention_seconds         = local.queue_settings.dlq_message_retention_seconds
  sqs_managed_sse_enabled           = local.sse_kms ? null : true
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = local.sse_kms ? 300 : null
  tags                              = var.tags

  lifecycle {
    precondition {
      condition     = local.queue_settings.dlq_message_retention_seconds > local.queue_settings.message_retention_seconds
      error_message = "DLQ retention (${local.queue_settings.dlq_message_retention_seconds} s) must be longer than its queue's (${local.queue_settings.message_retention_seconds} s): a moved message keeps its original enqueue time, so a shorter DLQ retention deletes failed messages before anyone looks. Raise queue_overrides.dlq_message_retention_seconds or lower queue_overrides.message_retention_seconds."
    }
  }
}

resource "aws_sqs_queue" "priority" {
  for_each = toset(local.priorities)

  name                              = "${var.name_prefix}-${each.key}"
  visibility_timeout_seconds        = local.queue_settings.visibility_timeout_seconds
  message_retention_seconds         = local.queue_settings.message_retention_seconds
  receive_wait_time_seconds         = local.queue_settings.receive_wait_time_seconds
  sqs_managed_sse_enabled           = local.sse_kms ? null : true
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = local.sse_kms ? 300 : null
  tags                              = var.tags

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter[each.key].arn
    maxReceiveCount     = local.queue_settings.max_receive_count
  })

  lifecycle {
    precondition {
      condition     = length(setsubtract(keys(var.key_prefixes), local.priorities)) == 0
      error_message = "key_prefixes names priorities that do not exist (${join(", ", setsubtract(keys(var.key_prefixes), local.priorities))}); the priorities are ${join(", ", local.priorities)} (queues.json)."
    }
    precondition {
      condition     = alltrue([for prefix in values(local.key_prefixes) : !can(regex("[*\\\\]", prefix))])
      error_message = "A key prefix must not contain '*' or '\\': EventBridge wildcard patterns would read them as pattern characters."
    }
    precondition {
      condition     = length(setsubtract(local.priorities, keys(local.key_prefixes))) == 0 && length(setsubtract(keys(local.key_prefixes), local.priorities)) == 0
      error_message = "event_rules.json routes (${join(", ", keys(local.key_prefixes))}) and queues.json priorities (${join(", ", local.priorities)}) must name the same priorities."
    }
  }
}

resource "aws_sqs_queue_redrive_allow_policy" "dead_letter" {
  for_each = toset(local.priorities)

  queue_url = aws_sqs_queue.dead_letter[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.priority[each.key].arn]
  })
}

resource "aws_sqs_queue" "ingest_dead_letter" {
  name                              = "${var.name_prefix}-${local.queue_definitions.ingest_dlq.name_suffix}"
  message_retention_seconds         = local.queue_definitions.ingest_dlq.message_retention_s
  sqs_managed_sse_enabled           = local.sse_kms ? null : true
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = local.sse_kms ? 300 : null
  tags                              = var.tags
}

# --- EventBridge: a rule per priority ("Object Created" under its prefix with the suffix), and a
# --- rule for every other key so a misplaced upload lands in the ingest DLQ instead of vanishing.

resource "aws_cloudwatch_event_rule" "object_created" {
  for_each = local.key_wildcards

  name        = local.routed_rule_names[each.key]
  description = "S3 Object Created in ${local.bucket_names.uploads} matching ${each.value} -> queue ${var.name_prefix}-${each.key}"
  event_pattern = templatefile("${local.definitions_path}/event_pattern.json", {
    bucket_name  = aws_s3_bucket.this["uploads"].id
    key_wildcard = each.value
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_rule" "object_unrouted" {
  name        = local.unrouted_rule_name
  description = "S3 Object Created in ${local.bucket_names.uploads} that no route matches -> ${aws_sqs_queue.ingest_dead_letter.name}"
  event_pattern = templatefile("${local.definitions_path}/event_pattern_unrouted.json", {
    bucket_name   = aws_s3_bucket.this["uploads"].id
    key_wildcards = local.unrouted_key_wildcards
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "priority_queue" {
  for_each = local.key_wildcards

  rule      = aws_cloudwatch_event_rule.object_created[each.key].name
  target_id = "${var.name_prefix}-${each.key}"
  arn       = aws_sqs_queue.priority[each.key].arn

  retry_policy {
    maximum_retry_attempts       = local.target_retry_policy.maximum_retry_attempts
    maximum_event_age_in_seconds = local.target_retry_policy.maximum_event_age_in_seconds
  }

  dead_letter_config {
    arn = aws_sqs_queue.ingest_dead_letter.arn
  }
}

resource "aws_cloudwatch_event_target" "unrouted" {
  rule      = aws_cloudwatch_event_rule.object_unrouted.name
  target_id = "${var.name_prefix}-ingest-dlq"
  arn       = aws_sqs_queue.ingest_dead_letter.arn

  retry_policy {
    maximum_retry_attempts       = local.target_retry_policy.maximum_retry_attempts
    maximum_event_age_in_seconds = local.target_retry_policy.maximum_event_age_in_seconds
  }

  dead_letter_config {
    arn = aws_sqs_queue.ingest_dead_letter.arn
  }
}

# Queue policies: only EventBridge, only on behalf of this module's rules (aws:SourceArn), only TLS.

data "aws_iam_policy_document" "priority_queue" {
  for_each = toset(local.priorities)

  statement {
    sid       = "AllowObjectCreatedRule"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.priority[each.key].arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.object_created[each.key].arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.priority[each.key].arn]

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

resource "aws_sqs_queue_policy" "priority" {
  for_each = toset(local.priorities)

  queue_url = aws_sqs_queue.priority[each.key].id
  policy    = data.aws_iam_policy_document.priority_queue[each.key].json
}

data "aws_iam_policy_document" "ingest_dead_letter" {
  statement {
    sid       = "AllowUndeliverableAndUnroutedEvents"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.ingest_dead_letter.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values = concat(
        [for rule in aws_cloudwatch_event_rule.object_created : rule.arn],
        [aws_cloudwatch_event_rule.object_unrouted.arn],
      )
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.ingest_dead_letter.arn]

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

resource "aws_sqs_queue_policy" "ingest_dead_letter" {
  queue_url = aws_sqs_queue.ingest_dead_letter.id
  policy    = data.aws_iam_policy_document.ingest_dead_letter.json
}
