"""Logs to Splunk and metrics to Dynatrace in local mode, for real: what ``terraform/modules/splunk-logs``
and ``dynatrace-metrics`` deploy, on loopback.

:class:`LocalObservability` starts

- the local Splunk HEC (:mod:`s3stagger.local.splunk_hec`) and Dynatrace ingest endpoint
  (:mod:`s3stagger.local.dynatrace_ingest`), each a real HTTP server on 127.0.0.1;
- the log capture of the local Lambda runtime (:mod:`s3stagger.local.log_capture`): every line a
  function writes, as CloudWatch Logs would receive it;
- the log path: the subscription-filter and Firehose stand-ins
  (:mod:`s3stagger.local.firehose_splunk`), which run the transform Lambda's code and deliver to
  the HEC with acknowledgement, retries and a backup folder;
- the metric path: the metric-stream stand-in (:mod:`s3stagger.local.metric_stream`) over the
  alarm evaluator's metric sources and the captured EMF lines.

:meth:`LocalObservability.settle` delivers what is still buffered (a run's collector calls it);
:meth:`LocalObservability.figures` reports what was written, received, rejected and backed up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s3stagger.domain.log_records import DEFAULT_INDEX, HecEventSettings
from s3stagger.local.alarm_evaluator import DispatcherExecutionMetrics, LambdaRuntimeMetrics, SqsQueueMetrics
from s3stagger.local.dashboard_page import DashboardPage, dashboard_document, render_dashboard, series_of
from s3stagger.local.dynatrace_ingest import DEFAULT_API_TOKEN, DynatraceIngestReceiver
from s3stagger.local.firehose_splunk import (
    FirehoseSplunkStandIn,
    LogSubscriptionStandIn,
    SplunkDeliverySettings,
)
from s3stagger.local.lambda_runtime import FunctionCounters
from s3stagger.local.lifecycle import LocalService
from s3stagger.local.log_capture import LambdaLogCapture
from s3stagger.local.metric_stream import (
    CapturedEmfMetrics,
    DispatcherStartMetrics,
    MetricStreamSettings,
    MetricStreamStandIn,
)
from s3stagger.local.provision import ClientFactory, ResourceNames
from s3stagger.local.splunk_hec import DEFAULT_TOKEN, SplunkHecReceiver
from s3stagger.local.telemetry_location import (
    BACKUP_DIR,
    DASHBOARD_FILE,
    DYNATRACE_SERIES_FILE,
    SPLUNK_INDEX_FILE,
    default_telemetry_dir,
)

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalObservabilitySettings:
    data_dir: Path | None = None
    """Where the index, the series, the dashboard and the backup go; default :func:`default_telemetry_dir`."""
    splunk_token: str = DEFAULT_TOKEN
    splunk_index: str = DEFAULT_INDEX
    delivery_token: str | None = None
    """The token the Firehose stand-in sends (default: the HEC's own); another one shows a bad token."""
    dynatrace_token: str = DEFAULT_API_TOKEN
    flush_interval_s: float = 1.0
    """Firehose's buffering interval (AWS: 60 s and more)."""
    sample_interval_s: float = 1.0
    metric_period_s: float = 3.0
    """The metric stream's period: AWS 60 s, here x 1/20 like the local alarm evaluator."""
    retry_duration_s: float = 15.0


class LocalObservability(LocalService):
    def __init__(
        self,
        settings: LocalObservabilitySettings,
        stand_in_client: ClientFactory,
        names: ResourceNames,
        counters: Callable[[str], FunctionCounters],
        function_names: Sequence[str],
    ) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir or default_telemetry_dir()
        self._stand_in_client = stand_in_client
        """Clients for the stand-ins of AWS's own work (the metric stream reading queue and
        execution metrics): their requests are nobody's bill, not the pattern's."""
        self._names = names
        self._counters = counters
        self._function_names = list(function_names)
        self.splunk = SplunkHecReceiver(
            settings.splunk_token,
            indexes=(settings.splunk_index,),
            index_path=self.data_dir / SPLUNK_INDEX_FILE,
        )
        self.dynatrace = DynatraceIngestReceiver(
            settings.dynatrace_token, series_path=self.data_dir / DYNATRACE_SERIES_FILE
        )
        self.capture = LambdaLogCapture()
        self.firehose: FirehoseSplunkStandIn | None = None
        self.subscription: LogSubscriptionStandIn | None = None
        self.metric_stream: MetricStreamStandIn | None = None
        self.dashboard_document: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._settled = False

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> LocalObservability:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for name in (SPLUNK_INDEX_FILE, DYNATRACE_SERIES_FILE):
            (self.data_dir / name).write_text("", encoding="utf-8")  # the files describe the last run
        try:
            # read at start, as provisioning reads the other definitions: a broken template fails here
            self.dashboard_document = dashboard_document(
                self._names.name_prefix, f"{self._names.name_prefix} pipeline"
            )
            self.splunk.start()
            self.dynatrace.start()
            self._wire()
            self.capture.install()
        except BaseException:
            self.stop()
            raise
        self._threads = [
            threading.Thread(
                target=self._pump,
                args=(self.settings.flush_interval_s, self._ship_logs),
                name="local-firehose-splunk",
                daemon=True,
            ),
            threading.Thread(
                target=self._pump,
                args=(self.settings.sample_interval_s, self._ship_metrics),
                name="local-metric-stream",
                daemon=True,
            ),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def _wire(self) -> None:
        names, settings = self._names, self.settings
        backup = self.data_dir / BACKUP_DIR / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.firehose = FirehoseSplunkStandIn(
            SplunkDeliverySettings(
                hec_url=self.splunk.url,
                token=settings.delivery_token or settings.splunk_token,
                backup_dir=backup,
                stream_arn=f"arn:aws:firehose:{names.region}:{names.account_id}:deliverystream/"
                f"{names.name_prefix}-splunk-logs",
                events=HecEventSettings(index=settings.splunk_index),
                retry_duration_s=settings.retry_duration_s,
            )
        )
        self.subscription = LogSubscriptionStandIn(
            self.capture.consumer(), self.firehose.put_records, owner=names.account_id
        )
        sqs, sfn = self._stand_in_client("sqs"), self._stand_in_client("stepfunctions")
        queues = {url.rsplit("/", 1)[-1]: url for url in (*names.queue_urls.values(), *names.all_dlq_urls)}
        self.metric_stream = MetricStreamStandIn(
            MetricStreamSettings(
                ingest_url=self.dynatrace.ingest_url,
                token=settings.dynatrace_token,
                account_id=names.account_id,
                region=names.region,
                backup_dir=backup,
                period_s=settings.metric_period_s,
                retry_duration_s=settings.retry_duration_s,
            ),
            [
                CapturedEmfMetrics(self.capture.consumer()),
                SqsQueueMetrics(sqs, queues),
                LambdaRuntimeMetrics(self._counters, self._function_names),
                DispatcherStartMetrics(sfn, names.state_machine_arn),
                DispatcherExecutionMetrics(sfn, names.state_machine_arn, lambda execution: None),
            ],
        )

    def _pump(self, interval_s: float, work: Callable[[], None]) -> None:
        while not self._stop.wait(interval_s):
            try:
                work()
            except Exception:  # the pump must outlive one failed round; say so and go on
                LOGGER.exception("local telemetry shipping failed")

    def _ship_logs(self) -> None:
        if self.subscription is not None and self.firehose is not None:
            self.subscription.flush()
            self.firehose.flush()

    def _ship_metrics(self) -> None:
        if self.metric_stream is not None:
            self.metric_stream.sample()
            self.metric_stream.flush()

    def settle(self) -> None:
        """Stop the pumps and deliver everything still buffered (logs, the open metric period)."""
        if self._settled:
            return
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self._ship_logs()
        if self.metric_stream is not None:
            self.metric_stream.sample()
            self.metric_stream.flush(final=True)
        self._settled = True

    def stop(self) -> None:
        try:
            if self.firehose is not None:
                self.settle()
        finally:
            self.capture.uninstall()
            for closable in (self.firehose, self.metric_stream):
                if closable is not None:
                    closable.close()
            self.splunk.stop()
            self.dynatrace.stop()

    def endpoints(self) -> dict[str, str]:
        """What ``local up`` prints: the receivers' URLs and tokens, and where the telemetry goes."""
        return {
            "splunk_hec_url": self.splunk.url,
            "splunk_token": self.splunk.token,
            "dynatrace_ingest_url": self.dynatrace.ingest_url,
            "dynatrace_token": self.dynatrace.token,
            "data_dir": str(self.data_dir),
        }

    def render_dashboard(self, rows_per_s_limit: float | None = None) -> DashboardPage:
        """Write the dashboard page from the data points the local Dynatrace kept."""
        if self.dashboard_document is None:
            raise RuntimeError("local observability is not started")
        return render_dashboard(
            self.data_dir / DASHBOARD_FILE,
            self.dashboard_document,
            series_of(self.dynatrace.series()),
            self.settings.metric_period_s,
            rows_per_s_limit,
        )

    # -- figures --------------------------------------------------------------------------------------
    def figures(self) -> dict[str, Any]:
        """What the functions wrote and what reached Splunk and Dynatrace (call :meth:`settle` first)."""
        written = self.capture.lines_written()
        hec, ingest = self.splunk.stats(), self.dynatrace.stats()
        delivery = self.firehose.stats if self.firehose is not None else None
        stream = self.metric_stream.stats if self.metric_stream is not None else None
        lines = sum(written.values())
        backed_up = delivery.events_backed_up if delivery else 0
        return {
            "function_log_lines": lines,
            "function_log_lines_by_function": written,
            "splunk_events_received": hec.events_received,
            "splunk_events_rejected": hec.events_rejected,
            "splunk_events_backed_up": backed_up,
            "splunk_events_lost": lines - hec.events_received - backed_up,
            "splunk_delivery_retries": delivery.retries if delivery else 0,
            "splunk_delivery_error": delivery.error if delivery else None,
            "firehose_records_dropped": delivery.records_dropped if delivery else 0,
            "firehose_records_processing_failed": delivery.records_processing_failed if delivery else 0,
            "dynatrace_lines_received": ingest.lines_received,
            "dynatrace_lines_invalid": ingest.lines_invalid,
            "dynatrace_lines_backed_up": stream.lines_backed_up if stream else 0,
            "dynatrace_delivery_retries": stream.retries if stream else 0,
            "dynatrace_delivery_error": stream.error if stream else None,
            "dynatrace_metric_keys": len(self.dynatrace.metric_keys()),
            "splunk_index": str(self.data_dir / SPLUNK_INDEX_FILE),
            "dynatrace_series": str(self.data_dir / DYNATRACE_SERIES_FILE),
        }
