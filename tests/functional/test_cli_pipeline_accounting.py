"""The demo's accounting reads the failed-row sink and the DLQs as an operator would (moto server)."""

import json
import uuid

from _moto_support import moto_client

from s3stagger.cli.pipeline_run import count_sink_rows, dead_letter_keys


def test_sink_rows_are_counted_and_quarantined_objects_named(endpoint_url: str) -> None:
    s3 = moto_client(endpoint_url, "s3")
    bucket = f"sink-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    rows = 'row_number,reason,record_id,note\n2,http 422,a,"two\nlines"\n5,http 400,b,x\n'
    s3.put_object(Bucket=bucket, Key="failed-rows/rows/up/normal/a.csv/v1/rows-2-5.csv", Body=rows.encode())
    s3.put_object(Bucket=bucket, Key="failed-rows/rows/up/normal/b.csv/v1/rows-7-7.csv", Body=b"h\n7\n")
    record = {"bucket": "up", "key": "normal/bad.csv", "reason": "header_mismatch"}
    s3.put_object(
        Bucket=bucket,
        Key="failed-rows/quarantine/up/normal/bad.csv/v1.json",
        Body=json.dumps(record).encode(),
    )
    s3.put_object(Bucket=bucket, Key="elsewhere/rows/x.csv", Body=b"h\n1\n2\n")
    failed, quarantined = count_sink_rows(s3, bucket, "failed-rows/")
    assert failed == 3, "a quoted newline is one row; files outside the prefix are not counted"
    assert quarantined == {"normal/bad.csv"}


def test_dead_letter_keys_are_read_and_the_messages_stay(endpoint_url: str) -> None:
    sqs = moto_client(endpoint_url, "sqs")
    dlq = sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    empty = sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    bodies = [
        {"detail": {"bucket": {"name": "up"}, "object": {"key": f"normal/{index}.csv"}}}
        for index in range(12)
    ]
    for body in bodies:
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(body))
    sqs.send_message(QueueUrl=dlq, MessageBody="not json")
    messages, keys = dead_letter_keys(sqs, [dlq, empty])
    assert messages == 13
    assert sorted(keys) == sorted(f"normal/{index}.csv" for index in range(12))
    depth = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "13", "the DLQ keeps them for the operator"
