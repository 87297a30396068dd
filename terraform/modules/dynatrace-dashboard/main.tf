# The pipeline's Dynatrace dashboard as code: definitions/dynatrace_dashboard.json (a classic
# dashboard document), rendered with the deployment's name prefix and deployed with the Dynatrace
# provider's JSON dashboard resource. Local mode draws the same document's tiles from the local
# Dynatrace receiver (s3stagger.local.dashboard_page); tests/unit/test_dashboard_tiles.py proves
# every metric key of its tiles is one the pipeline emits.

locals {
  definitions_path = coalesce(var.definitions_path, "${path.module}/../../../src/s3stagger/definitions")
  contents = templatefile("${local.definitions_path}/dynatrace_dashboard.json", {
    name_prefix    = var.name_prefix
    dashboard_name = coalesce(var.dashboard_name, "${var.name_prefix} pipeline")
  })
}

resource "dynatrace_json_dashboard" "this" {
  contents = local.contents
}
