output "state_machine_arn" {
  description = "ARN of the dispatcher state machine (start it by hand with `aws stepfunctions start-execution` to dispatch at once)."
  value       = aws_sfn_state_machine.dispatcher.arn
}

output "state_machine_name" {
  description = "Name of the dispatcher state machine."
  value       = aws_sfn_state_machine.dispatcher.name
}

output "processor_function_name" {
  description = "Name of the processor Lambda."
  value       = module.processor.function_name
}

output "processor_function_arn" {
  description = "ARN of the processor Lambda."
  value       = module.processor.function_arn
}

output "processor_role_arn" {
  description = "ARN of the processor Lambda's execution role (add statements to it, for example to reach a private downstream)."
  value       = module.processor.role_arn
}

output "dispatcher_role_arn" {
  description = "ARN of the state machine's execution role."
  value       = aws_iam_role.dispatcher.arn
}

output "lease_queue_url" {
  description = "URL of the dispatcher lease FIFO queue (its one token marks the running dispatcher; leave it alone)."
  value       = aws_sqs_queue.lease.id
}

output "lease_queue_arn" {
  description = "ARN of the dispatcher lease FIFO queue."
  value       = aws_sqs_queue.lease.arn
}

output "schedule_arn" {
  description = "ARN of the EventBridge Scheduler schedule that starts the dispatcher."
  value       = aws_scheduler_schedule.dispatcher.arn
}

output "budget_parameter_name" {
  description = "Name of the SSM parameter holding the concurrency budget (objects processed at once); the autoscaler writes it, an operator may too."
  value       = aws_ssm_parameter.concurrency_budget.name
}

output "budget_parameter_arn" {
  description = "ARN of the concurrency budget parameter (grant the autoscaler ssm:PutParameter on it)."
  value       = aws_ssm_parameter.concurrency_budget.arn
}

output "processor_log_group_name" {
  description = "CloudWatch Logs group of the processor (JSON logs, EMF metrics)."
  value       = module.processor.log_group_name
}

output "dispatcher_log_group_name" {
  description = "CloudWatch Logs group of the state machine's execution history."
  value       = aws_cloudwatch_log_group.dispatcher.name
}

output "failure_event_pattern" {
  description = "EventBridge event pattern (JSON) matching the dispatcher's `Object processing failed` events: target it at your alerting."
  value = jsonencode({
    source        = [local.dispatcher_settings.event_source]
    "detail-type" = ["Object processing failed"]
  })
}

output "processor_metrics_namespace" {
  description = "CloudWatch namespace of the processor's metrics (case-sensitive): `POWERTOOLS_METRICS_NAMESPACE` of `processor.json`, unless `processor.environment` overrides it. Point dashboards and alarms at this."
  value       = local.processor_environment["POWERTOOLS_METRICS_NAMESPACE"]
}

output "autoscaler_function_name" {
  description = "Name of the autoscaler Lambda."
  value       = module.autoscaler.function_name
}

output "flight_parameter_name" {
  description = "Name of the flight parameter: rows in flight per object (read by every processor invocation) and the autoscaler's state."
  value       = aws_ssm_parameter.autoscaler_flight.name
}

output "state_machine_type" {
  description = "The dispatcher's state machine type: EXPRESS or STANDARD."
  value       = aws_sfn_state_machine.dispatcher.type
}
