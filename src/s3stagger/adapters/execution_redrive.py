"""Failed dispatcher executions, started again.

* **Standard**: each execution that ended FAILED, TIMED_OUT or ABORTED (``ListExecutions``) is
  redriven in place with ``RedriveExecution``: it restarts at the state that failed, with its own
  input. One that cannot be (already redriven and running, older than 14 days, or it succeeded since)
  is reported with the reason Step Functions gives, so a second run redrives nothing twice.
* **Express** keeps no execution history (``ListExecutions`` does not list Express executions): a
  failed Express dispatcher is re-dispatched by starting one new execution. Its messages are still in
  their queues (they reappear when the failed execution's visibility lapses), so one start is enough
  whatever failed; the lease lets only one dispatcher run.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import botocore.exceptions

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

ENDED_BADLY: tuple[Literal["FAILED", "TIMED_OUT", "ABORTED"], ...] = ("FAILED", "TIMED_OUT", "ABORTED")


@dataclass
class ExecutionRedriveReport:
    dry_run: bool
    state_machine_type: str
    redriven: list[str] = field(default_factory=list)
    """Execution ARNs redriven (or, dry, that would be); for Express, the new execution started."""
    refused: Counter[str] = field(default_factory=Counter)
    """Why an execution could not be redriven, by reason."""
    statuses: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "state_machine_type": self.state_machine_type,
            "redriven": len(self.redriven),
            "executions": self.redriven,
            "refused": dict(self.refused),
            "statuses": dict(self.statuses),
        }


class ExecutionRedrive:
    def __init__(self, sfn: SFNClient, state_machine_arn: str) -> None:
        self._sfn = sfn
        self._arn = state_machine_arn

    def run(
        self, *, min_age_s: float = 0.0, limit: int | None = None, dry_run: bool = False
    ) -> ExecutionRedriveReport:
        kind = self._sfn.describe_state_machine(stateMachineArn=self._arn)["type"]
        report = ExecutionRedriveReport(dry_run, kind)
        if kind == "EXPRESS":
            if not dry_run:
                name = f"redrive-{int(time.time())}"
                answer = self._sfn.start_execution(
                    stateMachineArn=self._arn, name=name, input=f'{{"slot": "{name}"}}'
                )
                report.redriven.append(answer["executionArn"])
            else:
                report.redriven.append("(a new execution)")
            return report
        for arn in self._ended_badly(min_age_s, report)[:limit]:
            self._redrive(arn, report)
        return report

    def _ended_badly(self, min_age_s: float, report: ExecutionRedriveReport) -> list[str]:
        """Executions that failed, timed out or were stopped at least ``min_age_s`` ago."""
        now = datetime.now(UTC)
        found: list[str] = []
        for status in ENDED_BADLY:
            paginator = self._sfn.get_paginator("list_executions")
            for page in paginator.paginate(stateMachineArn=self._arn, statusFilter=status):
                for execution in page["executions"]:
                    stopped = execution.get("stopDate")
                    if stopped is not None and (now - stopped).total_seconds() < min_age_s:
                        continue
                    report.statuses[status] += 1
                    found.append(execution["executionArn"])
        return found

    def _redrive(self, arn: str, report: ExecutionRedriveReport) -> None:
        if report.dry_run:
            report.redriven.append(arn)
            return
        try:
            self._sfn.redrive_execution(executionArn=arn)
        except botocore.exceptions.ClientError as error:
            code = error.response.get("Error", {}).get("Code", "ClientError")
            report.refused[f"{code}: {error.response.get('Error', {}).get('Message', '')}".strip()] += 1
            return
        report.redriven.append(arn)
