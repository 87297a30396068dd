variable "endpoint_url" {
  type        = string
  description = "Base URL of the local emulator every AWS service is sent to, for example `http://127.0.0.1:53211`."

  validation {
    condition     = can(regex("^https?://[^/\\s]+$", var.endpoint_url))
    error_message = "endpoint_url must be a base URL such as http://127.0.0.1:53211 (no path)."
  }
}

variable "region" {
  type        = string
  description = "Region the emulator answers as (local mode uses us-east-1)."
  default     = "us-east-1"
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name, as in local mode (`<name_prefix>-<thing>`)."
  default     = "s3stagger"
}

variable "definitions_path" {
  type        = string
  description = "Directory of the shared definition files (`src/s3stagger/definitions` of the installed package)."
}

variable "downstream_url" {
  type        = string
  description = "Full URL the processor POSTs rows to: the local downstream simulator's rows URL."
}

variable "package_path" {
  type        = string
  description = "Lambda zip to upload (the local Lambda runtime runs the installed handler named by the function's Handler, so a placeholder zip will do)."
}

variable "processor_environment" {
  type        = map(string)
  description = "`S3STAGGER_*` settings of the processor over `processor.json`'s (for example `S3STAGGER_MAX_CONCURRENCY`)."
  default     = {}
}

variable "concurrency_budget" {
  type        = number
  description = "Initial concurrency budget (objects processed at once). Null: `budget.json`'s default."
  default     = null
}
