output "resource_names" {
  description = "Names, URLs and ARNs of what was built, in the shape of local mode's ResourceNames (s3stagger.local.provision)."
  value = {
    name_prefix        = var.name_prefix
    region             = var.region
    account_id         = split(":", module.dispatcher.state_machine_arn)[4]
    bucket             = module.ingest.uploads_bucket_name
    failed_rows_bucket = module.ingest.failed_rows_bucket_name
    priorities         = module.ingest.priorities
    queue_urls         = { for priority in module.ingest.priorities : priority => module.ingest.queues[priority].url }
    dlq_urls           = { for priority in module.ingest.priorities : priority => module.ingest.queues[priority].dlq_url }
    key_prefixes       = module.ingest.key_prefixes
    ingest_dlq_url     = module.ingest.ingest_dlq_url
    lease_queue_url    = module.dispatcher.lease_queue_url
    rule_names         = sort(keys(module.ingest.event_rule_arns))
    state_machine_name = module.dispatcher.state_machine_name
    state_machine_arn  = module.dispatcher.state_machine_arn
    function_name      = module.dispatcher.processor_function_name
    function_arn       = module.dispatcher.processor_function_arn
    budget_parameter   = module.dispatcher.budget_parameter_name
    schedule_arn       = module.dispatcher.schedule_arn
    state_machine_type = module.dispatcher.state_machine_type
    flight_parameter   = module.dispatcher.flight_parameter_name
  }
}
