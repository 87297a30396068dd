"""An example request hook: a row of the demo data → the body an orders API expects.

Point the processor at it with ``S3STAGGER_REQUEST_HOOK=s3stagger.examples.request_hook:order_request``
(``s3stagger demo --auth ... `` runs it). A hook is a function taking a
:class:`~s3stagger.domain.request_mapping.SourceRow` and returning the JSON body (any JSON value; a
:class:`~decimal.Decimal` is written with its exact digits), or a
:class:`~s3stagger.domain.request_mapping.RowRequest` to also give the URL's placeholder values
and extra headers. Raising :class:`ValueError` (or ``KeyError``/``TypeError``) makes the row a failed
row with the message as its reason; the row is not sent. Keep a hook pure and fast: it runs once
per row on the invocation's event loop.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from s3stagger.domain.request_mapping import SourceRow


def order_request(row: SourceRow) -> dict[str, Any]:
    """A demo row (``record_id,customer_id,amount,currency,created_at``) → an order:
    ``{"orderId", "customer": {"id"}, "total": {"amount", "currency"}, "placedAt", "source"}``."""
    values = row.values
    try:
        amount = Decimal(values["amount"])
    except InvalidOperation:
        raise ValueError(f"amount {values['amount']!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"amount {values['amount']!r} must be a non-negative number")
    currency = values["currency"].strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValueError(f"currency {values['currency']!r} is not an ISO 4217 code")
    return {
        "orderId": values["record_id"],
        "customer": {"id": values["customer_id"]},
        "total": {"amount": amount.quantize(Decimal("0.01")), "currency": currency},
        "placedAt": values["created_at"],
        "source": f"s3://{row.bucket}/{row.key}#{row.number}",
    }
