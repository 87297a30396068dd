"""How a CloudWatch metric is named once a metric stream has brought it to Dynatrace (pure).

Dynatrace's AWS metric-stream ingest names a CloudWatch metric
``cloud.aws.<namespace>.<metricName>By<DimensionNames>``: the namespace without ``AWS/``, lower
case; the metric name with its first letter lowered; the dimension names it is published with,
each capitalised, in alphabetical order. The CloudWatch dimensions become Dynatrace dimensions of
lower-case names, next to ``aws.account.id`` and ``aws.region``. One function holds that naming, so
the dashboard's tiles, the local metric-stream stand-in and the test that ties them can not drift.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

PREFIX = "cloud.aws"
_NOT_KEY_CHARACTER = re.compile(r"[^A-Za-z0-9_]")


def namespace_section(namespace: str) -> str:
    """``AWS/SQS`` → ``sqs``; a custom namespace (``s3stagger``) keeps its name, lower case."""
    name = namespace.removeprefix("AWS/")
    return _NOT_KEY_CHARACTER.sub("_", name).lower()


def metric_stream_key(namespace: str, metric_name: str, dimension_names: Iterable[str]) -> str:
    """The Dynatrace metric key of a CloudWatch metric published with ``dimension_names``."""
    metric = _NOT_KEY_CHARACTER.sub("_", metric_name)
    metric = metric[:1].lower() + metric[1:]
    names = sorted(dimension_names)
    suffix = (
        "By" + "".join(name[:1].upper() + _NOT_KEY_CHARACTER.sub("", name[1:]) for name in names)
        if names
        else ""
    )
    return f"{PREFIX}.{namespace_section(namespace)}.{metric}{suffix}"


def metric_stream_dimensions(dimensions: Mapping[str, str], account_id: str, region: str) -> dict[str, str]:
    """The Dynatrace dimensions of a CloudWatch metric's data point."""
    named = {name.lower(): value for name, value in dimensions.items()}
    return {"aws.account.id": account_id, "aws.region": region, **named}
