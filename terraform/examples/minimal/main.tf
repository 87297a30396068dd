# The smallest deployment: every setting from the shared definitions, AWS-managed encryption.

module "ingest" {
  source = "../../modules/event-ingest"
}

module "dispatcher" {
  source = "../../modules/staggered-dispatcher"

  queues                  = module.ingest.queues
  source_bucket_name      = module.ingest.uploads_bucket_name
  failed_rows_bucket_name = module.ingest.failed_rows_bucket_name
  downstream_url          = var.downstream_url
  package_path            = var.package_path
}
