output "role_arn" {
  description = "ARN of the role the delivery stream assumes (for its destination, backup and processors)."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "Log group where Firehose writes its delivery errors."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_stream_names" {
  description = "Log stream for destination errors (`destination`) and for backup errors (`backup`)."
  value = {
    destination = aws_cloudwatch_log_stream.this["DestinationDelivery"].name
    backup      = aws_cloudwatch_log_stream.this["BackupDelivery"].name
  }
}

output "backup_bucket_arn" {
  description = "ARN of the backup bucket (the stream's S3 configuration)."
  value       = module.backup.bucket_arn
}

output "backup_bucket_name" {
  description = "Name of the backup bucket."
  value       = module.backup.bucket_name
}
