"""Alerting in local mode, for real: what ``terraform/modules/alerting`` and ``monitoring`` deploy.

:class:`LocalAlerting` provisions, from ``alerting.json`` and ``alarms.json``, on the emulator:
the alert queue and its DLQ, the SMTP secret, the notifier function, the four alert rules
(targets: the alert queue, DLQ: the alert DLQ) and every alarm (``PutMetricAlarm``); then starts

- the local central SMTP server (:mod:`s3stagger.local.smtp_server`, STARTTLS + AUTH, mbox),
- the local alarm evaluator (:mod:`s3stagger.local.alarm_evaluator`), which puts the AWS-shaped
  alarm and execution status-change events on the bus,
- the stand-in for the SQS event source mapping that drives the notifier
  (:mod:`s3stagger.local.alert_queue_poller`).

Local time is scaled: alarm periods and the digest interval are multiplied by ``time_scale``; the
notifier's timeout and the alert queue's visibility timeout are short, so a retry comes within
seconds instead of minutes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s3stagger.definitions.alarms import (
    ConcreteAlarm,
    expand,
    load_alarm_definitions,
    pipeline_alarm_resources,
)
from s3stagger.definitions.alerting import AlertingDefinition, load_alerting_definition
from s3stagger.definitions.model import Definitions
from s3stagger.local.alarm_evaluator import (
    DispatcherExecutionMetrics,
    EmfLogMetrics,
    LambdaRuntimeMetrics,
    LocalAlarmEvaluator,
    SqsQueueMetrics,
)
from s3stagger.local.alert_queue_poller import LocalSqsEventSourcePoller
from s3stagger.local.lambda_runtime import FunctionCounters
from s3stagger.local.lifecycle import LocalService
from s3stagger.local.mailbox_location import default_mailbox
from s3stagger.local.provision import (
    ClientFactory,
    ResourceNames,
    _placeholder_code_zip,
    unrouted_event_pattern,
)
from s3stagger.local.smtp_server import LocalSmtpServer
from s3stagger.local.templates import render_definition_json


@dataclass(frozen=True)
class LocalAlertingSettings:
    time_scale: float = 1 / 20
    """Multiplies alarm periods and the digest interval (1/20: a minute lasts 3 s)."""
    mailbox: Path | None = None
    """The mbox the SMTP server writes; default :func:`default_mailbox`."""
    digest_interval_s: float | None = None
    """Default: ``alerting.json`` ``digest_interval_s`` x ``time_scale``."""
    notifier_timeout_s: int = 30
    alert_visibility_timeout_s: int = 2
    """How long a failed alert waits before its retry (AWS: 6 x the notifier's timeout; locally
    short, which is safe because the one poller thread waits for each invocation)."""
    alert_max_receive_count: int | None = None
    smtp_port: int | None = None
    secret_password: str | None = None
    """Put this password in the SMTP secret instead of the server's (to see a refused login)."""
    tick_s: float | None = None
    emf_log: Path | None = None
    """A file the processor's output (EMF lines) goes to; its metrics feed the EMF alarms."""


@dataclass(frozen=True)
class AlertingNames:
    alert_queue_url: str
    alert_queue_arn: str
    alert_dlq_url: str
    notifier_function_name: str
    smtp_secret_name: str
    rule_names: tuple[str, ...]
    alarm_names: tuple[str, ...]
    mailbox: str
    time_scale: float

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "rule_names": list(self.rule_names), "alarm_names": list(self.alarm_names)}


class LocalAlerting(LocalService):
    def __init__(
        self,
        settings: LocalAlertingSettings,
        client: ClientFactory,
        pipeline: ResourceNames,
        counters: Callable[[str], FunctionCounters],
        definitions: Definitions,
        *,
        stand_in_client: ClientFactory | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.stand_in_client = stand_in_client or client
        """Clients of the alarm evaluator, CloudWatch's stand-in: AWS bills no request for what
        CloudWatch samples and the events it emits, so a cost count must not either."""
        self.pipeline = pipeline
        self.definition: AlertingDefinition = load_alerting_definition()
        self.smtp = LocalSmtpServer(settings.mailbox or default_mailbox(), port=settings.smtp_port)
        self._counters = counters
        self.pipeline_definitions = definitions
        self.names: AlertingNames | None = None
        self.alarms: tuple[ConcreteAlarm, ...] = ()
        self.evaluator: LocalAlarmEvaluator | None = None
        self.poller: LocalSqsEventSourcePoller | None = None

    def start(self) -> LocalAlerting:
        try:
            self.smtp.start()
            self.names = self.provision()
            self.evaluator = self._evaluator().start()
            names = self.names
            self.poller = LocalSqsEventSourcePoller(
                self.client("sqs"),
                self.client("lambda"),
                queue_url=names.alert_queue_url,
                queue_arn=names.alert_queue_arn,
                function_name=names.notifier_function_name,
                batch_size=int(self.definition.notifier["event_source_mapping"]["batch_size"]),
            ).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.evaluator is not None:
            self.evaluator.stop()
        if self.poller is not None:
            self.poller.stop()
        self.smtp.stop()

    # -- provisioning ---------------------------------------------------------------------------
    def provision(self) -> AlertingNames:
        d, prefix, s = self.definition, self.pipeline.name_prefix, self.settings
        sqs = self.client("sqs")
        dlq_url = self._queue(
            d.alert_dlq_name(prefix), {"MessageRetentionPeriod": str(d.alert_dlq["message_retention_s"])}
        )
        dlq_arn = self._queue_arn(dlq_url)
        max_receive = s.alert_max_receive_count or int(d.alert_queue["max_receive_count"])
        queue_url = self._queue(
            d.alert_queue_name(prefix),
            {
                "MessageRetentionPeriod": str(d.alert_queue["message_retention_s"]),
                "VisibilityTimeout": str(s.alert_visibility_timeout_s),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive}),
            },
        )
        queue_arn = self._queue_arn(queue_url)
        for url, arn in ((queue_url, queue_arn), (dlq_url, dlq_arn)):
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(_events_may_send(arn))})

        secret_name = d.smtp_secret_name(prefix)
        password = s.secret_password if s.secret_password is not None else self.smtp.password
        self.client("secretsmanager").create_secret(
            Name=secret_name,
            SecretString=json.dumps({"username": self.smtp.username, "password": password}),
            Description="SMTP user and password of the central relay (local: the local SMTP server)",
        )
        function_name = self._notifier(prefix, queue_url, secret_name)
        rule_names = self._rules(prefix, queue_arn, dlq_arn)

        resources = pipeline_alarm_resources(
            prefix,
            self.pipeline.state_machine_arn,
            alert_dlq_name=d.alert_dlq_name(prefix),
            notifier_function_name=function_name,
            alert_rule_names=rule_names,
        )
        self.alarms = expand(load_alarm_definitions(), resources)
        cloudwatch = self.client("cloudwatch")
        for alarm in self.alarms:
            cloudwatch.put_metric_alarm(**_metric_alarm(alarm, self._description(alarm)))
        return AlertingNames(
            alert_queue_url=queue_url,
            alert_queue_arn=queue_arn,
            alert_dlq_url=dlq_url,
            notifier_function_name=function_name,
            smtp_secret_name=secret_name,
            rule_names=rule_names,
            alarm_names=tuple(alarm.name for alarm in self.alarms),
            mailbox=str(self.smtp.mbox_path),
            time_scale=self.settings.time_scale,
        )

    def _description(self, alarm: ConcreteAlarm) -> str:
        return self.definition.alarm_description(alarm.summary, alarm.runbook)

    def _queue(self, name: str, attributes: dict[str, str]) -> str:
        attributes = {**attributes, "SqsManagedSseEnabled": "true"}
        return str(self.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])

    def _queue_arn(self, url: str) -> str:
        answer = self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(answer["Attributes"]["QueueArn"])

    def _notifier(self, prefix: str, queue_url: str, secret_name: str) -> str:
        d, s = self.definition, self.settings
        spec = d.notifier
        smtp = self.smtp.settings()
        interval = (
            s.digest_interval_s if s.digest_interval_s is not None else d.digest_interval_s * s.time_scale
        )
        environment = {k: str(v) for k, v in spec["environment"].items() if v is not None}
        environment.update(
            {
                "S3STAGGER_SMTP_HOST": smtp["host"],
                "S3STAGGER_SMTP_PORT": smtp["port"],
                "S3STAGGER_SMTP_SECURITY": smtp["security"],
                "S3STAGGER_SMTP_CA_FILE": smtp["ca_file"],
                "S3STAGGER_SMTP_TIMEOUT_S": str(d.smtp["timeout_s"]),
                "S3STAGGER_SMTP_FROM": str(d.smtp["from"]),
                "S3STAGGER_SMTP_TO": ",".join(d.smtp["to"]),
                "S3STAGGER_SMTP_SECRET_ID": secret_name,
                "S3STAGGER_ALERT_DIGEST_INTERVAL_S": f"{interval:g}",
                "S3STAGGER_ALERT_STATE_PATH": d.state_path(prefix),
                "S3STAGGER_ALERT_QUEUE_URL": queue_url,
            }
        )
        function_name = d.notifier_function_name(prefix)
        lam = self.client("lambda")
        role = self.client("iam").create_role(
            RoleName=function_name,
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        lam.create_function(
            FunctionName=function_name,
            Runtime=spec["runtime"],
            Role=role,
            Handler=spec["handler"],
            Code={"ZipFile": _placeholder_code_zip()},
            Timeout=s.notifier_timeout_s,
            MemorySize=int(spec["memory_mb"]),
            Architectures=[spec["architecture"]],
            Environment={"Variables": environment},
        )
        lam.put_function_concurrency(
            FunctionName=function_name, ReservedConcurrentExecutions=int(spec["reserved_concurrency"])
        )
        return function_name

    def _rules(self, prefix: str, queue_arn: str, dlq_arn: str) -> tuple[str, ...]:
        events = self.client("events")
        values: dict[str, object] = {
            "alarm_name_prefix": f"{prefix}-",
            "state_machine_arn": self.pipeline.state_machine_arn,
            "event_source": self.pipeline_definitions.dispatcher.event_source,
        }
        retry = self.pipeline_definitions.event_rules.target_retry_policy
        names: list[str] = []
        machine = self.client("stepfunctions").describe_state_machine(
            stateMachineArn=self.pipeline.state_machine_arn
        )
        standard = machine.get("type", "STANDARD") == "STANDARD"
        for rule in self.definition.rules:
            if rule.standard_only and not standard:
                continue  # Express workflows emit no status-change events; ExecutionsFailed covers them
            if rule.kind == "unrouted":
                wildcards = self.pipeline_definitions.key_wildcards().values()
                pattern = unrouted_event_pattern(self.pipeline.bucket, list(wildcards))
            else:
                pattern = render_definition_json(
                    rule.event_pattern_template, {k: values[k] for k in rule.placeholders}
                )
            name = f"{prefix}-{rule.name_suffix}"
            events.put_rule(
                Name=name, EventPattern=json.dumps(pattern), State="ENABLED", Description=rule.description
            )
            events.put_targets(
                Rule=name,
                Targets=[
                    {
                        "Id": "alert-queue",
                        "Arn": queue_arn,
                        "RetryPolicy": {
                            "MaximumRetryAttempts": retry.maximum_retry_attempts,
                            "MaximumEventAgeInSeconds": retry.maximum_event_age_s,
                        },
                        "DeadLetterConfig": {"Arn": dlq_arn},
                    }
                ],
            )
            names.append(name)
        return tuple(names)

    # -- running --------------------------------------------------------------------------------
    def _evaluator(self) -> LocalAlarmEvaluator:
        if self.names is None:
            raise RuntimeError("provision() first: the evaluator needs the alerting resources")
        sqs = self.stand_in_client("sqs")
        queue_urls = {
            url.rsplit("/", 1)[-1]: url
            for url in (
                *self.pipeline.queue_urls.values(),
                *self.pipeline.all_dlq_urls,
                self.names.alert_dlq_url,
            )
        }
        sfn = self.stand_in_client("stepfunctions")
        evaluator: LocalAlarmEvaluator

        def ended(execution: Mapping[str, Any]) -> None:
            evaluator.execution_ended(execution, sfn)

        evaluator = LocalAlarmEvaluator(
            self.alarms,
            [
                *([EmfLogMetrics(self.settings.emf_log)] if self.settings.emf_log else []),
                SqsQueueMetrics(sqs, queue_urls),
                LambdaRuntimeMetrics(
                    self._counters, [self.pipeline.function_name, self.names.notifier_function_name]
                ),
                DispatcherExecutionMetrics(sfn, self.pipeline.state_machine_arn, ended),
            ],
            cloudwatch=self.stand_in_client("cloudwatch"),
            events=self.stand_in_client("events"),
            region=self.pipeline.region,
            account_id=self.pipeline.account_id,
            description=self._description,
            time_scale=self.settings.time_scale,
            tick_s=self.settings.tick_s,
        )
        return evaluator


def _events_may_send(arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EventBridgeDelivers",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
            }
        ],
    }


def _metric_alarm(alarm: ConcreteAlarm, description: str) -> dict[str, Any]:
    request: dict[str, Any] = {
        "AlarmName": alarm.name,
        "AlarmDescription": description,
        "Namespace": alarm.namespace,
        "MetricName": alarm.metric_name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in alarm.dimensions.items()],
        "Period": alarm.period_s,
        "EvaluationPeriods": alarm.evaluation_periods,
        "DatapointsToAlarm": alarm.datapoints_to_alarm,
        "ComparisonOperator": alarm.comparison,
        "Threshold": alarm.threshold,
        "TreatMissingData": alarm.treat_missing_data,
        "ActionsEnabled": False,
    }
    if alarm.extended_statistic:
        request["ExtendedStatistic"] = alarm.statistic
    else:
        request["Statistic"] = alarm.statistic
    return request
