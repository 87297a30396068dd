output "bucket_name" {
  description = "Name of the backup bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the backup bucket (give Firehose s3:PutObject on it and its objects)."
  value       = aws_s3_bucket.this.arn
}
