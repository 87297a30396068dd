# `terraform test` (Terraform >= 1.7) with a mocked AWS provider: no account, no credentials.
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
  package_path            = "../../tests/fixtures/processor.zip"
}

run "renders_the_shared_state_machine_and_processor" {
  command = apply

  assert {
    condition     = length(regexall("\\$\\{[A-Za-z_]", aws_sfn_state_machine.dispatcher.definition)) == 0
    error_message = "A placeholder of dispatcher.asl.json was left unrendered."
  }

  assert {
    condition = (
      keys(jsondecode(aws_sfn_state_machine.dispatcher.definition).States)
      == keys(jsondecode(file("../../../src/s3stagger/definitions/dispatcher.asl.json")).States)
    )
    error_message = "The state machine does not have the states of the shared ASL template."
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.dispatcher.definition).States.Setup.Parameters.settings["queueUrls.$"] == "States.StringSplit('${var.queues.high.url},${var.queues.normal.url}', ',')"
    error_message = "The priority queue URLs must reach the state machine in queues.json order (high first)."
  }

  assert {
    condition     = aws_sfn_state_machine.dispatcher.type == "EXPRESS" && !aws_sfn_state_machine.dispatcher.logging_configuration[0].include_execution_data
    error_message = "The dispatcher is EXPRESS by default (dispatcher.json) and logs without execution data."
  }

  assert {
    condition     = module.processor.function.runtime == "python3.13" && module.processor.function.architectures == tolist(["arm64"])
    error_message = "The processor must run python3.13 on arm64 by default."
  }

  assert {
    condition     = module.processor.function.function_name == "s3stagger-processor" && aws_sfn_state_machine.dispatcher.name == "s3stagger-dispatcher"
    error_message = "Names must follow <name_prefix>-<thing> as in local mode."
  }

  assert {
    condition     = module.processor.function.environment[0].variables["S3STAGGER_DOWNSTREAM_URL"] == "https://api.example.com/v1/rows"
    error_message = "The downstream URL must reach the processor's environment."
  }

  assert {
    condition     = aws_sqs_queue.lease.fifo_queue && aws_sqs_queue.lease.name == "s3stagger-dispatcher-lease.fifo"
    error_message = "The dispatcher lease must be the FIFO queue named in queues.json."
  }

  assert {
    condition     = aws_ssm_parameter.concurrency_budget.name == "/s3stagger/concurrency-budget" && aws_ssm_parameter.concurrency_budget.value == "5"
    error_message = "The budget parameter must be created from budget.json."
  }

  assert {
    condition     = aws_scheduler_schedule.dispatcher.schedule_expression == "rate(1 minute)" && aws_scheduler_schedule.dispatcher.state == "ENABLED"
    error_message = "The schedule must start the dispatcher every minute."
  }
}

run "rejects_a_lease_shorter_than_a_wait_and_the_idle_looks" {
  command = plan

  variables {
    dispatcher = { lease_s = 10 }
  }

  expect_failures = [aws_sqs_queue.lease]
}

run "rejects_a_budget_above_the_reserved_concurrency" {
  command = plan

  variables {
    processor = { reserved_concurrency = 5 }
  }

  expect_failures = [aws_sfn_state_machine.dispatcher]
}

run "rejects_a_downstream_url_that_is_not_http" {
  command = plan

  variables {
    downstream_url = "ftp://api.example.com/rows"
  }

  expect_failures = [var.downstream_url]
}

# var.downstream_api: secret ARNs, never values, reach the processor; the role reads those secrets only.
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
      module.processor.function.environment[0].variables["S3STAGGER_AUTH_MODE"] == "oauth" &&
      module.processor.function.environment[0].variables["S3STAGGER_AUTH_SECRET_ID"] == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:downstream/oauth-client-AbCdEf" &&
      module.processor.function.environment[0].variables["S3STAGGER_TLS_CA_SECRET_ID"] == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:downstream/ca-AbCdEf"
    )
    error_message = "The auth mode and the secret ARNs must reach the processor's environment."
  }

  assert {
    condition = (
      jsondecode(module.processor.function.environment[0].variables["S3STAGGER_REQUEST_FIELDS"]) == { orderId = "id:int", total = "amount:decimal" } &&
      module.processor.function.environment[0].variables["S3STAGGER_ROWS_PER_REQUEST"] == "25" &&
      module.processor.function.environment[0].variables["S3STAGGER_RETRYABLE_STATUSES"] == "409,423" &&
      module.processor.function.environment[0].variables["S3STAGGER_BREAKER_WINDOW"] == "50"
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
    condition     = length(aws_iam_role_policy.processor_downstream_api) == 0 && module.processor.function.environment[0].variables["S3STAGGER_AUTH_MODE"] == "none"
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

run "runs_a_standard_dispatcher_on_request" {
  command = plan

  variables {
    dispatcher = { state_machine_type = "STANDARD", time_budget_s = 280 }
  }

  assert {
    condition     = aws_sfn_state_machine.dispatcher.type == "STANDARD"
    error_message = "dispatcher.state_machine_type must choose the state machine type."
  }
}

run "rejects_an_express_time_budget_without_room_for_the_last_calls" {
  command = plan

  variables {
    dispatcher = { time_budget_s = 280 }
  }

  expect_failures = [aws_sfn_state_machine.dispatcher]
}

run "rejects_an_unknown_state_machine_type" {
  command = plan

  variables {
    dispatcher = { state_machine_type = "SYNC" }
  }

  expect_failures = [var.dispatcher]
}

run "schedules_the_autoscaler_with_the_shared_settings" {
  command = apply

  assert {
    condition     = module.autoscaler.function.handler == jsondecode(file("../../../src/s3stagger/definitions/autoscaler.json")).handler
    error_message = "The autoscaler must run autoscaler.json's handler."
  }

  assert {
    condition     = module.autoscaler.function.reserved_concurrent_executions == 1
    error_message = "One run at a time: each reads the state the previous one wrote."
  }

  assert {
    condition     = jsondecode(module.autoscaler.function.environment[0].variables.S3STAGGER_QUEUE_URLS).high == var.queues.high.url
    error_message = "The queue URLs must reach the autoscaler by priority."
  }

  assert {
    condition     = module.autoscaler.function.environment[0].variables.S3STAGGER_BUDGET_CAP == "40"
    error_message = "Without a cap the autoscaler's budget cap is budget.json's maximum."
  }

  assert {
    condition     = module.processor.function.environment[0].variables.S3STAGGER_FLIGHT_PARAMETER == aws_ssm_parameter.autoscaler_flight.name
    error_message = "The processor must read the flight parameter the autoscaler writes."
  }

  assert {
    condition     = aws_scheduler_schedule.autoscaler.schedule_expression == "rate(1 minute)" && aws_scheduler_schedule.autoscaler.state == "ENABLED"
    error_message = "The autoscaler runs every minute by default."
  }
}

run "pins_and_pauses_the_autoscaler" {
  command = apply

  variables {
    autoscaler = {
      budget_floor = 8
      budget_cap   = 8
      rows_floor   = 40
      rows_cap     = 40
      enabled      = false
    }
  }

  assert {
    condition     = module.autoscaler.function.environment[0].variables.S3STAGGER_BUDGET_FLOOR == "8" && module.autoscaler.function.environment[0].variables.S3STAGGER_ROWS_CAP == "40"
    error_message = "The operator's floor and cap reach the autoscaler."
  }

  assert {
    condition     = aws_scheduler_schedule.autoscaler.state == "DISABLED"
    error_message = "enabled = false pauses the autoscaler's schedule."
  }
}

run "refuses_a_floor_above_the_cap" {
  command = plan

  variables {
    autoscaler = {
      budget_floor = 9
      budget_cap   = 3
    }
  }

  expect_failures = [var.autoscaler]
}
