"""Replaying the failed-rows sink: each recorded row is sent again with its original Idempotency-Key.

A record (``<prefix>rows/<bucket>/<key>/<version>/rows-<first>-<last>.csv``) is read, each row
rebuilt from its original bytes (:func:`s3stagger.domain.failed_row_record.rebuild_row`) and sent
once, through the deployment's :class:`~s3stagger.domain.request_mapping.RequestMapping` — the
method, URL, headers, body and rows per request the processor used — so the downstream meets the
same key with the same body. The downstream applies a key once, so a row that had in fact landed
(a timed-out request, the older version of an overwritten object) is answered as already applied
and counted apart, never twice. Rows sent (applied now or before) leave the record: it is rewritten
with the rows still outstanding (refused, or failed again), or moved to ``<prefix>replayed/`` once
none is — so a second run sends nothing twice and the sink tells what is still outstanding.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from s3stagger.adapters.downstream_client import ALREADY_APPLIED
from s3stagger.domain.csv_rows import CsvFormat
from s3stagger.domain.delivery import DeliveryOutcome
from s3stagger.domain.failed_row_record import (
    HEADER_ROW_NUMBER,
    FailedRowsRecord,
    RecordedRow,
    RefusedRow,
    parse_record,
    rebuild_row,
)
from s3stagger.domain.ports import Downstream
from s3stagger.domain.redrive import DeadLetter, RedriveFilter
from s3stagger.domain.request_mapping import OutgoingRow, RequestMapping, RowMappingError, SourceRow

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass
class ReplayReport:
    """What a replay sent (or, dry, would send), what stays outstanding, and why."""

    dry_run: bool
    records: int = 0
    rows_selected: int = 0
    applied: int = 0
    already_applied: int = 0
    """Rows the downstream had applied before (their key was known): not counted as applied again."""
    refused: int = 0
    failed_again: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    outstanding_reasons: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "records": self.records,
            "rows_selected": self.rows_selected,
            "applied": self.applied,
            "already_applied": self.already_applied,
            "refused": self.refused,
            "failed_again": self.failed_again,
            "reasons": dict(self.reasons),
            "outstanding_reasons": dict(self.outstanding_reasons),
        }


@dataclass(frozen=True)
class ReplayOptions:
    selection: RedriveFilter = field(default_factory=RedriveFilter)
    """Key prefix and age select records; reason words select rows."""
    limit: int | None = None
    """At most this many rows."""
    dry_run: bool = False
    source_encoding: str | None = None
    """Decode the rows as this encoding (e.g. ``latin-1``) instead of UTF-8."""

    def limit_reached(self, report: ReplayReport) -> bool:
        return self.limit is not None and report.rows_selected >= self.limit


@dataclass(frozen=True)
class ReplayTarget:
    bucket: str
    prefix: str


def _object_of_record(relative: str) -> tuple[str, str]:
    """``rows/<bucket>/<key>/<version>/rows-….csv`` → ``(<bucket>, <key>)``."""
    parts = relative.split("/")
    return parts[1], "/".join(parts[2:-2])


class FailedRowsReplay:
    """Replays the records under ``target`` through ``downstream`` (see the module doc).

    ``mapping`` must be the one ``downstream`` sends with: it turns each row into its request part
    and says how many rows a request carries.
    """

    def __init__(
        self,
        s3: S3Client,
        target: ReplayTarget,
        downstream: Downstream,
        fmt: CsvFormat,
        mapping: RequestMapping,
    ) -> None:
        self._s3 = s3
        self._target = target
        self._downstream = downstream
        self._format = fmt
        self._mapping = mapping

    def _records(self, now: datetime) -> Iterator[tuple[str, tuple[str, str], float]]:
        prefix = self._target.prefix + "rows/"
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self._target.bucket, Prefix=prefix
        ):
            for item in page.get("Contents", []):
                if item["Key"].endswith(".csv"):
                    relative = item["Key"][len(self._target.prefix) :]
                    age = (now - item["LastModified"]).total_seconds()
                    yield item["Key"], _object_of_record(relative), age

    async def run(self, options: ReplayOptions) -> ReplayReport:
        report = ReplayReport(options.dry_run)
        by_object = RedriveFilter(options.selection.key_prefix, "", options.selection.min_age_s)
        for record_key, source, age_s in list(self._records(datetime.now(UTC))):
            if options.limit_reached(report):
                break
            if by_object.matches(DeadLetter(source[1], "", age_s)):
                report.records += 1
                await self._replay_record(record_key, source, options, report)
        return report

    async def _replay_record(
        self, record_key: str, source: tuple[str, str], options: ReplayOptions, report: ReplayReport
    ) -> None:
        bucket = self._target.bucket
        text = self._s3.get_object(Bucket=bucket, Key=record_key)["Body"].read().decode("utf-8")
        record = parse_record(text, f"s3://{bucket}/{record_key}")
        wanted = options.selection.reason_contains.lower()
        outgoing: list[OutgoingRow] = []
        for row in record.rows:
            if options.limit_reached(report):
                break
            if wanted not in row.reason.lower():
                continue
            report.rows_selected += 1
            report.reasons[row.reason] += 1
            if options.dry_run:
                continue
            mapped = self._outgoing(record, source, row, options.source_encoding)
            if isinstance(mapped, RefusedRow):
                report.refused += 1
                report.outstanding_reasons[mapped.reason] += 1
            else:
                outgoing.append(mapped)
        sent: set[int] = set()
        size = self._mapping.rows_per_request
        for first in range(0, len(outgoing), size):
            group = outgoing[first : first + size]
            for sending, delivery in zip(group, await self._downstream.deliver(group), strict=True):
                if delivery.outcome is DeliveryOutcome.APPLIED:
                    sent.add(sending.number)
                    if delivery.detail == ALREADY_APPLIED:
                        report.already_applied += 1
                    else:
                        report.applied += 1
                else:
                    report.failed_again += 1
                    report.outstanding_reasons[f"failed again: {delivery.detail}"] += 1
        self._settle_record(record_key, text, sent, len(record.rows))

    def _outgoing(
        self, record: FailedRowsRecord, source: tuple[str, str], row: RecordedRow, source_encoding: str | None
    ) -> OutgoingRow | RefusedRow:
        """The row as the processor sent it (same key, same mapped request), or why it cannot be."""
        rebuilt = rebuild_row(record, row, self._format, source_encoding)
        if isinstance(rebuilt, RefusedRow):
            return rebuilt
        try:
            request = self._mapping.map_row(SourceRow(source[0], source[1], row.row_number, rebuilt.values))
        except RowMappingError as error:
            return RefusedRow(f"request mapping: {error}")
        return OutgoingRow(row.row_number, row.idempotency_key, request)

    def _settle_record(self, record_key: str, text: str, sent: set[int], rows: int) -> None:
        bucket = self._target.bucket
        if not sent:
            return
        if len(sent) == rows:
            replayed = self._target.prefix + "replayed/" + record_key[len(self._target.prefix) :]
            self._s3.put_object(
                Bucket=bucket, Key=replayed, Body=text.encode("utf-8"), ContentType="text/csv"
            )
            self._s3.delete_object(Bucket=bucket, Key=record_key)
            return
        kept = io.StringIO()
        writer = csv.writer(kept)
        reader = csv.reader(io.StringIO(text, newline=""))
        writer.writerow(next(reader))
        for cells in reader:
            number = int(cells[0])
            if number == HEADER_ROW_NUMBER or number not in sent:
                writer.writerow(cells)
        self._s3.put_object(
            Bucket=bucket, Key=record_key, Body=kept.getvalue().encode("utf-8"), ContentType="text/csv"
        )
