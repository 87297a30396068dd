output "uploads_bucket_name" {
  description = "Upload CSV files here under `high/` or `normal/`."
  value       = module.ingest.uploads_bucket_name
}

output "state_machine_arn" {
  description = "The dispatcher state machine (starts every minute)."
  value       = module.dispatcher.state_machine_arn
}
