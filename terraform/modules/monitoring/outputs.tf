output "alarms" {
  description = "Alarm name -> what it watches and when it fires (namespace, metric, dimensions, statistic, period, datapoints, comparison, effective threshold, missing data, severity, runbook): the expansion of alarms.json for this deployment."
  value       = local.alarms
}

output "alarm_arns" {
  description = "Alarm name -> ARN of every CloudWatch alarm the module created."
  value       = { for name, alarm in aws_cloudwatch_metric_alarm.this : name => alarm.arn }
}

output "alarm_name_prefix" {
  description = "Every alarm's name starts with it (`<name_prefix>-`): the prefix an EventBridge rule on alarm state changes filters on."
  value       = "${var.name_prefix}-"
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard, or null when dashboard_enabled is false."
  value       = one(aws_cloudwatch_dashboard.pipeline[*].dashboard_name)
}

output "dashboard_url" {
  description = "Console URL of the dashboard, or null when dashboard_enabled is false."
  value       = var.dashboard_enabled ? "https://console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards/dashboard/${var.name_prefix}-pipeline" : null
}
