output "uploads_bucket_name" {
  description = "Upload CSV files here, under `high/` or `normal/` (for example `aws s3 cp rows.csv s3://<bucket>/normal/rows.csv`)."
  value       = module.ingest.uploads_bucket_name
}

output "failed_rows_bucket_name" {
  description = "Rows the downstream refused and quarantine records of rejected objects land here."
  value       = module.ingest.failed_rows_bucket_name
}

output "key_prefixes" {
  description = "Priority -> key prefix an upload must have."
  value       = module.ingest.key_prefixes
}

output "queues" {
  description = "Per priority: the queue and its DLQ."
  value       = module.ingest.queues
}

output "ingest_dlq_url" {
  description = "Events that could not be delivered and uploads no route matches."
  value       = module.ingest.ingest_dlq_url
}

output "state_machine_arn" {
  description = "The dispatcher; it starts every minute, or start it now with `aws stepfunctions start-execution --state-machine-arn <arn>`."
  value       = module.dispatcher.state_machine_arn
}

output "processor_function_name" {
  description = "The processor Lambda (`aws logs tail /aws/lambda/<name> --follow` shows its JSON logs)."
  value       = module.dispatcher.processor_function_name
}

output "processor_log_group_name" {
  description = "Log group of the processor."
  value       = module.dispatcher.processor_log_group_name
}

output "budget_parameter_name" {
  description = "SSM parameter holding the concurrency budget (objects processed at once)."
  value       = module.dispatcher.budget_parameter_name
}

output "alert_queue_url" {
  description = "The alert queue: events of the alert rules wait here for the notifier."
  value       = module.alerting.alert_queue_url
}

output "alert_dlq_url" {
  description = "Alerts the notifier could not send after every retry (alarmed); redrive with `aws sqs start-message-move-task`."
  value       = module.alerting.alert_dlq_url
}

output "smtp_secret_arn" {
  description = "Put the SMTP user and password here after apply: `aws secretsmanager put-secret-value --secret-id <arn> --secret-string '{\"username\":\"...\",\"password\":\"...\"}'`."
  value       = module.alerting.smtp_secret_arn
}

output "notifier_log_group_name" {
  description = "Log group of the notifier (SMTP errors such as a refused login appear here)."
  value       = module.alerting.notifier_log_group_name
}

output "alarm_names" {
  description = "Every health alarm (alarms.json expanded for this deployment)."
  value       = sort(keys(module.monitoring.alarms))
}

output "dashboard_url" {
  description = "The CloudWatch dashboard of the pipeline."
  value       = module.monitoring.dashboard_url
}

output "kms_key_arn" {
  description = "The customer KMS key of the deployment."
  value       = aws_kms_key.pipeline.arn
}
