variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (`<name_prefix>-splunk-logs...`); use the other modules' prefix."
  default     = "s3stagger"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,31}$", var.name_prefix))
    error_message = "name_prefix must be 1-32 lower-case letters, digits or hyphens, starting with a letter or digit."
  }
}

variable "log_group_names" {
  type        = map(string)
  description = "Label -> name of each log group to ship to Splunk: the processor's, the dispatcher's, the notifier's and the autoscaler's (`{ processor = \"/aws/lambda/s3stagger-processor\", ... }`). One subscription filter each."
  nullable    = false

  validation {
    condition     = length(var.log_group_names) >= 1 && length(var.log_group_names) <= 50
    error_message = "log_group_names must name 1 to 50 log groups."
  }
}

variable "filter_pattern" {
  type        = string
  description = "CloudWatch Logs filter pattern of the subscriptions. Empty (default): every log event."
  default     = ""
  nullable    = false
}

variable "hec_endpoint" {
  type        = string
  description = "Base URL of the Splunk HTTP Event Collector, e.g. `https://http-inputs-acme.splunkcloud.com:443` (Firehose appends the event path). HTTPS only."

  validation {
    condition     = startswith(var.hec_endpoint, "https://")
    error_message = "hec_endpoint must be an https:// URL (Firehose delivers to Splunk over TLS only)."
  }
}

variable "hec_token_secret_arn" {
  type        = string
  description = "ARN of the Secrets Manager secret holding the HEC token (JSON `{\"hec_token\": \"...\"}`, as Firehose expects). The token's input must have indexer acknowledgement on."

  validation {
    condition     = can(regex("^arn:aws[a-zA-Z-]*:secretsmanager:", var.hec_token_secret_arn))
    error_message = "hec_token_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "hec_acknowledgment_timeout_seconds" {
  type        = number
  description = "How long Firehose waits for Splunk's indexer acknowledgement before it retries (180-600 s)."
  default     = 300

  validation {
    condition     = var.hec_acknowledgment_timeout_seconds >= 180 && var.hec_acknowledgment_timeout_seconds <= 600
    error_message = "hec_acknowledgment_timeout_seconds must be within 180-600."
  }
}

variable "retry_duration_seconds" {
  type        = number
  description = "How long Firehose retries a refused or unacknowledged delivery before it writes the events to the backup bucket (0-7200 s)."
  default     = 3600

  validation {
    condition     = var.retry_duration_seconds >= 0 && var.retry_duration_seconds <= 7200
    error_message = "retry_duration_seconds must be within 0-7200."
  }
}

variable "splunk_index" {
  type        = string
  description = "Splunk index of the events (the HEC token must be allowed to write to it)."
  default     = "main"
}

variable "splunk_sourcetype" {
  type        = string
  description = "Splunk sourcetype of the events."
  default     = "s3stagger:lambda"
}

variable "package_path" {
  type        = string
  description = "Path of the Lambda deployment zip built by `make package` (the processor's zip: the transform handler `s3stagger.handlers.transform_logs.handler` is in it), matching `architecture`."
}

variable "architecture" {
  type        = string
  description = "Instruction set of the transform Lambda; the package must be built for it. Null: the processor's (`processor.json`)."
  default     = null
}

variable "definitions_path" {
  type        = string
  description = "Directory of the shared definition files (`processor.json`: the runtime and architecture the transform shares with the processor). Null: `src/s3stagger/definitions` of this repository, found relative to the module."
  default     = null
}

variable "buffering" {
  type = object({
    size_mb            = number
    interval_seconds   = number
    transform_size_mb  = number
    transform_interval = number
  })
  description = "Firehose buffering: toward Splunk (size 1-5 MB, interval 0-60 s) and toward the transform Lambda (size 0.2-3 MB, interval 60-900 s)."
  default = {
    size_mb            = 5
    interval_seconds   = 60
    transform_size_mb  = 1
    transform_interval = 60
  }
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of a customer-managed KMS key for the backup bucket, the stream, the log groups and the transform's environment. The key policy must allow logs.<region>.amazonaws.com and firehose.amazonaws.com. Null: AWS-managed encryption."
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-zA-Z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the stream's and the transform's log groups, in days."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of CloudWatch Logs' retention values."
  }
}

variable "backup_expiration_days" {
  type        = number
  description = "Days the backup bucket keeps the events Firehose could not deliver."
  default     = 90
}

variable "code_signing_config_arn" {
  type        = string
  description = "ARN of a Lambda code-signing configuration for the transform. Null: none."
  default     = null
}

variable "force_destroy" {
  type        = bool
  description = "Let `terraform destroy` delete a backup bucket that still holds objects (test stacks only)."
  default     = false
}

variable "tags" {
  type        = map(string)
  description = "Tags of every resource."
  default     = {}
}
