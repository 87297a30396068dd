variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (`<name_prefix>-dynatrace-metrics...`); use the other modules' prefix."
  default     = "s3stagger"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,31}$", var.name_prefix))
    error_message = "name_prefix must be 1-32 lower-case letters, digits or hyphens, starting with a letter or digit."
  }
}

variable "definitions_path" {
  type        = string
  description = "Directory of the shared definition files (`processor.json` names the processor's EMF namespace). Null: `src/s3stagger/definitions` of this repository, found relative to the module."
  default     = null
}

variable "dynatrace_endpoint_url" {
  type        = string
  description = "Dynatrace's AWS metric-streams ingest endpoint for your tenant's region, as Dynatrace's CloudWatch Metric Streams setup page gives it (HTTPS)."

  validation {
    condition     = startswith(var.dynatrace_endpoint_url, "https://")
    error_message = "dynatrace_endpoint_url must be an https:// URL."
  }
}

variable "dynatrace_environment_url" {
  type        = string
  description = "URL of your Dynatrace environment, e.g. `https://abc12345.live.dynatrace.com`: sent as the `dt-url` common attribute, which tells the ingest where the metrics belong."

  validation {
    condition     = startswith(var.dynatrace_environment_url, "https://") && !endswith(var.dynatrace_environment_url, "/")
    error_message = "dynatrace_environment_url must be an https:// URL without a trailing slash."
  }
}

variable "api_token_secret_arn" {
  type        = string
  description = "ARN of the Secrets Manager secret holding the Dynatrace API token (scope `metrics.ingest`) as JSON `{\"api_key\": \"dt0c01....\"}`, the access key Firehose sends."

  validation {
    condition     = can(regex("^arn:aws[a-zA-Z-]*:secretsmanager:", var.api_token_secret_arn))
    error_message = "api_token_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "namespaces" {
  type        = list(string)
  description = "CloudWatch namespaces the metric stream sends. Null: AWS/SQS, AWS/Lambda, AWS/States, AWS/Events and the processor's EMF namespace (`processor.json`)."
  default     = null
}

variable "output_format" {
  type        = string
  description = "Format of the metric stream (Dynatrace reads OpenTelemetry 1.0 and 0.7)."
  default     = "opentelemetry1.0"

  validation {
    condition     = contains(["opentelemetry1.0", "opentelemetry0.7"], var.output_format)
    error_message = "output_format must be opentelemetry1.0 or opentelemetry0.7."
  }
}

variable "retry_duration_seconds" {
  type        = number
  description = "How long Firehose retries a refused delivery before it writes the data to the backup bucket (0-7200 s)."
  default     = 900

  validation {
    condition     = var.retry_duration_seconds >= 0 && var.retry_duration_seconds <= 7200
    error_message = "retry_duration_seconds must be within 0-7200."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of a customer-managed KMS key for the backup bucket, the stream and its log group. Null: AWS-managed encryption."
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-zA-Z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the stream's log group, in days."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of CloudWatch Logs' retention values."
  }
}

variable "backup_expiration_days" {
  type        = number
  description = "Days the backup bucket keeps the metric data Firehose could not deliver."
  default     = 30
}

variable "lambda_layer" {
  type = object({
    enabled               = bool
    layer_arn             = string
    tenant                = string
    cluster_id            = string
    connection_base_url   = string
    connection_auth_token = optional(string)
  })
  description = "Dynatrace's Lambda layer (OneAgent) for traces of the serverless parts. Off by default. When enabled, the outputs `lambda_layer_arns` and `lambda_layer_environment` are what to add to a function's layers and environment (this module does not own the functions); the values come from the Dynatrace deployment page of the AWS Lambda integration. `connection_auth_token` (DT_CONNECTION_AUTH_TOKEN) ends up in the functions' environment: encrypt it with the functions' KMS key."
  default = {
    enabled             = false
    layer_arn           = ""
    tenant              = ""
    cluster_id          = ""
    connection_base_url = ""
  }
  nullable = false

  validation {
    condition     = !var.lambda_layer.enabled || can(regex("^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:", var.lambda_layer.layer_arn))
    error_message = "lambda_layer.layer_arn must be a Lambda layer version ARN when the layer is enabled."
  }
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
