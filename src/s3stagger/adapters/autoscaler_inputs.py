"""What the autoscaler reads on AWS: the priority queues' depth (SQS) and the processor's signals
(CloudWatch: the processor's EMF metrics, Lambda's throttles, SQS's age of the oldest message)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from s3stagger.domain.autoscale import Backlog, DownstreamSignals

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_sqs import SQSClient


class SqsBacklog:
    """Visible and in-flight messages of each priority queue (one message = one object)."""

    def __init__(
        self,
        sqs: SQSClient,
        queue_urls: Mapping[str, str],
        oldest_age_s: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self._sqs = sqs
        self._queue_urls = dict(queue_urls)
        self._oldest_age_s = oldest_age_s

    def read_backlog(self) -> Backlog:
        visible: dict[str, int] = {}
        in_flight: dict[str, int] = {}
        for priority, url in self._queue_urls.items():
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            visible[priority] = int(attributes.get("ApproximateNumberOfMessages", "0"))
            in_flight[priority] = int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0"))
        return Backlog(visible=visible, in_flight=in_flight, oldest_age_s=self._oldest_age_s())


PROCESSOR_SUMS = ("RowsApplied", "RowsFailed", "RowsRetried", "Throttled429", "DownstreamTimeouts")


class CloudWatchSignals:
    """The processor's EMF metrics over the last ``interval_s`` (CloudWatch's 1-minute resolution).

    Row requests answered = RowsApplied + RowsFailed + RowsRetried + Throttled429 (each retry and
    each 429 is one more request); 5xx are the rows that failed for good (RowsFailed), the
    processor's retries absorb the rest. Latency: the mean of DownstreamLatencyAvg.
    """

    def __init__(
        self,
        cloudwatch: CloudWatchClient,
        namespace: str,
        service: str,
        function_name: str,
        *,
        queue_names: Sequence[str],
        interval_s: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._cloudwatch = cloudwatch
        self._namespace = namespace
        self._service = service
        self._function_name = function_name
        self._queue_names = list(queue_names)
        self.interval_s = interval_s
        self._clock = clock
        self.oldest_age_s = 0.0
        """The oldest message's age (s) over the priority queues, as of the last read."""

    def _queries(self) -> list[Any]:
        period = max(60, int(self.interval_s))
        processor = [{"Name": "service", "Value": self._service}]

        def query(query_id: str, namespace: str, name: str, dimensions: Any, stat: str) -> dict[str, Any]:
            return {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
                    "Period": period,
                    "Stat": stat,
                },
                "ReturnData": True,
            }

        queries = [query(name.lower(), self._namespace, name, processor, "Sum") for name in PROCESSOR_SUMS]
        queries.append(query("latency", self._namespace, "DownstreamLatencyAvg", processor, "Average"))
        function = [{"Name": "FunctionName", "Value": self._function_name}]
        queries.append(query("lambdathrottles", "AWS/Lambda", "Throttles", function, "Sum"))
        queries.append(query("calls", "AWS/Lambda", "ConcurrentExecutions", function, "Maximum"))
        queries.extend(
            query(
                f"oldest{index}",
                "AWS/SQS",
                "ApproximateAgeOfOldestMessage",
                [{"Name": "QueueName", "Value": name}],
                "Maximum",
            )
            for index, name in enumerate(self._queue_names)
        )
        return queries

    def read_signals(self) -> DownstreamSignals:
        end = self._clock()
        start = end - timedelta(seconds=max(60.0, self.interval_s))
        answer = self._cloudwatch.get_metric_data(
            MetricDataQueries=self._queries(), StartTime=start, EndTime=end
        )
        values: dict[str, list[float]] = {
            result["Id"]: [float(value) for value in result.get("Values", [])]
            for result in answer["MetricDataResults"]
        }

        def total(query_id: str) -> int:
            return round(sum(values.get(query_id, [])))

        latencies = values.get("latency", [])
        ages = [age for key, series in values.items() if key.startswith("oldest") for age in series]
        self.oldest_age_s = max(ages, default=0.0)
        throttled = total("throttled429")
        calls = values.get("calls", [])
        return DownstreamSignals(
            requests=total("rowsapplied") + total("rowsfailed") + total("rowsretried") + throttled,
            throttled_429=throttled,
            timeouts=total("downstreamtimeouts"),
            errors_5xx=total("rowsfailed"),
            lambda_throttles=total("lambdathrottles"),
            latency_ms=sum(latencies) / len(latencies) if latencies else None,
            interval_s=max(60.0, self.interval_s),
            calls_in_flight=round(calls[0]) if calls else None,
        )
