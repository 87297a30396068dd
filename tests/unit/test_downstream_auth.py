"""Authentication flows through the downstream client (httpx.MockTransport): API key and bearer
secrets with TTL and a refresh on 401/403, OAuth client credentials, SigV4 as a receiver checks it."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx
import pytest
from botocore.credentials import ReadOnlyCredentials

from s3stagger.adapters.auth import (
    AuthenticationError,
    HeaderSecretAuth,
    OAuthClientCredentials,
    RequestAuth,
    SigV4Auth,
)
from s3stagger.adapters.downstream_client import HttpDownstream
from s3stagger.adapters.secrets import CachedSecret, SecretUnavailableError
from s3stagger.domain.delivery import DeliveryOutcome
from s3stagger.domain.request_mapping import OutgoingRow, RowRequest
from s3stagger.local.sigv4_check import sigv4_refusal

URL = "https://api.test/rows"


@dataclass
class MemorySecrets:
    """A secret store in memory; counts reads."""

    values: dict[str, str]
    reads: int = 0

    def read(self, secret_id: str) -> str:
        self.reads += 1
        if secret_id not in self.values:
            raise SecretUnavailableError(f"cannot read secret {secret_id}: ResourceNotFoundException")
        return self.values[secret_id]


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    """The downstream: accepts a request whose ``header`` equals ``accepted``; records what it saw."""

    header: str
    accepted: str
    seen: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        value = request.headers.get(self.header, "")
        self.seen.append(value)
        return (
            httpx.Response(200) if value == self.accepted else httpx.Response(401, text="invalid credentials")
        )


def rows(count: int) -> list[list[OutgoingRow]]:
    return [[OutgoingRow(n, f"key-{n}", RowRequest({"n": n}))] for n in range(1, count + 1)]


def send(
    handler: Callable[[httpx.Request], httpx.Response], auth: RequestAuth, count: int = 1
) -> tuple[list[DeliveryOutcome], int]:
    """Deliver ``count`` single-row requests at once; the outcomes and the refreshes of the invocation."""

    async def run() -> tuple[list[DeliveryOutcome], int]:
        async with HttpDownstream([httpx.MockTransport(handler)], URL, auth=auth) as downstream:
            answers = await asyncio.gather(*(downstream.deliver(group) for group in rows(count)))
            return [delivery.outcome for (delivery,) in answers], downstream.auth_refreshes

    return asyncio.run(run())


def test_an_api_key_is_sent_in_its_header_and_read_once_per_ttl() -> None:
    store, clock = MemorySecrets({"api-key": "k1"}), Clock()
    auth = HeaderSecretAuth(CachedSecret(store, "api-key", 300, clock), "X-Api-Key")
    api = Api("x-api-key", "k1")
    assert send(api, auth, 5) == ([DeliveryOutcome.APPLIED] * 5, 0)
    assert store.reads == 1
    clock.now += 299
    send(api, auth)
    assert store.reads == 1
    clock.now += 1
    send(api, auth)
    assert store.reads == 2


def test_a_rotated_key_is_picked_up_by_one_refresh_before_the_refusal_counts() -> None:
    store = MemorySecrets({"api-key": "old"})
    auth = HeaderSecretAuth(CachedSecret(store, "api-key", 300, Clock()), "X-Api-Key")
    api = Api("x-api-key", "old")
    send(api, auth)
    store.values["api-key"] = api.accepted = "new"  # rotated: the old key is refused from now on
    outcomes, refreshes = send(api, auth, 8)
    assert outcomes == [DeliveryOutcome.APPLIED] * 8
    assert refreshes == 1
    assert store.reads == 2  # eight refusals, one re-read
    assert api.seen.count("new") == 8


def test_a_wrong_key_is_re_read_once_then_the_refusal_counts() -> None:
    store = MemorySecrets({"api-key": "wrong"})
    auth = HeaderSecretAuth(CachedSecret(store, "api-key", 300, Clock()), "X-Api-Key")
    outcomes, refreshes = send(Api("x-api-key", "right"), auth, 6)
    assert outcomes == [DeliveryOutcome.REJECTED] * 6
    assert (refreshes, store.reads) == (1, 2)


def test_a_fixed_key_is_picked_up_by_the_next_invocation_before_its_ttl() -> None:
    store = MemorySecrets({"api-key": "wrong"})
    auth = HeaderSecretAuth(CachedSecret(store, "api-key", 300, Clock()), "X-Api-Key")
    api = Api("x-api-key", "right")
    send(api, auth, 2)
    store.values["api-key"] = "right"
    assert send(api, auth, 3) == ([DeliveryOutcome.APPLIED] * 3, 1)


def test_a_bearer_token_goes_in_authorization_and_a_403_also_refreshes() -> None:
    store = MemorySecrets({"token": "t1\n"})
    auth = HeaderSecretAuth(CachedSecret(store, "token", 300, Clock()), "Authorization", "Bearer ")
    seen: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200 if request.headers["authorization"] == "Bearer t2" else 403)

    store.values["token"] = "t1"
    send(api, auth)
    store.values["token"] = "t2"
    assert send(api, auth) == ([DeliveryOutcome.APPLIED], 1)
    assert seen == ["Bearer t1", "Bearer t1", "Bearer t2"]  # (first invocation's refresh found t1 again)


def test_a_missing_secret_fails_the_invocation_naming_the_secret_not_a_value() -> None:
    auth = HeaderSecretAuth(CachedSecret(MemorySecrets({}), "prod/api-key", 300, Clock()), "X-Api-Key")
    with pytest.raises(SecretUnavailableError, match="cannot read secret prod/api-key"):
        send(Api("x-api-key", "k"), auth)


@dataclass
class TokenEndpoint:
    """An OAuth 2.0 token endpoint (client credentials, HTTP Basic); issues numbered tokens."""

    client_id: str = "client"
    client_secret: str = "s3cret"
    expires_in: int = 600
    issued: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        basic = base64.b64decode(request.headers["authorization"].removeprefix("Basic ")).decode()
        form = parse_qs(request.content.decode())
        if basic != f"{self.client_id}:{self.client_secret}" or form["grant_type"] != ["client_credentials"]:
            return httpx.Response(401, json={"error": "invalid_client"})
        self.issued.append(f"token-{len(self.issued) + 1}")
        answer = {"access_token": self.issued[-1], "token_type": "Bearer", "expires_in": self.expires_in}
        return httpx.Response(200, json=answer)


def oauth(endpoint: TokenEndpoint, store: MemorySecrets, clock: Clock) -> OAuthClientCredentials:
    http = httpx.Client(transport=httpx.MockTransport(endpoint))
    secret = CachedSecret(store, "oauth-client", 300, clock)
    return OAuthClientCredentials(
        "https://auth.test/token", secret, http, scope="rows", margin_s=60, clock=clock
    )


def credentials(client_secret: str = "s3cret") -> MemorySecrets:  # noqa: S107
    return MemorySecrets(
        {"oauth-client": json.dumps({"client_id": "client", "client_secret": client_secret})}
    )


def test_an_oauth_token_is_cached_until_shortly_before_it_expires() -> None:
    endpoint, clock = TokenEndpoint(), Clock()
    auth = oauth(endpoint, credentials(), clock)
    api = Api("authorization", "Bearer token-1")
    assert send(api, auth, 4) == ([DeliveryOutcome.APPLIED] * 4, 0)
    clock.now += 539  # 600 s tokens, renewed 60 s early
    send(api, auth)
    assert endpoint.issued == ["token-1"]
    clock.now += 1
    api.accepted = "Bearer token-2"
    assert send(api, auth) == ([DeliveryOutcome.APPLIED], 0)
    assert endpoint.issued == ["token-1", "token-2"]


def test_a_revoked_oauth_token_is_replaced_once_on_a_401() -> None:
    endpoint = TokenEndpoint()
    auth = oauth(endpoint, credentials(), Clock())
    api = Api("authorization", "Bearer token-1")
    send(api, auth)
    api.accepted = "Bearer token-2"  # token-1 revoked before its expiry
    assert send(api, auth, 5) == ([DeliveryOutcome.APPLIED] * 5, 1)
    assert endpoint.issued == ["token-1", "token-2"]


def test_a_refused_client_secret_fails_with_a_clear_error_that_holds_no_secret() -> None:
    auth = oauth(TokenEndpoint(), credentials("wrong-secret-value"), Clock())
    with pytest.raises(AuthenticationError) as raised:
        send(Api("authorization", "Bearer token-1"), auth)
    message = str(raised.value)
    assert "refused the client credentials of secret oauth-client: HTTP 401" in message
    assert "wrong-secret-value" not in message


@pytest.mark.parametrize(
    ("secret", "message"),
    [("not json", "must be JSON with client_id"), ('{"client_id": "c"}', "must be JSON with client_id")],
)
def test_a_malformed_client_secret_is_named(secret: str, message: str) -> None:
    auth = oauth(TokenEndpoint(), MemorySecrets({"oauth-client": secret}), Clock())
    with pytest.raises(AuthenticationError, match=message):
        send(Api("authorization", "x"), auth)


KEYS = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")


def sigv4_api(
    secret_keys: dict[str, str], refusals: list[str | None]
) -> Callable[[httpx.Request], httpx.Response]:
    def check(request: httpx.Request) -> httpx.Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        refusal = sigv4_refusal(
            request.method,
            str(request.url),
            headers,
            request.content,
            secret_keys=secret_keys,
            region="eu-west-1",
            service="execute-api",
        )
        refusals.append(refusal)
        return httpx.Response(403, text=refusal) if refusal else httpx.Response(200)

    return check


def test_sigv4_signs_what_the_receiver_verifies_and_a_wrong_key_is_refused() -> None:
    refusals: list[str | None] = []
    auth = SigV4Auth(lambda: KEYS, "eu-west-1")
    assert (
        send(sigv4_api({KEYS.access_key: KEYS.secret_key}, refusals), auth, 3)[0]
        == [DeliveryOutcome.APPLIED] * 3
    )
    assert refusals == [None] * 3
    refusals.clear()
    outcomes, refreshes = send(sigv4_api({KEYS.access_key: "another"}, refusals), auth)
    assert outcomes == [DeliveryOutcome.REJECTED]
    assert refusals == ["signature does not match"]  # no refreshed credentials to retry with
    assert refreshes == 1


def test_a_tampered_signed_request_is_refused() -> None:
    request = httpx.Request("POST", URL, content=b'{"n":1}', headers={"Idempotency-Key": "k"})
    SigV4Auth(lambda: KEYS, "eu-west-1").authorize(request)
    headers = {name.lower(): value for name, value in request.headers.items()}
    keys = {KEYS.access_key: KEYS.secret_key}

    def refusal(**changes: object) -> str | None:
        arguments: dict[str, object] = {"method": "POST", "url": URL, "headers": headers, "body": b'{"n":1}'}
        arguments |= changes
        return sigv4_refusal(
            str(arguments["method"]),
            str(arguments["url"]),
            arguments["headers"],  # type: ignore[arg-type]
            arguments["body"],  # type: ignore[arg-type]
            secret_keys=keys,
            region="eu-west-1",
            service="execute-api",
        )

    assert refusal() is None
    assert refusal(body=b'{"n":2}') == "signature does not match"
    assert refusal(url=URL + "?x=1") == "signature does not match"
    assert refusal(headers=headers | {"idempotency-key": "other"}) == "signature does not match"
    assert refusal(headers={k: v for k, v in headers.items() if k != "authorization"}) == (
        "no AWS4-HMAC-SHA256 Authorization header"
    )
    assert refusal(headers=headers | {"x-amz-date": "20200101T000000Z"}).startswith("signature expired")
    assert "unknown access key" in str(
        sigv4_refusal(
            "POST", URL, headers, b'{"n":1}', secret_keys={}, region="eu-west-1", service="execute-api"
        )
    )
    assert "credential scope" in str(
        sigv4_refusal(
            "POST", URL, headers, b'{"n":1}', secret_keys=keys, region="us-east-1", service="execute-api"
        )
    )


def test_two_rotations_in_one_invocation_are_each_picked_up() -> None:
    store = MemorySecrets({"api-key": "k1"})
    auth = HeaderSecretAuth(CachedSecret(store, "api-key", 300, Clock()), "X-Api-Key")
    api = Api("x-api-key", "k1")

    async def run() -> tuple[list[DeliveryOutcome], int]:
        outcomes = []
        async with HttpDownstream([httpx.MockTransport(api)], URL, auth=auth) as downstream:
            for key in ("k1", "k2", "k3"):
                store.values["api-key"] = api.accepted = key
                (delivery,) = await downstream.deliver(rows(1)[0])
                outcomes.append(delivery.outcome)
            return outcomes, downstream.auth_refreshes

    assert asyncio.run(run()) == ([DeliveryOutcome.APPLIED] * 3, 2)


def test_tokens_the_api_keeps_refusing_cost_a_bounded_number_of_token_requests() -> None:
    endpoint = TokenEndpoint()
    auth = oauth(endpoint, credentials(), Clock())
    outcomes, refreshes = send(Api("authorization", "Bearer never"), auth, 10)
    assert outcomes == [DeliveryOutcome.REJECTED] * 10
    assert refreshes == 3
    assert len(endpoint.issued) == 4  # the first token and three refreshes
