variable "region" {
  type        = string
  description = "AWS region to deploy into, for example `eu-west-1`."
}

variable "downstream_url" {
  type        = string
  description = "Full URL the processor POSTs rows to, for example `https://api.example.com/v1/rows`. The API must accept a JSON row per request with an `Idempotency-Key` header."
}

variable "alert_from" {
  type        = string
  description = "Sender address of the alert emails; with Amazon SES it must be a verified identity."
}

variable "alert_emails" {
  type        = list(string)
  description = "Addresses that receive the alert emails (alarms, failed executions and objects, unrouted uploads)."
}

variable "smtp" {
  type = object({
    host       = optional(string)
    port       = optional(number)
    security   = optional(string)
    secret_arn = optional(string)
    vpc_config = optional(object({ subnet_ids = list(string), security_group_ids = list(string) }))
  })
  description = "The central SMTP server. Defaults: Amazon SES's SMTP interface in this region, STARTTLS on 587, a new empty secret `<name_prefix>/alerting/smtp` for the SMTP user and password (put them after apply), no VPC. A corporate relay: host, port 465 with security `tls` or 587 with `starttls`, its secret, and the subnets that reach it."
  default     = {}
  nullable    = false
}

variable "alarm_topic_arn" {
  type        = string
  description = "An SNS topic the alarms also notify (a pager, for example), a second path beside the email alerts: the alarms of the alerting path itself cannot reach you by email when that path is broken. Null: none."
  default     = null
}

variable "runbook_base_url" {
  type        = string
  description = "URL the runbook paths (`docs/runbooks/...`) are appended to in alarm descriptions and emails, for example your repository's web view of the main branch. Null: the path alone."
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

variable "splunk" {
  type = object({
    hec_endpoint         = string
    hec_token_secret_arn = string
    index                = optional(string, "main")
  })
  description = "Ship the functions' logs to Splunk (module splunk-logs): the HEC base URL, the Secrets Manager secret of the HEC token (`{\"hec_token\": ...}`, acknowledgement on) and the index. Null: no Splunk."
  default     = null
}

variable "dynatrace" {
  type = object({
    endpoint_url         = string
    environment_url      = string
    api_token_secret_arn = string
  })
  description = "Stream the pipeline's metrics to Dynatrace (module dynatrace-metrics): the AWS metric-streams endpoint, the environment URL (dt-url) and the secret of an API token with metrics.ingest (`{\"api_key\": ...}`). Null: no Dynatrace. The dashboard (module dynatrace-dashboard) needs the Dynatrace provider: add it in your root module."
  default     = null
}
