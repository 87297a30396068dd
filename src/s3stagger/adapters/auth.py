"""Authentication of the requests to the downstream API, behind one small Protocol.

:class:`RequestAuth` adds credentials to a request and, after a 401/403, may refresh them once so
the request is sent again before its answer counts (``HttpDownstream`` decides when). Providers:

* :class:`HeaderSecretAuth` — an API key or bearer token from a secret, in a header; cached per
  container for the secret's TTL, re-read on a refusal (a rotated key works without a redeploy);
* :class:`OAuthClientCredentials` — OAuth 2.0 client credentials: ``{"client_id", "client_secret"}``
  from a secret, a token from the token endpoint cached until ``margin_s`` before it expires;
* :class:`SigV4Auth` — AWS Signature Version 4 with botocore's signer and the function's credentials;
* :class:`NoAuth`.

A provider never logs a secret or a token; errors name the secret id or the endpoint only. One
provider serves every invocation of a container (and, locally, concurrent invocations on threads):
reads, fetches and refreshes hold its lock, so concurrent refusals of the same credentials cause one
refresh.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Protocol

import httpx
from botocore.auth import SigV4Auth as BotocoreSigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from s3stagger.adapters.secrets import CachedSecret, Clock
from s3stagger.errors import S3StaggerError


class AuthenticationError(S3StaggerError, RuntimeError):
    """Credentials cannot be obtained (a token endpoint refused, a secret is malformed)."""


class RequestAuth(Protocol):
    @property
    def generation(self) -> int:
        """Grows whenever the credentials change, so a refused request can tell whether it used old ones."""
        ...

    def authorize(self, request: httpx.Request) -> int:
        """Add credentials to ``request``; return the generation of the credentials used."""
        ...

    def refresh(self, used: int) -> bool:
        """After a 401/403 to the credentials of generation ``used``: get them again unless that was
        done meanwhile; True when there are other credentials to retry with."""
        ...


class NoAuth:
    generation = 0

    def authorize(self, request: httpx.Request) -> int:
        return 0

    def refresh(self, used: int) -> bool:
        return False


class HeaderSecretAuth:
    """``header: <prefix><secret>``, e.g. ``X-Api-Key: <key>`` or ``Authorization: Bearer <token>``."""

    def __init__(self, secret: CachedSecret, header: str, prefix: str = "") -> None:
        self._secret = secret
        self._header = header
        self._prefix = prefix
        self._lock = threading.Lock()

    @property
    def generation(self) -> int:
        return self._secret.generation

    def authorize(self, request: httpx.Request) -> int:
        with self._lock:
            request.headers[self._header] = self._prefix + self._secret.get().strip()
            return self._secret.generation

    def refresh(self, used: int) -> bool:
        with self._lock:
            return self._secret.generation != used or self._secret.reread()


class OAuthClientCredentials:
    """OAuth 2.0 client credentials grant (RFC 6749 §4.4), client authenticated with HTTP Basic."""

    def __init__(
        self,
        token_url: str,
        credentials: CachedSecret,
        http: httpx.Client,
        *,
        scope: str | None = None,
        margin_s: float = 60.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._token_url = token_url
        self._credentials = credentials
        self._http = http
        self._scope = scope
        self._margin_s = margin_s
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self.generation = 0
        self.tokens_fetched = 0
        self._lock = threading.Lock()

    def authorize(self, request: httpx.Request) -> int:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - self._margin_s:
                self._fetch()
            request.headers["Authorization"] = f"Bearer {self._token}"
            return self.generation

    def refresh(self, used: int) -> bool:
        with self._lock:
            if self.generation == used:
                self._credentials.reread()
                self._fetch()
            return True

    def _client_credentials(self) -> tuple[str, str]:
        secret_id = self._credentials.secret_id
        try:
            document = json.loads(self._credentials.get())
            client_id, client_secret = document["client_id"], document["client_secret"]
        except (ValueError, KeyError, TypeError):
            raise AuthenticationError(
                f"secret {secret_id} must be JSON with client_id and client_secret"
            ) from None
        if not isinstance(client_id, str) or not isinstance(client_secret, str):
            raise AuthenticationError(f"secret {secret_id}: client_id and client_secret must be strings")
        return client_id, client_secret

    def _fetch(self) -> None:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        try:
            response = self._http.post(self._token_url, data=form, auth=self._client_credentials())
        except httpx.HTTPError as error:
            raise AuthenticationError(
                f"OAuth token endpoint {self._token_url} unreachable: {type(error).__name__}"
            ) from None
        if response.status_code != 200:
            raise AuthenticationError(
                f"OAuth token endpoint {self._token_url} refused the client credentials of secret "
                f"{self._credentials.secret_id}: HTTP {response.status_code}"
            )
        try:
            answer = response.json()
            token = answer["access_token"]
            lifetime = float(answer.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise AuthenticationError(
                f"OAuth token endpoint {self._token_url}: no access_token in its answer"
            ) from None
        if not isinstance(token, str) or not token:
            raise AuthenticationError(f"OAuth token endpoint {self._token_url}: access_token is not a string")
        self._token = token
        self._expires_at = self._clock() + lifetime
        self.generation += 1
        self.tokens_fetched += 1


CredentialsSource = Callable[[], ReadOnlyCredentials]
"""The function's current credentials (botocore refreshes a role's credentials itself)."""


class SigV4Auth:
    """Signs each request with botocore's SigV4 signer: API Gateway IAM auth, Lambda function URLs.

    Signed: the method, path, query, body and every header of the request (Host, Content-Type,
    Idempotency-Key...); the signature is in ``Authorization`` with ``X-Amz-Date`` (and
    ``X-Amz-Security-Token`` for a role's temporary credentials).
    """

    generation = 0

    def __init__(self, credentials: CredentialsSource, region: str, service: str = "execute-api") -> None:
        self._credentials = credentials
        self._region = region
        self._service = service

    def authorize(self, request: httpx.Request) -> int:
        signed = AWSRequest(
            method=request.method, url=str(request.url), data=request.content, headers=dict(request.headers)
        )
        BotocoreSigV4Auth(self._credentials(), self._service, self._region).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        return 0

    def refresh(self, used: int) -> bool:
        return False  # a role's credentials are refreshed by botocore; nothing to re-read
