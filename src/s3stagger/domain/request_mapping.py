"""What a row becomes on the wire: method, URL, headers and body of the request that carries it.

Pure: no I/O. A deployment chooses one :class:`RequestMapping`:

* the **body** of a row is, by default, the row as JSON (``{"source": {...}, "data": {column: value}}``);
  or a **field map** (:class:`FieldSpec`: rename a column and type its text as ``int``, ``decimal``,
  ``bool`` or ``date``); or a **hook** (``module:function``, loaded by the settings) taking a
  :class:`SourceRow` and returning the body, or a :class:`RowRequest` for path values and headers
  too. A value that does not fit its type, or a hook raising :class:`ValueError`, is a
  :class:`RowMappingError`: that row is a failed row with the reason, never sent;
* the **URL** is a template: ``{column}`` placeholders take the row's values, URL-encoded
  (``/`` included), so a row can address its resource (``/customers/{customer_id}``);
* **rows per request**: 1 sends one row per request with the row's Idempotency-Key; N > 1 sends up
  to N rows as ``{"rows": [{"key": <row key>, "body": <row body>}, ...]}`` with one Idempotency-Key
  derived from the rows' keys (:func:`batch_idempotency_key`), and the answer's
  ``{"results": [{"key", "status", "error"?}]}`` decides each row (:func:`batch_deliveries`).
"""

from __future__ import annotations

import hashlib
import json
import math
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from s3stagger.domain.delivery import Delivery, DeliveryOutcome, outcome_of_status
from s3stagger.errors import S3StaggerError


class RowMappingError(S3StaggerError, ValueError):
    """A row cannot be turned into a request (a value that does not fit its type): a failed row."""


class FieldType(StrEnum):
    STRING = "string"
    INT = "int"
    DECIMAL = "decimal"
    """A JSON number written with the cell's exact digits (no float rounding)."""
    BOOL = "bool"
    """``true``/``false``, ``1``/``0``, ``yes``/``no`` (any case)."""
    DATE = "date"
    """ISO ``YYYY-MM-DD``, or the ``strptime`` format of the field; sent as ISO text."""


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


@dataclass(frozen=True)
class FieldSpec:
    """One field of the body: ``target`` takes column ``source``'s text typed as ``type``.

    An empty cell is JSON ``null`` for every type but ``string``.
    """

    target: str
    source: str
    type: FieldType = FieldType.STRING
    date_format: str | None = None

    def convert(self, text: str) -> Any:
        if self.type is FieldType.STRING:
            return text
        if text.strip() == "":
            return None
        value = text.strip()
        try:
            return self._typed(value)
        except (ValueError, InvalidOperation):
            shown = value if len(value) <= 40 else value[:40] + "…"
            wanted = f"date ({self.date_format})" if self.date_format else self.type.value
            raise RowMappingError(f"column {self.source!r}: {shown!r} is not a valid {wanted}") from None

    def _typed(self, value: str) -> Any:
        if self.type is FieldType.INT:
            return int(value)
        if self.type is FieldType.DECIMAL:
            number = Decimal(value)
            if not number.is_finite():
                raise ValueError(value)
            return number
        if self.type is FieldType.BOOL:
            lowered = value.lower()
            if lowered in _TRUE or lowered in _FALSE:
                return lowered in _TRUE
            raise ValueError(value)
        if self.date_format:
            return datetime.strptime(value, self.date_format).date().isoformat()
        return date.fromisoformat(value).isoformat()


@dataclass(frozen=True)
class SourceRow:
    """What a hook receives: where the row comes from and its values by column name."""

    bucket: str
    key: str
    number: int
    values: Mapping[str, str]


@dataclass(frozen=True)
class RowRequest:
    """What one row becomes: its body, the values of the URL's placeholders, extra headers."""

    body: Any
    path: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


RowHook = Callable[[SourceRow], Any]
"""``hook(row) -> body | RowRequest``; raising :class:`ValueError` makes the row a failed row."""


@dataclass(frozen=True)
class OutgoingRow:
    """A mapped row on its way: its number, its Idempotency-Key and its request part."""

    number: int
    idempotency_key: str
    request: RowRequest


@dataclass(frozen=True)
class HttpRequestSpec:
    """One HTTP request, ready to send (authentication is added by the adapter)."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes


IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class RequestMapping:
    """How rows become requests; the default reproduces one JSON POST per row."""

    url_template: str
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    """Static headers of every request (never secrets: those come from the authentication)."""
    fields: tuple[FieldSpec, ...] | None = None
    """The field map; ``None`` sends the row as JSON (or the hook's answer)."""
    hook: RowHook | None = None
    rows_per_request: int = 1
    retryable_statuses: frozenset[int] = frozenset()
    """Statuses retried on top of 408, 429 and 5xx (some APIs answer 409 or 423 for "try again")."""

    def __post_init__(self) -> None:
        if self.fields is not None and self.hook is not None:
            raise ValueError("a request mapping has a field map or a hook, not both")
        if self.rows_per_request < 1:
            raise ValueError(f"rows_per_request must be >= 1, got {self.rows_per_request}")
        if self.rows_per_request > 1 and self.placeholders:
            raise ValueError(
                f"the URL {self.url_template!r} takes row values, so it cannot carry several rows per request"
            )

    @property
    def placeholders(self) -> tuple[str, ...]:
        return url_placeholders(self.url_template)

    def map_row(self, row: SourceRow) -> RowRequest:
        """The request part of one row; raises :class:`RowMappingError` for a value that does not fit."""
        if self.hook is not None:
            try:
                answer = self.hook(row)
            except (ValueError, KeyError, TypeError) as error:
                raise RowMappingError(
                    f"request hook refused the row: {type(error).__name__}: {error}"
                ) from None
            request = answer if isinstance(answer, RowRequest) else RowRequest(answer)
            path = request.path or row.values
            return RowRequest(request.body, self._path_values(path), dict(request.headers))
        if self.fields is not None:
            body = {spec.target: spec.convert(_cell(row.values, spec.source)) for spec in self.fields}
        else:
            body = {"source": {"bucket": row.bucket, "key": row.key, "row": row.number}, "data": row.values}
        return RowRequest(body, self._path_values(row.values))

    def _path_values(self, values: Mapping[str, str]) -> dict[str, str]:
        return {name: _cell(values, name) for name in self.placeholders}

    def build(self, rows: Sequence[OutgoingRow]) -> HttpRequestSpec:
        """The request carrying ``rows`` (one row, or a batch of up to ``rows_per_request``)."""
        if not rows:
            raise ValueError("a request carries at least one row")
        headers = {"Content-Type": "application/json", **dict(self.headers)}
        if len(rows) == 1 and self.rows_per_request == 1:
            row = rows[0]
            headers.update(row.request.headers)
            headers[IDEMPOTENCY_HEADER] = row.idempotency_key
            url = self.url_template.format_map({k: quote(v, safe="") for k, v in row.request.path.items()})
            return HttpRequestSpec(self.method, url, headers, encode_json(row.request.body))
        headers[IDEMPOTENCY_HEADER] = batch_idempotency_key([row.idempotency_key for row in rows])
        items = [{"key": row.idempotency_key, "body": row.request.body} for row in rows]
        return HttpRequestSpec(self.method, self.url_template, headers, encode_json({"rows": items}))

    def outcome(self, status: int) -> DeliveryOutcome:
        return outcome_of_status(status, self.retryable_statuses)


def url_placeholders(template: str) -> tuple[str, ...]:
    """The ``{name}`` placeholders of a URL template, in order; raises :class:`ValueError` if malformed."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name or spec or conversion or not name.isidentifier():
            raise ValueError(f"URL template {template!r}: placeholders are {{column_name}} only")
        names.append(name)
    return tuple(dict.fromkeys(names))


def _cell(values: Mapping[str, str], column: str) -> str:
    try:
        return values[column]
    except KeyError:
        raise RowMappingError(f"the row has no column {column!r}") from None


def batch_idempotency_key(row_keys: Sequence[str]) -> str:
    """One key for a request carrying these rows: the same rows, in the same order, give the same key."""
    digest = hashlib.sha256()
    for key in row_keys:
        encoded = key.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return f"s3stagger-batch-{digest.hexdigest()[:48]}"


def batch_deliveries(
    mapping: RequestMapping, rows: Sequence[OutgoingRow], answer: Delivery, content: bytes
) -> list[Delivery]:
    """One delivery per row of a batch request, from the request's delivery and the answer's body.

    An answer other than 2xx (or no answer) counts for every row. A 2xx answer must carry
    ``{"results": [{"key", "status", "error"?}]}``; a row without a result is retried (its key makes
    the retry harmless), as is every row when the body cannot be read.
    """
    if answer.outcome is not DeliveryOutcome.APPLIED:
        return [answer] * len(rows)
    results = _results_by_key(content)
    if results is None:
        missing = Delivery(
            DeliveryOutcome.RETRYABLE_ERROR,
            answer.status,
            "batch answer has no readable results",
            latency_s=answer.latency_s,
        )
        return [missing] * len(rows)
    deliveries = []
    for row in rows:
        result = results.get(row.idempotency_key)
        if result is None:
            deliveries.append(
                Delivery(
                    DeliveryOutcome.RETRYABLE_ERROR,
                    answer.status,
                    "batch answer has no result for the row",
                    latency_s=answer.latency_s,
                )
            )
            continue
        status, error = result
        outcome = mapping.outcome(status)
        detail = "ok" if outcome is DeliveryOutcome.APPLIED else f"HTTP {status} (batch row): {error[:200]}"
        deliveries.append(Delivery(outcome, status, detail, latency_s=answer.latency_s))
    return deliveries


def _results_by_key(content: bytes) -> dict[str, tuple[int, str]] | None:
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, list):
        return None
    by_key: dict[str, tuple[int, str]] = {}
    for item in results:
        if not isinstance(item, dict):
            continue
        key, status = item.get("key"), item.get("status")
        if isinstance(key, str) and isinstance(status, int) and not isinstance(status, bool):
            by_key[key] = (status, str(item.get("error") or ""))
    return by_key


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON in which a :class:`~decimal.Decimal` is a number with its exact digits.

    The C encoder serves every body without a decimal (the row as JSON: the hot path); a body with
    one, or with a value JSON cannot hold, goes through the encoder below (which says why).
    """
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):
        return "".join(_encode(value)).encode("utf-8")


def _encode(value: Any) -> list[str]:
    if isinstance(value, Decimal):
        return [format(value, "f")]
    if isinstance(value, float) and not math.isfinite(value):
        raise RowMappingError(f"{value} is not a JSON number")
    if isinstance(value, dict):
        parts = ["{"]
        for index, (key, item) in enumerate(value.items()):
            parts.append(("," if index else "") + json.dumps(str(key), ensure_ascii=False) + ":")
            parts.extend(_encode(item))
        return [*parts, "}"]
    if isinstance(value, list | tuple):
        parts = ["["]
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            parts.extend(_encode(item))
        return [*parts, "]"]
    try:
        return [json.dumps(value, ensure_ascii=False)]
    except TypeError:
        raise RowMappingError(f"{type(value).__name__} is not JSON") from None
