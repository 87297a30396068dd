"""CloudWatch Embedded Metric Format: the metrics a log line carries (pure parsing).

CloudWatch extracts metrics from a log line whose ``_aws.CloudWatchMetrics`` lists, per namespace,
the dimension sets and the metric names; each value is the line's member of that name (a number or
a list of numbers). Local mode reads the processor's EMF lines this way, as CloudWatch would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EmfDatapoint:
    namespace: str
    name: str
    dimensions: Mapping[str, str]
    value: float


def parse_emf_line(line: str) -> list[EmfDatapoint]:
    """The datapoints of one log line; none if it is not an EMF document."""
    try:
        document = json.loads(line)
    except ValueError:
        return []
    if not isinstance(document, dict):
        return []
    directives = (
        (document.get("_aws") or {}).get("CloudWatchMetrics")
        if isinstance(document.get("_aws"), dict)
        else None
    )
    if not isinstance(directives, list):
        return []
    points: list[EmfDatapoint] = []
    for directive in directives:
        namespace = str(directive.get("Namespace", ""))
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = {str(name): str(document.get(name, "")) for name in dimension_set}
            for metric in directive.get("Metrics") or []:
                name = str(metric.get("Name", ""))
                points.extend(
                    EmfDatapoint(namespace, name, dimensions, value) for value in _values(document.get(name))
                )
    return points


def _values(raw: Any) -> list[float]:
    items = raw if isinstance(raw, list) else [raw]
    return [float(item) for item in items if isinstance(item, int | float) and not isinstance(item, bool)]
