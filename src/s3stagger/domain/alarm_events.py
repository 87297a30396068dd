"""AWS-shaped EventBridge events that local mode must emit itself (pure: dicts in, dicts out).

- "CloudWatch Alarm State Change" (source ``aws.cloudwatch``), as CloudWatch puts it on the default
  bus when an alarm changes state: ``alarmName``, ``state`` / ``previousState``
  (``value``, ``reason``, ``reasonData``, ``timestamp``), ``configuration`` (description, metrics).
- "Step Functions Execution Status Change" (source ``aws.states``) for a Standard execution that
  ended FAILED, TIMED_OUT or ABORTED.

Each function returns a ``PutEvents`` entry; EventBridge adds ``id``, ``time``, ``account`` and
``region`` as it does for AWS's own events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from s3stagger.domain.alarm_evaluation import AlarmState, Evaluation, iso_timestamp


@dataclass(frozen=True)
class AlarmStateRecord:
    value: AlarmState
    reason: str
    reason_data: str
    timestamp: float

    def as_detail(self) -> dict[str, Any]:
        return {
            "value": self.value.value,
            "reason": self.reason,
            "reasonData": self.reason_data,
            "timestamp": iso_timestamp(self.timestamp),
        }


def reason_data(evaluation: Evaluation, statistic: str, period_s: float, threshold: float, now: float) -> str:
    """CloudWatch's ``reasonData`` JSON: recent datapoints (newest first) and the threshold."""
    points = [point for point in evaluation.evaluated if point.value is not None]
    data: dict[str, Any] = {
        "version": "1.0",
        "queryDate": iso_timestamp(now),
        "statistic": statistic,
        "period": int(period_s) if float(period_s).is_integer() else period_s,
        "recentDatapoints": [point.value for point in points],
        "threshold": threshold,
        "evaluatedDatapoints": [
            {"timestamp": iso_timestamp(point.start), "value": point.value} for point in points
        ],
    }
    if points:
        data["startDate"] = iso_timestamp(points[-1].start)
    return json.dumps(data, separators=(",", ":"))


def alarm_state_change_entry(
    *,
    alarm_name: str,
    alarm_arn: str,
    description: str,
    namespace: str,
    metric_name: str,
    dimensions: Mapping[str, str],
    statistic: str,
    period_s: int,
    previous: AlarmStateRecord,
    current: AlarmStateRecord,
    event_bus_name: str = "default",
) -> dict[str, Any]:
    detail = {
        "alarmName": alarm_name,
        "state": current.as_detail(),
        "previousState": previous.as_detail(),
        "configuration": {
            "description": description,
            "metrics": [
                {
                    "id": "m1",
                    "metricStat": {
                        "metric": {
                            "namespace": namespace,
                            "name": metric_name,
                            "dimensions": dict(dimensions),
                        },
                        "period": period_s,
                        "stat": statistic,
                    },
                    "returnData": True,
                }
            ],
        },
    }
    return {
        "Source": "aws.cloudwatch",
        "DetailType": "CloudWatch Alarm State Change",
        "Resources": [alarm_arn],
        "Detail": json.dumps(detail),
        "EventBusName": event_bus_name,
    }


def execution_status_change_entry(
    execution: Mapping[str, Any], event_bus_name: str = "default"
) -> dict[str, Any]:
    """The entry for a ``DescribeExecution`` answer of an execution that has ended."""

    def epoch_ms(value: Any) -> int | None:
        return None if value is None else int(value.timestamp() * 1000)

    detail = {
        "executionArn": execution["executionArn"],
        "stateMachineArn": execution["stateMachineArn"],
        "name": execution.get("name"),
        "status": execution["status"],
        "startDate": epoch_ms(execution.get("startDate")),
        "stopDate": epoch_ms(execution.get("stopDate")),
        "input": execution.get("input"),
        "output": execution.get("output"),
        "error": execution.get("error"),
        "cause": execution.get("cause"),
    }
    return {
        "Source": "aws.states",
        "DetailType": "Step Functions Execution Status Change",
        "Resources": [execution["executionArn"]],
        "Detail": json.dumps(detail),
        "EventBusName": event_bus_name,
    }
