output "alert_queue_name" {
  description = "Name of the alert queue (events of the alert rules, and the notifier's digest timers)."
  value       = aws_sqs_queue.alerts.name
}

output "alert_queue_url" {
  description = "URL of the alert queue."
  value       = aws_sqs_queue.alerts.id
}

output "alert_queue_arn" {
  description = "ARN of the alert queue."
  value       = aws_sqs_queue.alerts.arn
}

output "alert_dlq_name" {
  description = "Name of the alert DLQ: alerts the notifier could not send after every retry, and events EventBridge could not deliver. Give it to the monitoring module as dead_letter_queues[\"alert-dlq\"]."
  value       = aws_sqs_queue.alert_dead_letter.name
}

output "alert_dlq_url" {
  description = "URL of the alert DLQ (redrive it to the alert queue with `aws sqs start-message-move-task`)."
  value       = aws_sqs_queue.alert_dead_letter.id
}

output "alert_dlq_arn" {
  description = "ARN of the alert DLQ."
  value       = aws_sqs_queue.alert_dead_letter.arn
}

output "notifier_function_name" {
  description = "Name of the notifier Lambda (the monitoring module's notifier_function_name)."
  value       = module.notifier.function_name
}

output "notifier_function_arn" {
  description = "ARN of the notifier Lambda."
  value       = module.notifier.function_arn
}

output "notifier_role_arn" {
  description = "ARN of the notifier's execution role."
  value       = module.notifier.role_arn
}

output "notifier_log_group_name" {
  description = "Log group of the notifier (a wrong SMTP password or an unreachable server is logged here)."
  value       = module.notifier.log_group_name
}

output "smtp_secret_arn" {
  description = "ARN of the Secrets Manager secret with the SMTP user and password (`aws secretsmanager put-secret-value --secret-id <arn> --secret-string '{\"username\":\"...\",\"password\":\"...\"}'`)."
  value       = local.smtp_secret_arn
}

output "event_rules" {
  description = "Label (the name without `<name_prefix>-`) -> name of every alert rule: the monitoring module's event_rules."
  value       = { for rule in aws_cloudwatch_event_rule.alert : trimprefix(rule.name, "${var.name_prefix}-") => rule.name }
}

output "event_rule_arns" {
  description = "Rule name -> ARN of every alert rule."
  value       = { for rule in aws_cloudwatch_event_rule.alert : rule.name => rule.arn }
}
