output "uploads_bucket_name" {
  description = "Name of the uploads bucket: put CSV objects under a route prefix (see key_prefixes) to have them processed."
  value       = aws_s3_bucket.this["uploads"].id
}

output "uploads_bucket_arn" {
  description = "ARN of the uploads bucket (the staggered-dispatcher module's source_bucket_arn)."
  value       = aws_s3_bucket.this["uploads"].arn
}

output "failed_rows_bucket_name" {
  description = "Name of the failed-rows bucket: rows the downstream refused and quarantine records of rejected objects."
  value       = aws_s3_bucket.this["failed_rows"].id
}

output "failed_rows_bucket_arn" {
  description = "ARN of the failed-rows bucket (the staggered-dispatcher module's failed_rows_bucket_arn)."
  value       = aws_s3_bucket.this["failed_rows"].arn
}

output "priorities" {
  description = "Priority names, highest first: the order in which the dispatcher serves the queues."
  value       = local.priorities
}

output "key_prefixes" {
  description = "Priority name -> key prefix that routes an uploaded object to that priority's queue."
  value       = local.key_prefixes
}

output "object_suffix" {
  description = "Key suffix an object must have to be routed (other keys go to the ingest DLQ)."
  value       = local.object_suffix
}

output "queues" {
  description = "Priority name -> the queue and its redrive DLQ (name, url, arn) with the settings the dispatcher must agree with. Pass it to the staggered-dispatcher module as queues."
  value = {
    for priority in local.priorities : priority => {
      name                       = aws_sqs_queue.priority[priority].name
      url                        = aws_sqs_queue.priority[priority].id
      arn                        = aws_sqs_queue.priority[priority].arn
      visibility_timeout_seconds = aws_sqs_queue.priority[priority].visibility_timeout_seconds
      max_receive_count          = local.queue_settings.max_receive_count
      dlq_name                   = aws_sqs_queue.dead_letter[priority].name
      dlq_url                    = aws_sqs_queue.dead_letter[priority].id
      dlq_arn                    = aws_sqs_queue.dead_letter[priority].arn
    }
  }
}

output "ingest_dlq_name" {
  description = "Name of the ingest DLQ."
  value       = aws_sqs_queue.ingest_dead_letter.name
}

output "ingest_dlq_url" {
  description = "URL of the ingest DLQ: events EventBridge could not deliver to a queue, and uploads no route matches."
  value       = aws_sqs_queue.ingest_dead_letter.id
}

output "ingest_dlq_arn" {
  description = "ARN of the ingest DLQ."
  value       = aws_sqs_queue.ingest_dead_letter.arn
}

output "event_rule_arns" {
  description = "Rule name -> ARN of every EventBridge rule of the module (one per priority, and the unrouted rule)."
  value = merge(
    { for rule in aws_cloudwatch_event_rule.object_created : rule.name => rule.arn },
    { (aws_cloudwatch_event_rule.object_unrouted.name) = aws_cloudwatch_event_rule.object_unrouted.arn },
  )
}

output "kms_key_arn" {
  description = "The customer KMS key of the buckets and queues, or null for AWS-managed encryption."
  value       = var.kms_key_arn
}
