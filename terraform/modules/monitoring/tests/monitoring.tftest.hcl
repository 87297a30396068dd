# `terraform test` (Terraform >= 1.7) with a mocked AWS provider: the alarms of alarms.json, one per
# resource, named and dimensioned as s3stagger.definitions.alarms.expand names them.

mock_provider "aws" {
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_resource "aws_cloudwatch_metric_alarm" {
    defaults = { arn = "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:mock" }
  }
}

variables {
  queues             = { high = "s3stagger-high", normal = "s3stagger-normal" }
  dead_letter_queues = { high = "s3stagger-high-dlq", normal = "s3stagger-normal-dlq", ingest-dlq = "s3stagger-ingest-dlq", alert-dlq = "s3stagger-alert-dlq" }
  event_rules        = { object-created-high = "s3stagger-object-created-high", object-unrouted = "s3stagger-object-unrouted" }
  processor = {
    function_name        = "s3stagger-processor"
    timeout_seconds      = 300
    reserved_concurrency = 40
  }
  state_machine_arn        = "arn:aws:states:eu-west-1:123456789012:stateMachine:s3stagger-dispatcher"
  notifier_function_name   = "s3stagger-notifier"
  autoscaler_function_name = "s3stagger-autoscaler"
}

run "makes_one_alarm_per_definition_and_resource" {
  command = apply

  assert {
    condition     = aws_cloudwatch_metric_alarm.this["s3stagger-autoscaler-errors"].dimensions.FunctionName == "s3stagger-autoscaler" && aws_cloudwatch_metric_alarm.this["s3stagger-autoscaler-errors"].metric_name == "Errors"
    error_message = "The autoscaler's errors are alarmed like every other function's."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.this["s3stagger-dlq-not-empty-alert-dlq"].dimensions.QueueName == "s3stagger-alert-dlq"
    error_message = "The alert DLQ must be alarmed like every DLQ."
  }

  assert {
    condition     = length([for name, alarm in aws_cloudwatch_metric_alarm.this : name if alarm.metric_name == "ApproximateNumberOfMessagesVisible" && alarm.threshold == 0]) == 4
    error_message = "Every DLQ (2 priorities, ingest, alert) needs a not-empty alarm."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.this["s3stagger-queue-oldest-message-age-normal"].datapoints_to_alarm == 15 && aws_cloudwatch_metric_alarm.this["s3stagger-queue-oldest-message-age-normal"].treat_missing_data == "notBreaching"
    error_message = "Datapoints and missing-data treatment must come from alarms.json."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.this["s3stagger-processor-duration-near-timeout"].threshold == 294000
    error_message = "The duration alarm must fire at 98 % of the 300 s timeout."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.this["s3stagger-processor-concurrency-near-limit"].threshold == 36
    error_message = "The concurrency alarm must fire at 90 % of the reserved concurrency."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.this["s3stagger-rule-failed-invocations-object-unrouted"].dimensions.RuleName == "s3stagger-object-unrouted"
    error_message = "Rule alarms must be labelled with the rule name without the prefix."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.this["s3stagger-processor-throttled-429"].namespace == "s3stagger" && aws_cloudwatch_metric_alarm.this["s3stagger-processor-throttled-429"].dimensions.service == "s3stagger-processor"
    error_message = "EMF alarms must watch the processor's namespace and Powertools service dimension."
  }

  assert {
    condition     = alltrue([for alarm in aws_cloudwatch_metric_alarm.this : length(alarm.alarm_actions) == 0 && strcontains(alarm.alarm_description, "Runbook: docs/runbooks/")])
    error_message = "By default alarms have no action (EventBridge carries state changes) and name their runbook."
  }

  assert {
    condition     = length(jsondecode(aws_cloudwatch_dashboard.pipeline[0].dashboard_body).widgets) == 10
    error_message = "The dashboard must show the alarms and nine metric widgets."
  }

  assert {
    condition     = length([for alarm in aws_cloudwatch_metric_alarm.this : alarm if alarm.namespace == "AWS/Firehose"]) == 0
    error_message = "Without delivery streams there are no Firehose alarms."
  }
}

run "leaves_out_alarms_the_deployment_cannot_have" {
  command = plan

  variables {
    processor = {
      function_name   = "s3stagger-processor"
      timeout_seconds = 60
    }
    notifier_function_name   = null
    autoscaler_function_name = null
    dashboard_enabled        = false
    threshold_overrides      = { queue-backlog = 20000 }
    alarm_actions            = ["arn:aws:sns:eu-west-1:123456789012:pager"]
    runbook_base_url         = "https://git.example.com/team/s3stagger/-/blob/main/"
  }

  assert {
    condition     = !contains(keys(output.alarms), "s3stagger-notifier-errors") && !contains(keys(output.alarms), "s3stagger-autoscaler-errors") && !contains(keys(output.alarms), "s3stagger-processor-concurrency-near-limit")
    error_message = "No notifier alarm without a notifier, no concurrency alarm without reserved concurrency."
  }

  assert {
    condition     = output.alarms["s3stagger-queue-backlog-high"].threshold == 20000 && output.alarms["s3stagger-processor-duration-near-timeout"].threshold == 58800
    error_message = "threshold_overrides must replace the shared threshold; relative ones follow the timeout."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.this["s3stagger-dlq-not-empty-high"].alarm_actions == toset(["arn:aws:sns:eu-west-1:123456789012:pager"])
    error_message = "alarm_actions must reach every alarm."
  }

  assert {
    condition     = endswith(aws_cloudwatch_metric_alarm.this["s3stagger-dlq-not-empty-high"].alarm_description, "https://git.example.com/team/s3stagger/-/blob/main/docs/runbooks/dlq-not-empty.md")
    error_message = "The runbook link must be absolute when runbook_base_url is set."
  }

  assert {
    condition     = length(aws_cloudwatch_dashboard.pipeline) == 0 && output.dashboard_name == null
    error_message = "dashboard_enabled = false must create no dashboard."
  }
}

run "alarms_the_delivery_streams_that_are_deployed" {
  command = plan

  variables {
    delivery_streams = { splunk = "s3stagger-splunk-logs" }
  }

  assert {
    condition     = toset([for name, alarm in output.alarms : name if alarm.namespace == "AWS/Firehose"]) == toset(["s3stagger-firehose-splunk-delivery-splunk", "s3stagger-firehose-throttled-splunk"])
    error_message = "Only the Splunk stream is deployed: its delivery and throttling alarms, no Dynatrace one."
  }

  assert {
    condition     = output.alarms["s3stagger-firehose-splunk-delivery-splunk"].dimensions.DeliveryStreamName == "s3stagger-splunk-logs" && output.alarms["s3stagger-firehose-splunk-delivery-splunk"].treat_missing_data == "breaching"
    error_message = "The Splunk delivery alarm must watch the stream by name and treat silence as failure."
  }
}

run "refuses_an_override_of_an_unknown_alarm" {
  command = plan

  variables {
    threshold_overrides = { queue-depth = 10 }
  }

  expect_failures = [aws_cloudwatch_metric_alarm.this]
}
