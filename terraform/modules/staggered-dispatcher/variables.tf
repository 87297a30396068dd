variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (`<name_prefix>-<thing>`); use the event-ingest module's. Lower-case letters, digits and hyphens, at most 32 characters."
  default     = "s3stagger"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,31}$", var.name_prefix))
    error_message = "name_prefix must be 1-32 lower-case letters, digits or hyphens, starting with a letter or digit."
  }
}

variable "definitions_path" {
  type        = string
  description = "Directory of the shared definition files (`dispatcher.asl.json`, `dispatcher.json`, `processor.json`, `budget.json`, `storage.json`) that local mode reads too. Null: `src/s3stagger/definitions` of this repository, found relative to the module."
  default     = null
}

variable "queues" {
  type = map(object({
    url                        = string
    arn                        = string
    visibility_timeout_seconds = number
  }))
  description = "Priority name -> the priority queue the dispatcher serves: the event-ingest module's `queues` output. Every priority of `queues.json` must be present."
  nullable    = false
}

variable "source_bucket_name" {
  type        = string
  description = "Bucket the processor reads uploaded objects from: the event-ingest module's `uploads_bucket_name`."
}

variable "failed_rows_bucket_name" {
  type        = string
  description = "Bucket the processor writes failed rows and quarantine records to: the event-ingest module's `failed_rows_bucket_name`."
}

variable "downstream_url" {
  type        = string
  description = "Full URL the processor POSTs rows to (`S3STAGGER_DOWNSTREAM_URL`), for example `https://api.example.com/v1/rows`."

  validation {
    condition     = can(regex("^https?://[^/\\s]+", var.downstream_url))
    error_message = "downstream_url must be an absolute http:// or https:// URL, such as https://api.example.com/v1/rows."
  }
}

variable "package_path" {
  type        = string
  description = "Path of the Lambda deployment zip built by `make package`: `dist/s3stagger-lambda-<architecture>.zip`, matching `architecture`."
}

variable "architecture" {
  type        = string
  description = "Instruction set of the processor Lambda. Null: the one of `processor.json` (arm64). The package must be built for it."
  default     = null
}

variable "processor" {
  type = object({
    timeout_seconds      = optional(number)
    memory_mb            = optional(number)
    reserved_concurrency = optional(number)
    log_level            = optional(string, "INFO")
    environment          = optional(map(string), {})
  })
  description = "Processor Lambda settings that replace those of `processor.json` (null attributes keep the shared value). `environment` adds `S3STAGGER_*` settings (see `s3stagger.config`) over the shared defaults; the module sets the downstream URL and the failed-rows bucket itself."
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      var.processor.timeout_seconds == null ? true : var.processor.timeout_seconds >= 30 && var.processor.timeout_seconds <= 900,
      var.processor.memory_mb == null ? true : var.processor.memory_mb >= 128 && var.processor.memory_mb <= 10240,
      var.processor.reserved_concurrency == null ? true : var.processor.reserved_concurrency >= 1,
      contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.processor.log_level),
    ])
    error_message = "processor: timeout_seconds must be 30-900 (Lambda stops at 900 s; a large object continues by cursor), memory_mb 128-10240, reserved_concurrency >= 1, log_level DEBUG, INFO, WARNING or ERROR."
  }

  validation {
    condition     = !contains(keys(var.processor.environment), "S3STAGGER_DOWNSTREAM_URL") && !contains(keys(var.processor.environment), "S3STAGGER_FAILED_ROWS_BUCKET")
    error_message = "processor.environment must not set S3STAGGER_DOWNSTREAM_URL or S3STAGGER_FAILED_ROWS_BUCKET: use the downstream_url and failed_rows_bucket_name inputs."
  }
}

variable "dispatcher" {
  type = object({
    state_machine_type      = optional(string)
    schedule_expression     = optional(string)
    schedule_enabled        = optional(bool, true)
    receive_claim_s         = optional(number)
    failure_retry_delay_s   = optional(number)
    lease_s                 = optional(number)
    time_budget_s           = optional(number)
    max_calls_per_slot      = optional(number)
    max_partials_per_object = optional(number)
  })
  description = "Dispatcher settings that replace those of `dispatcher.json` (null attributes keep the shared value). `state_machine_type`: `EXPRESS` (the shared default: billed per execution and duration, at most 5 minutes, observed through its log group and the AWS/States metrics) or `STANDARD` (billed per state transition, execution history kept). `max_calls_per_slot` null: the shared value for the type. `schedule_enabled = false` creates the schedule disabled (nothing is dispatched until it is enabled)."
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      var.dispatcher.receive_claim_s == null ? true : var.dispatcher.receive_claim_s >= 0 && var.dispatcher.receive_claim_s <= 43200,
      var.dispatcher.failure_retry_delay_s == null ? true : var.dispatcher.failure_retry_delay_s >= 0 && var.dispatcher.failure_retry_delay_s <= 43200,
      var.dispatcher.lease_s == null ? true : var.dispatcher.lease_s >= 1 && var.dispatcher.lease_s <= 43200,
      var.dispatcher.time_budget_s == null ? true : var.dispatcher.time_budget_s >= 1,
      var.dispatcher.max_calls_per_slot == null ? true : var.dispatcher.max_calls_per_slot >= 1,
      var.dispatcher.max_partials_per_object == null ? true : var.dispatcher.max_partials_per_object >= 1,
    ])
    error_message = "dispatcher: visibility settings and lease_s must be 0-43200 s (SQS limit), time_budget_s, max_calls_per_slot and max_partials_per_object at least 1."
  }

  validation {
    condition     = var.dispatcher.state_machine_type == null || contains(["EXPRESS", "STANDARD"], coalesce(var.dispatcher.state_machine_type, "EXPRESS"))
    error_message = "dispatcher.state_machine_type must be EXPRESS or STANDARD."
  }
}

variable "concurrency_budget" {
  type = object({
    initial = optional(number)
    minimum = optional(number)
    maximum = optional(number)
  })
  description = "The concurrency budget (objects processed at once): its initial value (the SSM parameter is created with it; the autoscaler rewrites it afterwards) and the clamp the dispatcher applies. Null attributes keep `budget.json`."
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      for value in [var.concurrency_budget.initial, var.concurrency_budget.minimum, var.concurrency_budget.maximum] :
      value == null ? true : value >= 1 && value <= 40
    ])
    error_message = "concurrency_budget values must be 1-40: an inline Map runs at most 40 iterations at once."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of a customer-managed KMS key: encrypts this module's log groups, Lambda environment, state machine data and schedule, and the roles get permission to use it for the buckets and queues of the event-ingest module (pass the same key to both). Null: AWS-managed encryption. The key policy must allow `logs.<region>.amazonaws.com` (see the complete example)."
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-zA-Z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), not a key id or alias."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the processor and state machine log groups, in days."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "state_machine_log_level" {
  type        = string
  description = "Execution history sent to CloudWatch Logs: ALL, ERROR or FATAL. ERROR keeps a dispatcher that runs every minute cheap; ALL shows every state."
  default     = "ERROR"

  validation {
    condition     = contains(["ALL", "ERROR", "FATAL"], var.state_machine_log_level)
    error_message = "state_machine_log_level must be ALL, ERROR or FATAL."
  }
}

variable "tracing_enabled" {
  type        = bool
  description = "X-Ray tracing of the state machine and the processor Lambda."
  default     = true
}

variable "vpc_config" {
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
  description = "Run the processor in these private subnets (for a downstream API reachable only inside a VPC; S3 then needs a gateway endpoint or NAT). Null: no VPC."
  default     = null
}

variable "code_signing_config_arn" {
  type        = string
  description = "ARN of a Lambda code signing configuration to enforce on the processor. Null: none."
  default     = null
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that takes tags."
  default     = {}
  nullable    = false
}

variable "downstream_api" {
  type = object({
    auth_mode                         = optional(string, "none")
    auth_secret_arn                   = optional(string)
    auth_parameter_arn                = optional(string)
    auth_header                       = optional(string)
    secret_ttl_seconds                = optional(number, 300)
    oauth_token_url                   = optional(string)
    oauth_scope                       = optional(string)
    sigv4_service                     = optional(string, "execute-api")
    sigv4_invoke_arns                 = optional(list(string), [])
    tls_ca_secret_arn                 = optional(string)
    tls_client_certificate_secret_arn = optional(string)
    secrets_kms_key_arn               = optional(string)
    request_method                    = optional(string, "POST")
    request_headers                   = optional(map(string), {})
    request_fields                    = optional(map(string))
    request_hook                      = optional(string)
    rows_per_request                  = optional(number, 1)
    retryable_statuses                = optional(list(number), [])
    breaker_window                    = optional(number, 20)
    breaker_ratio                     = optional(number, 0.8)
    breaker_min_rows                  = optional(number, 5)
  })
  description = "How the processor talks to the downstream API (docs/processor.md). `auth_mode`: none, api-key, bearer, oauth (client credentials JSON `{client_id, client_secret}` in the secret, token from `oauth_token_url`) or sigv4 (the function's role signs; `sigv4_invoke_arns` are the execute-api or function URL ARNs it may call). Credentials stay in existing Secrets Manager secrets (`auth_secret_arn`) or an SSM SecureString (`auth_parameter_arn`): only their ARNs reach the function's environment, and the role may read those secrets and nothing else (`secrets_kms_key_arn`: their customer-managed key, used through Secrets Manager/SSM only). TLS: `tls_ca_secret_arn` (PEM CA bundle) and `tls_client_certificate_secret_arn` (mTLS: `{certificate, private_key}` PEM). Request mapping: method, static headers (never secrets), `request_fields` (`{target = \"column[:int|decimal|bool|date[:format]]\"}`) or `request_hook` (`module:function`), rows per request, extra retryable 4xx statuses. The breaker: a permanent status refusing `breaker_ratio` of the last `breaker_window` rows (at least `breaker_min_rows`) stops the object."
  default     = {}
  nullable    = false

  validation {
    condition     = contains(["none", "api-key", "bearer", "oauth", "sigv4"], var.downstream_api.auth_mode)
    error_message = "downstream_api.auth_mode must be none, api-key, bearer, oauth or sigv4."
  }

  validation {
    condition = !contains(["api-key", "bearer", "oauth"], var.downstream_api.auth_mode) || (
      (var.downstream_api.auth_secret_arn == null) != (var.downstream_api.auth_parameter_arn == null)
    )
    error_message = "downstream_api.auth_mode api-key, bearer and oauth need exactly one of auth_secret_arn (Secrets Manager) or auth_parameter_arn (SSM SecureString)."
  }

  validation {
    condition = alltrue([
      for arn in [var.downstream_api.auth_secret_arn, var.downstream_api.tls_ca_secret_arn, var.downstream_api.tls_client_certificate_secret_arn] :
      arn == null ? true : can(regex("^arn:aws[a-zA-Z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+", arn))
    ])
    error_message = "downstream_api secret ARNs (auth_secret_arn, tls_ca_secret_arn, tls_client_certificate_secret_arn) must be full Secrets Manager secret ARNs, so the role can be granted exactly those secrets."
  }

  validation {
    condition     = var.downstream_api.auth_parameter_arn == null || can(regex("^arn:aws[a-zA-Z-]*:ssm:[a-z0-9-]+:[0-9]{12}:parameter/.+", var.downstream_api.auth_parameter_arn))
    error_message = "downstream_api.auth_parameter_arn must be an SSM parameter ARN (arn:aws:ssm:<region>:<account>:parameter/<name>)."
  }

  validation {
    condition     = var.downstream_api.auth_mode != "oauth" || can(regex("^https://", coalesce(var.downstream_api.oauth_token_url, "-")))
    error_message = "downstream_api.oauth_token_url must be the https:// token endpoint for auth_mode = oauth."
  }

  validation {
    condition = var.downstream_api.auth_mode != "sigv4" || (
      length(var.downstream_api.sigv4_invoke_arns) > 0 &&
      alltrue([for arn in var.downstream_api.sigv4_invoke_arns : can(regex("^arn:aws[a-zA-Z-]*:(execute-api|lambda):", arn))])
    )
    error_message = "downstream_api.auth_mode = sigv4 needs sigv4_invoke_arns: the execute-api ARNs (arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/<method>/<path>) or Lambda function ARNs (function URLs) the role may call."
  }

  validation {
    condition     = var.downstream_api.secrets_kms_key_arn == null || can(regex("^arn:aws[a-zA-Z-]*:kms:", var.downstream_api.secrets_kms_key_arn))
    error_message = "downstream_api.secrets_kms_key_arn must be a KMS key ARN."
  }

  validation {
    condition     = !(var.downstream_api.request_fields != null && var.downstream_api.request_hook != null)
    error_message = "downstream_api.request_fields and request_hook exclude each other."
  }

  validation {
    condition = alltrue([
      contains(["POST", "PUT", "PATCH"], var.downstream_api.request_method),
      var.downstream_api.rows_per_request >= 1 && var.downstream_api.rows_per_request <= 1000,
      alltrue([for status in var.downstream_api.retryable_statuses : status >= 400 && status <= 499]),
      var.downstream_api.breaker_window >= 1,
      var.downstream_api.breaker_min_rows >= 1 && var.downstream_api.breaker_min_rows <= var.downstream_api.breaker_window,
      var.downstream_api.breaker_ratio > 0 && var.downstream_api.breaker_ratio <= 1,
      var.downstream_api.secret_ttl_seconds >= 0,
    ])
    error_message = "downstream_api: request_method POST, PUT or PATCH; rows_per_request 1-1000; retryable_statuses 4xx; breaker_window >= 1, 1 <= breaker_min_rows <= breaker_window, 0 < breaker_ratio <= 1; secret_ttl_seconds >= 0."
  }
}

variable "autoscaler" {
  type = object({
    enabled             = optional(bool, true)
    schedule_expression = optional(string)
    budget_floor        = optional(number)
    budget_cap          = optional(number)
    rows_floor          = optional(number)
    rows_cap            = optional(number)
    metrics_namespace   = optional(string)
  })
  description = "The autoscaler (docs/autoscaling.md); null attributes keep `autoscaler.json`'s values. `budget_floor`/`budget_cap` bound the objects in flight (default: the budget's minimum/maximum), `rows_floor`/`rows_cap` the total rows in flight; floor = cap pins a figure. `enabled = false` pauses its schedule: the budget and the flight parameter keep their last values (a budget set by hand works as before). Its errors alarm (`autoscaler-errors`) is made by the monitoring module."
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      var.autoscaler.budget_floor == null || coalesce(var.autoscaler.budget_floor, 1) >= 1,
      var.autoscaler.budget_cap == null || coalesce(var.autoscaler.budget_cap, 40) <= 40,
      var.autoscaler.budget_floor == null || var.autoscaler.budget_cap == null || coalesce(var.autoscaler.budget_floor, 0) <= coalesce(var.autoscaler.budget_cap, 0),
      var.autoscaler.rows_floor == null || coalesce(var.autoscaler.rows_floor, 1) >= 1,
      var.autoscaler.rows_floor == null || var.autoscaler.rows_cap == null || coalesce(var.autoscaler.rows_floor, 0) <= coalesce(var.autoscaler.rows_cap, 0),
    ])
    error_message = "autoscaler: need 1 <= budget_floor <= budget_cap <= 40 (an inline Map runs at most 40 iterations at once) and 1 <= rows_floor <= rows_cap."
  }
}
