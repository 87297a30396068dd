variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (`<name_prefix>-<thing>`); use the other modules' prefix. Alarm names are `<name_prefix>-<alarm id>[-<label>]`."
  default     = "s3stagger"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,31}$", var.name_prefix))
    error_message = "name_prefix must be 1-32 lower-case letters, digits or hyphens, starting with a letter or digit."
  }
}

variable "definitions_path" {
  type        = string
  description = "Directory of the shared definition files (`alarms.json`, `processor.json`) that local mode reads too. Null: `src/s3stagger/definitions` of this repository, found relative to the module."
  default     = null
}

variable "queues" {
  type        = map(string)
  description = "Priority -> name of that priority's main queue (`{ for p, q in module.ingest.queues : p => q.name }`): each gets the `applies_to = queues` alarms, labelled with the priority."
  nullable    = false
}

variable "dead_letter_queues" {
  type        = map(string)
  description = "Label -> name of every dead-letter queue: each priority's DLQ (label = priority), the ingest DLQ (`ingest-dlq`) and the alerting module's DLQ (`alert-dlq`). Each gets the `applies_to = dlqs` alarms."
  nullable    = false
}

variable "event_rules" {
  type        = map(string)
  description = "Label -> name of every EventBridge rule to watch (label = the name without `<name_prefix>-`): the event-ingest module's rules and the alerting module's. Each gets the `applies_to = rules` alarms."
  default     = {}
  nullable    = false
}

variable "processor" {
  type = object({
    function_name        = string
    timeout_seconds      = number
    reserved_concurrency = optional(number)
  })
  description = "The processor Lambda as deployed: its name, its timeout and its reserved concurrency (the duration and concurrency alarms are fractions of them; null reserved concurrency: no concurrency alarm)."
}

variable "processor_metrics_dimensions" {
  type        = map(string)
  description = "Dimensions of the processor's EMF metrics (Powertools adds `service`). Null: `{ service = <POWERTOOLS_SERVICE_NAME of processor.json> }`."
  default     = null
}

variable "state_machine_arn" {
  type        = string
  description = "ARN of the dispatcher state machine (the staggered-dispatcher module's `state_machine_arn`)."
}

variable "notifier_function_name" {
  type        = string
  description = "Name of the alerting module's notifier Lambda. Null: no notifier alarms (monitoring without the alerting module)."
  default     = null
}

variable "autoscaler_function_name" {
  type        = string
  description = "Name of the staggered-dispatcher module's autoscaler Lambda (its `autoscaler_function_name`). Null: no autoscaler alarms."
  default     = null
}

variable "delivery_streams" {
  type = object({
    splunk    = optional(string)
    dynatrace = optional(string)
  })
  description = "Names of the Firehose delivery streams of the observability modules (`splunk-logs`, `dynatrace-metrics`: their `delivery_stream_name`). Each named stream gets the `applies_to = delivery_streams` alarms, labelled with its role (`splunk`, `dynatrace`); an alarm with `stream` only for that role. Empty (default): no Firehose alarms."
  default     = {}
  nullable    = false
}

variable "threshold_overrides" {
  type        = map(number)
  description = "Alarm id (from `alarms.json`) -> threshold that replaces the shared one for this deployment, for example `{ queue-backlog = 20000 }`. A relative threshold (`threshold_of`) stays a fraction. The local evaluator keeps the shared value."
  default     = {}
  nullable    = false
}

variable "alarm_actions" {
  type        = list(string)
  description = "ARNs notified when an alarm goes to ALARM (an SNS topic, for example). Empty (default): none, because alerting is event-driven: every alarm state change reaches EventBridge and the alerting module's rule by itself."
  default     = []
  nullable    = false
}

variable "ok_actions" {
  type        = list(string)
  description = "ARNs notified when an alarm returns to OK. Empty (default): none (EventBridge sees the change)."
  default     = []
  nullable    = false
}

variable "runbook_base_url" {
  type        = string
  description = "URL the runbook paths of `alarms.json` are appended to in each alarm description, for example `https://git.example.com/team/s3stagger/-/blob/main/`. Null: the repository-relative path alone."
  default     = null
}

variable "dashboard_enabled" {
  type        = bool
  description = "Create the CloudWatch dashboard `<name_prefix>-pipeline` (queues, DLQs, processor, dispatcher, downstream, rules, alarms)."
  default     = true
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that takes tags."
  default     = {}
  nullable    = false
}
