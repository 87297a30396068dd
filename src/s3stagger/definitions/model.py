"""The definition files as one typed, validated model: what Terraform and local mode both deploy.

:meth:`Definitions.load` reads every file listed in :data:`DEFINITION_FILES` strictly (a missing,
unknown or mistyped field is a :class:`DefinitionError` naming the file and the field), applies a
deployment's overrides, and runs :func:`validate`: every rule that spans fields or files is stated
once, in :data:`RULES`. The Terraform modules enforce the same rules as ``precondition`` blocks;
``tests/iac/test_iac_precondition_twins.py`` proves each precondition has its twin here.

To add a definition file: write its frozen dataclass and a parser over a :class:`FieldReader`
below, add a field to :class:`Definitions` and one entry to :data:`DEFINITION_FILES`. A rule that
spans files goes into :data:`RULES` (and, if Terraform must enforce it too, into a module's
preconditions, mapped to the rule in ``tests/iac/test_iac_precondition_twins.py``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from s3stagger import definitions as package
from s3stagger.definitions.alarms import AlarmDefinitionError, AlarmDefinitions, parse_alarm_definitions
from s3stagger.definitions.alerting import (
    ALERTING_FILE,
    AlertingDefinition,
    AlertingDefinitionError,
    load_alerting_definition,
)
from s3stagger.domain.cost import CostModelError, PriceTable
from s3stagger.domain.stagger import PrioritySpacing, StaggerPolicy, StaggerPolicyError
from s3stagger.errors import S3StaggerError

if TYPE_CHECKING:
    from s3stagger.definitions.autoscaler import AutoscalerDefinition

DEFAULT_NAME_PREFIX = "s3stagger"

LEASE_MARGIN_S = 20
"""Of the lease, on top of a dispatcher's longest stretch between two processor calls."""
INLINE_MAP_MAX_CONCURRENCY = 40
"""An inline Map runs at most 40 iterations at once, whatever its MaxConcurrency says."""
BUCKET_NAME_MAX_LENGTH = 63
STATE_MACHINE_TYPES = ("EXPRESS", "STANDARD")
EXPRESS_MAX_TIME_BUDGET_S = 270
"""An Express execution lasts at most 300 s: its time budget leaves the rest for its last calls."""
KEY_PREFIX_FORBIDDEN = ("*", "\\")
"""Characters an EventBridge wildcard pattern reads as pattern syntax."""


class DefinitionError(S3StaggerError, ValueError):
    """A definition file is malformed, or the files (and overrides) contradict each other."""


# -- strict reading ----------------------------------------------------------------------------


class FieldReader:
    """One JSON object of a definition file, read field by field with typed getters.

    :meth:`close` (``Definitions.load`` calls it on each file) refuses every field no getter read,
    in this object and in every section read from it, so a file cannot get ahead of its parser.
    """

    def __init__(self, file: str, data: object, path: str = "") -> None:
        if not isinstance(data, dict):
            where = path or "the top level"
            raise DefinitionError(f"{file}: {where} must be a JSON object, got {type(data).__name__}")
        self.file = file
        self.path = path
        self.data: dict[str, Any] = data
        self.read: set[str] = {"_comment"}
        self.sections_read: list[FieldReader] = []

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, problem: str) -> DefinitionError:
        return DefinitionError(f"{self.file}: {self.where(key)} {problem}")

    def value(self, key: str) -> Any:
        self.read.add(key)
        if key not in self.data:
            raise self.error(key, "is missing")
        return self.data[key]

    def integer(self, key: str, minimum: int = 0, maximum: int | None = None) -> int:
        value = self.value(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"within {minimum}..{maximum}"
            raise self.error(key, f"must be {bounds}, got {value}")
        return value

    def optional_integer(self, key: str, minimum: int = 0) -> int | None:
        return None if self.value(key) is None else self.integer(key, minimum)

    def text(self, key: str, *, empty: bool = False) -> str:
        value = self.value(key)
        if not isinstance(value, str) or (not empty and not value):
            raise self.error(key, f"must be a {'' if empty else 'non-empty '}string, got {value!r}")
        return value

    def flag(self, key: str) -> bool:
        value = self.value(key)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {value!r}")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.value(key)
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(item, str) and item for item in value)
        ):
            raise self.error(key, f"must be a non-empty list of non-empty strings, got {value!r}")
        if len(set(value)) != len(value):
            raise self.error(key, f"lists a name twice: {value}")
        return tuple(value)

    def text_map(self, key: str) -> Mapping[str, str]:
        value = self.value(key)
        if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
            raise self.error(key, f"must be an object of strings, got {value!r}")
        return MappingProxyType(dict(value))

    def _child(self, data: object, path: str) -> FieldReader:
        child = FieldReader(self.file, data, path)
        self.sections_read.append(child)
        return child

    def section(self, key: str) -> FieldReader:
        """The object at ``key``."""
        return self._child(self.value(key), self.where(key))

    def sections(self, key: str) -> list[FieldReader]:
        """The objects of the non-empty list at ``key``."""
        value = self.value(key)
        if not isinstance(value, list) or not value:
            raise self.error(key, f"must be a non-empty list of objects, got {value!r}")
        return [self._child(item, f"{self.where(key)}[{index}]") for index, item in enumerate(value)]

    def entries(self, key: str) -> list[tuple[str, FieldReader]]:
        """``(name, object)`` of the object at ``key`` whose keys are names the file chooses."""
        section = self.section(key)
        section.read.update(section.data)
        return [(name, section._child(item, f"{section.path}.{name}")) for name, item in section.data.items()]

    def close(self) -> None:
        for section in self.sections_read:
            section.close()
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            where = f" in {self.path}" if self.path else ""
            raise DefinitionError(f"{self.file}: unknown field(s) {', '.join(unknown)}{where}")


# -- the files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueSettings:
    """Every priority queue (``queues.json`` ``queue``)."""

    visibility_timeout_s: int
    message_retention_s: int
    max_receive_count: int
    receive_wait_time_s: int
    sqs_managed_sse: bool


@dataclass(frozen=True)
class DeadLetterSettings:
    """Every priority queue's redrive DLQ (``queues.json`` ``dlq``)."""

    message_retention_s: int
    sqs_managed_sse: bool


@dataclass(frozen=True)
class NamedQueueSettings:
    """A queue with a fixed name suffix: the ingest DLQ and the dispatcher lease queue."""

    name_suffix: str
    message_retention_s: int
    sqs_managed_sse: bool


@dataclass(frozen=True)
class QueuesDefinition:
    """``queues.json``: the priorities, first = highest, and the settings of their queues."""

    priorities: tuple[str, ...]
    queue: QueueSettings
    dlq: DeadLetterSettings
    ingest_dlq: NamedQueueSettings
    lease_queue: NamedQueueSettings


@dataclass(frozen=True)
class Route:
    """Objects under ``key_prefix`` (ending in the object suffix) go to ``priority``'s queue."""

    priority: str
    key_prefix: str


@dataclass(frozen=True)
class TargetRetryPolicy:
    maximum_retry_attempts: int
    maximum_event_age_s: int


@dataclass(frozen=True)
class EventRulesDefinition:
    """``event_rules.json``: one EventBridge rule per route, one for every key no route matches."""

    object_suffix: str
    routes: tuple[Route, ...]
    target_retry_policy: TargetRetryPolicy

    def key_wildcard(self, route: Route) -> str:
        """The EventBridge wildcard of a route: ``<key_prefix>*<object_suffix>``."""
        return f"{route.key_prefix}*{self.object_suffix}"

    def key_prefix(self, priority: str) -> str:
        """The key prefix that routes an upload to ``priority``'s queue."""
        for route in self.routes:
            if route.priority == priority:
                return route.key_prefix
        raise DefinitionError(f"event_rules.json: no route for priority {priority!r}")


@dataclass(frozen=True)
class DispatcherDefinition:
    """``dispatcher.json``: the dispatcher state machine's settings and its stagger policy."""

    state_machine_type: str
    """``EXPRESS`` or ``STANDARD`` (:data:`STATE_MACHINE_TYPES`)."""
    state_machine_name_suffix: str
    schedule_name_suffix: str
    schedule_expression: str
    receive_claim_s: int
    """The longest a dispatcher holds a message ahead of itself: from the receive, after a stagger
    wait or a retry wait, and right before every processor call, until the processor's keep-alive
    takes over; so a dispatcher that dies anywhere frees its messages within it."""
    failure_retry_delay_s: int
    lease_s: int
    time_budget_s: int
    max_calls_per_slot: Mapping[str, int]
    """Per state machine type; :attr:`calls_per_slot` is the one in force."""
    max_partials_per_object: int
    idle_polls: int
    idle_wait_s: int
    event_bus_name: str
    event_source: str
    stagger: StaggerPolicy

    @property
    def calls_per_slot(self) -> int:
        """Processor calls per slot and execution for this state machine type."""
        return self.max_calls_per_slot[self.state_machine_type]


@dataclass(frozen=True)
class ProcessorDefinition:
    """``processor.json``: the processor Lambda."""

    function_name_suffix: str
    handler: str
    runtime: str
    architecture: str
    timeout_s: int
    memory_mb: int
    reserved_concurrency: int | None
    environment: Mapping[str, str]


@dataclass(frozen=True)
class BudgetDefinition:
    """``budget.json``: the concurrency-budget parameter and its clamp."""

    parameter_name_suffix: str
    default: int
    minimum: int
    maximum: int


@dataclass(frozen=True)
class StorageDefinition:
    """``storage.json``: the uploads and failed-rows buckets."""

    uploads_bucket_suffix: str
    failed_rows_bucket_suffix: str
    failed_rows_prefix: str


def _parse_queues(f: FieldReader) -> QueuesDefinition:
    queue, dlq = f.section("queue"), f.section("dlq")
    return QueuesDefinition(
        priorities=f.texts("priorities"),
        queue=QueueSettings(
            visibility_timeout_s=queue.integer("visibility_timeout_s", 0, 43200),
            message_retention_s=queue.integer("message_retention_s", 60, 1209600),
            max_receive_count=queue.integer("max_receive_count", 1, 1000),
            receive_wait_time_s=queue.integer("receive_wait_time_s", 0, 20),
            sqs_managed_sse=queue.flag("sqs_managed_sse"),
        ),
        dlq=DeadLetterSettings(
            message_retention_s=dlq.integer("message_retention_s", 60, 1209600),
            sqs_managed_sse=dlq.flag("sqs_managed_sse"),
        ),
        ingest_dlq=_parse_named_queue(f.section("ingest_dlq")),
        lease_queue=_parse_named_queue(f.section("lease_queue")),
    )


def _parse_named_queue(f: FieldReader) -> NamedQueueSettings:
    return NamedQueueSettings(
        name_suffix=f.text("name_suffix"),
        message_retention_s=f.integer("message_retention_s", 60, 1209600),
        sqs_managed_sse=f.flag("sqs_managed_sse"),
    )


def _parse_event_rules(f: FieldReader) -> EventRulesDefinition:
    routes = []
    for route in f.sections("routes"):
        routes.append(Route(priority=route.text("priority"), key_prefix=route.text("key_prefix", empty=True)))
    retry = f.section("target_retry_policy")
    return EventRulesDefinition(
        object_suffix=f.text("object_suffix", empty=True),
        routes=tuple(routes),
        target_retry_policy=TargetRetryPolicy(
            maximum_retry_attempts=retry.integer("maximum_retry_attempts", 0, 185),
            maximum_event_age_s=retry.integer("maximum_event_age_s", 60, 86400),
        ),
    )


def _parse_stagger(f: FieldReader) -> StaggerPolicy:
    priorities = {}
    for name, spacing in f.entries("priorities"):
        try:
            priorities[name] = PrioritySpacing(
                spacing_s=spacing.integer("spacing_s"), max_delay_s=spacing.integer("max_delay_s")
            )
        except StaggerPolicyError as error:
            raise DefinitionError(f"{f.file}: {spacing.path}: {error}") from None
    return StaggerPolicy(backlog_depth=f.integer("backlog_depth"), priorities=priorities)


def _parse_dispatcher(f: FieldReader) -> DispatcherDefinition:
    kind = f.text("state_machine_type")
    if kind not in STATE_MACHINE_TYPES:
        raise f.error("state_machine_type", f"must be one of {', '.join(STATE_MACHINE_TYPES)}, got {kind!r}")
    calls = f.section("max_calls_per_slot")
    return DispatcherDefinition(
        state_machine_type=kind,
        state_machine_name_suffix=f.text("state_machine_name_suffix"),
        schedule_name_suffix=f.text("schedule_name_suffix"),
        schedule_expression=f.text("schedule_expression"),
        receive_claim_s=f.integer("receive_claim_s", 1, 43200),
        failure_retry_delay_s=f.integer("failure_retry_delay_s", 0, 43200),
        lease_s=f.integer("lease_s", 1, 43200),
        time_budget_s=f.integer("time_budget_s", 1),
        max_calls_per_slot={name: calls.integer(name, 1) for name in STATE_MACHINE_TYPES},
        max_partials_per_object=f.integer("max_partials_per_object", 1),
        idle_polls=f.integer("idle_polls", 0),
        idle_wait_s=f.integer("idle_wait_s", 0, 20),  # an SQS long poll: WaitTimeSeconds <= 20
        event_bus_name=f.text("event_bus_name"),
        event_source=f.text("event_source"),
        stagger=_parse_stagger(f.section("stagger")),
    )


def _parse_processor(f: FieldReader) -> ProcessorDefinition:
    return ProcessorDefinition(
        function_name_suffix=f.text("function_name_suffix"),
        handler=f.text("handler"),
        runtime=f.text("runtime"),
        architecture=f.text("architecture"),
        timeout_s=f.integer("timeout_s", 1, 900),
        memory_mb=f.integer("memory_mb", 128, 10240),
        reserved_concurrency=f.optional_integer("reserved_concurrency"),
        environment=f.text_map("environment"),
    )


def _parse_budget(f: FieldReader) -> BudgetDefinition:
    return BudgetDefinition(
        parameter_name_suffix=f.text("parameter_name_suffix"),
        default=f.integer("default"),
        minimum=f.integer("minimum"),
        maximum=f.integer("maximum"),
    )


def _parse_storage(f: FieldReader) -> StorageDefinition:
    return StorageDefinition(
        uploads_bucket_suffix=f.text("uploads_bucket_suffix"),
        failed_rows_bucket_suffix=f.text("failed_rows_bucket_suffix"),
        failed_rows_prefix=f.text("failed_rows_prefix", empty=True),
    )


def _parse_alarms(f: FieldReader) -> AlarmDefinitions:
    """``alarms.json``: :mod:`s3stagger.definitions.alarms` reads and validates it strictly."""
    try:
        return parse_alarm_definitions({"alarms": f.value("alarms")})
    except AlarmDefinitionError as error:
        raise DefinitionError(str(error)) from error


def _parse_prices(f: FieldReader) -> PriceTable:
    """``prices.json``: the dated price table of the cost model (:class:`PriceTable`)."""
    fields = {key: f.value(key) for key in list(f.data) if key != "_comment"}
    try:
        return PriceTable.from_definition(fields)
    except CostModelError as error:
        raise DefinitionError(f"prices.json: {error}") from error


def _parse_autoscaler(f: FieldReader) -> AutoscalerDefinition:
    """``autoscaler.json``: :class:`~s3stagger.definitions.autoscaler.AutoscalerDefinition` reads it."""
    from s3stagger.definitions.autoscaler import AutoscalerDefinition  # noqa: PLC0415 (it imports this module)

    return AutoscalerDefinition.from_data({key: f.value(key) for key in list(f.data)})


def _parse_alerting(f: FieldReader) -> AlertingDefinition:
    """``alerting.json``: :mod:`s3stagger.definitions.alerting` reads and checks it."""
    fields = {key: f.value(key) for key in list(f.data) if key != "_comment"}
    try:
        return load_alerting_definition(fields)
    except AlertingDefinitionError as error:
        raise DefinitionError(str(error)) from error


@dataclass(frozen=True)
class DefinitionFile:
    """One settings file: its name, the :class:`Definitions` field it fills, its parser."""

    name: str
    field: str
    parse: Callable[[FieldReader], object]


DEFINITION_FILES: tuple[DefinitionFile, ...] = (
    DefinitionFile("queues.json", "queues", _parse_queues),
    DefinitionFile("event_rules.json", "event_rules", _parse_event_rules),
    DefinitionFile("dispatcher.json", "dispatcher", _parse_dispatcher),
    DefinitionFile("processor.json", "processor", _parse_processor),
    DefinitionFile("budget.json", "budget", _parse_budget),
    DefinitionFile("storage.json", "storage", _parse_storage),
    DefinitionFile("alarms.json", "alarms", _parse_alarms),
    DefinitionFile(ALERTING_FILE, "alerting", _parse_alerting),
    DefinitionFile("prices.json", "prices", _parse_prices),
    DefinitionFile("autoscaler.json", "autoscaler", _parse_autoscaler),
)
"""Every settings file of ``definitions/`` (the templates are rendered, not parsed)."""

Overrides = Mapping[str, Mapping[str, Any]]
"""Definition file name -> fields to replace. Nested objects merge field by field, except those
in :data:`FREE_FORM_FIELDS`, which are replaced whole; e.g.
``{"processor.json": {"timeout_s": 30}, "queues.json": {"queue": {"max_receive_count": 2}}}``."""


FREE_FORM_FIELDS = frozenset({"priorities", "environment"})
"""Objects keyed by names the files choose (priorities, variables): an override replaces them whole."""


def _merged(file: str, base: Any, override: Mapping[str, Any], path: str = "") -> Any:
    if not override:
        return base
    if not isinstance(base, dict):
        raise DefinitionError(f"{file}: cannot override inside {path or 'the top level'}: not an object")
    merged = dict(base)
    for key, value in override.items():
        where = f"{path}.{key}" if path else key
        if key not in base:
            raise DefinitionError(f"{file}: override of unknown field {where}")
        if isinstance(value, Mapping) and isinstance(base[key], dict) and key not in FREE_FORM_FIELDS:
            merged[key] = _merged(file, base[key], value, where)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass(frozen=True)
class Definitions:
    """Every definition file, parsed, with a deployment's overrides applied."""

    queues: QueuesDefinition
    event_rules: EventRulesDefinition
    dispatcher: DispatcherDefinition
    processor: ProcessorDefinition
    budget: BudgetDefinition
    storage: StorageDefinition
    alarms: AlarmDefinitions
    alerting: AlertingDefinition
    prices: PriceTable
    autoscaler: AutoscalerDefinition

    @classmethod
    def load(
        cls,
        overrides: Overrides | None = None,
        *,
        directory: Path | None = None,
        name_prefix: str = DEFAULT_NAME_PREFIX,
    ) -> Definitions:
        """Read, parse and :func:`validate` the definitions (from ``directory``; default: this package)."""
        loaded = cls.read(overrides, directory=directory)
        validate(Deployment(loaded, name_prefix))
        return loaded

    @classmethod
    def read(cls, overrides: Overrides | None = None, *, directory: Path | None = None) -> Definitions:
        """Read and parse strictly, without the rules (:func:`violations` tells which hold)."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - {file.name for file in DEFINITION_FILES})
        if unknown:
            raise DefinitionError(f"overrides name unknown definition file(s) {', '.join(unknown)}")
        parsed: dict[str, object] = {}
        for file in DEFINITION_FILES:
            data = _read_json(directory, file.name)
            data = _merged(file.name, data, overrides.get(file.name, {}))
            reader = FieldReader(file.name, data)
            parsed[file.field] = file.parse(reader)
            reader.close()
        return cls(**parsed)  # type: ignore[arg-type]

    @property
    def priorities(self) -> tuple[str, ...]:
        """The priorities in the order the dispatcher serves them (first = highest)."""
        return self.queues.priorities

    def bucket_names(self, name_prefix: str, qualifier: str = "") -> dict[str, str]:
        """Bucket name by role: ``<name_prefix>-<suffix of storage.json><qualifier>``.

        Local mode names them without a qualifier; Terraform appends ``-<account id>-<region>``
        (bucket names are global).
        """
        return {
            "uploads": f"{name_prefix}-{self.storage.uploads_bucket_suffix}{qualifier}",
            "failed_rows": f"{name_prefix}-{self.storage.failed_rows_bucket_suffix}{qualifier}",
        }

    def key_wildcards(self) -> dict[str, str]:
        """Priority -> the EventBridge wildcard of its route, in route order."""
        return {route.priority: self.event_rules.key_wildcard(route) for route in self.event_rules.routes}


def _read_json(directory: Path | None, name: str) -> Any:
    if directory is None:
        return package.read_json(name)
    try:
        return json.loads((directory / name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DefinitionError(f"{name}: no such definition file in {directory}") from None
    except json.JSONDecodeError as error:
        raise DefinitionError(f"{name}: not JSON ({error})") from None


# -- the rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """What a rule may look at: the definitions and how the deployment names things."""

    definitions: Definitions
    name_prefix: str = DEFAULT_NAME_PREFIX
    bucket_qualifier: str = ""
    """Appended to bucket names (see :meth:`Definitions.bucket_names`)."""


@dataclass(frozen=True)
class Rule:
    """A rule the definitions must obey; ``check`` returns what is wrong, or ``None``."""

    name: str
    check: Callable[[Deployment], str | None]


def _routes_match_priorities(d: Deployment) -> str | None:
    routed = [route.priority for route in d.definitions.event_rules.routes]
    priorities = list(d.definitions.priorities)
    if sorted(routed) != sorted(priorities):
        return (
            f"event_rules.json routes {routed} and queues.json priorities {priorities} must name the same "
            "priorities, each once"
        )
    return None


def _key_prefixes_are_literal(d: Deployment) -> str | None:
    for route in d.definitions.event_rules.routes:
        if any(character in route.key_prefix for character in KEY_PREFIX_FORBIDDEN):
            return (
                f"event_rules.json key_prefix {route.key_prefix!r} of priority {route.priority!r} must not "
                "contain '*' or '\\': EventBridge wildcard patterns read them as pattern characters"
            )
    return None


def _stagger_covers_priorities(d: Deployment) -> str | None:
    staggered = sorted(d.definitions.dispatcher.stagger.priorities)
    priorities = sorted(d.definitions.priorities)
    if staggered != priorities:
        return (
            f"dispatcher.json stagger.priorities {staggered} must be exactly "
            f"queues.json priorities {priorities}"
        )
    return None


def _dlq_retains_longer(d: Deployment) -> str | None:
    queues = d.definitions.queues
    if queues.dlq.message_retention_s <= queues.queue.message_retention_s:
        return (
            f"queues.json dlq.message_retention_s={queues.dlq.message_retention_s} must exceed "
            f"queue.message_retention_s={queues.queue.message_retention_s}: a moved message keeps its "
            "original enqueue time"
        )
    return None


def _queue_visibility_covers_timeout(d: Deployment) -> str | None:
    visibility = d.definitions.queues.queue.visibility_timeout_s
    timeout = d.definitions.processor.timeout_s
    if visibility < timeout:
        return (
            f"queues.json queue.visibility_timeout_s={visibility} must be at least processor.json "
            f"timeout_s={timeout} (a consumer without the dispatcher's extensions)"
        )
    return None


def minimum_lease_s(definitions: Definitions) -> int:
    """How long the lease must last without renewal: every processor call renews it (keep-alive), so
    it must outlast what a dispatcher does between calls — a stagger wait, the idle looks — and a
    margin for the states around them."""
    dispatcher = definitions.dispatcher
    longest_delay = max(spacing.max_delay_s for spacing in dispatcher.stagger.priorities.values())
    return longest_delay + dispatcher.idle_polls * dispatcher.idle_wait_s + LEASE_MARGIN_S


def _lease_outlasts_a_hold(d: Deployment) -> str | None:
    lease = d.definitions.dispatcher.lease_s
    needed = minimum_lease_s(d.definitions)
    if lease < needed:
        return (
            f"dispatcher.json lease_s={lease} must be >= the longest stagger delay + idle_polls x "
            f"idle_wait_s + {LEASE_MARGIN_S} s ({needed}), or the lease lapses between two processor "
            "calls of a running dispatcher and a second one starts"
        )
    return None


def _express_time_budget_fits(d: Deployment) -> str | None:
    dispatcher = d.definitions.dispatcher
    if dispatcher.state_machine_type == "EXPRESS" and dispatcher.time_budget_s > EXPRESS_MAX_TIME_BUDGET_S:
        return (
            f"dispatcher.json time_budget_s={dispatcher.time_budget_s} must be <= "
            f"{EXPRESS_MAX_TIME_BUDGET_S} for an EXPRESS dispatcher: an execution lasts at most 300 s and "
            "its last calls need the rest"
        )
    return None


def _budget_in_order(d: Deployment) -> str | None:
    budget = d.definitions.budget
    if not 1 <= budget.minimum <= budget.default <= budget.maximum <= INLINE_MAP_MAX_CONCURRENCY:
        return (
            f"budget.json: need 1 <= minimum ({budget.minimum}) <= default ({budget.default}) <= maximum "
            f"({budget.maximum}) <= {INLINE_MAP_MAX_CONCURRENCY} (an inline Map runs at most "
            f"{INLINE_MAP_MAX_CONCURRENCY} iterations at once)"
        )
    return None


def _budget_within_reserved_concurrency(d: Deployment) -> str | None:
    maximum = d.definitions.budget.maximum
    reserved = d.definitions.processor.reserved_concurrency
    if reserved is not None and maximum > reserved:
        return (
            f"budget.json maximum={maximum} exceeds processor.json reserved_concurrency={reserved}: "
            "the dispatcher would be throttled"
        )
    return None


def _bucket_names_fit(d: Deployment) -> str | None:
    for role, name in d.definitions.bucket_names(d.name_prefix, d.bucket_qualifier).items():
        if len(name) > BUCKET_NAME_MAX_LENGTH:
            return (
                f"bucket name {name} ({role}) is {len(name)} characters; S3 allows {BUCKET_NAME_MAX_LENGTH}: "
                "shorten the name prefix or storage.json's suffix"
            )
    return None


RULES: tuple[Rule, ...] = (
    Rule("routes_match_priorities", _routes_match_priorities),
    Rule("key_prefixes_are_literal", _key_prefixes_are_literal),
    Rule("stagger_covers_priorities", _stagger_covers_priorities),
    Rule("dlq_retains_longer_than_queue", _dlq_retains_longer),
    Rule("queue_visibility_covers_processor_timeout", _queue_visibility_covers_timeout),
    Rule("lease_outlasts_a_hold", _lease_outlasts_a_hold),
    Rule("express_time_budget_fits", _express_time_budget_fits),
    Rule("budget_in_order_within_inline_map", _budget_in_order),
    Rule("budget_within_reserved_concurrency", _budget_within_reserved_concurrency),
    Rule("bucket_names_fit", _bucket_names_fit),
)
"""Every rule spanning fields or files, each stated once."""


def violations(deployment: Deployment | Definitions) -> dict[str, str]:
    """Rule name -> what is wrong, for every rule the deployment breaks (empty: all hold)."""
    if isinstance(deployment, Definitions):
        deployment = Deployment(deployment)
    found = {}
    for rule in RULES:
        problem = rule.check(deployment)
        if problem is not None:
            found[rule.name] = problem
    return found


def validate(deployment: Deployment | Definitions) -> None:
    """Raise :class:`DefinitionError` naming every broken rule (one line), or return."""
    found = violations(deployment)
    if found:
        raise DefinitionError("; ".join(found.values()))


def require_queue_urls(definitions: Definitions, queue_urls: Mapping[str, str]) -> None:
    """Rule ``queue_urls_cover_priorities``: the dispatcher gets a queue for every priority."""
    missing = [priority for priority in definitions.priorities if priority not in queue_urls]
    if missing:
        raise DefinitionError(
            f"no queue URL for priorities {missing} (queues.json lists {list(definitions.priorities)})"
        )


QUEUE_URLS_RULE = "queue_urls_cover_priorities"
"""The rule :func:`require_queue_urls` states: it needs the deployed queues, not just the files."""

RULE_NAMES = frozenset({rule.name for rule in RULES} | {QUEUE_URLS_RULE})
