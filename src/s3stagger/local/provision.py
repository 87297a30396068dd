"""Provisioning of the whole pattern from ``definitions/`` — the resources Terraform deploys.

Every name and setting comes from the definition files; :class:`ProvisionSettings` only names
the deployment (prefix, downstream URL) and carries explicit overrides a local run may want
(shorter timeouts so tests and demos do not wait minutes). Clients are passed in, so the same code
provisions the embedded emulator or any endpoint that speaks the AWS APIs.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from s3stagger.definitions.autoscaler import AutoscalerDefinition
from s3stagger.definitions.model import (
    DEFAULT_NAME_PREFIX,
    DeadLetterSettings,
    DefinitionError,
    Definitions,
    NamedQueueSettings,
    QueueSettings,
    require_queue_urls,
)
from s3stagger.local.templates import json_string_list_items, render_definition_json

ClientFactory = Callable[[str], Any]
"""``service_name -> boto3 client`` (e.g. ``LocalPipeline.client``)."""


@dataclass(frozen=True)
class ResourceNames:
    """Names, URLs and ARNs of everything provisioned (what ``s3stagger local up`` prints)."""

    name_prefix: str
    region: str
    account_id: str
    bucket: str
    failed_rows_bucket: str
    failed_rows_prefix: str
    priorities: tuple[str, ...]
    """In the order the dispatcher serves them (first = highest), as ``queues.json`` lists them."""
    queue_urls: Mapping[str, str]
    """Priority -> URL of its queue, in priority order."""
    dlq_urls: Mapping[str, str]
    """Priority -> URL of its queue's DLQ, in priority order."""
    key_prefixes: Mapping[str, str]
    """Priority -> the key prefix whose uploads are routed to its queue."""
    ingest_dlq_url: str
    lease_queue_url: str
    rule_names: tuple[str, ...]
    state_machine_name: str
    state_machine_arn: str
    function_name: str
    function_arn: str
    budget_parameter: str
    schedule_name: str
    state_machine_type: str = "STANDARD"
    flight_parameter: str = ""
    """The autoscaler's flight parameter (``autoscaler.json``): rows in flight per object and its state."""

    def key_prefix(self, priority: str) -> str:
        """The key prefix that routes an upload to ``priority``'s queue."""
        if priority not in self.key_prefixes:
            raise DefinitionError(
                f"no route for priority {priority!r}; the priorities are {list(self.priorities)}"
            )
        return self.key_prefixes[priority]

    @property
    def all_dlq_urls(self) -> tuple[str, ...]:
        """Every dead-letter queue: each priority's, then the ingest DLQ."""
        return (*self.dlq_urls.values(), self.ingest_dlq_url)

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        for name in ("queue_urls", "dlq_urls", "key_prefixes"):
            data[name] = dict(data[name])
        data["priorities"] = list(self.priorities)
        data["rule_names"] = list(self.rule_names)
        return data


@dataclass(frozen=True)
class ProvisionSettings:
    """What a deployment names, plus explicit overrides of definition settings."""

    downstream_url: str
    name_prefix: str = DEFAULT_NAME_PREFIX
    concurrency_budget: int | None = None
    """The initial budget (``budget.json`` ``default``: written to the parameter, the dispatcher's
    fallback), as Terraform's ``concurrency_budget.initial``."""
    processor_timeout_s: int | None = None
    processor_reserved_concurrency: int | None = None
    processor_environment: Mapping[str, str] = field(default_factory=dict)
    """Extra ``S3STAGGER_*`` variables for the processor, over ``processor.json``'s."""
    processor_handler: str | None = None
    """Import path of the processor handler; default ``processor.json`` ``handler``."""
    max_receive_count: int | None = None
    visibility_timeout_s: int | None = None
    dispatcher: Mapping[str, Any] = field(default_factory=dict)
    """Overrides of top-level ``dispatcher.json`` keys (e.g. ``failure_retry_delay_s``)."""
    stagger: Mapping[str, Any] | None = None
    """Replaces ``dispatcher.json`` ``stagger``."""
    dispatcher_type: str | None = None
    """``EXPRESS`` or ``STANDARD``; default ``dispatcher.json`` ``state_machine_type``."""

    def definition_overrides(self) -> dict[str, dict[str, Any]]:
        """These settings as :meth:`Definitions.load` overrides, by definition file."""
        queue = {
            "max_receive_count": self.max_receive_count,
            "visibility_timeout_s": self.visibility_timeout_s,
        }
        processor = {
            "timeout_s": self.processor_timeout_s,
            "reserved_concurrency": self.processor_reserved_concurrency,
            "handler": self.processor_handler,
        }
        dispatcher = dict(self.dispatcher)
        if self.stagger is not None:
            dispatcher["stagger"] = self.stagger
        if self.dispatcher_type is not None:
            dispatcher["state_machine_type"] = self.dispatcher_type
        return {
            "queues.json": {"queue": _set(queue)} if _set(queue) else {},
            "processor.json": _set(processor),
            "dispatcher.json": dispatcher,
            "budget.json": _set({"default": self.concurrency_budget}),
        }

    def load_definitions(self) -> Definitions:
        """The definitions with these overrides, validated for this name prefix."""
        return Definitions.load(self.definition_overrides(), name_prefix=self.name_prefix)


def _set(values: Mapping[str, object]) -> dict[str, object]:
    return {key: value for key, value in values.items() if value is not None}


def dispatcher_template_values(d: Definitions, names: ResourceNames) -> dict[str, object]:
    """The values of every placeholder in ``dispatcher.asl.json``."""
    require_queue_urls(d, names.queue_urls)
    dispatcher = d.dispatcher
    values: dict[str, object] = {
        "processor_function_arn": names.function_arn,
        "lease_queue_url": names.lease_queue_url,
        "budget_parameter_name": names.budget_parameter,
        "budget_default": d.budget.default,
        "budget_minimum": d.budget.minimum,
        "budget_maximum": d.budget.maximum,
        "event_bus_name": dispatcher.event_bus_name,
        "event_source": dispatcher.event_source,
        "stagger_backlog_depth": dispatcher.stagger.backlog_depth,
        "receive_claim_s": dispatcher.receive_claim_s,
        "failure_retry_delay_s": dispatcher.failure_retry_delay_s,
        "lease_s": dispatcher.lease_s,
        "time_budget_s": dispatcher.time_budget_s,
        "max_calls_per_slot": dispatcher.calls_per_slot,
        "max_partials_per_object": dispatcher.max_partials_per_object,
        "idle_polls": dispatcher.idle_polls,
        "idle_wait_s": dispatcher.idle_wait_s,
    }
    # One value per priority, in queues.json order (first = highest), joined with ",": the ASL
    # splits them (States.StringSplit, States.StringToJson), so any number of priorities works.
    spacings = [dispatcher.stagger.priorities[priority] for priority in d.priorities]
    values["queue_urls"] = ",".join(names.queue_urls[priority] for priority in d.priorities)
    values["stagger_spacing_s"] = ",".join(str(spacing.spacing_s) for spacing in spacings)
    values["stagger_max_delay_s"] = ",".join(str(spacing.max_delay_s) for spacing in spacings)
    return values


def routed_event_pattern(bucket: str, key_wildcard: str) -> Any:
    """The pattern of a route's rule (``event_pattern.json``)."""
    return render_definition_json("event_pattern.json", {"bucket_name": bucket, "key_wildcard": key_wildcard})


def unrouted_event_pattern(bucket: str, key_wildcards: Sequence[str]) -> Any:
    """The pattern of the unrouted rule: every key none of ``key_wildcards`` matches."""
    return render_definition_json(
        "event_pattern_unrouted.json",
        {"bucket_name": bucket, "key_wildcards": json_string_list_items(key_wildcards)},
    )


def _placeholder_code_zip() -> bytes:
    """Lambda needs a code package; in-process the handler is imported from this environment."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "s3stagger local mode runs the handler from the installed package.\n")
    return buffer.getvalue()


MAXIMUM_MESSAGE_SIZE = 262_144
"""Of every queue: the AWS provider's ``aws_sqs_queue`` ``max_message_size`` default, which the
modules keep (an emulator's own default differs)."""
PROCESSOR_LOG_LEVEL = "INFO"
"""``POWERTOOLS_LOG_LEVEL`` of the processor: the staggered-dispatcher module's ``processor.log_level``
default."""
LEASE_MESSAGE_BODY = "dispatcher lease"
LEASE_GROUP = "dispatcher"

_TRUST = {
    "lambda": "lambda.amazonaws.com",
    "states": "states.amazonaws.com",
}


class Provisioner:
    """Creates the resources of one deployment with the clients ``client`` returns."""

    def __init__(self, client: ClientFactory, settings: ProvisionSettings, region: str) -> None:
        self.client = client
        self.settings = settings
        self.region = region
        self.definitions = settings.load_definitions()

    def provision(self) -> ResourceNames:
        prefix = self.settings.name_prefix
        d = self.definitions
        account_id = str(self.client("sts").get_caller_identity()["Account"])
        buckets = d.bucket_names(prefix)
        self._create_bucket(buckets["uploads"], notifications=True)
        self._create_bucket(buckets["failed_rows"], notifications=False)

        queues = d.queues
        ingest_dlq_url = self._create_queue(f"{prefix}-{queues.ingest_dlq.name_suffix}", queues.ingest_dlq)
        queue_urls: dict[str, str] = {}
        dlq_urls: dict[str, str] = {}
        for priority in d.priorities:
            # only its own queue may move messages into a DLQ (StartMessageMoveTask redrive), as the
            # event-ingest module's aws_sqs_queue_redrive_allow_policy; set at creation, since moto
            # forgets a queue's Policy when another attribute is set on its own
            source_arn = f"arn:aws:sqs:{self.region}:{account_id}:{prefix}-{priority}"
            redrive_allow = {"redrivePermission": "byQueue", "sourceQueueArns": [source_arn]}
            dlq_urls[priority] = self._create_queue(
                f"{prefix}-{priority}-dlq", queues.dlq, RedriveAllowPolicy=json.dumps(redrive_allow)
            )
            redrive = {
                "deadLetterTargetArn": self._queue_arn(dlq_urls[priority]),
                "maxReceiveCount": queues.queue.max_receive_count,
            }
            queue_urls[priority] = self._create_queue(
                f"{prefix}-{priority}",
                queues.queue,
                VisibilityTimeout=str(queues.queue.visibility_timeout_s),
                ReceiveMessageWaitTimeSeconds=str(queues.queue.receive_wait_time_s),
                RedrivePolicy=json.dumps(redrive),
            )
        lease_queue_url = self._create_lease_queue(f"{prefix}-{queues.lease_queue.name_suffix}")
        rule_names = self._create_rules(prefix, buckets["uploads"], queue_urls, ingest_dlq_url)

        function_name = f"{prefix}-{d.processor.function_name_suffix}"
        function_arn = self._create_function(prefix, function_name, buckets["failed_rows"])
        budget_parameter = f"/{prefix}/{d.budget.parameter_name_suffix}"
        self.client("ssm").put_parameter(
            Name=budget_parameter,
            Value=str(d.budget.default),
            Type="String",
            Overwrite=True,
            Description="s3stagger concurrency budget: objects processed at once (the autoscaler sets it)",
        )
        flight_parameter = f"/{prefix}/{AutoscalerDefinition.load().flight_parameter_suffix}"
        self.client("ssm").put_parameter(
            Name=flight_parameter,
            Value="{}",
            Type="String",
            Overwrite=True,
            Description="s3stagger rows in flight per object and the autoscaler's state",
        )
        state_machine_name = f"{prefix}-{d.dispatcher.state_machine_name_suffix}"
        names = ResourceNames(
            name_prefix=prefix,
            region=self.region,
            account_id=account_id,
            bucket=buckets["uploads"],
            failed_rows_bucket=buckets["failed_rows"],
            failed_rows_prefix=d.storage.failed_rows_prefix,
            priorities=d.priorities,
            queue_urls=queue_urls,
            dlq_urls=dlq_urls,
            key_prefixes={priority: d.event_rules.key_prefix(priority) for priority in d.priorities},
            ingest_dlq_url=ingest_dlq_url,
            lease_queue_url=lease_queue_url,
            rule_names=tuple(rule_names),
            state_machine_name=state_machine_name,
            state_machine_arn="",
            function_name=function_name,
            function_arn=function_arn,
            budget_parameter=budget_parameter,
            schedule_name=f"{prefix}-{d.dispatcher.schedule_name_suffix}",
            flight_parameter=flight_parameter,
        )
        definition = render_definition_json("dispatcher.asl.json", dispatcher_template_values(d, names))
        state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=state_machine_name,
            definition=json.dumps(definition),
            roleArn=self._role(f"{prefix}-dispatcher", "states"),
            type=d.dispatcher.state_machine_type,
        )["stateMachineArn"]
        return replace(
            names, state_machine_arn=state_machine_arn, state_machine_type=d.dispatcher.state_machine_type
        )

    # -- pieces -----------------------------------------------------------------------------------
    def _create_bucket(self, bucket: str, *, notifications: bool) -> None:
        s3 = self.client("s3")
        if self.region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
        # versioned, as the event-ingest module makes them (events then carry the version id)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        if notifications:
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )

    def _create_lease_queue(self, name: str) -> str:
        url = self._create_queue(name, self.definitions.queues.lease_queue, FifoQueue="true")
        self.client("sqs").send_message(
            QueueUrl=url,
            MessageBody=LEASE_MESSAGE_BODY,
            MessageGroupId=LEASE_GROUP,
            MessageDeduplicationId="provisioned",
        )
        return url

    def _create_queue(
        self, name: str, settings: QueueSettings | DeadLetterSettings | NamedQueueSettings, **attributes: str
    ) -> str:
        """A queue EventBridge may deliver to; ``attributes`` beyond retention and encryption."""
        attributes["MessageRetentionPeriod"] = str(settings.message_retention_s)
        attributes["MaximumMessageSize"] = str(MAXIMUM_MESSAGE_SIZE)
        if settings.sqs_managed_sse:
            attributes["SqsManagedSseEnabled"] = "true"
        sqs = self.client("sqs")
        url = str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
        arn = self._queue_arn(url)
        policy = {
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
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
        return url

    def _queue_arn(self, url: str) -> str:
        attributes = self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def _create_rules(
        self, prefix: str, bucket: str, queue_urls: Mapping[str, str], ingest_dlq_url: str
    ) -> list[str]:
        events = self.client("events")
        retry_policy = self.definitions.event_rules.target_retry_policy
        retry = {
            "MaximumRetryAttempts": retry_policy.maximum_retry_attempts,
            "MaximumEventAgeInSeconds": retry_policy.maximum_event_age_s,
        }
        dead_letter = {"Arn": self._queue_arn(ingest_dlq_url)}
        wildcards = self.definitions.key_wildcards()
        plan: list[tuple[str, Any, str, str]] = [
            (
                f"{prefix}-object-created-{priority}",
                routed_event_pattern(bucket, wildcard),
                queue_urls[priority],
                f"{priority.capitalize()} priority: {wildcard} objects",
            )
            for priority, wildcard in wildcards.items()
        ]
        plan.append(
            (
                f"{prefix}-object-unrouted",
                unrouted_event_pattern(bucket, list(wildcards.values())),
                ingest_dlq_url,
                "Objects no route matches: kept visible in the ingest DLQ",
            )
        )
        for rule_name, pattern, target_url, description in plan:
            events.put_rule(
                Name=rule_name, EventPattern=json.dumps(pattern), State="ENABLED", Description=description
            )
            events.put_targets(
                Rule=rule_name,
                Targets=[
                    {
                        "Id": target_url.rsplit("/", 1)[-1],  # the queue's name, as Terraform's target_id
                        "Arn": self._queue_arn(target_url),
                        "RetryPolicy": retry,
                        "DeadLetterConfig": dead_letter,
                    }
                ],
            )
        return [name for name, *_ in plan]

    def _role(self, name: str, service: str) -> str:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": _TRUST[service]}, "Action": "sts:AssumeRole"}
            ],
        }
        iam = self.client("iam")
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])

    def _create_function(self, prefix: str, function_name: str, failed_rows_bucket: str) -> str:
        spec = self.definitions.processor
        environment = {**spec.environment, "POWERTOOLS_LOG_LEVEL": PROCESSOR_LOG_LEVEL}
        environment.update(
            {
                "S3STAGGER_DOWNSTREAM_URL": self.settings.downstream_url,
                "S3STAGGER_FAILED_ROWS_BUCKET": failed_rows_bucket,
                "S3STAGGER_FAILED_ROWS_PREFIX": self.definitions.storage.failed_rows_prefix,
            }
        )
        environment.update(self.settings.processor_environment)
        lam = self.client("lambda")
        created = lam.create_function(
            FunctionName=function_name,
            Runtime=spec.runtime,
            Role=self._role(f"{prefix}-processor", "lambda"),
            Handler=spec.handler,
            Code={"ZipFile": _placeholder_code_zip()},
            Timeout=spec.timeout_s,
            MemorySize=spec.memory_mb,
            Architectures=[spec.architecture],
            Environment={"Variables": environment},
        )
        if spec.reserved_concurrency is not None:
            lam.put_function_concurrency(
                FunctionName=function_name, ReservedConcurrentExecutions=spec.reserved_concurrency
            )
        return str(created["FunctionArn"])
