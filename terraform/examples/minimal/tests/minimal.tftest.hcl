# `terraform test` (Terraform >= 1.7) with a mocked AWS provider: the two modules with defaults only.
# The Lambda package is a small fixture zip (terraform/tests/fixtures): no `make package` needed.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
}

variables {
  downstream_url = "https://api.example.com/v1/rows"
  package_path   = "../../tests/fixtures/processor.zip"
}

run "plans_with_only_the_required_inputs" {
  command = plan

  assert {
    condition     = module.ingest.priorities == ["high", "normal"]
    error_message = "The priorities must come from queues.json."
  }
}
