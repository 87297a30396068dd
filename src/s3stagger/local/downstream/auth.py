"""What the simulated API requires of a caller: an API key, a bearer token, an OAuth token, SigV4.

:class:`DownstreamAuth` is the simulator's authentication model (no sockets): it checks each row
request and issues OAuth tokens (``POST /oauth/token``, client credentials with HTTP Basic), and
can be changed while the simulator runs — :meth:`DownstreamAuth.accept` rotates the accepted keys
or tokens, :meth:`DownstreamAuth.set_client_secret` the OAuth client's secret,
:meth:`DownstreamAuth.revoke_tokens` the tokens issued — so tests and the demo rotate credentials
for real. SigV4 is verified with botocore (:mod:`s3stagger.local.sigv4_check`), as API Gateway's
IAM authorisation would. Refusals are 401 (403 for a bad signature, as API Gateway answers).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from s3stagger.api_config import AuthMode
from s3stagger.local.sigv4_check import sigv4_refusal

OAUTH_PATH = "/oauth/token"


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str


@dataclass
class DownstreamAuth:
    """The credentials the simulated API accepts; thread-safe, changeable while it runs."""

    mode: AuthMode
    header: str = ""
    """Where the key or token is read (lower case); default ``x-api-key`` or ``authorization``."""
    accepted: set[str] = field(default_factory=set)
    """API keys (``api-key``) or bearer tokens (``bearer``) accepted now."""
    clients: dict[str, str] = field(default_factory=dict)
    """OAuth client id → client secret."""
    token_lifetime_s: float = 3600.0
    access_keys: dict[str, str] = field(default_factory=dict)
    """SigV4 access key id → secret access key."""
    region: str = "us-east-1"
    service: str = "execute-api"
    clock: Callable[[], float] = time.monotonic
    refused: int = 0
    tokens_issued: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._accepted_requests = 0
        self._after_accepted: tuple[int, Callable[[], None]] | None = None
        if not self.header:
            self.header = "x-api-key" if self.mode is AuthMode.API_KEY else "authorization"
        self.header = self.header.lower()

    # -- changes while running --------------------------------------------------------------------

    def accept(self, *values: str) -> None:
        """Accept exactly these keys or tokens from now on (a rotation)."""
        with self._lock:
            self.accepted = set(values)

    def set_client_secret(self, client_id: str, secret: str) -> None:
        with self._lock:
            self.clients[client_id] = secret

    def revoke_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def after_accepted(self, requests: int, action: Callable[[], None]) -> None:
        """Run ``action`` once, in the request path, right after the ``requests``-th accepted row
        request: a rotation the next request already meets, however fast the rows go."""
        with self._lock:
            self._after_accepted = (self._accepted_requests + requests, action)

    # -- checks -----------------------------------------------------------------------------------

    def check(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Refusal | None:
        """Why a row request is refused, or ``None`` when its credentials are good."""
        refusal = self._refusal(method, url, headers, body)
        action = None
        with self._lock:
            if refusal is not None:
                self.refused += 1
            else:
                self._accepted_requests += 1
                if self._after_accepted is not None and self._accepted_requests >= self._after_accepted[0]:
                    action, self._after_accepted = self._after_accepted[1], None
        if action is not None:
            action()
        return refusal

    def _refusal(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Refusal | None:
        if self.mode is AuthMode.NONE:
            return None
        if self.mode is AuthMode.SIGV4:
            reason = sigv4_refusal(
                method,
                url,
                headers,
                body,
                secret_keys=self.access_keys,
                region=self.region,
                service=self.service,
            )
            return None if reason is None else Refusal(403, reason)
        presented = headers.get(self.header, "")
        if self.mode is AuthMode.API_KEY:
            with self._lock:
                known = presented in self.accepted
            return None if known else Refusal(401, f"invalid or missing API key in {self.header}")
        token = presented.removeprefix("Bearer ") if presented.startswith("Bearer ") else ""
        with self._lock:
            if self.mode is AuthMode.BEARER:
                known = token in self.accepted
            else:
                expiry = self._tokens.get(token)
                known = expiry is not None and self.clock() < expiry
        return None if known else Refusal(401, "invalid, expired or missing bearer token")

    def issue_token(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, object]]:
        """``POST /oauth/token``: the status and JSON answer of a client credentials grant."""
        form = parse_qs(body.decode("utf-8", "replace"))
        if form.get("grant_type") != ["client_credentials"]:
            return 400, {"error": "unsupported_grant_type"}
        client = _basic_credentials(headers.get("authorization", ""))
        with self._lock:
            if self.mode is not AuthMode.OAUTH or client is None or self.clients.get(client[0]) != client[1]:
                self.refused += 1
                return 401, {"error": "invalid_client"}
            token = secrets.token_urlsafe(24)
            self._tokens[token] = self.clock() + self.token_lifetime_s
            self.tokens_issued += 1
        # The token type of RFC 6750, not a credential.
        answer = {"access_token": token, "token_type": "Bearer", "expires_in": int(self.token_lifetime_s)}  # nosec B105
        return 200, answer

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"auth_refused": self.refused, "tokens_issued": self.tokens_issued}


def _basic_credentials(header: str) -> tuple[str, str] | None:
    if not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header.removeprefix("Basic "), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, separator, secret = decoded.partition(":")
    return (client_id, secret) if separator else None
