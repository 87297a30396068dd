"""SigV4 verification of a received request, as API Gateway's IAM authorisation does it (local stand-in).

botocore computes the signature the request should carry, from the request's own method, path,
query, signed headers and body and the secret key of the access key it names; the check compares
the two and the request's age. Used by the downstream simulator (``auth=sigv4``) and by tests.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, ?SignedHeaders=(?P<headers>[a-z0-9;._-]+), ?Signature=(?P<signature>[0-9a-f]{64})$"
)
MAX_SKEW_S = 15 * 60


def sigv4_refusal(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret_keys: Mapping[str, str],
    region: str,
    service: str,
    now: datetime | None = None,
) -> str | None:
    """Why the request's signature is not valid, or ``None`` when it is. ``headers`` keys lowercase."""
    match = _AUTHORIZATION.match(headers.get("authorization", ""))
    if match is None:
        return "no AWS4-HMAC-SHA256 Authorization header"
    access_key = match["key"]
    if access_key not in secret_keys:
        return f"unknown access key {access_key}"
    if (match["region"], match["service"]) != (region, service):
        return f"credential scope is {match['region']}/{match['service']}, expected {region}/{service}"
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "no valid X-Amz-Date header"
    if abs(((now or datetime.now(UTC)) - signed_at).total_seconds()) > MAX_SKEW_S:
        return "signature expired (X-Amz-Date more than 15 minutes away)"
    signed_names = match["headers"].split(";")
    if "host" not in signed_names or any(name not in headers for name in signed_names):
        return "SignedHeaders lists a header the request lacks (or not host)"
    request = AWSRequest(method=method, url=url, data=body, headers={n: headers[n] for n in signed_names})
    request.context["timestamp"] = amz_date
    credentials = Credentials(access_key, secret_keys[access_key], headers.get("x-amz-security-token"))
    signer = SigV4Auth(credentials, service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, match["signature"]):
        return "signature does not match"
    return None
