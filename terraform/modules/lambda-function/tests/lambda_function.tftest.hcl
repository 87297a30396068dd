# `terraform test` with a mocked AWS provider: one function, its role and its log group, with and
# without the optional parts. The package is the fixture zip (terraform/tests/fixtures).

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:mock" }
  }
}

variables {
  function_name      = "s3stagger-example"
  description        = "An example function."
  handler            = "s3stagger.handlers.process.handler"
  runtime            = "python3.13"
  architecture       = "arm64"
  package_path       = "../../tests/fixtures/processor.zip"
  timeout_seconds    = 60
  memory_mb          = 256
  environment        = { S3STAGGER_EXAMPLE = "1" }
  policy_name        = "example"
  policy_json        = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
  log_retention_days = 365
}

run "builds_the_function_its_role_and_its_log_group" {
  command = apply

  assert {
    condition     = aws_lambda_function.this.runtime == "python3.13" && aws_lambda_function.this.architectures == tolist(["arm64"]) && aws_lambda_function.this.handler == "s3stagger.handlers.process.handler"
    error_message = "The function must run the given handler on the given runtime and architecture."
  }

  assert {
    condition     = aws_cloudwatch_log_group.this.name == "/aws/lambda/s3stagger-example" && aws_cloudwatch_log_group.this.retention_in_days == 365 && one(aws_lambda_function.this.logging_config).log_group == aws_cloudwatch_log_group.this.name && one(aws_lambda_function.this.logging_config).log_format == "JSON"
    error_message = "The function must log JSON into its own log group, kept for log_retention_days."
  }

  assert {
    condition     = aws_iam_role.this.name == "s3stagger-example-role" && aws_lambda_function.this.role == aws_iam_role.this.arn && aws_iam_role_policy.this.name == "example"
    error_message = "The role is <function_name>-role by default, with the named inline policy."
  }

  assert {
    condition     = one(aws_lambda_function.this.tracing_config).mode == "Active" && length(aws_lambda_function.this.vpc_config) == 0 && length(aws_iam_role_policy_attachment.vpc) == 0
    error_message = "Tracing is on by default; no VPC unless vpc_config is given."
  }

  assert {
    condition     = output.function.environment[0].variables.S3STAGGER_EXAMPLE == "1" && output.function_name == "s3stagger-example" && output.role_name == aws_iam_role.this.name
    error_message = "The outputs must describe the function built."
  }
}

run "takes_the_optional_parts" {
  command = apply

  variables {
    role_name            = "legacy-transform"
    reserved_concurrency = 1
    tracing_enabled      = false
    vpc_config           = { subnet_ids = ["subnet-0123456789abcdef0"], security_group_ids = ["sg-0123456789abcdef0"] }
  }

  assert {
    condition     = aws_iam_role.this.name == "legacy-transform" && aws_lambda_function.this.reserved_concurrent_executions == 1
    error_message = "role_name and reserved_concurrency must reach the role and the function."
  }

  assert {
    condition     = one(aws_lambda_function.this.tracing_config).mode == "PassThrough"
    error_message = "tracing_enabled = false must pass tracing through."
  }

  assert {
    condition     = length(aws_iam_role_policy_attachment.vpc) == 1 && endswith(aws_iam_role_policy_attachment.vpc[0].policy_arn, ":iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole") && aws_lambda_function.this.vpc_config[0].subnet_ids == toset(["subnet-0123456789abcdef0"])
    error_message = "A VPC needs the subnets on the function and the VPC access policy on the role."
  }
}

run "refuses_an_unknown_architecture" {
  command = plan

  variables {
    architecture = "amd64"
  }

  expect_failures = [var.architecture]
}
