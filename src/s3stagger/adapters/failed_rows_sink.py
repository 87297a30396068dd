"""The failed-rows sink: one S3 object per invocation listing each failed row, and quarantine
records for rejected objects.

Failed rows are written as CSV because people open them in a spreadsheet: every cell shown is
neutralised against formula injection, and the row's original bytes, offset, Idempotency-Key and the
object's version are kept beside them so the row can be replayed exactly
(:mod:`s3stagger.domain.failed_row_record` describes the columns). Rows are spooled to a
temporary file (in memory up to 1 MiB, then on disk), so memory does not grow with their number.
Keys are deterministic (source object, version, row range), so a retried invocation overwrites its
own record instead of adding a second one.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from s3stagger.domain.cells import neutralise_cell
from s3stagger.domain.csv_rows import CsvHeader
from s3stagger.domain.failed_row_record import FIXED_COLUMNS, HEADER_REASON, HEADER_ROW_NUMBER, encode_line
from s3stagger.domain.idempotency import object_version_token, row_idempotency_key
from s3stagger.domain.model import ObjectRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SPOOL_BYTES = 1024 * 1024


def _safe_part(text: str) -> str:
    return text.replace('"', "").strip("/") or "_"


class FailedRowsBatch:
    """The failed rows of one invocation; :meth:`close` uploads them (if any) and says where."""

    def __init__(
        self,
        s3_client: S3Client,
        bucket: str,
        key_stem: str,
        *,
        ref: ObjectRef,
        version: str,
        header: CsvHeader,
    ) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._key_stem = key_stem
        self._ref = ref
        self._version = version
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b")  # noqa: SIM115
        self._text = io.TextIOWrapper(self._file, encoding="utf-8", newline="")
        self._writer = csv.writer(self._text)
        columns = [neutralise_cell(c) for c in header.columns]
        self._writer.writerow([*FIXED_COLUMNS, *columns])
        self._writer.writerow(
            [
                HEADER_ROW_NUMBER,
                0,
                HEADER_REASON,
                "",
                *self._version_cells(),
                encode_line(header.raw),
                *columns,
            ]
        )
        self.count = 0
        self.first_row: int | None = None
        self.last_row: int | None = None

    def _version_cells(self) -> tuple[str, str]:
        return self._ref.version_id or "", self._ref.etag or ""

    def add(
        self, row_number: int, reason: str, cells: Sequence[str], *, byte_offset: int, line: bytes | None
    ) -> None:
        key = row_idempotency_key(self._ref.bucket, self._ref.key, self._version, row_number)
        self._writer.writerow(
            [
                row_number,
                byte_offset,
                neutralise_cell(reason),
                key,
                *self._version_cells(),
                encode_line(line),
                *(neutralise_cell(c) for c in cells),
            ]
        )
        self.count += 1
        self.first_row = row_number if self.first_row is None else min(self.first_row, row_number)
        self.last_row = row_number if self.last_row is None else max(self.last_row, row_number)

    def close(self) -> str | None:
        """Upload the rows; return ``s3://bucket/key`` of the record, or ``None`` when none failed.

        The spooled file is closed whatever happens; a closed batch uploads nothing more.
        """
        try:
            if self.count == 0 or self._text.closed:
                return None
            self._text.flush()
            self._file.seek(0)
            key = f"{self._key_stem}/rows-{self.first_row:010d}-{self.last_row:010d}.csv"
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=self._file, ContentType="text/csv")
            return f"s3://{self._bucket}/{key}"
        finally:
            self._text.close()

    def discard(self) -> None:
        """Close the spooled file without uploading (the invocation is abandoned or the object rejected)."""
        self._text.close()

    @property
    def closed(self) -> bool:
        return self._text.closed


class S3FailedRowsSink:
    """Writes failed rows and quarantine records under ``prefix`` in ``bucket``.

    ``bucket=None`` writes next to the source object, in its own bucket.
    """

    def __init__(self, s3_client: S3Client, bucket: str | None, prefix: str = "failed-rows/") -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._prefix = prefix if prefix.endswith("/") or not prefix else prefix + "/"

    def _bucket_for(self, ref: ObjectRef) -> str:
        return self._bucket or ref.bucket

    def _stem(self, kind: str, ref: ObjectRef, version: str | None) -> str:
        return f"{self._prefix}{kind}/{ref.bucket}/{ref.key}/{_safe_part(version or 'unknown-version')}"

    def open_batch(self, ref: ObjectRef, version: str, header: CsvHeader) -> FailedRowsBatch:
        stem = self._stem("rows", ref, version)
        return FailedRowsBatch(self._s3, self._bucket_for(ref), stem, ref=ref, version=version, header=header)

    def write_quarantine(self, ref: ObjectRef, reason: str, message: str) -> str:
        """Record that ``ref`` was rejected as a whole; returns ``s3://bucket/key`` of the record."""
        version = object_version_token(ref.version_id, ref.etag or "")
        record: dict[str, Any] = {
            "bucket": ref.bucket,
            "key": ref.key,
            "version_id": ref.version_id,
            "etag": ref.etag,
            "reason": reason,
            "message": message,
            "rejected_at": datetime.now(UTC).isoformat(),
        }
        bucket = self._bucket_for(ref)
        key = self._stem("quarantine", ref, version) + ".json"
        self._s3.put_object(
            Bucket=bucket, Key=key, Body=json.dumps(record).encode("utf-8"), ContentType="application/json"
        )
        return f"s3://{bucket}/{key}"
