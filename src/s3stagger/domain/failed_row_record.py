"""The failed-rows record: what is kept of a failed row, and how a row is rebuilt from it to replay.

A record is a CSV people open in a spreadsheet, so every cell shown is neutralised against formula
injection — which changes values. What a replay needs is therefore kept beside them, exactly:

==================  =================================================================================
``row_number``      the data row's number (1 = first row after the header); ``0`` is the header line
``byte_offset``     where the row's record starts in the object
``reason``          why it failed
``idempotency_key`` the key its deliveries carried: a replay sends the same one, so the downstream
                    never applies the row twice
``version_id``      the object version read (empty when the bucket is unversioned)
``etag``            the object's ETag
``line_base64``     the record's bytes as stored in the object, base64; empty when they were not kept
                    (a line over ``S3STAGGER_MAX_LINE_BYTES`` is skipped unbuffered)
then                the object's columns, neutralised, for people to read
==================  =================================================================================

Row ``0`` carries the object's header line, so a record can be parsed with the object's own column
names whatever the neutralised ones look like.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from s3stagger.domain.csv_rows import BadRow, CsvFormat, CsvObjectReader
from s3stagger.errors import S3StaggerError

FIXED_COLUMNS = (
    "row_number",
    "byte_offset",
    "reason",
    "idempotency_key",
    "version_id",
    "etag",
    "line_base64",
)
HEADER_ROW_NUMBER = 0
HEADER_REASON = "header line of the object"


class FailedRowRecordError(S3StaggerError):
    """A failed-rows record that cannot be read as one (not written by this version of s3stagger)."""


def encode_line(line: bytes | None) -> str:
    return "" if line is None else base64.b64encode(line).decode("ascii")


@dataclass(frozen=True)
class RecordedRow:
    """One failed row as recorded."""

    row_number: int
    byte_offset: int
    reason: str
    idempotency_key: str
    version_id: str
    etag: str
    line: bytes | None
    """The record's original bytes, or ``None`` when they were not kept."""


@dataclass(frozen=True)
class FailedRowsRecord:
    """A parsed record: the object's header line and its failed rows."""

    header_line: bytes
    rows: tuple[RecordedRow, ...]


def parse_record(text: str, where: str) -> FailedRowsRecord:
    """Parse a record's text; raises :class:`FailedRowRecordError` naming ``where`` if it is not one."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(header[: len(FIXED_COLUMNS)]) != FIXED_COLUMNS:
        raise FailedRowRecordError(f"{where}: not a failed-rows record with line bytes (columns {header})")
    header_line = b""
    rows: list[RecordedRow] = []
    for cells in reader:
        row = _recorded_row(cells, where)
        if row.row_number == HEADER_ROW_NUMBER:
            header_line = row.line or b""
        else:
            rows.append(row)
    return FailedRowsRecord(header_line, tuple(rows))


def _recorded_row(cells: list[str], where: str) -> RecordedRow:
    try:
        number, offset, reason, key, version_id, etag, line = cells[: len(FIXED_COLUMNS)]
        return RecordedRow(
            int(number),
            int(offset),
            reason,
            key,
            version_id,
            etag,
            base64.b64decode(line, validate=True) if line else None,
        )
    except (ValueError, binascii.Error) as error:
        raise FailedRowRecordError(f"{where}: row {cells[:1]} is unreadable: {error}") from None


@dataclass(frozen=True)
class ReplayableRow:
    """A row rebuilt from its original bytes, ready to send again."""

    values: dict[str, str]


@dataclass(frozen=True)
class RefusedRow:
    """A row that cannot be replayed as it was: ``reason`` says why and what to do."""

    reason: str


def rebuild_row(
    record: FailedRowsRecord, row: RecordedRow, fmt: CsvFormat, source_encoding: str | None = None
) -> ReplayableRow | RefusedRow:
    """The row's original values, parsed from its bytes with the object's header — or why not.

    The same checks as the processor's apply, so a row that was refused for its bytes (not UTF-8,
    a field over the limit, ragged) is refused again with the reason rather than sent mangled.
    ``source_encoding`` (e.g. ``latin-1``) decodes the row as that encoding instead:
    the operator says what the file really is, and the true characters are sent.
    """
    if row.line is None:
        return RefusedRow(
            f"the original bytes of row {row.row_number} were not kept ({row.reason}); fix the object "
            f"at byte {row.byte_offset} and upload it again"
        )
    header, line = record.header_line, row.line
    if source_encoding is not None:  # the header was accepted, so it is UTF-8 already
        try:
            line = line.decode(source_encoding).encode("utf-8")
        except (LookupError, UnicodeDecodeError) as error:
            return RefusedRow(f"row {row.row_number} is not {source_encoding}: {error}")
    reader = CsvObjectReader(_once(header if header.endswith(b"\n") else header + b"\n", line), fmt)
    columns = reader.read_header().columns
    rebuilt = next(reader.rows(columns, row.row_number), None)
    if rebuilt is None:
        return RefusedRow(f"row {row.row_number}: the kept bytes hold no record")
    if isinstance(rebuilt, BadRow):
        return RefusedRow(f"row {row.row_number} cannot be sent as it is: {rebuilt.reason}")
    return ReplayableRow(rebuilt.values)


def _once(*parts: bytes) -> Iterator[bytes]:
    yield from parts
