import csv
import io
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3stagger.domain.csv_rows import BadRow, CsvFormat, CsvObjectReader, CsvRow, DataRow
from s3stagger.domain.rejection import ObjectRejectedError, RejectionReason


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def read_all(
    data: bytes, fmt: CsvFormat | None = None, chunk: int = 7
) -> tuple[tuple[str, ...], list[CsvRow]]:
    reader = CsvObjectReader(chunked(data, chunk), fmt or CsvFormat())
    header = reader.read_header()
    return header.columns, list(reader.rows(header.columns))


def test_bom_crlf_and_quoted_newlines_are_handled() -> None:
    data = '\ufeffid,note\r\n1,"two\r\nlines"\r\n2,"say ""hi"", ok"\r\n'.encode()
    columns, rows = read_all(data)
    assert columns == ("id", "note")
    assert rows == [
        DataRow(1, {"id": "1", "note": "two\r\nlines"}, rows[0].next_offset),
        DataRow(2, {"id": "2", "note": 'say "hi", ok'}, len(data)),
    ]


def test_delimiter_and_expected_header() -> None:
    fmt = CsvFormat(delimiter=";", expected_header=("a", "b"))
    columns, rows = read_all(b" a ; b\n1;2\n", fmt)
    assert columns == ("a", "b")
    assert isinstance(rows[0], DataRow)
    assert rows[0].values == {"a": "1", "b": "2"}


def test_blank_lines_are_not_rows_and_a_missing_final_newline_is_fine() -> None:
    _, rows = read_all(b"\n\nid\n\n1\n\r\n2")
    assert [(r.number, r.values) for r in rows if isinstance(r, DataRow)] == [
        (1, {"id": "1"}),
        (2, {"id": "2"}),
    ]


def test_each_bad_row_gets_a_specific_reason_and_valid_rows_still_come() -> None:
    fmt = CsvFormat(max_field_bytes=10, max_line_bytes=40)
    data = (
        b"id,name\n"
        b"1,ok\n"
        b"2,too,many\n"
        b"3\n"
        b"4,caf\xe9\n"
        b"5,abcdefghijk\n"
        b'6,"bad"quote\n'
        b"7," + b"x" * 60 + b"\n"
        b"8,fine\n"
    )
    _, rows = read_all(data, fmt, chunk=5)
    reasons = {r.number: r.reason for r in rows if isinstance(r, BadRow)}
    assert [r.number for r in rows if isinstance(r, DataRow)] == [1, 8]
    assert reasons[2] == "row has 3 fields, the header has 2"
    assert reasons[3] == "row has 1 fields, the header has 2"
    assert reasons[4] == "field 'name' is not valid UTF-8 (byte 0xE9 at character 4)"
    assert reasons[5] == "field 'name' is 11 bytes, over S3STAGGER_MAX_FIELD_BYTES=10"
    assert reasons[6].startswith("malformed CSV:")
    assert reasons[7] == "line of 63 bytes is over S3STAGGER_MAX_LINE_BYTES=40"
    bad_utf8 = next(r for r in rows if r.number == 4)
    assert isinstance(bad_utf8, BadRow)
    assert bad_utf8.cells == ("4", "caf\udce9")


def test_a_line_too_long_at_the_end_of_the_object_is_reported() -> None:
    _, rows = read_all(b"id\n1\n" + b"9" * 100, CsvFormat(max_line_bytes=20), chunk=8)
    assert isinstance(rows[-1], BadRow)
    assert rows[-1].reason.startswith("line of 100 bytes")
    assert rows[-1].next_offset == 105


def test_csv_field_limit_error_is_reported_as_the_field_limit() -> None:
    big = CsvFormat(max_field_bytes=200_000, max_line_bytes=1_000_000)
    data = b'id,v\n1,"' + b"y\n" * 150_000 + b'"\n2,z\n'
    _, rows = read_all(data, big, chunk=65536)
    assert isinstance(rows[0], BadRow)
    assert rows[0].reason == "a field is over S3STAGGER_MAX_FIELD_BYTES=200000"


def test_offsets_let_a_reader_resume_at_any_row() -> None:
    data = b'id,v\r\n1,a\r\n2,"b\nb"\r\n\r\n3,c\r\n4,d'
    columns, rows = read_all(data)
    for index, row in enumerate(rows[:-1]):
        resumed = CsvObjectReader(
            chunked(data[row.next_offset :], 3), CsvFormat(), start_offset=row.next_offset
        )
        rest = list(resumed.rows(columns, first_row_number=row.number + 1))
        assert rest == rows[index + 1 :]


@pytest.mark.parametrize(
    ("data", "reason", "message"),
    [
        (b"", RejectionReason.EMPTY_OBJECT, "object is empty"),
        (b"\n\r\n\n", RejectionReason.NO_HEADER, "no header row"),
        (b"id,n\xe9me\n1,2\n", RejectionReason.NOT_UTF8, r"header row is not UTF-8 \(byte 0xE9"),
        (b"id,\x00x\n", RejectionReason.NOT_CSV, "NUL bytes"),
        (b'id,"na"me\n', RejectionReason.NOT_CSV, "header row is not valid CSV"),
        (b"x" * 200, RejectionReason.NOT_CSV, "header line is 200 bytes"),
        (b"id,,name\n", RejectionReason.INVALID_HEADER, "header column 2 has an empty name"),
        (b"id,name,id\n", RejectionReason.INVALID_HEADER, "more than once: id"),
        (b"id,other\n", RejectionReason.HEADER_MISMATCH, "differs from S3STAGGER_EXPECTED_HEADER"),
        (b"id,name\n" + b"1,a\n" * 100, RejectionReason.OBJECT_TOO_LARGE, "S3STAGGER_MAX_OBJECT_BYTES=300"),
    ],
)
def test_unusable_objects_are_rejected_with_a_reason(
    data: bytes, reason: RejectionReason, message: str
) -> None:
    fmt = CsvFormat(expected_header=("id", "name"), max_line_bytes=100, max_object_bytes=300)
    with pytest.raises(ObjectRejectedError, match=message) as caught:
        read_all(data, fmt, chunk=64)
    assert caught.value.reason is reason


@pytest.mark.parametrize("delimiter", ["", ";;", '"', "\n"])
def test_invalid_delimiter_is_refused(delimiter: str) -> None:
    with pytest.raises(ValueError, match="delimiter"):
        CsvFormat(delimiter=delimiter)


def test_zero_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="max_line_bytes"):
        CsvFormat(max_line_bytes=0)


cell_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(cell_text, cell_text), max_size=20),
    chunk=st.integers(min_value=1, max_value=64),
    crlf=st.booleans(),
)
def test_any_valid_csv_round_trips_whatever_the_chunking(
    rows: list[tuple[str, str]], chunk: int, crlf: bool
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n" if crlf else "\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["a", "b"])
    writer.writerows(rows)
    _, parsed = read_all(buffer.getvalue().encode("utf-8"), chunk=chunk)
    assert [(r.values["a"], r.values["b"]) for r in parsed if isinstance(r, DataRow)] == rows
    assert all(isinstance(r, DataRow) for r in parsed)
    assert [r.number for r in parsed] == list(range(1, len(rows) + 1))
