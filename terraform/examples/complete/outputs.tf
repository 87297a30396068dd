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

output "alerts_topic_arn" {
  description = "SNS topic of the alerts (failed objects, messages in a DLQ); subscribe more endpoints to it."
  value       = aws_sns_topic.alerts.arn
}

output "kms_key_arn" {
  description = "The customer KMS key of the deployment."
  value       = aws_kms_key.pipeline.arn
}
