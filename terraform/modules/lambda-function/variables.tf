variable "function_name" {
  type        = string
  description = "Name of the function; its log group is `/aws/lambda/<function_name>`."
}

variable "description" {
  type        = string
  description = "Description of the function: what it does for the pipeline."
}

variable "handler" {
  type        = string
  description = "Handler in the package (`module.function`), from the caller's definition file."
}

variable "runtime" {
  type        = string
  description = "Lambda runtime, from the caller's definition file (python3.13)."
}

variable "architecture" {
  type        = string
  description = "Instruction set, arm64 or x86_64; the package must be built for it."

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "package_path" {
  type        = string
  description = "Path of the deployment zip built by `make package` (every s3stagger function runs from the same package)."

  validation {
    condition     = endswith(var.package_path, ".zip")
    error_message = "package_path must name the .zip built by `make package` (dist/s3stagger-lambda-arm64.zip or dist/s3stagger-lambda-x86_64.zip)."
  }
}

variable "timeout_seconds" {
  type        = number
  description = "Timeout of one invocation, in seconds."
}

variable "memory_mb" {
  type        = number
  description = "Memory of the function, in MB."
}

variable "reserved_concurrency" {
  type        = number
  description = "Reserved concurrent executions. Null: none (the function shares the account's unreserved pool)."
  default     = null
}

variable "environment" {
  type        = map(string)
  description = "Environment variables of the function."
  default     = {}
  nullable    = false
}

variable "policy_name" {
  type        = string
  description = "Name of the role's inline policy."
}

variable "policy_json" {
  type        = string
  description = "What the function may do besides writing its own logs and traces (an IAM policy document, JSON); statement ids `WriteOwnLogs` and `WriteTraces` are this module's."
}

variable "role_name" {
  type        = string
  description = "Name of the function's role. Null: `<function_name>-role`."
  default     = null
}

variable "role_description" {
  type        = string
  description = "Description of the function's role. Null: none."
  default     = null
}

variable "assume_role_source_account" {
  type        = string
  description = "Account id the trust policy requires as `aws:SourceAccount` (a confused-deputy guard). Null: no condition."
  default     = null
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the function's log group, in days (a value CloudWatch Logs accepts; the caller validates it)."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of a customer-managed KMS key for the log group and the environment. Null: AWS-managed encryption."
  default     = null
}

variable "tracing_enabled" {
  type        = bool
  description = "X-Ray active tracing, and the role's permission to send traces."
  default     = true
}

variable "vpc_config" {
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
  description = "Run the function in these private subnets (the role then gets AWSLambdaVPCAccessExecutionRole). Null: no VPC."
  default     = null
}

variable "code_signing_config_arn" {
  type        = string
  description = "ARN of a Lambda code signing configuration to enforce. Null: none."
  default     = null
}

variable "tags" {
  type        = map(string)
  description = "Tags of every resource."
  default     = {}
  nullable    = false
}
