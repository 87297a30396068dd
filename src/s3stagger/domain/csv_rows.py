"""Streaming CSV rows out of an object's bytes, with limits, without holding the object in memory.

The bytes arrive as chunks (any iterable of ``bytes``). They are split into physical lines and each
line is decoded on its own as UTF-8 with ``surrogateescape``, then parsed by :mod:`csv` (strict
mode), which joins the lines of a quoted field that spans several of them. Memory is bounded by one
chunk plus one line (``max_line_bytes``) plus one field (the csv module's field-size limit, raised
to ``max_field_bytes`` when needed), whatever the object's size.

Invalid input, and what happens to it:

* The object as a whole (empty, too large, no header, header not UTF-8 / malformed / with empty or
  duplicate names / not the expected one) raises :class:`ObjectRejectedError`: nothing is applied.
* A data row that is ragged (field count differs from the header), holds bytes that are not UTF-8,
  has a field over ``max_field_bytes``, sits on a line over ``max_line_bytes``, or is malformed CSV
  (bad quoting) becomes a :class:`BadRow` with a specific reason, and reading goes on with the next
  row — so the readable, valid rows of the same object are still applied. Undecodable bytes are
  confined to the physical lines that hold them, because a line is decoded independently of the
  others (UTF-8 never uses the newline byte inside a multi-byte sequence).

Blank lines are not data rows and are skipped. Data rows are numbered from 1 (the header is not
counted). After each row the byte offset of the next record is known exactly, because the csv
reader pulls whole lines and stops at the end of a record; a cursor can therefore resume with a
ranged GET at that offset.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from s3stagger.domain.rejection import ObjectRejectedError, RejectionReason

UTF8_BOM = "\ufeff"


@dataclass(frozen=True)
class CsvFormat:
    """What a valid object looks like, and the limits that keep memory bounded."""

    delimiter: str = ","
    expected_header: tuple[str, ...] | None = None
    max_object_bytes: int = 1024**3
    max_field_bytes: int = 128 * 1024
    max_line_bytes: int = 1024 * 1024
    reject_other_delimiter: bool = True
    """A header that reads as one column but splits into several on another common delimiter is
    rejected (``True``) or accepted with :attr:`CsvHeader.warning` (``False``)."""

    def __post_init__(self) -> None:
        if len(self.delimiter) != 1 or self.delimiter in '\r\n"':
            raise ValueError(
                f"delimiter must be one character other than a quote or newline: {self.delimiter!r}"
            )
        for name in ("max_object_bytes", "max_field_bytes", "max_line_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


@dataclass(frozen=True)
class CsvHeader:
    columns: tuple[str, ...]
    end_offset: int
    """Byte offset just after the header record (where the first data record starts)."""
    raw: bytes = field(default=b"", compare=False, repr=False)
    """The header record's bytes as stored (a byte-order mark included)."""
    warning: str | None = None
    """A dialect surprise let through (``reject_other_delimiter`` off)."""


@dataclass(frozen=True)
class DataRow:
    """A valid data row, to be sent downstream."""

    number: int
    values: dict[str, str]
    next_offset: int
    """Byte offset where the next record starts."""
    raw: bytes = field(default=b"", compare=False, repr=False)
    """The record's bytes as stored, its line ending included."""


@dataclass(frozen=True)
class BadRow:
    """A data row that cannot be sent: it goes to the failed-rows sink with its reason."""

    number: int
    reason: str
    cells: tuple[str, ...]
    next_offset: int
    raw: bytes | None = field(default=None, compare=False, repr=False)
    """The record's bytes as stored; ``None`` when they were not kept (a line over the limit)."""


CsvRow = DataRow | BadRow


OTHER_DELIMITERS = (",", ";", "\t", "|")
"""Delimiters a header is sniffed for when it reads as a single column."""


def sniff_other_delimiter(header: str, delimiter: str) -> str | None:
    """The first of :data:`OTHER_DELIMITERS` (not ``delimiter``) that splits ``header`` into
    several non-empty names, or ``None``."""
    for other in OTHER_DELIMITERS:
        if other == delimiter or other not in header:
            continue
        names = [name.strip() for name in header.split(other)]
        if len(names) > 1 and all(names):
            return other
    return None


class _LineTooLongError(Exception):
    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length


class _PhysicalLines:
    """Iterator of decoded lines (newline kept) over byte chunks, tracking the bytes consumed.

    A class rather than a generator: it raises :class:`_LineTooLongError` through the csv reader and
    must keep working afterwards (a generator is finished once it raised).
    """

    def __init__(self, chunks: Iterable[bytes], fmt: CsvFormat, start_offset: int) -> None:
        self._chunks = iter(chunks)
        self._fmt = fmt
        self._buffer = b""
        self._position = 0
        self._exhausted = False
        self._at_start = start_offset == 0
        self.bytes_read = 0
        """Bytes taken from the chunks so far."""
        self.consumed = start_offset
        """Absolute byte offset just after the last line handed out."""
        self._record = bytearray()
        self._record_lost = False

    def take_record(self) -> bytes | None:
        """The bytes of the lines handed out since the last call (``None`` if one was over the limit)."""
        raw = None if self._record_lost else bytes(self._record)
        self._record.clear()
        self._record_lost = False
        return raw

    def __iter__(self) -> _PhysicalLines:
        return self

    def _fill(self) -> bool:
        chunk = next(self._chunks, None)
        if chunk is None:
            self._exhausted = True
            return False
        self.bytes_read += len(chunk)
        if self.consumed - self._position + len(self._buffer) + len(chunk) > self._fmt.max_object_bytes:
            raise ObjectRejectedError(
                RejectionReason.OBJECT_TOO_LARGE,
                f"object is larger than S3STAGGER_MAX_OBJECT_BYTES={self._fmt.max_object_bytes}; "
                "split it or raise the limit",
            )
        self._buffer = self._buffer[self._position :] + chunk
        self._position = 0
        return True

    def __next__(self) -> str:
        limit = self._fmt.max_line_bytes
        while True:
            newline = self._buffer.find(b"\n", self._position)
            if newline >= 0:
                end = newline + 1
            elif len(self._buffer) - self._position > limit:
                self._skip_rest_of_line()
                continue
            elif self._exhausted or not self._fill():
                if self._position >= len(self._buffer):
                    raise StopIteration
                end = len(self._buffer)
            else:
                continue
            raw = self._buffer[self._position : end]
            self._position = end
            self.consumed += len(raw)
            if len(raw) > limit:
                self._record_lost = True
                raise _LineTooLongError(len(raw))
            self._record += raw
            text = raw.decode("utf-8", "surrogateescape")
            if self._at_start:
                self._at_start = False
                text = text.removeprefix(UTF8_BOM)
            return text

    def _skip_rest_of_line(self) -> None:
        """Discard a line over the limit without buffering it, then report it."""
        skipped = 0
        while True:
            newline = self._buffer.find(b"\n", self._position)
            if newline >= 0:
                skipped += newline + 1 - self._position
                self.consumed += newline + 1 - self._position
                self._position = newline + 1
                break
            skipped += len(self._buffer) - self._position
            self.consumed += len(self._buffer) - self._position
            self._position = len(self._buffer)
            if self._exhausted or not self._fill():
                break
        self._at_start = False
        self._record_lost = True
        raise _LineTooLongError(skipped)


def _undecodable(text: str) -> str | None:
    """Describe the first byte that is not UTF-8 in ``text`` (decoded with surrogateescape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        bad = text[error.start]
        if "\udc80" <= bad <= "\udcff":
            return f"byte 0x{ord(bad) - 0xDC00:02X} at character {error.start + 1}"
        return f"unencodable character at {error.start + 1}"
    return None


class CsvObjectReader:
    """Reads the header and then the data rows of one object (or of a byte range of it)."""

    def __init__(self, chunks: Iterable[bytes], fmt: CsvFormat, start_offset: int = 0) -> None:
        self._fmt = fmt
        if csv.field_size_limit() < fmt.max_field_bytes:
            # Process-wide setting: only ever raised, so other users of csv keep working.
            csv.field_size_limit(fmt.max_field_bytes)
        self._lines = _PhysicalLines(chunks, fmt, start_offset)
        self._records = csv.reader(self._lines, delimiter=fmt.delimiter, strict=True)

    def read_header(self) -> CsvHeader:
        """Read and check the header record; raises :class:`ObjectRejectedError` if it is unusable."""
        while True:
            self._lines.take_record()  # blank lines before the header are not part of it
            try:
                record = next(self._records)
            except StopIteration:
                if self._lines.bytes_read == 0:
                    raise ObjectRejectedError(
                        RejectionReason.EMPTY_OBJECT, "object is empty: expected a CSV header row"
                    ) from None
                raise ObjectRejectedError(
                    RejectionReason.NO_HEADER, "object has no header row: it holds only blank lines"
                ) from None
            except csv.Error as error:
                raise ObjectRejectedError(
                    RejectionReason.NOT_CSV, f"header row is not valid CSV: {error}"
                ) from None
            except _LineTooLongError as error:
                raise ObjectRejectedError(
                    RejectionReason.NOT_CSV,
                    f"header line is {error.length} bytes, over S3STAGGER_MAX_LINE_BYTES="
                    f"{self._fmt.max_line_bytes}: not a CSV with a header row?",
                ) from None
            if record:
                break
        columns = self._check_header(record)
        raw = self._lines.take_record() or b""
        warning = self._sniff_delimiter(columns)
        return CsvHeader(columns, self._lines.consumed, raw, warning)

    def _sniff_delimiter(self, columns: tuple[str, ...]) -> str | None:
        """A one-column header that another common delimiter splits into several names: say so."""
        if len(columns) != 1:
            return None
        other = sniff_other_delimiter(columns[0], self._fmt.delimiter)
        if other is None:
            return None
        message = (
            f"header {columns[0]!r} is one column with delimiter {self._fmt.delimiter!r} but "
            f"{len(columns[0].split(other))} with {other!r}: set S3STAGGER_CSV_DELIMITER={other!r} "
            "or re-export the file"
        )
        if self._fmt.reject_other_delimiter:
            raise ObjectRejectedError(RejectionReason.DELIMITER_MISMATCH, message)
        return message

    def _check_header(self, record: list[str]) -> tuple[str, ...]:
        joined = self._fmt.delimiter.join(record)
        problem = _undecodable(joined)
        if problem is not None:
            raise ObjectRejectedError(
                RejectionReason.NOT_UTF8, f"header row is not UTF-8 ({problem}); re-export the file as UTF-8"
            )
        if "\x00" in joined:
            raise ObjectRejectedError(
                RejectionReason.NOT_CSV, "header row holds NUL bytes: the object is not a text CSV"
            )
        columns = tuple(name.strip() for name in record)
        for position, name in enumerate(columns, start=1):
            if not name:
                raise ObjectRejectedError(
                    RejectionReason.INVALID_HEADER, f"header column {position} has an empty name"
                )
        duplicates = sorted({name for name in columns if columns.count(name) > 1})
        if duplicates:
            raise ObjectRejectedError(
                RejectionReason.INVALID_HEADER,
                f"header names columns more than once: {', '.join(duplicates)}",
            )
        expected = self._fmt.expected_header
        if expected is not None and columns != expected:
            raise ObjectRejectedError(
                RejectionReason.HEADER_MISMATCH,
                f"header {list(columns)} differs from S3STAGGER_EXPECTED_HEADER {list(expected)}",
            )
        return columns

    def rows(self, columns: tuple[str, ...], first_row_number: int = 1) -> Iterator[CsvRow]:
        """Yield each data record as a :class:`DataRow` or a :class:`BadRow`, numbered from here."""
        number = first_row_number - 1
        while True:
            self._lines.take_record()  # blank lines before a record are not part of it
            try:
                record = next(self._records)
            except StopIteration:
                return
            except csv.Error as error:
                number += 1
                reason = f"malformed CSV: {error}"
                if "field limit" in str(error):
                    reason = f"a field is over S3STAGGER_MAX_FIELD_BYTES={self._fmt.max_field_bytes}"
                yield BadRow(number, reason, (), self._lines.consumed, self._lines.take_record())
                continue
            except _LineTooLongError as error:
                number += 1
                yield BadRow(
                    number,
                    f"line of {error.length} bytes is over "
                    f"S3STAGGER_MAX_LINE_BYTES={self._fmt.max_line_bytes}",
                    (),
                    self._lines.consumed,
                    self._lines.take_record(),
                )
                continue
            if not record:
                continue
            number += 1
            yield self._check_row(number, record, columns, self._lines.take_record())

    def _check_row(
        self, number: int, record: list[str], columns: tuple[str, ...], raw: bytes | None
    ) -> CsvRow:
        offset = self._lines.consumed
        cells = tuple(record)
        for index, cell in enumerate(record):
            name = columns[index] if index < len(columns) else f"#{index + 1}"
            problem = _undecodable(cell)
            if problem is not None:
                return BadRow(number, f"field {name!r} is not valid UTF-8 ({problem})", cells, offset, raw)
            if len(cell) * 4 > self._fmt.max_field_bytes:
                size = len(cell.encode("utf-8"))
                if size > self._fmt.max_field_bytes:
                    return BadRow(
                        number,
                        f"field {name!r} is {size} bytes, over S3STAGGER_MAX_FIELD_BYTES="
                        f"{self._fmt.max_field_bytes}",
                        tuple(c if len(c) <= 256 else c[:256] + "…" for c in cells),
                        offset,
                        raw,
                    )
        if len(record) != len(columns):
            return BadRow(
                number, f"row has {len(record)} fields, the header has {len(columns)}", cells, offset, raw
            )
        return DataRow(number, dict(zip(columns, record, strict=True)), offset, raw or b"")
