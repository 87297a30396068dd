output "delivery_stream_name" {
  description = "Name of the Firehose delivery stream to Splunk (the `DeliveryStreamName` dimension of its metrics and alarms)."
  value       = aws_kinesis_firehose_delivery_stream.this.name
}

output "delivery_stream_arn" {
  description = "ARN of the Firehose delivery stream to Splunk."
  value       = aws_kinesis_firehose_delivery_stream.this.arn
}

output "transform_function_name" {
  description = "Name of the transform Lambda (CloudWatch Logs records -> HEC events)."
  value       = module.transform.function_name
}

output "backup_bucket_name" {
  description = "Bucket where Firehose keeps the events it could not deliver (`splunk-failed/`) or transform (`errors/`)."
  value       = module.delivery.backup_bucket_name
}

output "subscription_filter_names" {
  description = "Label -> name of the subscription filter on each shipped log group."
  value       = { for label, filter in aws_cloudwatch_log_subscription_filter.this : label => filter.name }
}

output "stream_log_group_name" {
  description = "Log group where Firehose writes its delivery errors."
  value       = module.delivery.log_group_name
}

output "firehose_role_arn" {
  description = "ARN of the role the delivery stream assumes (name it in a customer-managed key's policy)."
  value       = module.delivery.role_arn
}
