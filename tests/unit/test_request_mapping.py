"""Request mapping: the field map's typing (a table), URL templates, hooks, batches and their answers."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from s3stagger.domain.delivery import Delivery, DeliveryOutcome
from s3stagger.domain.request_mapping import (
    IDEMPOTENCY_HEADER,
    FieldSpec,
    FieldType,
    OutgoingRow,
    RequestMapping,
    RowMappingError,
    RowRequest,
    SourceRow,
    batch_deliveries,
    batch_idempotency_key,
    encode_json,
    url_placeholders,
)

URL = "https://api.test/orders"


def source_row(**values: str) -> SourceRow:
    return SourceRow("bucket", "in/orders.csv", 7, values)


@pytest.mark.parametrize(
    ("field_type", "date_format", "text", "expected"),
    [
        (FieldType.STRING, None, " as is ", " as is "),
        (FieldType.STRING, None, "", ""),
        (FieldType.INT, None, "42", 42),
        (FieldType.INT, None, " -7 ", -7),
        (FieldType.INT, None, "", None),
        (FieldType.DECIMAL, None, "19.990", Decimal("19.990")),
        (FieldType.DECIMAL, None, "1E+3", Decimal("1E+3")),
        (FieldType.BOOL, None, "TRUE", True),
        (FieldType.BOOL, None, "yes", True),
        (FieldType.BOOL, None, "0", False),
        (FieldType.BOOL, None, "No", False),
        (FieldType.DATE, None, "2026-11-30", "2026-11-30"),
        (FieldType.DATE, "%d/%m/%Y", "30/11/2026", "2026-11-30"),
        (FieldType.DATE, None, "  ", None),
    ],
)
def test_a_field_types_its_text(
    field_type: FieldType, date_format: str | None, text: str, expected: Any
) -> None:
    assert FieldSpec("out", "in", field_type, date_format).convert(text) == expected


@pytest.mark.parametrize(
    ("field_type", "date_format", "text", "message"),
    [
        (FieldType.INT, None, "4.2", "column 'in': '4.2' is not a valid int"),
        (FieldType.INT, None, "forty", "'forty' is not a valid int"),
        (FieldType.DECIMAL, None, "1,5", "'1,5' is not a valid decimal"),
        (FieldType.DECIMAL, None, "NaN", "'NaN' is not a valid decimal"),
        (FieldType.DECIMAL, None, "Infinity", "is not a valid decimal"),
        (FieldType.BOOL, None, "maybe", "'maybe' is not a valid bool"),
        (FieldType.DATE, None, "2026-02-30", "'2026-02-30' is not a valid date"),
        (FieldType.DATE, "%d/%m/%Y", "2026-11-30", "is not a valid date (%d/%m/%Y)"),
        (FieldType.INT, None, "9" * 59 + "x", "'" + "9" * 40 + "…' is not a valid int"),
    ],
)
def test_a_value_that_does_not_fit_its_type_is_a_clear_reason(
    field_type: FieldType, date_format: str | None, text: str, message: str
) -> None:
    with pytest.raises(RowMappingError) as raised:
        FieldSpec("out", "in", field_type, date_format).convert(text)
    assert message in str(raised.value)


def test_the_default_body_is_the_row_as_json_with_its_source() -> None:
    request = RequestMapping(URL).map_row(source_row(id="1", name="café"))
    assert request.body == {
        "source": {"bucket": "bucket", "key": "in/orders.csv", "row": 7},
        "data": {"id": "1", "name": "café"},
    }


def test_a_field_map_renames_and_types_and_a_missing_column_is_named() -> None:
    mapping = RequestMapping(
        URL,
        fields=(
            FieldSpec("orderId", "id", FieldType.INT),
            FieldSpec("total", "amount", FieldType.DECIMAL),
            FieldSpec("paid", "paid", FieldType.BOOL),
        ),
    )
    body = mapping.map_row(source_row(id="12", amount="10.10", paid="yes")).body
    assert body == {"orderId": 12, "total": Decimal("10.10"), "paid": True}
    assert encode_json(body) == b'{"orderId":12,"total":10.10,"paid":true}'
    with pytest.raises(RowMappingError, match="the row has no column 'amount'"):
        mapping.map_row(source_row(id="12", paid="no"))


def test_row_values_in_the_url_are_url_encoded_whole() -> None:
    mapping = RequestMapping("https://api.test/customers/{customer}/orders/{id}", method="PUT")
    rows = [OutgoingRow(7, "key-7", mapping.map_row(source_row(customer="a/b c?", id="9")))]
    spec = mapping.build(rows)
    assert spec.method == "PUT"
    assert spec.url == "https://api.test/customers/a%2Fb%20c%3F/orders/9"
    assert spec.headers[IDEMPOTENCY_HEADER] == "key-7"


@pytest.mark.parametrize(
    "template", ["https://x/{}", "https://x/{a!r}", "https://x/{a:>3}", "https://x/{a.b}"]
)
def test_a_url_template_takes_plain_column_names_only(template: str) -> None:
    with pytest.raises(ValueError, match="placeholders are"):
        url_placeholders(template)


def test_static_headers_are_sent_and_the_body_is_compact_utf8_json() -> None:
    mapping = RequestMapping(URL, headers=(("X-Tenant", "acme"),))
    spec = mapping.build([OutgoingRow(1, "k", mapping.map_row(source_row(name="café")))])
    assert spec.headers == {"Content-Type": "application/json", "X-Tenant": "acme", IDEMPOTENCY_HEADER: "k"}
    assert json.loads(spec.content)["data"] == {"name": "café"}
    assert "café".encode() in spec.content


def upper_name(row: SourceRow) -> Any:
    if not row.values.get("name"):
        raise ValueError("name is empty")
    if row.values["name"] == "path":
        return RowRequest({"n": 1}, path={"name": "x/y"}, headers={"X-Row": str(row.number)})
    return {"NAME": row.values["name"].upper(), "row": row.number}


def test_a_hook_returns_the_body_or_a_request_and_its_value_error_is_the_reason() -> None:
    mapping = RequestMapping("https://api.test/{name}", hook=upper_name)
    assert mapping.map_row(source_row(name="ada")).body == {"NAME": "ADA", "row": 7}
    request = mapping.map_row(source_row(name="path"))
    spec = mapping.build([OutgoingRow(7, "k", request)])
    assert spec.url == "https://api.test/x%2Fy"
    assert spec.headers["X-Row"] == "7"
    with pytest.raises(RowMappingError, match="request hook refused the row: ValueError: name is empty"):
        mapping.map_row(source_row(name=""))


def test_the_shipped_example_hook_maps_a_demo_row_to_an_order() -> None:
    from s3stagger.examples.request_hook import order_request

    values = {
        "record_id": "r1-7",
        "customer_id": "c00042",
        "amount": "15.5",
        "currency": "eur",
        "created_at": "2026-11-30T20:00:00Z",
    }
    body = order_request(SourceRow("b", "k.csv", 3, values))
    assert body == {
        "orderId": "r1-7",
        "customer": {"id": "c00042"},
        "total": {"amount": Decimal("15.50"), "currency": "EUR"},
        "placedAt": "2026-11-30T20:00:00Z",
        "source": "s3://b/k.csv#3",
    }
    assert b'"amount":15.50' in encode_json(body)
    for column, bad in (("amount", "-1"), ("amount", "ten"), ("currency", "euro")):
        with pytest.raises(ValueError, match=column):
            order_request(SourceRow("b", "k", 3, values | {column: bad}))


def test_a_mapping_refuses_contradictions() -> None:
    with pytest.raises(ValueError, match="field map or a hook"):
        RequestMapping(URL, fields=(), hook=upper_name)
    with pytest.raises(ValueError, match="cannot carry several rows"):
        RequestMapping("https://api.test/{id}", rows_per_request=5)
    with pytest.raises(ValueError, match="rows_per_request"):
        RequestMapping(URL, rows_per_request=0)
    with pytest.raises(ValueError, match="at least one row"):
        RequestMapping(URL).build([])


def batch(count: int) -> list[OutgoingRow]:
    return [OutgoingRow(n, f"key-{n}", RowRequest({"n": n})) for n in range(1, count + 1)]


def test_a_batch_carries_its_rows_keys_and_one_key_derived_from_them() -> None:
    mapping = RequestMapping(URL, rows_per_request=3)
    spec = mapping.build(batch(3))
    assert json.loads(spec.content) == {"rows": [{"key": f"key-{n}", "body": {"n": n}} for n in (1, 2, 3)]}
    key = spec.headers[IDEMPOTENCY_HEADER]
    assert key == batch_idempotency_key(["key-1", "key-2", "key-3"])
    assert key != batch_idempotency_key(["key-1", "key-2"])
    assert batch_idempotency_key(["ab", "c"]) != batch_idempotency_key(["a", "bc"])
    assert mapping.build(batch(1)).headers[IDEMPOTENCY_HEADER] == batch_idempotency_key(["key-1"])


OK = Delivery(DeliveryOutcome.APPLIED, 200, "ok", latency_s=0.01)


def results(*items: dict[str, Any]) -> bytes:
    return json.dumps({"results": list(items)}).encode()


def test_each_row_of_a_batch_is_decided_by_its_own_result() -> None:
    mapping = RequestMapping(URL, rows_per_request=5, retryable_statuses=frozenset({409}))
    answer = results(
        {"key": "key-1", "status": 201},
        {"key": "key-2", "status": 422, "error": "bad amount"},
        {"key": "key-3", "status": 409},
        {"key": "key-4", "status": 503},
    )
    deliveries = batch_deliveries(mapping, batch(5), OK, answer)
    assert [d.outcome for d in deliveries] == [
        DeliveryOutcome.APPLIED,
        DeliveryOutcome.REJECTED,
        DeliveryOutcome.RETRYABLE_ERROR,
        DeliveryOutcome.RETRYABLE_ERROR,
        DeliveryOutcome.RETRYABLE_ERROR,
    ]
    assert deliveries[1].status == 422
    assert "bad amount" in deliveries[1].detail
    assert "no result for the row" in deliveries[4].detail


@pytest.mark.parametrize("content", [b"not json", b"[]", b'{"results": 3}', b""])
def test_an_unreadable_batch_answer_retries_every_row(content: bytes) -> None:
    deliveries = batch_deliveries(RequestMapping(URL, rows_per_request=2), batch(2), OK, content)
    assert [d.outcome for d in deliveries] == [DeliveryOutcome.RETRYABLE_ERROR] * 2


def test_a_batch_refused_as_a_whole_refuses_every_row() -> None:
    refused = Delivery(DeliveryOutcome.REJECTED, 401, "HTTP 401: no")
    assert batch_deliveries(RequestMapping(URL, rows_per_request=2), batch(2), refused, b"") == [refused] * 2


def test_json_encoding_keeps_decimal_digits_and_refuses_what_is_not_json() -> None:
    value = {"a": [Decimal("0.10"), 1, True, None, "é", 1.5], "b": (Decimal("-3"),)}
    assert encode_json(value) == '{"a":[0.10,1,true,null,"é",1.5],"b":[-3]}'.encode()
    with pytest.raises(RowMappingError, match="not a JSON number"):
        encode_json({"x": float("nan")})
    with pytest.raises(RowMappingError, match="set is not JSON"):
        encode_json({"x": {1, 2}})
