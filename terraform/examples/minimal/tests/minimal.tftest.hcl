# `terraform test` (Terraform >= 1.7) with a mocked AWS provider: the two modules with defaults only.
# Needs the package: run `make package` in the repository root.

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
}

run "plans_with_only_the_required_inputs" {
  command = plan

  assert {
    condition     = module.ingest.priorities == ["high", "normal"]
    error_message = "The priorities must come from queues.json."
  }
}
