"""The named scenarios and dispatchers ``perf-test`` compares.

A :class:`Scenario` is a workload (groups of objects: priority, count, rows), how it is uploaded
(all at once, or spread over some seconds) and the downstream it meets (capacity C, latency L).
Full sizes are chosen so the whole comparison (every scenario x every dispatcher) takes about 10-15
minutes on 2 cores; ``quick`` sizes keep a CI run under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from s3stagger.cli.sample_data import SampleObject, run_id_for_seed, sample_csv, sample_object_key
from s3stagger.domain.flight import FlightPlan, plan_flight
from s3stagger.errors import S3StaggerError

EXPRESS = "v2-express"
STANDARD = "v2-standard"
NO_STAGGER = "no-stagger"
SQS_MAPPING = "sqs-mapping"
DISPATCHERS: tuple[str, ...] = (EXPRESS, STANDARD, NO_STAGGER, SQS_MAPPING)
"""Every dispatcher compared, the pattern's first."""
STATE_MACHINE_TYPES = {EXPRESS: "EXPRESS", STANDARD: "STANDARD"}
QUICK_SCENARIOS = ("demo",)
"""What ``--quick`` runs unless scenarios are named: each run needs a fresh stack (about 10 s)."""


class ScenarioError(S3StaggerError):
    """An unknown scenario or dispatcher name."""


@dataclass(frozen=True)
class ObjectGroup:
    priority: str
    count: int
    rows: int


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    groups: tuple[ObjectGroup, ...]
    capacity: int = 20
    latency_s: float = 0.2
    budget: int = 5
    upload_spread_s: float = 0.0
    """0: every object uploaded at once (10 upload workers); else uploads evenly over this long."""
    upload_workers: int = 10
    timeout_s: float = 180.0

    @property
    def objects(self) -> int:
        return sum(group.count for group in self.groups)

    @property
    def rows(self) -> int:
        return sum(group.count * group.rows for group in self.groups)

    @property
    def flight_plan(self) -> FlightPlan:
        """``budget`` objects at once, each with capacity // budget rows in flight, so they fit C."""
        return plan_flight(self.capacity, self.budget)

    def sample_objects(self, key_prefixes: dict[str, str], seed: int = 1) -> Iterator[SampleObject]:
        """The scenario's CSV objects, keys under each group's priority prefix, rows distinct."""
        run_id = run_id_for_seed(seed)
        index = 0
        for group in self.groups:
            for _ in range(group.count):
                text = sample_csv(run_id, index, group.rows, seed)
                key = sample_object_key(key_prefixes[group.priority], run_id, index)
                yield SampleObject(key=key, body=text.encode("utf-8"), rows=group.rows)
                index += 1


def scenarios(quick: bool) -> dict[str, Scenario]:
    """Every scenario by name, full or ``quick`` size."""
    scale = 10 if quick else 1

    def n(count: int) -> int:
        return max(1, count // scale)

    listed = [
        Scenario(
            name="demo",
            description="the demo workload: 100 objects x 50 rows (10 % high), C = 20, L = 200 ms, budget 5",
            groups=(
                ObjectGroup("high", n(10), 50 // (5 if quick else 1)),
                ObjectGroup("normal", n(90), 50 // (5 if quick else 1)),
            ),
        ),
        Scenario(
            name="skewed",
            description="one big object among many small ones: 1 x 1,200 rows then 60 x 10 rows, L = 50 ms",
            groups=(ObjectGroup("normal", 1, 1200 // scale), ObjectGroup("normal", n(60), 10)),
            latency_s=0.05,
        ),
        Scenario(
            name="burst",
            description="30 objects x 50 rows uploaded all at once, C = 20, L = 100 ms",
            groups=(ObjectGroup("normal", n(30), 50 // (5 if quick else 1)),),
            latency_s=0.1,
        ),
        Scenario(
            name="spread",
            description="the burst's 30 objects x 50 rows uploaded evenly over 15 s",
            groups=(ObjectGroup("normal", n(30), 50 // (5 if quick else 1)),),
            latency_s=0.1,
            upload_spread_s=15.0 / scale,
        ),
        Scenario(
            name="priority-mix",
            description="20 normal then 20 high objects x 30 rows uploaded at once: high must overtake",
            groups=(
                ObjectGroup("normal", n(20), 30 // (3 if quick else 1)),
                ObjectGroup("high", n(20), 30 // (3 if quick else 1)),
            ),
            latency_s=0.1,
        ),
    ]
    return {scenario.name: scenario for scenario in listed}


def select(names: list[str] | None, known: dict[str, Scenario]) -> list[Scenario]:
    """The scenarios named (all when ``names`` is empty), in the order given."""
    if not names:
        return list(known.values())
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ScenarioError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[name] for name in names]


def select_dispatchers(names: list[str] | None) -> list[str]:
    """The dispatchers named (all when ``names`` is empty), in the order given."""
    if not names:
        return list(DISPATCHERS)
    unknown = [name for name in names if name not in DISPATCHERS]
    if unknown:
        raise ScenarioError(f"unknown dispatcher(s) {', '.join(unknown)}; known: {', '.join(DISPATCHERS)}")
    return names
