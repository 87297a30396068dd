variable "region" {
  type        = string
  description = "AWS region to deploy into, for example `eu-west-1`."
}

variable "downstream_url" {
  type        = string
  description = "Full URL the processor POSTs rows to, for example `https://api.example.com/v1/rows`. The API must accept a JSON row per request with an `Idempotency-Key` header."
}

variable "alert_email" {
  type        = string
  description = "Address that receives alerts (failed objects, messages in a DLQ) through SNS; AWS sends it a confirmation mail first. Null: alerts go to the SNS topic only."
  default     = null
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name; change it to deploy a second copy in the same account and region."
  default     = "s3stagger"
}

variable "package_path" {
  type        = string
  description = "Path of the Lambda zip built by `make package` in the repository root. Null: `../../../dist/s3stagger-lambda-<architecture>.zip`."
  default     = null
}

variable "architecture" {
  type        = string
  description = "Processor Lambda architecture: arm64 (cheaper per GB-s) or x86_64. Build the matching zip."
  default     = "arm64"
}

variable "downstream_capacity" {
  type        = number
  description = "Concurrent requests the downstream API accepts. The processor's in-flight rows (S3STAGGER_MAX_CONCURRENCY) times the budget maximum should not exceed it by much; the adaptive limiter backs off on 429."
  default     = 50
}

variable "tags" {
  type        = map(string)
  description = "Tags on every resource (provider default_tags)."
  default = {
    application = "s3stagger"
    managed-by  = "terraform"
  }
}
