variable "name_prefix" {
  type        = string
  description = "Prefix of the pipeline's resource names: the tiles filter queues (`<name_prefix>-...`), the processor (`<name_prefix>-processor`) and the dispatcher (`<name_prefix>-dispatcher`) by it."
  default     = "s3stagger"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,31}$", var.name_prefix))
    error_message = "name_prefix must be 1-32 lower-case letters, digits or hyphens, starting with a letter or digit."
  }
}

variable "dashboard_name" {
  type        = string
  description = "Name of the dashboard in Dynatrace. Null: `<name_prefix> pipeline`."
  default     = null
}

variable "definitions_path" {
  type        = string
  description = "Directory of the shared definition files (`dynatrace_dashboard.json`, the dashboard local mode draws too). Null: `src/s3stagger/definitions` of this repository, found relative to the module."
  default     = null
}
