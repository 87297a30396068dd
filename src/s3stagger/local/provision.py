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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from s3stagger import definitions
from s3stagger.domain.stagger import StaggerPolicy
from s3stagger.local.templates import render_definition_json

STATE_MACHINE_TYPES = ("EXPRESS", "STANDARD")
EXPRESS_MAX_TIME_BUDGET_S = 270
"""An Express execution lasts at most 300 s; the rest is for its last calls to end."""

ClientFactory = Callable[[str], Any]
"""``service_name -> boto3 client`` (e.g. ``LocalPipeline.client``)."""


class ProvisionError(ValueError):
    """The definitions or the overrides are inconsistent; the message says what to change."""


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
    queue_urls: Mapping[str, str]
    dlq_urls: Mapping[str, str]
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

    @property
    def high_queue_url(self) -> str:
        return self.queue_urls["high"]

    @property
    def normal_queue_url(self) -> str:
        return self.queue_urls["normal"]

    @property
    def high_dlq_url(self) -> str:
        return self.dlq_urls["high"]

    @property
    def normal_dlq_url(self) -> str:
        return self.dlq_urls["normal"]

    def key_prefix(self, priority: str) -> str:
        """The key prefix that routes an upload to ``priority``'s queue."""
        for route in definitions.read_json("event_rules.json")["routes"]:
            if route["priority"] == priority:
                return str(route["key_prefix"])
        raise ProvisionError(f"no route for priority {priority!r}")

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["queue_urls"] = dict(self.queue_urls)
        data["dlq_urls"] = dict(self.dlq_urls)
        data["priorities"] = list(self.priorities)
        data["rule_names"] = list(self.rule_names)
        return data


@dataclass(frozen=True)
class ProvisionSettings:
    """What a deployment names, plus explicit overrides of definition settings."""

    downstream_url: str
    name_prefix: str = "s3stagger"
    concurrency_budget: int | None = None
    """Value written to the budget parameter; default: ``budget.json`` ``default``."""
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


@dataclass(frozen=True)
class Definitions:
    """The definition files, with a deployment's overrides applied."""

    queues: dict[str, Any]
    event_rules: dict[str, Any]
    dispatcher: dict[str, Any]
    processor: dict[str, Any]
    budget: dict[str, Any]
    storage: dict[str, Any]

    @classmethod
    def load(cls, settings: ProvisionSettings) -> Definitions:
        queues = definitions.read_json("queues.json")
        dispatcher = definitions.read_json("dispatcher.json")
        processor = definitions.read_json("processor.json")
        unknown = sorted(set(settings.dispatcher) - set(dispatcher))
        if unknown:
            raise ProvisionError(f"unknown dispatcher setting(s) {', '.join(unknown)}; see dispatcher.json")
        dispatcher.update(settings.dispatcher)
        if settings.stagger is not None:
            dispatcher["stagger"] = dict(settings.stagger)
        if settings.dispatcher_type is not None:
            dispatcher["state_machine_type"] = settings.dispatcher_type
        if settings.max_receive_count is not None:
            queues["queue"]["max_receive_count"] = settings.max_receive_count
        if settings.visibility_timeout_s is not None:
            queues["queue"]["visibility_timeout_s"] = settings.visibility_timeout_s
        if settings.processor_timeout_s is not None:
            processor["timeout_s"] = settings.processor_timeout_s
        if settings.processor_reserved_concurrency is not None:
            processor["reserved_concurrency"] = settings.processor_reserved_concurrency
        if settings.processor_handler is not None:
            processor["handler"] = settings.processor_handler
        loaded = cls(
            queues=queues,
            event_rules=definitions.read_json("event_rules.json"),
            dispatcher=dispatcher,
            processor=processor,
            budget=definitions.read_json("budget.json"),
            storage=definitions.read_json("storage.json"),
        )
        loaded.validate()
        return loaded

    def stagger_policy(self) -> StaggerPolicy:
        return StaggerPolicy.from_definition(self.dispatcher["stagger"])

    def validate(self) -> None:
        """Check the cross-file rules a deployment relies on."""
        priorities = list(self.queues["priorities"])
        routed = [route["priority"] for route in self.event_rules["routes"]]
        if sorted(routed) != sorted(priorities):
            raise ProvisionError(
                f"event_rules.json routes {routed} must cover queues.json priorities {priorities}"
            )
        policy = self.stagger_policy()
        missing = sorted(set(priorities) - set(policy.priorities))
        if missing:
            raise ProvisionError(f"dispatcher.json stagger lacks priorities {missing}")
        timeout = int(self.processor["timeout_s"])
        if int(self.dispatcher["visibility_extension_s"]) <= timeout:
            raise ProvisionError(
                f"dispatcher visibility_extension_s={self.dispatcher['visibility_extension_s']} must exceed "
                f"the processor timeout_s={timeout}, or a message reappears while it is being processed"
            )
        if int(self.queues["queue"]["visibility_timeout_s"]) < timeout:
            raise ProvisionError(
                f"queues.json visibility_timeout_s={self.queues['queue']['visibility_timeout_s']} must be at "
                f"least the processor timeout_s={timeout} (a consumer without the dispatcher's extensions)"
            )
        self._validate_dispatcher_execution(policy)
        if int(self.queues["dlq"]["message_retention_s"]) <= int(self.queues["queue"]["message_retention_s"]):
            raise ProvisionError("queues.json: a DLQ must retain messages longer than its source queue")
        budget = self.budget
        if not 1 <= budget["minimum"] <= budget["default"] <= budget["maximum"] <= 40:
            raise ProvisionError(
                "budget.json: need 1 <= minimum <= default <= maximum <= 40 (inline Map limit)"
            )

    def _validate_dispatcher_execution(self, policy: StaggerPolicy) -> None:
        dispatcher = self.dispatcher
        kind = self.state_machine_type
        if kind not in STATE_MACHINE_TYPES:
            raise ProvisionError(f"dispatcher state_machine_type={kind!r} must be EXPRESS or STANDARD")
        budget_s = int(dispatcher["time_budget_s"])
        if budget_s < 1 or (kind == "EXPRESS" and budget_s > EXPRESS_MAX_TIME_BUDGET_S):
            raise ProvisionError(
                f"dispatcher time_budget_s={budget_s} must be >= 1, and <= {EXPRESS_MAX_TIME_BUDGET_S} for "
                "EXPRESS (an execution lasts at most 300 s; the rest is for its last calls to end)"
            )
        if self.max_calls_per_slot < 1:
            raise ProvisionError(f"dispatcher max_calls_per_slot for {kind} must be >= 1")
        longest_delay = max(spacing.max_delay_s for spacing in policy.priorities.values())
        needed = budget_s + int(dispatcher["visibility_extension_s"]) + longest_delay
        if int(dispatcher["lease_s"]) < needed:
            raise ProvisionError(
                f"dispatcher lease_s={dispatcher['lease_s']} must be >= time_budget_s + "
                f"visibility_extension_s + the longest stagger delay ({needed}), or the lease lapses "
                "while its execution runs"
            )

    @property
    def state_machine_type(self) -> str:
        return str(self.dispatcher["state_machine_type"])

    @property
    def max_calls_per_slot(self) -> int:
        """``max_calls_per_slot`` of the state machine type (a plain number overrides both)."""
        value = self.dispatcher["max_calls_per_slot"]
        return int(value[self.state_machine_type] if isinstance(value, Mapping) else value)

    def dispatcher_template_values(self, names: ResourceNames) -> dict[str, object]:
        """The values of every placeholder in ``dispatcher.asl.json``."""
        dispatcher = self.dispatcher
        values: dict[str, object] = {
            "processor_function_arn": names.function_arn,
            "lease_queue_url": names.lease_queue_url,
            "budget_parameter_name": names.budget_parameter,
            "budget_default": self.budget["default"],
            "budget_minimum": self.budget["minimum"],
            "budget_maximum": self.budget["maximum"],
            "event_bus_name": dispatcher["event_bus_name"],
            "event_source": dispatcher["event_source"],
            "stagger_backlog_depth": dispatcher["stagger"]["backlog_depth"],
            "max_calls_per_slot": self.max_calls_per_slot,
        }
        for key in (
            "receive_claim_s",
            "visibility_extension_s",
            "failure_retry_delay_s",
            "lease_s",
            "time_budget_s",
            "max_partials_per_object",
            "idle_polls",
            "idle_wait_s",
        ):
            values[key] = dispatcher[key]
        # One value per priority, in queues.json order (first = highest), joined with commas: the ASL
        # splits them (States.StringSplit / States.StringToJson), so any number of priorities works.
        priorities = list(self.queues["priorities"])
        spacing = dispatcher["stagger"]["priorities"]
        values["queue_urls"] = ",".join(names.queue_urls[p] for p in priorities)
        values["stagger_spacing_s"] = ",".join(str(spacing[p]["spacing_s"]) for p in priorities)
        values["stagger_max_delay_s"] = ",".join(str(spacing[p]["max_delay_s"]) for p in priorities)
        return values


def key_wildcard(route: Mapping[str, Any], object_suffix: str) -> str:
    """The EventBridge wildcard of a route: ``<key_prefix>*<object_suffix>``."""
    return f"{route['key_prefix']}*{object_suffix}"


def routed_event_pattern(bucket: str, route: Mapping[str, Any], object_suffix: str) -> Any:
    return render_definition_json(
        "event_pattern.json", {"bucket_name": bucket, "key_wildcard": key_wildcard(route, object_suffix)}
    )


def unrouted_event_pattern(bucket: str, routes: list[Mapping[str, Any]], object_suffix: str) -> Any:
    values: dict[str, object] = {"bucket_name": bucket}
    for route in routes:
        values[f"{route['priority']}_key_wildcard"] = key_wildcard(route, object_suffix)
    return render_definition_json("event_pattern_unrouted.json", values)


def _placeholder_code_zip() -> bytes:
    """Lambda needs a code package; in-process the handler is imported from this environment."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "s3stagger local mode runs the handler from the installed package.\n")
    return buffer.getvalue()


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
        self.definitions = Definitions.load(settings)

    def provision(self) -> ResourceNames:
        prefix = self.settings.name_prefix
        d = self.definitions
        account_id = str(self.client("sts").get_caller_identity()["Account"])
        bucket = f"{prefix}-{d.storage['uploads_bucket_suffix']}"
        failed_rows_bucket = f"{prefix}-{d.storage['failed_rows_bucket_suffix']}"
        self._create_bucket(bucket, notifications=True)
        self._create_bucket(failed_rows_bucket, notifications=False)

        ingest_dlq_url = self._create_queue(
            f"{prefix}-{d.queues['ingest_dlq']['name_suffix']}", d.queues["ingest_dlq"], redrive_to=None
        )
        queue_urls: dict[str, str] = {}
        dlq_urls: dict[str, str] = {}
        for priority in d.queues["priorities"]:
            dlq_urls[priority] = self._create_queue(
                f"{prefix}-{priority}-dlq", d.queues["dlq"], redrive_to=None
            )
            queue_urls[priority] = self._create_queue(
                f"{prefix}-{priority}", d.queues["queue"], redrive_to=self._queue_arn(dlq_urls[priority])
            )
        lease_queue_url = self._create_lease_queue(f"{prefix}-{d.queues['lease_queue']['name_suffix']}")
        rule_names = self._create_rules(prefix, bucket, queue_urls, ingest_dlq_url)

        function_name = f"{prefix}-{d.processor['function_name_suffix']}"
        function_arn = self._create_function(prefix, function_name, failed_rows_bucket)
        budget_parameter = f"/{prefix}/{d.budget['parameter_name_suffix']}"
        budget = self.settings.concurrency_budget or d.budget["default"]
        self.client("ssm").put_parameter(
            Name=budget_parameter,
            Value=str(budget),
            Type="String",
            Overwrite=True,
            Description="s3stagger concurrency budget: objects processed at once (the autoscaler sets it)",
        )
        state_machine_name = f"{prefix}-{d.dispatcher['state_machine_name_suffix']}"
        names = ResourceNames(
            name_prefix=prefix,
            region=self.region,
            account_id=account_id,
            bucket=bucket,
            failed_rows_bucket=failed_rows_bucket,
            failed_rows_prefix=d.storage["failed_rows_prefix"],
            priorities=tuple(d.queues["priorities"]),
            queue_urls=queue_urls,
            dlq_urls=dlq_urls,
            ingest_dlq_url=ingest_dlq_url,
            lease_queue_url=lease_queue_url,
            rule_names=tuple(rule_names),
            state_machine_name=state_machine_name,
            state_machine_arn="",
            function_name=function_name,
            function_arn=function_arn,
            budget_parameter=budget_parameter,
            schedule_name=f"{prefix}-{d.dispatcher['schedule_name_suffix']}",
        )
        definition = render_definition_json("dispatcher.asl.json", d.dispatcher_template_values(names))
        state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=state_machine_name,
            definition=json.dumps(definition),
            roleArn=self._role(f"{prefix}-dispatcher", "states"),
            type=d.state_machine_type,
        )["stateMachineArn"]
        return ResourceNames(
            **{
                **names.__dict__,
                "state_machine_arn": state_machine_arn,
                "state_machine_type": d.state_machine_type,
            }
        )

    # -- pieces -----------------------------------------------------------------------------------
    def _create_bucket(self, bucket: str, *, notifications: bool) -> None:
        s3 = self.client("s3")
        if self.region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
        if notifications:
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )

    def _create_lease_queue(self, name: str) -> str:
        spec = self.definitions.queues["lease_queue"]
        url = self._create_queue(name, spec, redrive_to=None, fifo=True)
        self.client("sqs").send_message(
            QueueUrl=url,
            MessageBody=LEASE_MESSAGE_BODY,
            MessageGroupId=LEASE_GROUP,
            MessageDeduplicationId="provisioned",
        )
        return url

    def _create_queue(
        self, name: str, spec: Mapping[str, Any], redrive_to: str | None, *, fifo: bool = False
    ) -> str:
        attributes = {"MessageRetentionPeriod": str(spec["message_retention_s"])}
        if fifo:
            attributes["FifoQueue"] = "true"
        if "visibility_timeout_s" in spec:
            attributes["VisibilityTimeout"] = str(spec["visibility_timeout_s"])
        if "receive_wait_time_s" in spec:
            attributes["ReceiveMessageWaitTimeSeconds"] = str(spec["receive_wait_time_s"])
        if spec.get("sqs_managed_sse"):
            attributes["SqsManagedSseEnabled"] = "true"
        if redrive_to is not None:
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": redrive_to, "maxReceiveCount": int(spec["max_receive_count"])}
            )
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
        rules = self.definitions.event_rules
        retry = {
            "MaximumRetryAttempts": int(rules["target_retry_policy"]["maximum_retry_attempts"]),
            "MaximumEventAgeInSeconds": int(rules["target_retry_policy"]["maximum_event_age_s"]),
        }
        dead_letter = {"Arn": self._queue_arn(ingest_dlq_url)}
        suffix = rules["object_suffix"]
        plan: list[tuple[str, Any, str, str]] = []
        for route in rules["routes"]:
            plan.append(
                (
                    f"{prefix}-object-created-{route['priority']}",
                    routed_event_pattern(bucket, route, suffix),
                    queue_urls[route["priority"]],
                    f"{route['priority'].capitalize()} priority: {route['key_prefix']}*{suffix} objects",
                )
            )
        plan.append(
            (
                f"{prefix}-object-unrouted",
                unrouted_event_pattern(bucket, rules["routes"], suffix),
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
                        "Id": "queue",
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
        environment = {str(k): str(v) for k, v in spec["environment"].items()}
        environment.update(
            {
                "S3STAGGER_DOWNSTREAM_URL": self.settings.downstream_url,
                "S3STAGGER_FAILED_ROWS_BUCKET": failed_rows_bucket,
                "S3STAGGER_FAILED_ROWS_PREFIX": self.definitions.storage["failed_rows_prefix"],
            }
        )
        environment.update(self.settings.processor_environment)
        lam = self.client("lambda")
        created = lam.create_function(
            FunctionName=function_name,
            Runtime=spec["runtime"],
            Role=self._role(f"{prefix}-processor", "lambda"),
            Handler=spec["handler"],
            Code={"ZipFile": _placeholder_code_zip()},
            Timeout=int(spec["timeout_s"]),
            MemorySize=int(spec["memory_mb"]),
            Architectures=[spec["architecture"]],
            Environment={"Variables": environment},
        )
        if spec.get("reserved_concurrency") is not None:
            lam.put_function_concurrency(
                FunctionName=function_name, ReservedConcurrentExecutions=int(spec["reserved_concurrency"])
            )
        return str(created["FunctionArn"])
