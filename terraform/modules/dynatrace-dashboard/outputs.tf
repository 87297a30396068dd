output "dashboard_id" {
  description = "ID of the dashboard in Dynatrace."
  value       = dynatrace_json_dashboard.this.id
}

output "contents" {
  description = "The dashboard document as deployed (JSON)."
  value       = local.contents
}
