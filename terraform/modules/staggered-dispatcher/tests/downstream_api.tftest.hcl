# `terraform test` of var.downstream_api (mocked AWS provider): secret ARNs, never values, reach the
# processor; the role may read those secrets only; malformed settings are refused at plan.

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
  # Computed ARNs other resources validate.
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:mock" }
  }
  mock_resource "aws_lambda_function" {
    defaults = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:s3stagger-processor" }
  }
  mock_resource "aws_sfn_state_machine" {
    defaults = { arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:s3stagger-dispatcher" }
  }
  mock_resource "aws_sqs_queue" {
    defaults = {
      arn = "arn:aws:sqs:eu-west-1:123456789012:s3stagger-dispatcher-lease.fifo"
      id  = "https://sqs.eu-west-1.amazonaws.com/123456789012/s3stagger-dispatcher-lease.fifo"
    }
  }
  mock_resource "aws_ssm_parameter" {
    defaults = { arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/s3stagger/concurrency-budget" }
  }
}

variables {
  queues = {
    high = {
      url                        = "https://sqs.eu-west-1.amazonaws.com/123456789012/s3stagger-high"
      arn                        = "arn:aws:sqs:eu-west-1:123456789012:s3stagger-high"
      visibility_timeout_seconds = 360
    }
    normal = {
      url                        = "https://sqs.eu-west-1.amazonaws.com/123456789012/s3stagger-normal"
      arn                        = "arn:aws:sqs:eu-west-1:123456789012:s3stagger-normal"
      visibility_timeout_seconds = 360
    }
  }
  source_bucket_name      = "s3stagger-uploads-123456789012-eu-west-1"
  failed_rows_bucket_name = "s3stagger-failed-rows-123456789012-eu-west-1"
  downstream_url          = "https://api.example.com/v1/rows"
  package_path            = "../../../dist/s3stagger-lambda-arm64.zip"
}

run "passes_secret_arns_and_api_settings_to_the_processor" {
  command = apply

  variables {
    downstream_api = {
      auth_mode           = "oauth"
      auth_secret_arn     = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:downstream/oauth-client-AbCdEf"
      oauth_token_url     = "https://auth.example.com/oauth2/token"
      tls_ca_secret_arn   = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:downstream/ca-AbCdEf"
      secrets_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
      request_fields      = { orderId = "id:int", total = "amount:decimal" }
      rows_per_request    = 25
      retryable_statuses  = [409, 423]
      breaker_window      = 50
    }
  }

  assert {
    condition = (
      aws_lambda_function.processor.environment[0].variables["S3STAGGER_AUTH_MODE"] == "oauth" &&
      aws_lambda_function.processor.environment[0].variables["S3STAGGER_AUTH_SECRET_ID"] == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:downstream/oauth-client-AbCdEf" &&
      aws_lambda_function.processor.environment[0].variables["S3STAGGER_TLS_CA_SECRET_ID"] == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:downstream/ca-AbCdEf"
    )
    error_message = "The auth mode and the secret ARNs must reach the processor's environment."
  }

  assert {
    condition = (
      jsondecode(aws_lambda_function.processor.environment[0].variables["S3STAGGER_REQUEST_FIELDS"]) == { orderId = "id:int", total = "amount:decimal" } &&
      aws_lambda_function.processor.environment[0].variables["S3STAGGER_ROWS_PER_REQUEST"] == "25" &&
      aws_lambda_function.processor.environment[0].variables["S3STAGGER_RETRYABLE_STATUSES"] == "409,423" &&
      aws_lambda_function.processor.environment[0].variables["S3STAGGER_BREAKER_WINDOW"] == "50"
    )
    error_message = "The request mapping and breaker settings must reach the processor's environment."
  }

  assert {
    condition     = length(aws_iam_role_policy.processor_downstream_api) == 1
    error_message = "A processor with secrets needs the policy that reads them."
  }
}

run "adds_no_policy_without_secrets" {
  command = plan

  assert {
    condition     = length(aws_iam_role_policy.processor_downstream_api) == 0 && aws_lambda_function.processor.environment[0].variables["S3STAGGER_AUTH_MODE"] == "none"
    error_message = "Without downstream credentials the role gets no secret read."
  }
}

run "rejects_a_secret_name_instead_of_its_arn" {
  command = plan

  variables {
    downstream_api = { auth_mode = "api-key", auth_secret_arn = "downstream/api-key" }
  }

  expect_failures = [var.downstream_api]
}

run "rejects_an_api_key_mode_without_a_secret" {
  command = plan

  variables {
    downstream_api = { auth_mode = "bearer" }
  }

  expect_failures = [var.downstream_api]
}

run "rejects_sigv4_without_the_apis_it_may_call" {
  command = plan

  variables {
    downstream_api = { auth_mode = "sigv4" }
  }

  expect_failures = [var.downstream_api]
}
