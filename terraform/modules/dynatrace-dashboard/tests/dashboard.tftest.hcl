# `terraform test` with a mocked Dynatrace provider: the shared dashboard document, rendered for the
# deployment. Needs the dynatrace-oss/dynatrace provider (not in the offline mirror: the Python
# tests render and check the same document, see tests/unit/test_dashboard_tiles.py).

mock_provider "dynatrace" {}

variables {
  name_prefix = "acme"
}

run "deploys_the_shared_document_for_this_prefix" {
  command = apply

  assert {
    condition     = jsondecode(dynatrace_json_dashboard.this.contents).dashboardMetadata.name == "acme pipeline"
    error_message = "The dashboard is named after the prefix by default."
  }

  assert {
    condition     = length(jsondecode(dynatrace_json_dashboard.this.contents).tiles) == 10
    error_message = "Every tile of the shared document is deployed."
  }

  assert {
    condition     = strcontains(dynatrace_json_dashboard.this.contents, "\\\"acme-processor\\\"")
    error_message = "The tiles filter on this deployment's processor."
  }
}
