"""``s3stagger monitor``: a live view of queues, dispatcher executions and the processor function.

Each refresh reads, for every ``--queue`` (name or URL): visible, in-flight and delayed messages,
and the depth of its redrive DLQ; for ``--state-machine`` (name or ARN): a STANDARD machine's
running executions and executions failed, timed out or aborted (``ListExecutions``, bounded count),
or, for an EXPRESS machine (which ``ListExecutions`` does not serve), the ``AWS/States``
CloudWatch metrics over the last ``--window`` minutes (executions started, succeeded, failed,
timed out, aborted, throttled; the execution details are in its log group); for ``--function``: its reserved
concurrency and, from CloudWatch (``AWS/Lambda``), invocations, errors and throttles over the last
``--window`` minutes. A figure the service cannot give (e.g. no CloudWatch datapoints, as on the
emulator) is shown as "-", never invented.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Annotated, Any

import botocore.exceptions
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from s3stagger.cli.aws_clients import AwsSetupError, AwsTarget, error_code
from s3stagger.cli.console import fail
from s3stagger.cli.monitor_alarms import AlarmStatus, read_alarm_states, render_alarm_states
from s3stagger.errors import S3StaggerError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_stepfunctions import SFNClient

EXECUTION_COUNT_CAP = 1000
"""Executions counted per status at most (the count reads "1000+" beyond)."""


class MonitorTargetError(S3StaggerError, LookupError):
    """A monitored resource does not exist; the message names it."""


@dataclass(frozen=True)
class QueueStatus:
    """Depths of one queue and of its redrive DLQ."""

    name: str
    url: str
    visible: int
    in_flight: int
    delayed: int
    dlq_name: str | None
    dlq_visible: int | None
    max_receive_count: int | None


@dataclass(frozen=True)
class StateMachineStatus:
    """Executions of one state machine: counted (STANDARD) or from CloudWatch metrics (EXPRESS)."""

    name: str
    arn: str
    running: int | None
    """STANDARD: executions running now. EXPRESS: ``None`` (AWS does not list them)."""
    failed: float | None
    timed_out: float | None
    aborted: float | None
    capped: bool
    """True when a count reached :data:`EXECUTION_COUNT_CAP`."""
    type: str = "STANDARD"
    source: str = "ListExecutions"
    """Where the figures come from: ``ListExecutions`` (all time) or ``AWS/States`` (the window)."""
    started: float | None = None
    succeeded: float | None = None
    throttled: float | None = None
    """EXPRESS only: ``AWS/States`` sums over the window (``None``: no datapoint)."""


@dataclass(frozen=True)
class FunctionStatus:
    """The processor function: its concurrency limit and recent CloudWatch figures."""

    name: str
    reserved_concurrency: int | None
    window_minutes: int
    invocations: float | None
    errors: float | None
    throttles: float | None
    """``None``: CloudWatch has no datapoint for the window (or the metric is not available)."""


@dataclass(frozen=True)
class MonitorSnapshot:
    """One refresh of the monitor."""

    taken_at: str
    queues: tuple[QueueStatus, ...]
    state_machine: StateMachineStatus | None
    function: FunctionStatus | None
    alarms: tuple[AlarmStatus, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as a JSON-serialisable dict."""
        return asdict(self)


def _queue_url(sqs: SQSClient, queue: str) -> str:
    if queue.startswith(("http://", "https://")):
        return queue
    try:
        return sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    except botocore.exceptions.ClientError as error:
        if "NonExistentQueue" in error_code(error):
            raise MonitorTargetError(f"queue {queue!r} does not exist") from None
        raise


def _int_attribute(attributes: Mapping[QueueAttributeNameType, str], name: QueueAttributeNameType) -> int:
    return int(attributes.get(name, "0"))


def read_queue_status(sqs: SQSClient, queue: str) -> QueueStatus:
    """Depths of ``queue`` (name or URL) and of the DLQ named in its redrive policy."""
    url = _queue_url(sqs, queue)
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    except botocore.exceptions.ClientError as error:
        if "NonExistentQueue" in error_code(error):
            raise MonitorTargetError(f"queue {queue!r} does not exist") from None
        raise
    dlq_name: str | None = None
    dlq_visible: int | None = None
    max_receive_count: int | None = None
    redrive = attributes.get("RedrivePolicy")
    if redrive:
        policy = json.loads(redrive)
        dlq_arn = str(policy["deadLetterTargetArn"])
        max_receive_count = int(policy["maxReceiveCount"])
        dlq_name = dlq_arn.rsplit(":", 1)[-1]
        owner = dlq_arn.split(":")[4]
        dlq_url = sqs.get_queue_url(QueueName=dlq_name, QueueOwnerAWSAccountId=owner)["QueueUrl"]
        dlq_attributes = sqs.get_queue_attributes(
            QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        dlq_visible = _int_attribute(dlq_attributes, "ApproximateNumberOfMessages")
    return QueueStatus(
        name=attributes.get("QueueArn", url).rsplit(":", 1)[-1].rsplit("/", 1)[-1],
        url=url,
        visible=_int_attribute(attributes, "ApproximateNumberOfMessages"),
        in_flight=_int_attribute(attributes, "ApproximateNumberOfMessagesNotVisible"),
        delayed=_int_attribute(attributes, "ApproximateNumberOfMessagesDelayed"),
        dlq_name=dlq_name,
        dlq_visible=dlq_visible,
        max_receive_count=max_receive_count,
    )


def _state_machine_arn(sfn: SFNClient, state_machine: str) -> str:
    if state_machine.startswith("arn:"):
        return state_machine
    for page in sfn.get_paginator("list_state_machines").paginate():
        for item in page["stateMachines"]:
            if item["name"] == state_machine:
                return item["stateMachineArn"]
    raise MonitorTargetError(f"state machine {state_machine!r} does not exist")


def _count_executions(sfn: SFNClient, arn: str, status: str) -> int:
    count = 0
    pages = sfn.get_paginator("list_executions").paginate(
        stateMachineArn=arn,
        statusFilter=status,  # type: ignore[arg-type]
    )
    for page in pages:
        count += len(page["executions"])
        if count >= EXECUTION_COUNT_CAP:
            return EXECUTION_COUNT_CAP
    return count


EXPRESS_METRICS = {
    "started": "ExecutionsStarted",
    "succeeded": "ExecutionsSucceeded",
    "failed": "ExecutionsFailed",
    "timed_out": "ExecutionsTimedOut",
    "aborted": "ExecutionsAborted",
    "throttled": "ExecutionThrottled",
}
"""``AWS/States`` metrics (dimension ``StateMachineArn``) shown for an EXPRESS state machine."""


def read_state_machine_status(
    sfn: SFNClient,
    state_machine: str,
    cloudwatch: CloudWatchClient | None = None,
    window_minutes: int = 5,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> StateMachineStatus:
    """Executions of ``state_machine`` (name or ARN): ``ListExecutions`` counts for STANDARD, the
    ``AWS/States`` metrics over the window for EXPRESS (``cloudwatch`` needed then)."""
    arn = _state_machine_arn(sfn, state_machine)
    try:
        kind = sfn.describe_state_machine(stateMachineArn=arn).get("type", "STANDARD")
    except botocore.exceptions.ClientError as error:
        if error_code(error) == "StateMachineDoesNotExist":
            raise MonitorTargetError(f"state machine {state_machine!r} does not exist") from None
        raise
    if kind == "EXPRESS":
        if cloudwatch is None:
            raise ValueError("an EXPRESS state machine is read from CloudWatch: pass a cloudwatch client")
        end = now() + dt.timedelta(minutes=1)
        start = end - dt.timedelta(minutes=window_minutes + 1)
        sums = {
            field: _cloudwatch_sum(cloudwatch, metric, ("AWS/States", "StateMachineArn", arn), (start, end))
            for field, metric in EXPRESS_METRICS.items()
        }
        return StateMachineStatus(
            name=arn.rsplit(":", 1)[-1],
            arn=arn,
            running=None,
            capped=False,
            type=kind,
            source=f"AWS/States, last {window_minutes} min",
            **sums,
        )
    try:
        counts = {
            status: _count_executions(sfn, arn, status)
            for status in ("RUNNING", "FAILED", "TIMED_OUT", "ABORTED")
        }
    except botocore.exceptions.ClientError as error:
        if error_code(error) == "StateMachineDoesNotExist":
            raise MonitorTargetError(f"state machine {state_machine!r} does not exist") from None
        raise
    return StateMachineStatus(
        name=arn.rsplit(":", 1)[-1],
        arn=arn,
        running=counts["RUNNING"],
        failed=counts["FAILED"],
        timed_out=counts["TIMED_OUT"],
        aborted=counts["ABORTED"],
        capped=any(count >= EXECUTION_COUNT_CAP for count in counts.values()),
    )


def _metric_sum(
    cloudwatch: CloudWatchClient, function: str, metric: str, start: dt.datetime, end: dt.datetime
) -> float | None:
    return _cloudwatch_sum(cloudwatch, metric, ("AWS/Lambda", "FunctionName", function), (start, end))


def _cloudwatch_sum(
    cloudwatch: CloudWatchClient,
    metric: str,
    dimension: tuple[str, str, str],
    window: tuple[dt.datetime, dt.datetime],
) -> float | None:
    """Sum of ``metric`` (``dimension`` = namespace, name, value) over ``window``; ``None`` when
    CloudWatch has no datapoint."""
    namespace, name, value = dimension
    start, end = window
    answer = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        Dimensions=[{"Name": name, "Value": value}],
        StartTime=start,
        EndTime=end,
        Period=max(60, int((end - start).total_seconds()) // 60 * 60),
        Statistics=["Sum"],
    )
    points = answer.get("Datapoints", [])
    if not points:
        return None
    return float(sum(point.get("Sum", 0.0) for point in points))


def read_function_status(
    lambda_client: LambdaClient,
    cloudwatch: CloudWatchClient,
    function: str,
    window_minutes: int,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> FunctionStatus:
    """Reserved concurrency of ``function`` and its CloudWatch figures over the window."""
    try:
        lambda_client.get_function(FunctionName=function)
        concurrency = lambda_client.get_function_concurrency(FunctionName=function)
    except botocore.exceptions.ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            raise MonitorTargetError(f"function {function!r} does not exist") from None
        raise
    # The window ends a minute ahead, so the current (partial) minute's datapoints are included.
    end = now() + dt.timedelta(minutes=1)
    start = end - dt.timedelta(minutes=window_minutes + 1)
    name = function.rsplit(":", 1)[-1] if function.startswith("arn:") else function
    return FunctionStatus(
        name=name,
        reserved_concurrency=concurrency.get("ReservedConcurrentExecutions"),
        window_minutes=window_minutes,
        invocations=_metric_sum(cloudwatch, name, "Invocations", start, end),
        errors=_metric_sum(cloudwatch, name, "Errors", start, end),
        throttles=_metric_sum(cloudwatch, name, "Throttles", start, end),
    )


@dataclass(frozen=True)
class MonitorTargets:
    """What to watch: queue names/URLs, a state machine, a function (each optional)."""

    queues: tuple[str, ...]
    state_machine: str | None
    function: str | None
    window_minutes: int = 5
    alarm_prefix: str | None = None


def take_snapshot(aws: AwsTarget, targets: MonitorTargets) -> MonitorSnapshot:
    """Read every target once."""
    queues = tuple(read_queue_status(aws.sqs(), queue) for queue in targets.queues)
    state_machine = (
        read_state_machine_status(
            aws.stepfunctions(), targets.state_machine, aws.cloudwatch(), targets.window_minutes
        )
        if targets.state_machine
        else None
    )
    function = (
        read_function_status(aws.lambda_(), aws.cloudwatch(), targets.function, targets.window_minutes)
        if targets.function
        else None
    )
    return MonitorSnapshot(
        taken_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        queues=queues,
        state_machine=state_machine,
        function=function,
        alarms=read_alarm_states(aws.cloudwatch(), targets.alarm_prefix) if targets.alarm_prefix else (),
    )


def _executions_table(machine: StateMachineStatus) -> Table:
    columns: tuple[str, ...]
    if machine.type == "EXPRESS":
        table = Table(title=f"dispatcher executions (EXPRESS, {machine.source})", title_justify="left")
        columns = ("state machine", "started", "succeeded", "failed", "timed out", "aborted", "throttled")
        figures = (machine.started, machine.succeeded, machine.failed, machine.timed_out, machine.aborted)
        row = [machine.name, *(_figure(value) for value in (*figures, machine.throttled))]
    else:
        suffix = "+" if machine.capped else ""
        table = Table(title="dispatcher executions", title_justify="left")
        columns = ("state machine", "running", "failed", "timed out", "aborted")
        counts = (machine.running, machine.failed, machine.timed_out, machine.aborted)
        row = [machine.name, *(f"{_figure(value)}{suffix}" for value in counts)]
    for column in columns:
        table.add_column(column, justify="left" if column == "state machine" else "right")
    table.add_row(*row)
    return table


def _figure(value: float | int | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def render_snapshot(snapshot: MonitorSnapshot) -> Group:
    """The snapshot as rich tables."""
    parts: list[Table] = []
    if snapshot.queues:
        queues = Table(title=f"queues at {snapshot.taken_at}", title_justify="left")
        for column in ("queue", "visible", "in flight", "delayed", "DLQ", "DLQ depth", "max receives"):
            queues.add_column(column, justify="left" if column in ("queue", "DLQ") else "right")
        for queue in snapshot.queues:
            queues.add_row(
                queue.name,
                str(queue.visible),
                str(queue.in_flight),
                str(queue.delayed),
                queue.dlq_name or "-",
                _figure(queue.dlq_visible),
                _figure(queue.max_receive_count),
            )
        parts.append(queues)
    if snapshot.state_machine is not None:
        parts.append(_executions_table(snapshot.state_machine))
    if snapshot.function is not None:
        function = snapshot.function
        table = Table(
            title=f"function (CloudWatch, last {function.window_minutes} min)", title_justify="left"
        )
        for column in ("function", "reserved concurrency", "invocations", "errors", "throttles"):
            table.add_column(column, justify="left" if column == "function" else "right")
        table.add_row(
            function.name,
            _figure(function.reserved_concurrency),
            _figure(function.invocations),
            _figure(function.errors),
            _figure(function.throttles),
        )
        parts.append(table)
    if snapshot.alarms:
        parts.append(render_alarm_states(snapshot.alarms))
    return Group(*parts)


def monitor(
    *,
    queue: Annotated[
        list[str] | None, typer.Option(help="Queue name or URL to watch (repeat for several).")
    ] = None,
    state_machine: Annotated[str | None, typer.Option(help="Dispatcher state machine name or ARN.")] = None,
    function: Annotated[str | None, typer.Option(help="Processor function name or ARN.")] = None,
    endpoint_url: Annotated[
        str | None, typer.Option(help="Emulator endpoint (e.g. from `s3stagger local up`); omit for AWS.")
    ] = None,
    region: Annotated[str | None, typer.Option(help="AWS region (default: from the environment).")] = None,
    interval: Annotated[float, typer.Option(min=0.2, max=3600, help="Seconds between refreshes.")] = 2.0,
    window: Annotated[int, typer.Option(min=1, max=1440, help="CloudWatch window in minutes.")] = 5,
    alarms: Annotated[
        str | None, typer.Option(help="Show the alarms whose name starts with this (e.g. `s3stagger-`).")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit.")] = False,
    count: Annotated[int, typer.Option(min=0, help="Stop after this many refreshes (0: until Ctrl-C).")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="With --once: print the snapshot as one JSON object.")
    ] = False,
) -> None:
    """Watch queue depths (incl. in flight and DLQ), executions, and function errors and throttles."""
    targets = MonitorTargets(
        queues=tuple(item for item in (queue or []) if item.strip()),
        state_machine=state_machine or None,
        function=function or None,
        window_minutes=window,
        alarm_prefix=alarms or None,
    )
    if not (targets.queues or targets.state_machine or targets.function or targets.alarm_prefix):
        fail("nothing to watch: pass --queue, --state-machine, --function and/or --alarms", code=2)
    if as_json and not once:
        fail("--json needs --once (the live view is for people)", code=2)
    aws = AwsTarget(endpoint_url=endpoint_url, region=region)
    try:
        if once:
            snapshot = take_snapshot(aws, targets)
            if as_json:
                typer.echo(json.dumps(snapshot.as_dict()))
            else:
                Console().print(render_snapshot(snapshot))
            return
        with Live(render_snapshot(take_snapshot(aws, targets)), console=Console()) as live:
            refreshes = 1
            while count == 0 or refreshes < count:
                time.sleep(interval)
                live.update(render_snapshot(take_snapshot(aws, targets)))
                refreshes += 1
    except (MonitorTargetError, AwsSetupError) as error:
        fail(f"{error} at {aws.describe()}")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        fail(f"reading from {aws.describe()} failed: {error}")
    except KeyboardInterrupt:
        return
