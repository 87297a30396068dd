"""What a run would cost on AWS, from the work it was counted doing; pure, no I/O.

A local run counts what AWS bills (:class:`CountedWork`: SQS requests by API, S3 requests, events,
Lambda requests and billed milliseconds, Step Functions transitions or Express executions and
duration, log bytes). :func:`estimate_cost` prices it with the dated table in
``definitions/prices.json`` (:class:`PriceTable`) and scales it to the reference workload
(:class:`ReferenceWorkload`, 1M objects x 50 rows, C = 50, L = 0.2 s) as dollars per million
objects, one :class:`LineItem` per billed thing.

Scaling, stated once:

- work done *per object* (requests, transitions, executions, events, log bytes) is divided by the
  run's objects and multiplied by a million;
- work that lasts as long as the downstream takes (Lambda and Express GB-s, SQS receives that
  found an empty queue) is also multiplied by the *time scale*: the reference's seconds per object
  at the downstream's pace (rows x L / C) over the run's. A run at C = 20 takes 2.5 times longer per
  object than the reference at C = 50, so its Lambda durations count 0.4 times;
- dispatcher executions that invoked nothing (scheduled starts that found the lease held or the
  queues empty), and the queue requests they made, follow the schedule, not the objects: the
  local scheduler starts one every second, AWS every minute. They are priced per start as
  measured, times the starts the reference sees (55.6 hours at C / L x 60 per hour = 3,333 per
  million objects).

Whose cost: the user's upload PUT (and the storage of the object) is the user's, whatever processes
it; it is shown under ``excluded``, never in the total. Everything the pattern does from the
object-created event on is the pattern's: the event, the queue requests, the dispatcher, the
processor's GET, invocations and durations, its failed-row writes and its logs. Requests made to
measure a run are nobody's and are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

MILLION = 1_000_000
GIB_MB = 1024.0
BYTES_PER_GB = 1024**3

S3_PUT_CLASS = frozenset(
    {"PutObject", "CopyObject", "PostObject", "ListObjects", "ListObjectsV2", "PutBucket", "GetBucket"}
)
"""S3 APIs billed at the PUT/COPY/POST/LIST rate."""
S3_FREE = frozenset({"DeleteObject", "DeleteBucket", "DeleteObjects"})
"""S3 APIs AWS does not bill (DELETE)."""
EMPTY_RECEIVE_SUFFIX = ".empty"
"""Suffix of the counter of SQS receives that returned nothing (already counted in the action)."""

DISPATCHER_STANDARD = "STANDARD"
DISPATCHER_EXPRESS = "EXPRESS"
DISPATCHER_NONE = "NONE"


class CostModelError(ValueError):
    """Counters or prices that cannot be priced; the message says which field."""


@dataclass(frozen=True)
class ReferenceWorkload:
    """The workload cost figures are scaled to."""

    objects: int = MILLION
    rows_per_object: float = 50
    capacity: int = 50
    latency_s: float = 0.2
    dispatcher_starts_per_hour: float = 60
    """Scheduled dispatcher starts per hour on AWS (``rate(1 minute)``)."""

    @property
    def seconds_per_object(self) -> float:
        """Seconds one object takes at the downstream's pace: rows x L / C."""
        return self.rows_per_object * self.latency_s / self.capacity

    def scheduled_starts_per_million(self) -> float:
        """Scheduled dispatcher starts while a million objects flow at the downstream's pace."""
        hours = MILLION * self.seconds_per_object / 3600
        return hours * self.dispatcher_starts_per_hour


@dataclass(frozen=True)
class PriceTable:
    """Unit prices in USD (see ``definitions/prices.json``)."""

    as_of: str
    region: str
    sqs_per_million_requests: float
    s3_put_per_thousand: float
    s3_get_per_thousand: float
    eventbridge_per_million_events: float
    lambda_per_million_requests: float
    lambda_per_gb_s: Mapping[str, float]
    lambda_billing_granularity_ms: int
    standard_per_thousand_transitions: float
    express_per_million_executions: float
    express_per_gb_s: float
    express_memory_step_mb: int
    express_duration_step_ms: int
    logs_per_gb_ingested: float
    reference: ReferenceWorkload = field(default_factory=ReferenceWorkload)

    @classmethod
    def from_definition(cls, data: Mapping[str, Any]) -> PriceTable:
        """Read the structure of ``definitions/prices.json``."""
        try:
            sfn = data["stepfunctions"]
            lam = data["lambda"]
            return cls(
                as_of=str(data["as_of"]),
                region=str(data["region"]),
                sqs_per_million_requests=float(data["sqs"]["per_million_requests"]),
                s3_put_per_thousand=float(data["s3"]["put_per_thousand"]),
                s3_get_per_thousand=float(data["s3"]["get_per_thousand"]),
                eventbridge_per_million_events=float(data["eventbridge"]["per_million_events"]),
                lambda_per_million_requests=float(lam["per_million_requests"]),
                lambda_per_gb_s={str(k): float(v) for k, v in lam["per_gb_s"].items()},
                lambda_billing_granularity_ms=int(lam["billing_granularity_ms"]),
                standard_per_thousand_transitions=float(sfn["standard_per_thousand_transitions"]),
                express_per_million_executions=float(sfn["express_per_million_executions"]),
                express_per_gb_s=float(sfn["express_per_gb_s"]),
                express_memory_step_mb=int(sfn["express_memory_step_mb"]),
                express_duration_step_ms=int(sfn["express_duration_step_ms"]),
                logs_per_gb_ingested=float(data["cloudwatch_logs"]["per_gb_ingested"]),
                reference=ReferenceWorkload(**data["reference_workload"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CostModelError(f"price table is missing or has a bad field: {error}") from error


def billed_ms(duration_ms: float, granularity_ms: int) -> int:
    """A duration rounded up to the billing granularity (at least one step)."""
    steps = max(1, math.ceil(duration_ms / granularity_ms))
    return steps * granularity_ms


@dataclass(frozen=True)
class CountedWork:
    """What one run did that AWS bills, as counted (the counters JSON of ``s3stagger cost``)."""

    objects: int
    rows: int
    capacity: int
    latency_s: float
    dispatcher_type: str = DISPATCHER_STANDARD
    sqs_requests: Mapping[str, int] = field(default_factory=dict)
    """Pattern SQS requests by API; ``ReceiveMessage.empty`` counts the empty ones among them."""
    s3_requests: Mapping[str, int] = field(default_factory=dict)
    """Pattern S3 requests by API (the processor's GET, failed-row PUTs, ...)."""
    eventbridge_events: int = 0
    lambda_requests: int = 0
    lambda_billed_ms: int = 0
    """Sum of the invocations' durations, each rounded up to the billing granularity."""
    lambda_memory_mb: int = 128
    lambda_architecture: str = "arm64"
    sfn_transitions: int = 0
    sfn_executions: int = 0
    express_billed_ms: int = 0
    """Sum of Express executions' durations, each rounded up to the 100 ms step."""
    sfn_idle_executions: int = 0
    """Of the executions, those that invoked no processor (a scheduled start that found the lease
    held or the queues empty): they follow the schedule, not the objects."""
    sfn_idle_transitions: int = 0
    express_idle_billed_ms: int = 0
    sqs_idle_requests: int = 0
    """Of the SQS requests, those the idle executions made: they follow the schedule too."""
    sqs_idle_empty_receives: int = 0
    """Of the empty receives, those the idle executions made."""
    express_memory_mb: int = 64
    log_bytes: int = 0
    user_s3_puts: int = 0
    """The user's uploads: shown as excluded, not the pattern's cost."""

    def __post_init__(self) -> None:
        if self.objects < 1:
            raise CostModelError(f"objects must be >= 1, got {self.objects}")
        if self.capacity < 1 or self.latency_s <= 0:
            raise CostModelError("capacity must be >= 1 and latency_s > 0")
        if self.dispatcher_type not in {DISPATCHER_STANDARD, DISPATCHER_EXPRESS, DISPATCHER_NONE}:
            raise CostModelError(
                f"dispatcher_type must be STANDARD, EXPRESS or NONE, got {self.dispatcher_type!r}"
            )

    @property
    def seconds_per_object(self) -> float:
        """Seconds one object of this run takes at the downstream's pace: rows x L / C."""
        return (self.rows / self.objects) * self.latency_s / self.capacity

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sqs_requests"] = dict(self.sqs_requests)
        data["s3_requests"] = dict(self.s3_requests)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CountedWork:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise CostModelError(f"unknown counter field(s): {', '.join(sorted(unknown))}")
        try:
            return cls(**dict(data))
        except TypeError as error:
            raise CostModelError(f"counters are incomplete: {error}") from error


@dataclass(frozen=True)
class LineItem:
    """One billed thing, per million objects of the reference workload."""

    name: str
    quantity: float
    """Units per million objects."""
    unit: str
    unit_price_usd: float
    usd: float
    scaling: str
    """``per object``, ``per object x time scale`` or ``per scheduled start``."""


@dataclass(frozen=True)
class CostEstimate:
    """Dollars per million objects, by line item."""

    items: tuple[LineItem, ...]
    excluded: tuple[LineItem, ...]
    time_scale: float
    prices_as_of: str
    region: str

    @property
    def total_usd(self) -> float:
        return sum(item.usd for item in self.items)

    def dominant(self, count: int = 3) -> list[LineItem]:
        """The ``count`` costliest line items, costliest first."""
        return sorted(self.items, key=lambda item: item.usd, reverse=True)[:count]

    def as_dict(self) -> dict[str, Any]:
        return {
            "cost_per_million_objects_usd": round(self.total_usd, 4),
            "time_scale": round(self.time_scale, 4),
            "prices_as_of": self.prices_as_of,
            "region": self.region,
            "line_items": [_rounded(item) for item in self.items],
            "excluded": [_rounded(item) for item in self.excluded],
        }


def _rounded(item: LineItem) -> dict[str, Any]:
    data = asdict(item)
    data["quantity"] = round(item.quantity, 3)
    data["usd"] = round(item.usd, 4)
    return data


PER_OBJECT = "per object"
PER_OBJECT_TIMED = "per object x time scale"
PER_START = "per scheduled start"


@dataclass
class _Pricing:
    """Turns counted quantities into line items at one run's scale factors."""

    per_object: float
    time_scale: float
    per_idle_execution: float
    """Scheduled starts of the reference per idle execution the run counted."""
    items: list[LineItem] = field(default_factory=list)

    def add(self, name: str, count: float, unit: str, unit_price: float, scaling: str = PER_OBJECT) -> None:
        factor = {
            PER_OBJECT: self.per_object,
            PER_OBJECT_TIMED: self.per_object * self.time_scale,
            PER_START: self.per_idle_execution,
        }[scaling]
        quantity = count * factor
        if quantity > 0:
            self.items.append(LineItem(name, quantity, unit, unit_price, quantity * unit_price, scaling))


def _price_requests(pricing: _Pricing, work: CountedWork, prices: PriceTable) -> None:
    """SQS, S3, EventBridge and Lambda requests."""
    sqs = work.sqs_requests
    empty = sum(n for action, n in sqs.items() if action.endswith(EMPTY_RECEIVE_SUFFIX))
    total = sum(n for action, n in sqs.items() if not action.endswith(EMPTY_RECEIVE_SUFFIX))
    sqs_price = prices.sqs_per_million_requests / MILLION
    idle, idle_empty = work.sqs_idle_requests, work.sqs_idle_empty_receives
    pricing.add("SQS requests", total - empty - (idle - idle_empty), "requests", sqs_price)
    pricing.add("SQS empty receives", empty - idle_empty, "requests", sqs_price, PER_OBJECT_TIMED)
    pricing.add("SQS requests (idle starts)", idle, "requests", sqs_price, PER_START)
    s3_put = sum(n for action, n in work.s3_requests.items() if action in S3_PUT_CLASS)
    s3_get = sum(n for action, n in work.s3_requests.items() if action not in S3_PUT_CLASS | S3_FREE)
    pricing.add("S3 PUT/LIST requests", s3_put, "requests", prices.s3_put_per_thousand / 1000)
    pricing.add("S3 GET requests", s3_get, "requests", prices.s3_get_per_thousand / 1000)
    pricing.add(
        "EventBridge events",
        work.eventbridge_events,
        "events",
        prices.eventbridge_per_million_events / MILLION,
    )
    pricing.add(
        "Lambda requests", work.lambda_requests, "requests", prices.lambda_per_million_requests / MILLION
    )


def _price_lambda_duration(pricing: _Pricing, work: CountedWork, prices: PriceTable) -> None:
    try:
        gb_s_price = prices.lambda_per_gb_s[work.lambda_architecture]
    except KeyError as error:
        raise CostModelError(f"no Lambda price for architecture {work.lambda_architecture!r}") from error
    gb_s = work.lambda_billed_ms / 1000 * work.lambda_memory_mb / GIB_MB
    name = f"Lambda duration ({work.lambda_architecture}, {work.lambda_memory_mb} MB)"
    pricing.add(name, gb_s, "GB-s", gb_s_price, PER_OBJECT_TIMED)


def _price_dispatcher(pricing: _Pricing, work: CountedWork, prices: PriceTable) -> None:
    """Standard: transitions; Express: executions and GB-s. Idle starts apart, per scheduled start."""
    idle_name = "Step Functions scheduled starts (idle)"
    if work.dispatcher_type == DISPATCHER_STANDARD:
        price = prices.standard_per_thousand_transitions / 1000
        working = work.sfn_transitions - work.sfn_idle_transitions
        pricing.add("Step Functions Standard transitions", working, "transitions", price)
        pricing.add(idle_name, work.sfn_idle_transitions, "transitions", price, PER_START)
    elif work.dispatcher_type == DISPATCHER_EXPRESS:
        price = prices.express_per_million_executions / MILLION
        pricing.add(
            "Step Functions Express executions",
            work.sfn_executions - work.sfn_idle_executions,
            "executions",
            price,
        )
        pricing.add(idle_name, work.sfn_idle_executions, "executions", price, PER_START)
        step = prices.express_memory_step_mb
        memory_gb = math.ceil(work.express_memory_mb / step) * step / GIB_MB
        working_gb_s = (work.express_billed_ms - work.express_idle_billed_ms) / 1000 * memory_gb
        idle_gb_s = work.express_idle_billed_ms / 1000 * memory_gb
        gb_s_price = prices.express_per_gb_s
        pricing.add("Step Functions Express duration", working_gb_s, "GB-s", gb_s_price, PER_OBJECT_TIMED)
        pricing.add("Step Functions Express duration (idle starts)", idle_gb_s, "GB-s", gb_s_price, PER_START)


def estimate_cost(work: CountedWork, prices: PriceTable) -> CostEstimate:
    """Price ``work`` and scale it to a million objects of ``prices.reference``; see the module doc."""
    idle = work.sfn_idle_executions
    pricing = _Pricing(
        per_object=MILLION / work.objects,
        time_scale=prices.reference.seconds_per_object / work.seconds_per_object if work.rows else 1.0,
        # idle starts follow the schedule: the reference's starts, at the cost of one idle start as measured
        per_idle_execution=prices.reference.scheduled_starts_per_million() / idle if idle else 0.0,
    )
    _price_requests(pricing, work, prices)
    _price_lambda_duration(pricing, work, prices)
    _price_dispatcher(pricing, work, prices)
    pricing.add("CloudWatch Logs ingestion", work.log_bytes / BYTES_PER_GB, "GB", prices.logs_per_gb_ingested)
    users = _Pricing(per_object=pricing.per_object, time_scale=1.0, per_idle_execution=0.0)
    users.add(
        "S3 PUT of the upload (the user's)", work.user_s3_puts, "requests", prices.s3_put_per_thousand / 1000
    )
    return CostEstimate(
        items=tuple(pricing.items),
        excluded=tuple(users.items),
        time_scale=pricing.time_scale,
        prices_as_of=prices.as_of,
        region=prices.region,
    )
