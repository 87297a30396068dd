"""The alarms section of ``s3stagger monitor``: every alarm whose name starts with a prefix, and its state.

On AWS these are CloudWatch's own states; in local mode the local alarm evaluator records them in the
emulator (``SetAlarmState``), so the same call shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.table import Table

STATE_STYLE = {"ALARM": "bold red", "OK": "green", "INSUFFICIENT_DATA": "yellow"}


@dataclass(frozen=True)
class AlarmStatus:
    name: str
    state: str
    since: str
    reason: str


def read_alarm_states(cloudwatch: Any, name_prefix: str) -> tuple[AlarmStatus, ...]:
    """Every metric alarm named ``<name_prefix>…``, those in ALARM first."""
    alarms: list[AlarmStatus] = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=name_prefix):
        for alarm in page.get("MetricAlarms", []):
            updated = alarm.get("StateUpdatedTimestamp")
            alarms.append(
                AlarmStatus(
                    name=str(alarm["AlarmName"]),
                    state=str(alarm.get("StateValue", "?")),
                    since=updated.strftime("%H:%M:%S") if updated is not None else "-",
                    reason=str(alarm.get("StateReason", "")),
                )
            )
    order = {"ALARM": 0, "INSUFFICIENT_DATA": 1, "OK": 2}
    return tuple(sorted(alarms, key=lambda a: (order.get(a.state, 3), a.name)))


def render_alarm_states(alarms: tuple[AlarmStatus, ...]) -> Table:
    firing = sum(1 for alarm in alarms if alarm.state == "ALARM")
    table = Table(title=f"alarms ({firing} of {len(alarms)} in ALARM)", title_justify="left")
    for column in ("alarm", "state", "since", "reason"):
        table.add_column(column, overflow="fold")
    for alarm in alarms:
        style = STATE_STYLE.get(alarm.state, "")
        table.add_row(
            alarm.name, f"[{style}]{alarm.state}[/]" if style else alarm.state, alarm.since, alarm.reason[:80]
        )
    return table
