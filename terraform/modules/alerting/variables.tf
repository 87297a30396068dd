variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (`<name_prefix>-<thing>`); use the other modules' prefix. The alarm rule matches alarms named `<name_prefix>-...` (the monitoring module's)."
  default     = "s3stagger"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,31}$", var.name_prefix))
    error_message = "name_prefix must be 1-32 lower-case letters, digits or hyphens, starting with a letter or digit."
  }
}

variable "definitions_path" {
  type        = string
  description = "Directory of the shared definition files (`alerting.json`, the alert patterns, `event_rules.json`, `dispatcher.json`) that local mode reads too. Null: `src/s3stagger/definitions` of this repository, found relative to the module."
  default     = null
}

variable "package_path" {
  type        = string
  description = "Path of the Lambda deployment zip built by `make package` (the processor's zip: the notifier's handler is in it), matching `architecture`."
}

variable "architecture" {
  type        = string
  description = "Instruction set of the notifier Lambda. Null: the one of `alerting.json` (arm64). The package must be built for it."
  default     = null
}

variable "state_machine_arn" {
  type        = string
  description = "ARN of the dispatcher state machine (the staggered-dispatcher module's `state_machine_arn`): its failed executions are alerts."
}

variable "dispatcher_type" {
  type        = string
  description = "Workflow type of the dispatcher, STANDARD or EXPRESS. Step Functions sends execution status-change events for Standard workflows only, so the execution rule is made only for STANDARD (for Express the ExecutionsFailed alarm covers it)."
  default     = "STANDARD"

  validation {
    condition     = contains(["STANDARD", "EXPRESS"], var.dispatcher_type)
    error_message = "dispatcher_type must be STANDARD or EXPRESS."
  }
}

variable "uploads_bucket_name" {
  type        = string
  description = "The uploads bucket (event-ingest's `uploads_bucket_name`): its objects no route matches are alerts."
}

variable "unrouted_key_wildcards" {
  type        = list(string)
  description = "Key wildcards of the routes (`<key_prefix>*<object_suffix>`); an object matching none is unrouted. Null: from `event_rules.json`. Pass `[for p in module.ingest.priorities : \"$${module.ingest.key_prefixes[p]}*$${module.ingest.object_suffix}\"]` when the ingest module overrides prefixes."
  default     = null
}

variable "smtp" {
  type = object({
    host      = optional(string)
    port      = optional(number)
    security  = optional(string)
    from      = string
    to        = list(string)
    timeout_s = optional(number)
    ca_file   = optional(string)
  })
  description = "The central SMTP server and the addresses. Null attributes keep `alerting.json`, except host: null means Amazon SES's SMTP interface in this region (`email-smtp.<region>.amazonaws.com`). security `starttls` (ports 587, 25, 2587) or `tls` (implicit TLS, ports 465, 2465). ca_file: a PEM path inside the function for a relay signed by a private CA."
  nullable    = false

  validation {
    condition     = var.smtp.security == null || contains(["starttls", "tls"], coalesce(var.smtp.security, "starttls"))
    error_message = "smtp.security must be starttls (STARTTLS upgrade, ports 587/25/2587) or tls (implicit TLS, ports 465/2465)."
  }

  validation {
    condition     = length(var.smtp.to) > 0 && alltrue([for address in concat([var.smtp.from], var.smtp.to) : can(regex("^[^@\\s]+@[^@\\s]+$", address))])
    error_message = "smtp.from and every smtp.to must be email addresses, and smtp.to must name at least one."
  }
}

variable "smtp_secret_arn" {
  type        = string
  description = "ARN of an existing Secrets Manager secret holding `{\"username\": ..., \"password\": ...}` for the SMTP server. Null: the module creates the secret `<name_prefix>/alerting/smtp` (empty: put the value with `aws secretsmanager put-secret-value`)."
  default     = null
}

variable "vpc_config" {
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
  description = "Run the notifier in these private subnets, to reach a relay inside a VPC. The subnets then need a route to SQS, SSM and Secrets Manager (VPC endpoints or NAT). Null: no VPC."
  default     = null
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of a customer-managed KMS key for the alert queues, the secret, the log group and the function's environment; the notifier's role may use it. The key policy must allow events.amazonaws.com and logs.<region>.amazonaws.com (see the complete example). Null: AWS-managed encryption."
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-zA-Z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), not a key id or alias."
  }
}

variable "runbook_base_url" {
  type        = string
  description = "URL the notifier puts before a relative runbook path (`docs/runbooks/...`) in emails, for example `https://git.example.com/team/s3stagger/-/blob/main/`. Empty: the path alone."
  default     = ""
  nullable    = false
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the notifier's log group, in days."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "tracing_enabled" {
  type        = bool
  description = "X-Ray tracing of the notifier Lambda."
  default     = true
}

variable "code_signing_config_arn" {
  type        = string
  description = "ARN of a Lambda code signing configuration to enforce on the notifier. Null: none."
  default     = null
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that takes tags."
  default     = {}
  nullable    = false
}
