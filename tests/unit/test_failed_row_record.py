"""Failed-row records keep what a replay needs; a row is rebuilt from its bytes or refused with the reason."""

from __future__ import annotations

import asyncio
import random

import pytest
from test_processor_core import REF, KeptSink, MemorySource, ScriptedDownstream, no_wait

from s3stagger.config import ProcessorSettings
from s3stagger.domain.csv_rows import CsvFormat, CsvObjectReader
from s3stagger.domain.delivery import Delivery, DeliveryOutcome
from s3stagger.domain.failed_row_record import (
    FailedRowRecordError,
    RefusedRow,
    ReplayableRow,
    parse_record,
    rebuild_row,
)
from s3stagger.domain.idempotency import row_idempotency_key
from s3stagger.domain.model import ObjectRef, ProcessRequest
from s3stagger.domain.rejection import ObjectRejectedError, RejectionReason
from s3stagger.processor import ObjectProcessor

FMT = CsvFormat(max_line_bytes=200, max_field_bytes=100)
SETTINGS = ProcessorSettings(
    downstream_url="http://downstream.test/rows", max_line_bytes=200, max_field_bytes=100, max_attempts=1
)
OK = Delivery(DeliveryOutcome.APPLIED, 200, "ok")
REFUSED_422 = Delivery(DeliveryOutcome.REJECTED, 422, "HTTP 422: no")

OBJECT = (
    "\ufeff=id,name\r\n".encode()
    + b"1,ok\r\n"
    + b"2,Caf\xe9 cr\xe8me\r\n"  # latin-1 bytes: not UTF-8
    + b"3,"
    + b"y" * 300
    + b"\r\n"  # over max_line_bytes: skipped unbuffered
    + b'4,"=SUM(A1)"\r\n'  # refused by the downstream: a formula-looking value, neutralised on display
    + b"5,"
    + b"z" * 150
    + b"\r\n"  # a field over max_field_bytes, on a line within the limit
)


def processed_record() -> str:
    sink = KeptSink()
    downstream = ScriptedDownstream(lambda row, _attempt: REFUSED_422 if row == 4 else OK)
    processor = ObjectProcessor(
        SETTINGS, MemorySource(OBJECT), sink, downstream, rng=random.Random(1), sleep=no_wait
    )
    summary, _ = asyncio.run(processor.run(ProcessRequest(REF)))
    assert (summary.rows_applied, summary.rows_failed) == (1, 4)
    (body,) = sink.s3.puts.values()
    return body.decode("utf-8")


def test_a_record_keeps_each_rows_bytes_offset_key_and_version() -> None:
    record = parse_record(processed_record(), "test")
    assert record.header_line == "\ufeff=id,name\r\n".encode()
    by_number = {row.row_number: row for row in record.rows}
    assert sorted(by_number) == [2, 3, 4, 5]
    assert by_number[2].line == b"2,Caf\xe9 cr\xe8me\r\n"
    assert by_number[3].line is None
    assert by_number[4].line == b'4,"=SUM(A1)"\r\n'
    for row in record.rows:
        assert row.idempotency_key == row_idempotency_key(REF.bucket, REF.key, "etag-1", row.row_number)
        assert row.etag == "etag-1"
        if row.line is not None:
            assert OBJECT[row.byte_offset : row.byte_offset + len(row.line)] == row.line
    assert by_number[3].byte_offset == OBJECT.index(b"3,")


def test_replay_sends_the_original_values_never_the_neutralised_ones() -> None:
    record = parse_record(processed_record(), "test")
    row = next(r for r in record.rows if r.row_number == 4)
    assert rebuild_row(record, row, FMT) == ReplayableRow({"=id": "4", "name": "=SUM(A1)"})


def test_a_latin1_row_is_refused_with_the_reason_or_sent_with_its_true_characters() -> None:
    record = parse_record(processed_record(), "test")
    row = next(r for r in record.rows if r.row_number == 2)
    refused = rebuild_row(record, row, FMT)
    assert isinstance(refused, RefusedRow)
    assert "not valid UTF-8 (byte 0xE9" in refused.reason
    assert rebuild_row(record, row, FMT, source_encoding="latin-1") == ReplayableRow(
        {"=id": "2", "name": "Café crème"}
    )


def test_an_oversize_row_is_refused_with_the_reason_never_sent_empty_or_cut() -> None:
    record = parse_record(processed_record(), "test")
    lost = next(r for r in record.rows if r.row_number == 3)
    refused = rebuild_row(record, lost, FMT)
    assert isinstance(refused, RefusedRow)
    assert "were not kept" in refused.reason
    assert f"byte {lost.byte_offset}" in refused.reason
    big_field = next(r for r in record.rows if r.row_number == 5)
    too_big = rebuild_row(record, big_field, FMT)
    assert isinstance(too_big, RefusedRow)
    assert "over S3STAGGER_MAX_FIELD_BYTES=100" in too_big.reason
    # with a limit that lets it through, the whole original value is sent
    assert rebuild_row(record, big_field, CsvFormat()) == ReplayableRow({"=id": "5", "name": "z" * 150})


def test_a_file_that_is_not_a_record_is_refused_by_name() -> None:
    with pytest.raises(FailedRowRecordError, match="s3://b/k: not a failed-rows record"):
        parse_record("row_number,reason,id\n1,x,2\n", "s3://b/k")
    with pytest.raises(FailedRowRecordError, match="unreadable"):
        parse_record(processed_record().replace("\n2,", "\nx,", 1), "s3://b/k")


@pytest.mark.parametrize(
    ("header", "other"), [(b"id;name;amount", ";"), (b"id\tname", "\t"), (b"id|name", "|")]
)
def test_a_header_delimited_by_another_character_is_rejected_with_the_reason(
    header: bytes, other: str
) -> None:
    reader = CsvObjectReader([header + b"\n1;a;2\n"], CsvFormat())
    with pytest.raises(ObjectRejectedError) as raised:
        reader.read_header()
    assert raised.value.reason is RejectionReason.DELIMITER_MISMATCH
    assert f"S3STAGGER_CSV_DELIMITER={other!r}" in raised.value.message


def test_warn_lets_the_object_through_and_the_answer_says_why() -> None:
    settings = ProcessorSettings(downstream_url="http://downstream.test/rows", reject_other_delimiter=False)
    data = b"id;name\n1;a\n"
    downstream = ScriptedDownstream(lambda _row, _attempt: OK)
    processor = ObjectProcessor(settings, MemorySource(data), KeptSink(), downstream, sleep=no_wait)
    summary, _ = asyncio.run(processor.run(ProcessRequest(ObjectRef("b", "k.csv"))))
    assert summary.rows_applied == 1
    assert summary.as_dict()["warning"].startswith("header 'id;name' is one column")


def test_a_one_column_header_with_no_other_delimiter_is_fine() -> None:
    assert CsvObjectReader([b"id\n1\n"], CsvFormat()).read_header().warning is None
    assert CsvObjectReader([b"a;;b\n"], CsvFormat()).read_header().columns == ("a;;b",)
    assert CsvObjectReader([b"id;name\n"], CsvFormat(delimiter=";")).read_header().columns == ("id", "name")
