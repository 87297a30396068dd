# Both modules, applied to the local emulator (`s3stagger local up --via-terraform`,
# `make local-terraform`): the resources local mode runs the pipeline on are the ones Terraform
# builds. Bucket names are local mode's (no account-region qualifier), so both paths name the same.

module "ingest" {
  source = "../../modules/event-ingest"

  name_prefix      = var.name_prefix
  definitions_path = var.definitions_path
  bucket_names     = { uploads = "${var.name_prefix}-uploads", failed_rows = "${var.name_prefix}-failed-rows" }
  force_destroy    = true
}

module "dispatcher" {
  source = "../../modules/staggered-dispatcher"

  name_prefix             = var.name_prefix
  definitions_path        = var.definitions_path
  queues                  = module.ingest.queues
  source_bucket_name      = module.ingest.uploads_bucket_name
  failed_rows_bucket_name = module.ingest.failed_rows_bucket_name
  downstream_url          = var.downstream_url
  package_path            = var.package_path
  processor               = { environment = var.processor_environment }
  concurrency_budget      = { initial = var.concurrency_budget }
}
