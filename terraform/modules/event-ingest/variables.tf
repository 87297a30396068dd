variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (`<name_prefix>-<thing>`); local mode uses the same names. Lower-case letters, digits and hyphens, at most 32 characters."
  default     = "s3stagger"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,31}$", var.name_prefix))
    error_message = "name_prefix must be 1-32 lower-case letters, digits or hyphens, starting with a letter or digit (it becomes part of bucket, queue and rule names)."
  }
}

variable "bucket_names" {
  type = object({
    uploads     = optional(string)
    failed_rows = optional(string)
  })
  description = "Names of the two buckets to create: uploads (objects to process, EventBridge notifications on) and failed_rows (the processor's failed-row sink and quarantine records; a separate bucket so sink writes never trigger processing). A null name becomes `<name_prefix>-<suffix of storage.json>-<account id>-<region>`, globally unique per account and region."
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      for name in [var.bucket_names.uploads, var.bucket_names.failed_rows] :
      name == null ? true : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", name))
    ])
    error_message = "bucket_names: each name must be a valid S3 bucket name (3-63 lower-case letters, digits, dots or hyphens)."
  }
}

variable "force_destroy" {
  type        = bool
  description = "Let `terraform destroy` delete the bucket with its objects and versions. Keep false in production."
  default     = false
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of a customer-managed KMS key for the buckets (SSE-KMS) and the queues. Null: S3-managed (SSE-S3) and SQS-managed (SSE-SQS) encryption. The key policy must let `events.amazonaws.com` use `kms:GenerateDataKey` and `kms:Decrypt`, or EventBridge cannot deliver to the queues (see the complete example)."
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-zA-Z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), not a key id or alias."
  }
}

variable "definitions_path" {
  type        = string
  description = "Directory of the shared definition files (`queues.json`, `event_rules.json`, `storage.json`, the event pattern templates) that local mode reads too. Null: `src/s3stagger/definitions` of this repository, found relative to the module."
  default     = null
}

variable "key_prefixes" {
  type        = map(string)
  description = "Priority name -> key prefix, replacing the `key_prefix` of that route in `event_rules.json`. Priorities themselves (and their order) come from the shared definitions, so local mode and AWS agree on them."
  default     = {}
  nullable    = false
}

variable "queue_overrides" {
  type = object({
    visibility_timeout_seconds    = optional(number)
    message_retention_seconds     = optional(number)
    receive_wait_time_seconds     = optional(number)
    max_receive_count             = optional(number)
    dlq_message_retention_seconds = optional(number)
  })
  description = "Settings of every priority queue and its DLQ that replace those of `queues.json` (null attributes keep the shared value). A DLQ's retention must stay longer than its queue's: a moved message keeps its original enqueue time."
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      var.queue_overrides.visibility_timeout_seconds == null ? true : var.queue_overrides.visibility_timeout_seconds >= 0 && var.queue_overrides.visibility_timeout_seconds <= 43200,
      var.queue_overrides.message_retention_seconds == null ? true : var.queue_overrides.message_retention_seconds >= 60 && var.queue_overrides.message_retention_seconds <= 1209600,
      var.queue_overrides.dlq_message_retention_seconds == null ? true : var.queue_overrides.dlq_message_retention_seconds >= 60 && var.queue_overrides.dlq_message_retention_seconds <= 1209600,
      var.queue_overrides.receive_wait_time_seconds == null ? true : var.queue_overrides.receive_wait_time_seconds >= 0 && var.queue_overrides.receive_wait_time_seconds <= 20,
      var.queue_overrides.max_receive_count == null ? true : var.queue_overrides.max_receive_count >= 1 && var.queue_overrides.max_receive_count <= 1000,
    ])
    error_message = "queue_overrides out of SQS limits: visibility 0-43200 s, retentions 60-1209600 s, receive wait 0-20 s, max_receive_count 1-1000."
  }
}

variable "target_retry_policy" {
  type = object({
    maximum_retry_attempts       = optional(number)
    maximum_event_age_in_seconds = optional(number)
  })
  description = "RetryPolicy of every rule target; null attributes keep the values of `event_rules.json`. Events that still cannot be delivered go to the ingest DLQ."
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      var.target_retry_policy.maximum_retry_attempts == null ? true : var.target_retry_policy.maximum_retry_attempts >= 0 && var.target_retry_policy.maximum_retry_attempts <= 185,
      var.target_retry_policy.maximum_event_age_in_seconds == null ? true : var.target_retry_policy.maximum_event_age_in_seconds >= 60 && var.target_retry_policy.maximum_event_age_in_seconds <= 86400,
    ])
    error_message = "target_retry_policy: maximum_retry_attempts must be 0-185 and maximum_event_age_in_seconds 60-86400 (EventBridge limits)."
  }
}

variable "noncurrent_version_expiration_days" {
  type        = number
  description = "Days a replaced or deleted object version is kept before it expires (versioning is always on)."
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "access_logging" {
  type = object({
    target_bucket = string
    target_prefix = optional(string, "s3-access/")
  })
  description = "Server access logging of both buckets into an existing log bucket. Null: no access logs (CloudTrail data events are the alternative)."
  default     = null
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that takes tags."
  default     = {}
  nullable    = false
}
