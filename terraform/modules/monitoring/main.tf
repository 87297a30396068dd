data "aws_region" "current" {}

locals {
  # The shared definition files: the local alarm evaluator expands the very same alarms.json with
  # s3stagger.definitions.alarms.expand (tests/iac/test_iac_monitoring.py holds the two together).
  definitions_path   = coalesce(var.definitions_path, "${path.module}/../../../src/s3stagger/definitions")
  alarm_definitions  = jsondecode(file("${local.definitions_path}/alarms.json")).alarms
  processor_settings = jsondecode(file("${local.definitions_path}/processor.json"))
  # The notifier reads the summary and the runbook back from the description in this format.
  alarm_description_format = jsondecode(file("${local.definitions_path}/alerting.json")).alarm_description_format

  region = data.aws_region.current.name

  processor_metrics_namespace = local.processor_settings.environment.POWERTOOLS_METRICS_NAMESPACE
  processor_metrics_dimensions = tomap(var.processor_metrics_dimensions != null ? var.processor_metrics_dimensions : {
    service = local.processor_settings.environment.POWERTOOLS_SERVICE_NAME
  })

  # applies_to -> label -> dimensions naming one resource. The label ends a per-resource alarm's
  # name; "" marks the one resource of a single-resource kind (no suffix).
  alarm_subjects = {
    queues            = { for label, name in var.queues : label => tomap({ QueueName = name }) }
    dlqs              = { for label, name in var.dead_letter_queues : label => tomap({ QueueName = name }) }
    rules             = { for label, name in var.event_rules : label => tomap({ RuleName = name }) }
    delivery_streams  = { for role, name in var.delivery_streams : role => tomap({ DeliveryStreamName = name }) if name != null }
    processor         = { "" = tomap({ FunctionName = var.processor.function_name }) }
    notifier          = var.notifier_function_name == null ? {} : { "" = tomap({ FunctionName = var.notifier_function_name }) }
    autoscaler        = var.autoscaler_function_name == null ? {} : { "" = tomap({ FunctionName = var.autoscaler_function_name }) }
    dispatcher        = { "" = tomap({ StateMachineArn = var.state_machine_arn }) }
    processor_metrics = { "" = local.processor_metrics_dimensions }
  }

  # threshold_of -> the value a relative threshold is a fraction of (null: that alarm is not made).
  threshold_bases = {
    processor_timeout_ms           = var.processor.timeout_seconds * 1000
    processor_reserved_concurrency = var.processor.reserved_concurrency
  }

  standard_statistics         = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"]
  unknown_threshold_overrides = sort(setsubtract(keys(var.threshold_overrides), [for alarm in local.alarm_definitions : alarm.id]))

  # The expansion of s3stagger.definitions.alarms.expand, in HCL: one alarm per definition and
  # resource, named <name_prefix>-<id>[-<label>].
  alarms = merge([
    for alarm in local.alarm_definitions : {
      for label, dimensions in local.alarm_subjects[alarm.applies_to] :
      (label == "" ? "${var.name_prefix}-${alarm.id}" : "${var.name_prefix}-${alarm.id}-${label}") => {
        id                  = alarm.id
        label               = label
        namespace           = alarm.namespace
        metric_name         = alarm.metric_name
        dimensions          = dimensions
        statistic           = alarm.statistic
        period_s            = alarm.period_s
        evaluation_periods  = alarm.evaluation_periods
        datapoints_to_alarm = alarm.datapoints_to_alarm
        comparison          = alarm.comparison
        threshold           = lookup(var.threshold_overrides, alarm.id, alarm.threshold) * try(local.threshold_bases[alarm.threshold_of], 1)
        treat_missing_data  = alarm.treat_missing_data
        severity            = alarm.severity
        summary             = alarm.summary
        runbook             = var.runbook_base_url == null ? alarm.runbook : "${trimsuffix(var.runbook_base_url, "/")}/${alarm.runbook}"
      }
      if(try(alarm.threshold_of, null) == null || try(local.threshold_bases[alarm.threshold_of], null) != null)
      && (try(alarm.stream, null) == null || try(alarm.stream, null) == label)
    }
  ]...)
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = each.key
  alarm_description   = substr(replace(replace(local.alarm_description_format, "{summary}", each.value.summary), "{runbook}", each.value.runbook), 0, 1024)
  namespace           = each.value.namespace
  metric_name         = each.value.metric_name
  dimensions          = each.value.dimensions
  statistic           = contains(local.standard_statistics, each.value.statistic) ? each.value.statistic : null
  extended_statistic  = contains(local.standard_statistics, each.value.statistic) ? null : each.value.statistic
  period              = each.value.period_s
  evaluation_periods  = each.value.evaluation_periods
  datapoints_to_alarm = each.value.datapoints_to_alarm
  comparison_operator = each.value.comparison
  threshold           = each.value.threshold
  treat_missing_data  = each.value.treat_missing_data
  actions_enabled     = true
  alarm_actions       = var.alarm_actions
  ok_actions          = var.ok_actions
  tags                = merge(var.tags, { "s3stagger:alarm-id" = each.value.id, "s3stagger:severity" = each.value.severity })

  lifecycle {
    precondition {
      condition     = length(local.unknown_threshold_overrides) == 0
      error_message = "threshold_overrides names alarms alarms.json does not define: ${join(", ", local.unknown_threshold_overrides)}."
    }
  }
}

# --- Dashboard ----------------------------------------------------------------------------------

locals {
  # One metric line per resource: [namespace, metric, dimension, value, {options}].
  queue_lines = {
    for metric in ["ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"] : metric => [
      for label, name in var.queues : ["AWS/SQS", metric, "QueueName", name, { label = label }]
    ]
  }
  dlq_lines = [
    for label, name in var.dead_letter_queues : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", name, { label = label }]
  ]
  processor_lines = [
    for metric in ["Invocations", "Errors", "Throttles"] : ["AWS/Lambda", metric, "FunctionName", var.processor.function_name, { stat = "Sum" }]
  ]
  dispatcher_lines = [
    for metric in ["ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionThrottled"] :
    ["AWS/States", metric, "StateMachineArn", var.state_machine_arn, { stat = "Sum" }]
  ]
  downstream_lines = [
    for metric in ["RowsApplied", "RowsFailed", "RowsRetried", "Throttled429", "DownstreamTimeouts"] :
    concat([local.processor_metrics_namespace, metric], flatten([for key, value in local.processor_metrics_dimensions : [key, value]]), [{ stat = "Sum" }])
  ]
  rule_lines = flatten([
    for label, name in var.event_rules : [
      for metric in ["FailedInvocations", "InvocationsSentToDlq"] : ["AWS/Events", metric, "RuleName", name, { stat = "Sum", label = "${label} ${metric}" }]
    ]
  ])

  metric_widgets = [
    { title = "Queues: messages waiting", metrics = local.queue_lines.ApproximateNumberOfMessagesVisible, stat = "Maximum", annotations = {} },
    { title = "Queues: age of the oldest message (s)", metrics = local.queue_lines.ApproximateAgeOfOldestMessage, stat = "Maximum", annotations = {} },
    { title = "Dead-letter queues: messages waiting for an operator", metrics = local.dlq_lines, stat = "Maximum", annotations = {} },
    { title = "Processor: invocations, errors, throttles", metrics = local.processor_lines, stat = "Sum", annotations = {} },
    {
      title       = "Processor: duration (ms) against its timeout"
      metrics     = [["AWS/Lambda", "Duration", "FunctionName", var.processor.function_name, { stat = "Maximum" }], ["...", { stat = "p90" }]]
      stat        = "Maximum"
      annotations = { horizontal = [{ label = "timeout", value = var.processor.timeout_seconds * 1000 }] }
    },
    {
      title       = "Processor: concurrent executions against its reserved concurrency"
      metrics     = [["AWS/Lambda", "ConcurrentExecutions", "FunctionName", var.processor.function_name]]
      stat        = "Maximum"
      annotations = var.processor.reserved_concurrency == null ? {} : { horizontal = [{ label = "reserved", value = var.processor.reserved_concurrency }] }
    },
    { title = "Dispatcher executions", metrics = local.dispatcher_lines, stat = "Sum", annotations = {} },
    { title = "Downstream: rows applied, failed, retried, 429s, timeouts", metrics = local.downstream_lines, stat = "Sum", annotations = {} },
    { title = "EventBridge rules: failed deliveries", metrics = local.rule_lines, stat = "Sum", annotations = {} },
  ]

  dashboard_body = jsonencode({
    widgets = concat(
      [{
        type   = "alarm"
        width  = 24
        height = 4
        properties = {
          title  = "Alarms of ${var.name_prefix}"
          alarms = slice(sort([for alarm in aws_cloudwatch_metric_alarm.this : alarm.arn]), 0, min(100, length(aws_cloudwatch_metric_alarm.this)))
        }
      }],
      [for widget in local.metric_widgets : {
        type   = "metric"
        width  = 12
        height = 6
        properties = merge(
          {
            title   = widget.title
            region  = local.region
            view    = "timeSeries"
            stacked = false
            period  = 60
            stat    = widget.stat
            metrics = widget.metrics
          },
          length(widget.annotations) == 0 ? {} : { annotations = widget.annotations },
        )
      } if length(widget.metrics) > 0],
    )
  })
}

resource "aws_cloudwatch_dashboard" "pipeline" {
  count = var.dashboard_enabled ? 1 : 0

  dashboard_name = "${var.name_prefix}-pipeline"
  dashboard_body = local.dashboard_body
}
