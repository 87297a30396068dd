variable "bucket_name" {
  type        = string
  description = "Name of the bucket that keeps what a Firehose delivery stream could not deliver (or transform)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 lower-case letters, digits, dots or hyphens."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of a customer-managed KMS key for the objects (SSE-KMS). Null: SSE-S3."
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-zA-Z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "expiration_days" {
  type        = number
  description = "Days a backed-up object is kept before it expires (time to replay it)."
  default     = 90

  validation {
    condition     = var.expiration_days >= 1
    error_message = "expiration_days must be at least 1."
  }
}

variable "access_logging" {
  type = object({
    target_bucket = string
    target_prefix = string
  })
  description = "Server access logging of the bucket to an existing log bucket. Null: none."
  default     = null
}

variable "force_destroy" {
  type        = bool
  description = "Let `terraform destroy` delete a bucket that still holds objects (test stacks only)."
  default     = false
}

variable "tags" {
  type        = map(string)
  description = "Tags of every resource."
  default     = {}
}
