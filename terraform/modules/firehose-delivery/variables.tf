variable "stream_name" {
  type        = string
  description = "Name of the delivery stream the caller builds: names its role (`<stream_name>-firehose`), log group (`/aws/kinesisfirehose/<stream_name>`) and backup bucket (`<stream_name>-backup-<account>`)."
}

variable "token_secret_arn" {
  type        = string
  description = "ARN of the Secrets Manager secret holding the destination's token (Splunk HEC token, Dynatrace API token); the role may read it."
}

variable "policy_json" {
  type        = string
  description = "Further statements of the role (an IAM policy document, JSON), for example invoking a transform Lambda. Null: none."
  default     = null
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of a customer-managed KMS key for the backup, the log group and the stream; the role may use it. Null: AWS-managed encryption."
  default     = null
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the delivery-error log group, in days (a value CloudWatch Logs accepts; the caller validates it)."
}

variable "backup_expiration_days" {
  type        = number
  description = "Days a backed-up object is kept before it expires."
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
  nullable    = false
}
