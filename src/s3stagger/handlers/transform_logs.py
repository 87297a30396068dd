"""Lambda handler ``transform_logs``: Firehose's data transformation for the Splunk log stream.

Thin: read the settings, run :func:`~s3stagger.domain.log_records.transform_records` on the
records Firehose hands over, put the records that would overflow the 6 MB response back into the
delivery stream (``firehose:PutRecordBatch`` on the event's ``deliveryStreamArn``; answered
``Dropped``), and answer ``{"records": [...]}``.

Settings (environment): ``S3STAGGER_SPLUNK_INDEX`` (default ``main``) and
``S3STAGGER_SPLUNK_SOURCETYPE`` (default ``s3stagger:lambda``). It writes no log line per record:
its own log group is not subscribed, and Firehose's CloudWatch logging reports its failures.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from s3stagger.domain.log_records import (
    DEFAULT_INDEX,
    DEFAULT_SOURCETYPE,
    HecEventSettings,
    mark_failed,
    mark_reingested,
    transform_records,
)

INDEX_VARIABLE = "S3STAGGER_SPLUNK_INDEX"
SOURCETYPE_VARIABLE = "S3STAGGER_SPLUNK_SOURCETYPE"
PUT_RECORD_BATCH_MAX = 500

Reingest = Callable[[str, Sequence[bytes]], None]
"""Put raw records back into the delivery stream named by its ARN."""


def settings_from_env(env: Mapping[str, str] = os.environ) -> HecEventSettings:
    return HecEventSettings(
        index=env.get(INDEX_VARIABLE) or DEFAULT_INDEX,
        sourcetype=env.get(SOURCETYPE_VARIABLE) or DEFAULT_SOURCETYPE,
    )


def firehose_reingest(stream_arn: str, records: Sequence[bytes]) -> None:
    """``PutRecordBatch`` into the stream (in batches of 500); a partial failure raises, so Firehose
    retries the whole invocation and nothing is lost."""
    import boto3  # noqa: PLC0415 - only when a batch overflows

    client = boto3.client("firehose")
    name = stream_arn.rsplit("/", 1)[-1]
    for start in range(0, len(records), PUT_RECORD_BATCH_MAX):
        answer = client.put_record_batch(
            DeliveryStreamName=name,
            Records=[{"Data": data} for data in records[start : start + PUT_RECORD_BATCH_MAX]],
        )
        if answer.get("FailedPutCount"):
            raise RuntimeError(f"{answer['FailedPutCount']} records could not be put back into {name}")


def transform(
    event: Mapping[str, Any], settings: HecEventSettings, reingest: Reingest | None
) -> dict[str, Any]:
    """The answer to one Firehose transformation event."""
    transformation = transform_records(event.get("records") or [], settings)
    stream_arn = event.get("deliveryStreamArn")
    if transformation.overflow and reingest is not None and stream_arn:
        reingest(str(stream_arn), [base64.b64decode(str(r["data"])) for r in transformation.overflow])
        mark_reingested(transformation)
    else:
        mark_failed(transformation)
    return transformation.response()


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (``s3stagger.handlers.transform_logs.handler``)."""
    return transform(event, settings_from_env(), firehose_reingest)
