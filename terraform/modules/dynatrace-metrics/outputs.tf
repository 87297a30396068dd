output "metric_stream_name" {
  description = "Name of the CloudWatch metric stream."
  value       = aws_cloudwatch_metric_stream.this.name
}

output "namespaces" {
  description = "CloudWatch namespaces the metric stream sends to Dynatrace."
  value       = local.namespaces
}

output "delivery_stream_name" {
  description = "Name of the Firehose delivery stream to Dynatrace (the `DeliveryStreamName` dimension of its metrics and alarms)."
  value       = aws_kinesis_firehose_delivery_stream.this.name
}

output "delivery_stream_arn" {
  description = "ARN of the Firehose delivery stream to Dynatrace."
  value       = aws_kinesis_firehose_delivery_stream.this.arn
}

output "backup_bucket_name" {
  description = "Bucket where Firehose keeps the metric data it could not deliver."
  value       = module.delivery.backup_bucket_name
}

output "lambda_layer_arns" {
  description = "Layers to add to a function for Dynatrace's Lambda tracing (empty unless `lambda_layer.enabled`)."
  value       = var.lambda_layer.enabled ? [var.lambda_layer.layer_arn] : []
}

output "lambda_layer_environment" {
  description = "Environment variables to add to a function for Dynatrace's Lambda layer (empty unless `lambda_layer.enabled`)."
  value       = local.layer_environment
  sensitive   = true
}

output "firehose_role_arn" {
  description = "ARN of the role the delivery stream assumes (name it in a customer-managed key's policy)."
  value       = module.delivery.role_arn
}
