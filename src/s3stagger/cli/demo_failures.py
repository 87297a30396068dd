"""``s3stagger demo --scenario failures``: the demo workload plus things going wrong, and the alerts.

On top of the usual workload the run

- sends *poison messages* to the normal queue (a broken producer: bodies that are no S3 event, so
  every processor call fails); after ``max_receive_count`` receives SQS moves them to the DLQ;
- uploads *stray objects* under no route (``incoming/…``): the unrouted rule sends them to the
  ingest DLQ;
- cuts the downstream off for a while once a quarter of the objects are done (connections refused, via
  :class:`~s3stagger.local.outage_proxy.DownstreamOutageProxy`), so invocations fail, the dispatcher
  records "Object processing failed" and the objects are retried once it is back.

Alerting runs for real (:mod:`s3stagger.local.alerting`): the local alarm evaluator raises the
alarms, the notifier mails the local SMTP server over STARTTLS with AUTH. The report adds the
``alerting`` section: ``alarms_fired`` (names), ``emails_received``, ``emails_via_starttls``; rows
are accounted as in every demo (stray objects and poison messages hold no workload rows).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from s3stagger.cli.pipeline_report import PipelineReport
from s3stagger.cli.pipeline_run import (
    PipelineRun,
    PipelineRunResult,
    PipelineRunSettings,
    ProgressListener,
    SectionCollector,
)
from s3stagger.local.alerting import LocalAlertingSettings
from s3stagger.local.outage_proxy import DownstreamOutageProxy
from s3stagger.local.pipeline import LocalPipelineSettings

SECTION = "alerting"
STRAY_PREFIX = "incoming/"


@dataclass(frozen=True)
class FailureScenario:
    poison_messages: int = 3
    stray_objects: int = 2
    outage_after_share: float = 0.25
    """The downstream goes away once this share of the workload's objects is complete."""
    outage_s: float = 8.0
    max_receive_count: int = 3
    failure_retry_delay_s: int = 1
    digest_interval_s: float = 10.0
    settle_timeout_s: float = 60.0
    """How long to wait, once the pipeline has settled, for the last alerts and digests."""


class AlertingCollector:
    """The ``alerting`` section: alarms that fired and the mail that arrived (after the alert queue,
    its delayed digest timers included, has drained)."""

    name = SECTION

    def __init__(self, settle_timeout_s: float) -> None:
        self.settle_timeout_s = settle_timeout_s

    def collect(self, run: PipelineRun) -> dict[str, Any]:
        alerting = run.stack.alerting
        if alerting is None or alerting.names is None or alerting.evaluator is None:
            return {"alarms_fired": [], "emails_received": 0, "emails_via_starttls": 0}
        sqs, queue_url = run.stack.client("sqs"), alerting.names.alert_queue_url
        quiet_s = max(2.0, 2 * alerting.evaluator.shortest_period_s + alerting.evaluator.tick_s)
        _wait_for_alert_queue(sqs, queue_url, quiet_s, self.settle_timeout_s)
        # The figures are final: no alarm changes state from here on, and the alerts already queued
        # are mailed before the notifier stops (it invokes synchronously), so no mail comes later.
        alerting.evaluator.stop()
        _wait_for_alert_queue(sqs, queue_url, 0.5, self.settle_timeout_s)
        if alerting.poller is not None:
            alerting.poller.stop()
        depth = run.stack.queue_depth(alerting.names.alert_dlq_url)
        counters = alerting.smtp.counters
        return {
            "alarms_fired": alerting.evaluator.fired(),
            "emails_received": counters.received,
            "emails_via_starttls": counters.via_starttls,
            "email_subjects": [mail.subject for mail in alerting.smtp.received],
            "alert_dlq_messages": depth.total,
            "mailbox": str(alerting.smtp.mbox_path),
        }


def _wait_for_alert_queue(sqs: Any, queue_url: str, quiet_s: float, timeout_s: float) -> None:
    """Until the alert queue (and its delayed digest timers) stays empty for ``quiet_s``: long enough
    for the alarms to see the last messages that reached a DLQ (two of the shortest periods plus a
    tick)."""
    deadline = time.monotonic() + timeout_s
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        pending = sum(int(value) for value in attributes.values())
        now = time.monotonic()
        if pending:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= quiet_s:
            return
        time.sleep(0.25)


class FailureRun(PipelineRun):
    """A :class:`PipelineRun` whose processor reaches the downstream through an outage proxy, with
    poison messages, stray uploads and an outage window added to the upload step."""

    def __init__(
        self,
        settings: PipelineRunSettings,
        scenario: FailureScenario,
        on_progress: ProgressListener | None = None,
        collectors: Sequence[SectionCollector] = (),
    ) -> None:
        super().__init__(settings, on_progress, collectors)
        self.scenario = scenario
        self.proxy: DownstreamOutageProxy | None = None
        self._outage_thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def pipeline_settings(self) -> LocalPipelineSettings:
        self.proxy = DownstreamOutageProxy(self.simulator.port).start()
        return replace(super().pipeline_settings(), downstream_url=self.proxy.url("/rows"))

    def upload(self) -> None:
        super().upload()
        names, scenario = self.stack.names, self.scenario
        sqs, s3 = self.stack.client("sqs"), self.stack.client("s3")
        for index in range(scenario.poison_messages):
            body = {"poison": index, "note": "a broken producer: not an S3 event"}
            sqs.send_message(QueueUrl=names.queue_urls[names.priorities[-1]], MessageBody=json.dumps(body))
        for index in range(scenario.stray_objects):
            key = f"{STRAY_PREFIX}stray-{index}.csv"
            s3.put_object(Bucket=names.bucket, Key=key, Body=b"id,value\n1,x\n")
        self._outage_thread = threading.Thread(target=self._outage, name="demo-outage", daemon=True)
        self._outage_thread.start()

    def _outage(self) -> None:
        proxy = self.proxy
        if proxy is None:
            return
        due = max(1, round(self.settings.files * self.scenario.outage_after_share))
        while len(self.outcomes.complete_keys) < due:
            if self._stopping.wait(0.2):
                return
        proxy.outage()
        self._stopping.wait(self.scenario.outage_s)
        proxy.restore()

    def stop(self) -> None:
        self._stopping.set()
        if self._outage_thread is not None:
            self._outage_thread.join(timeout=5)
        super().stop()
        if self.proxy is not None:
            self.proxy.stop()


def failure_settings(
    settings: PipelineRunSettings, scenario: FailureScenario, mailbox: Path, emf_log: Path | None
) -> PipelineRunSettings:
    """The run's settings with alerting on and retries fast enough to reach the DLQ in a demo."""
    dispatcher = {
        **dict(settings.pipeline_options.get("dispatcher", {})),
        "failure_retry_delay_s": scenario.failure_retry_delay_s,
    }
    options: dict[str, Any] = {
        **settings.pipeline_options,
        "max_receive_count": scenario.max_receive_count,
        "dispatcher": dispatcher,
        "alerting": LocalAlertingSettings(
            mailbox=mailbox, digest_interval_s=scenario.digest_interval_s, emf_log=emf_log
        ),
    }
    return replace(settings, pipeline_options=options)


def run_failures(
    settings: PipelineRunSettings,
    scenario: FailureScenario,
    mailbox: Path,
    emf_log: Path | None = None,
    on_progress: ProgressListener | None = None,
    *,
    collectors: Sequence[SectionCollector] = (),
) -> PipelineRunResult:
    run = FailureRun(
        failure_settings(settings, scenario, mailbox, emf_log),
        scenario,
        on_progress,
        [AlertingCollector(scenario.settle_timeout_s), *collectors],
    )
    with run:
        run.upload()
        run.follow()
        return run.collect()


def alerting_figures(result: PipelineRunResult) -> dict[str, Any]:
    """The report keys of the failures scenario (``alarms_fired``, ``emails_received``, ...)."""
    return dict(result.sections.get(SECTION, {}))


def failures_exit_status(report: PipelineReport, figures: dict[str, Any]) -> int:
    """0 when every row is accounted for, no row applied twice and the alerts arrived by mail;
    1 rows missing; 3 otherwise. (Messages in the DLQs are what this scenario makes.)"""
    if not report.all_rows_accounted:
        return 1
    if report.duplicate_effects or not figures.get("emails_received"):
        return 3
    return 0


def render_alerting(figures: dict[str, Any]) -> str:
    fired = figures.get("alarms_fired") or []
    lines = [
        f"alarms fired ({len(fired)}): {', '.join(fired) if fired else '-'}",
        f"emails received: {figures.get('emails_received', 0)} "
        f"({figures.get('emails_via_starttls', 0)} over STARTTLS with AUTH); "
        f"alert DLQ: {figures.get('alert_dlq_messages', 0)}",
        *(f"  {subject}" for subject in figures.get("email_subjects", [])),
        f"mailbox: {figures.get('mailbox', '-')}   (s3stagger mail --mbox {figures.get('mailbox', '-')})",
    ]
    return "\n".join(lines)
