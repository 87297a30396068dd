# `terraform test` (Terraform >= 1.7) with a mocked AWS provider: rules from alerting.json to the
# alert queue, its DLQ, the notifier configured for the central SMTP server, the secret, IAM.
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
  mock_resource "aws_sqs_queue" {
    defaults = { arn = "arn:aws:sqs:eu-west-1:123456789012:mock", id = "https://sqs.eu-west-1.amazonaws.com/123456789012/s3stagger-alerts" }
  }
  mock_resource "aws_cloudwatch_event_rule" {
    defaults = { arn = "arn:aws:events:eu-west-1:123456789012:rule/mock" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:mock" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
  }
  mock_resource "aws_lambda_function" {
    defaults = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:s3stagger-notifier" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s3stagger/alerting/smtp-AbCdEf" }
  }
}

variables {
  package_path        = "../../tests/fixtures/processor.zip"
  state_machine_arn   = "arn:aws:states:eu-west-1:123456789012:stateMachine:s3stagger-dispatcher"
  uploads_bucket_name = "s3stagger-uploads-123456789012-eu-west-1"
  smtp = {
    from = "s3stagger@example.com"
    to   = ["oncall@example.com", "data-team@example.com"]
  }
}

run "routes_alert_events_to_the_notifier_through_ses_by_default" {
  command = apply

  assert {
    condition     = toset(keys(output.event_rules)) == toset(["alert-alarm-state-change", "alert-dispatcher-execution", "alert-object-failed", "alert-object-unrouted"])
    error_message = "A STANDARD dispatcher needs all four alert rules of alerting.json."
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.alert["alarm"].event_pattern).detail.alarmName[0].prefix == "s3stagger-"
    error_message = "The alarm rule must match this deployment's alarms (<name_prefix>-...)."
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.alert["execution_failed"].event_pattern).detail.status == ["FAILED", "TIMED_OUT", "ABORTED"]
    error_message = "The execution rule must match failed, timed-out and aborted executions."
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.alert["unrouted"].event_pattern).detail.object.key[0]["anything-but"].wildcard == ["high/*.csv", "normal/*.csv"]
    error_message = "The unrouted rule must match every key no route matches."
  }

  assert {
    condition     = alltrue([for target in aws_cloudwatch_event_target.alert : target.dead_letter_config[0].arn == aws_sqs_queue.alert_dead_letter.arn && target.retry_policy[0].maximum_retry_attempts == 185])
    error_message = "Every rule target needs the retry policy of event_rules.json and the alert DLQ."
  }

  assert {
    condition     = aws_sqs_queue.alerts.name == "s3stagger-alerts" && aws_sqs_queue.alert_dead_letter.name == "s3stagger-alerts-dlq" && jsondecode(aws_sqs_queue.alerts.redrive_policy).maxReceiveCount == 10
    error_message = "Queue names and redrive must follow alerting.json."
  }

  assert {
    condition     = module.notifier.function.environment[0].variables.S3STAGGER_SMTP_HOST == "email-smtp.eu-west-1.amazonaws.com" && module.notifier.function.environment[0].variables.S3STAGGER_SMTP_PORT == "587" && module.notifier.function.environment[0].variables.S3STAGGER_SMTP_SECURITY == "starttls"
    error_message = "By default the notifier uses SES's SMTP interface in the deployment's region with STARTTLS on 587."
  }

  assert {
    condition     = module.notifier.function.environment[0].variables.S3STAGGER_SMTP_TO == "oncall@example.com,data-team@example.com" && module.notifier.function.environment[0].variables.S3STAGGER_SMTP_SECRET_ID == aws_secretsmanager_secret.smtp[0].arn
    error_message = "The notifier must get the recipients and the created secret."
  }

  assert {
    condition     = alltrue([for name, value in module.notifier.function.environment[0].variables : value != null]) && !contains(keys(module.notifier.function.environment[0].variables), "S3STAGGER_SMTP_CA_FILE")
    error_message = "No setting may stay unset, and no CA file is configured by default."
  }

  assert {
    condition     = module.notifier.function.handler == "s3stagger.handlers.notify.handler" && module.notifier.function.reserved_concurrent_executions == 1
    error_message = "The notifier's handler and concurrency must follow alerting.json."
  }

  assert {
    condition     = aws_lambda_event_source_mapping.alerts.function_response_types == toset(["ReportBatchItemFailures"])
    error_message = "The mapping must report per-message failures, so one bad alert does not retry the batch."
  }

  assert {
    condition     = length(module.notifier.function.vpc_config) == 0
    error_message = "No VPC by default."
  }
}

run "uses_a_private_relay_with_implicit_tls_in_a_vpc_and_an_existing_secret" {
  command = plan

  variables {
    dispatcher_type = "EXPRESS"
    smtp = {
      host     = "relay.corp.example"
      port     = 465
      security = "tls"
      from     = "s3stagger@corp.example"
      to       = ["oncall@corp.example"]
      ca_file  = "/var/task/corp-ca.pem"
    }
    smtp_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:corp/relay-XyZ123"
    vpc_config = {
      subnet_ids         = ["subnet-0123456789abcdef0"]
      security_group_ids = ["sg-0123456789abcdef0"]
    }
    kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
  }

  assert {
    condition     = !contains(keys(aws_cloudwatch_event_rule.alert), "execution_failed")
    error_message = "An Express dispatcher emits no status-change events: no execution rule."
  }

  assert {
    condition     = module.notifier.function.environment[0].variables.S3STAGGER_SMTP_SECURITY == "tls" && module.notifier.function.environment[0].variables.S3STAGGER_SMTP_CA_FILE == "/var/task/corp-ca.pem" && module.notifier.function.environment[0].variables.S3STAGGER_SMTP_HOST == "relay.corp.example"
    error_message = "The relay's host, implicit TLS and CA file must reach the notifier."
  }

  assert {
    condition     = length(aws_secretsmanager_secret.smtp) == 0 && output.smtp_secret_arn == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:corp/relay-XyZ123"
    error_message = "An existing secret must be used, not a new one."
  }

  assert {
    condition     = module.notifier.function.vpc_config[0].subnet_ids == toset(["subnet-0123456789abcdef0"])
    error_message = "vpc_config must place the notifier in the subnets and let it create its network interfaces."
  }

  assert {
    condition     = aws_sqs_queue.alerts.kms_master_key_id == "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    error_message = "With a customer key the alert queue must use it."
  }
}

run "refuses_an_smtp_security_mode_it_does_not_know" {
  command = plan

  variables {
    smtp = {
      from     = "s3stagger@example.com"
      to       = ["oncall@example.com"]
      security = "ssl"
    }
  }

  expect_failures = [var.smtp]
}

run "refuses_a_recipient_that_is_not_an_address" {
  command = plan

  variables {
    smtp = {
      from = "s3stagger@example.com"
      to   = ["oncall"]
    }
  }

  expect_failures = [var.smtp]
}
