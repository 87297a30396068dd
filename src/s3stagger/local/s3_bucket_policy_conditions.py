"""Stand-in for what moto's S3 gets wrong: the conditions of a bucket policy's statements.

moto 5.2.5 evaluates a bucket policy on object requests, but of the condition operators it knows
only ``StringEquals`` and treats every other one as met. The modules' TLS-only statements (``Deny
s3:*`` when ``Bool aws:SecureTransport = false``, or ``NumericLessThan s3:TlsVersion 1.2``) then
deny every request, so nothing can be uploaded to a bucket Terraform built. :func:`install`
replaces the bucket's permission check: a statement applies only when its conditions hold for the
request, evaluated as AWS does for ``Bool``, ``String(Not)Equals`` and the ``Numeric`` operators.

Requests to the emulator travel over plain HTTP on loopback where AWS's travel over TLS, so they
are evaluated as the TLS requests they stand for (``aws:SecureTransport`` true, ``s3:TlsVersion``
1.3); a condition on a key the emulator knows nothing of is ignored, as moto ignores it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3.models import FakeBucket

REQUEST_CONTEXT = {"aws:securetransport": "true", "s3:tlsversion": "1.3"}
"""Condition keys of an emulator request (lower case), as a TLS request to AWS has them."""


def _numeric(test: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    return lambda actual, expected: test(float(actual), float(expected))


OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "Bool": lambda actual, expected: actual.lower() == expected.lower(),
    "StringEquals": lambda actual, expected: actual == expected,
    "StringNotEquals": lambda actual, expected: actual != expected,
    "NumericEquals": _numeric(lambda actual, expected: actual == expected),
    "NumericLessThan": _numeric(lambda actual, expected: actual < expected),
    "NumericLessThanEquals": _numeric(lambda actual, expected: actual <= expected),
    "NumericGreaterThan": _numeric(lambda actual, expected: actual > expected),
    "NumericGreaterThanEquals": _numeric(lambda actual, expected: actual >= expected),
}


def statement_applies(statement: dict[str, Any], context: dict[str, str] = REQUEST_CONTEXT) -> bool:
    """Whether every condition of ``statement`` holds for a request with ``context``."""
    for operator, keys in (statement.get("Condition") or {}).items():
        test = OPERATORS.get(operator)
        for key, expected in keys.items():
            actual = context.get(key.lower())
            if test is None or actual is None:
                continue  # unknown to the emulator: ignored
            values = expected if isinstance(expected, list) else [expected]
            if not any(test(actual, str(value)) for value in values):
                return False
    return True


def get_permission(self: FakeBucket, action: str, resource: str) -> PermissionResult:
    """The bucket policy's answer for ``action`` on ``resource``, counting applicable statements only."""
    if self.policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(self.policy.decode())
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    applicable = [
        {name: value for name, value in statement.items() if name != "Condition"}
        for statement in statements
        if statement_applies(statement)
    ]
    return IAMPolicy(json.dumps({"Statement": applicable})).is_action_permitted(action, resource)


_original: Any = None


def install() -> None:
    """Evaluate bucket policy conditions (idempotent)."""
    global _original  # noqa: PLW0603 - one process-wide patch, undone by uninstall()
    if _original is None:
        _original = FakeBucket.get_permission
        FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


def uninstall() -> None:
    global _original  # noqa: PLW0603
    if _original is not None:
        FakeBucket.get_permission = _original  # type: ignore[method-assign]
        _original = None


def installed() -> bool:
    return FakeBucket.get_permission is get_permission
