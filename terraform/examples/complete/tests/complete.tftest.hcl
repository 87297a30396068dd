# `terraform test` (Terraform >= 1.7) with a mocked AWS provider: the example wires the four
# modules and the key together. The Lambda package is a small fixture zip (terraform/tests/fixtures):
# no `make package` needed.

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
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000" }
  }
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
    defaults = { arn = "arn:aws:sqs:eu-west-1:123456789012:mock", id = "https://sqs.eu-west-1.amazonaws.com/123456789012/mock" }
  }
  mock_resource "aws_ssm_parameter" {
    defaults = { arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/s3stagger/concurrency-budget" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s3stagger/alerting/smtp-AbCdEf" }
  }
  mock_resource "aws_cloudwatch_metric_alarm" {
    defaults = { arn = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:mock" }
  }
  mock_resource "aws_cloudwatch_event_rule" {
    defaults = { arn = "arn:aws:events:eu-west-1:123456789012:rule/mock" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::mock" }
  }
}

variables {
  region         = "eu-west-1"
  downstream_url = "https://api.example.com/v1/rows"
  alert_from     = "s3stagger@example.com"
  alert_emails   = ["oncall@example.com"]
  package_path   = "../../tests/fixtures/processor.zip"
}

run "deploys_the_pattern_with_a_customer_key_and_alerting" {
  command = apply

  assert {
    condition     = aws_kms_key.pipeline.enable_key_rotation
    error_message = "The customer key must rotate."
  }

  assert {
    condition     = toset([for name in output.alarm_names : name if startswith(name, "s3stagger-dlq-not-empty-")]) == toset(["s3stagger-dlq-not-empty-high", "s3stagger-dlq-not-empty-normal", "s3stagger-dlq-not-empty-ingest-dlq", "s3stagger-dlq-not-empty-alert-dlq"])
    error_message = "Every dead-letter queue, the alert DLQ included, needs an alarm."
  }

  assert {
    condition     = contains(output.alarm_names, "s3stagger-notifier-errors") && contains(output.alarm_names, "s3stagger-rule-failed-invocations-alert-alarm-state-change") && contains(output.alarm_names, "s3stagger-rule-invocations-sent-to-dlq-object-created-high")
    error_message = "The notifier and every rule (ingest and alerting) must be alarmed."
  }

  assert {
    condition     = module.monitoring.alarms["s3stagger-processor-concurrency-near-limit"].threshold == 9
    error_message = "The concurrency alarm must follow the deployed reserved concurrency (10)."
  }

  assert {
    condition     = alltrue([for alarm in module.monitoring.alarms : alarm.id != "processor-duration-near-timeout" || alarm.threshold == 294000])
    error_message = "The duration alarm must follow the deployed timeout (300 s)."
  }

  assert {
    condition     = length(module.alerting.event_rules) == 4
    error_message = "The dispatcher is a Standard workflow: all four alert rules are needed."
  }

  assert {
    condition     = length([for name in output.alarm_names : name if startswith(name, "s3stagger-firehose-")]) == 0
    error_message = "Without Splunk and Dynatrace there is no delivery stream to alarm on."
  }

  assert {
    condition     = output.budget_parameter_name == "/s3stagger/concurrency-budget"
    error_message = "The budget parameter must follow budget.json."
  }
}

run "a_corporate_relay_and_a_pager_topic" {
  command = plan

  variables {
    smtp = {
      host       = "relay.corp.example"
      port       = 465
      security   = "tls"
      secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:corp/relay-XyZ123"
    }
    alarm_topic_arn = "arn:aws:sns:eu-west-1:123456789012:pager"
  }

  assert {
    condition     = module.alerting.smtp_secret_arn == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:corp/relay-XyZ123"
    error_message = "An existing secret must be used."
  }
}

run "ships_logs_to_splunk_and_metrics_to_dynatrace_when_configured" {
  command = plan

  variables {
    splunk = {
      hec_endpoint         = "https://http-inputs-firehose-acme.splunkcloud.com:443"
      hec_token_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:splunk-hec-AbCdEf"
    }
    dynatrace = {
      endpoint_url         = "https://aws.cloud.dynatrace.com/metrics"
      environment_url      = "https://abc12345.live.dynatrace.com"
      api_token_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dynatrace-api-AbCdEf"
    }
  }

  assert {
    condition     = length(module.splunk_logs) == 1 && length(module.dynatrace_metrics) == 1
    error_message = "Configured Splunk and Dynatrace deploy their modules."
  }

  assert {
    condition     = length(module.splunk_logs[0].subscription_filter_names) == 3
    error_message = "The processor's, the dispatcher's and the notifier's logs go to Splunk."
  }

  assert {
    condition     = toset([for name in output.alarm_names : name if startswith(name, "s3stagger-firehose-")]) == toset(["s3stagger-firehose-splunk-delivery-splunk", "s3stagger-firehose-dynatrace-delivery-dynatrace", "s3stagger-firehose-throttled-splunk", "s3stagger-firehose-throttled-dynatrace"])
    error_message = "Each delivery stream gets its own delivery alarm and a throttling alarm."
  }

  assert {
    condition     = module.monitoring.alarms["s3stagger-firehose-splunk-delivery-splunk"].dimensions.DeliveryStreamName == "s3stagger-splunk-logs" && module.monitoring.alarms["s3stagger-firehose-throttled-dynatrace"].dimensions.DeliveryStreamName == "s3stagger-dynatrace-metrics"
    error_message = "The Firehose alarms must watch the streams the splunk-logs and dynatrace-metrics modules create."
  }
}
