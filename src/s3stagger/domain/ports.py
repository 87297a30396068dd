"""What the processor needs from the outside world, as types: adapters implement these Protocols.

The processor core imports these, never an adapter: ``adapters/`` holds the S3 and HTTP
implementations, tests may pass fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from s3stagger.domain.csv_rows import CsvHeader
from s3stagger.domain.delivery import Delivery
from s3stagger.domain.model import ObjectRef
from s3stagger.domain.request_mapping import OutgoingRow


@dataclass
class OpenedObject:
    """An open object (or byte range of it): its identity and a lazy iterator of its bytes."""

    etag: str
    """ETag without quotes."""
    version_id: str | None
    object_size: int
    """Size of the whole object (not of the range)."""
    chunks: Iterator[bytes]
    key: str = ""
    """The key actually read (the event's key, URL-decoded if only that form exists)."""
    release: Callable[[], None] | None = None
    """Frees what holds the bytes (a network stream); called by :meth:`close`."""

    def close(self) -> None:
        if self.release is not None:
            self.release()


class ObjectSource(Protocol):
    def open(
        self,
        ref: ObjectRef,
        *,
        start: int = 0,
        end: int | None = None,
        if_match: str | None = None,
        version_id: str | None = None,
    ) -> OpenedObject:
        """Open bytes ``start``..``end`` (inclusive; ``None`` = to the end) of ``ref``.

        Raises :class:`~s3stagger.domain.rejection.ObjectRejectedError` when the object is gone or
        changed; any other error is transient.
        """
        ...


class FailedRows(Protocol):
    """The failed rows of one invocation."""

    count: int

    def add(
        self, row_number: int, reason: str, cells: Sequence[str], *, byte_offset: int, line: bytes | None
    ) -> None:
        """Record a failed row: its cells, where its record starts and its original bytes (if kept)."""
        ...

    def close(self) -> str | None:
        """Write the record; return where it is, or ``None`` when no row failed."""
        ...

    def discard(self) -> None:
        """Drop the rows without writing them (the invocation is abandoned and will be retried)."""
        ...


class FailedRowsSink(Protocol):
    def open_batch(self, ref: ObjectRef, version: str, header: CsvHeader) -> FailedRows: ...

    def write_quarantine(self, ref: ObjectRef, reason: str, message: str) -> str: ...


class Downstream(Protocol):
    async def deliver(self, rows: Sequence[OutgoingRow], timeout_s: float | None = None) -> list[Delivery]:
        """One request carrying ``rows`` (one, or a batch); one delivery per row, in order.

        Never raises for a network failure or an HTTP answer: they are outcomes.
        """
        ...
