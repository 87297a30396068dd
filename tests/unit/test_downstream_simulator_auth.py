"""The simulator's authentication model without sockets: keys, tokens, the token endpoint, batches."""

from __future__ import annotations

import base64
import json

import pytest

from s3stagger.api_config import AuthMode
from s3stagger.local.downstream.auth import DownstreamAuth
from s3stagger.local.downstream.model import RequestRefusedError, parse_batch_request

FORM = b"grant_type=client_credentials"


def basic(client: str, secret: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{client}:{secret}".encode()).decode()}


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_api_key_is_checked_and_a_rotation_refuses_the_old_one() -> None:
    auth = DownstreamAuth(AuthMode.API_KEY, accepted={"old"})
    assert auth.check("POST", "http://x/rows", {"x-api-key": "old"}, b"") is None
    auth.accept("new")
    refusal = auth.check("POST", "http://x/rows", {"x-api-key": "old"}, b"")
    assert refusal is not None
    assert (refusal.status, refusal.reason) == (401, "invalid or missing API key in x-api-key")
    assert auth.counts() == {"auth_refused": 1, "tokens_issued": 0}


def test_a_rotation_after_n_accepted_requests_is_met_by_the_next_request() -> None:
    auth = DownstreamAuth(AuthMode.API_KEY, accepted={"old"})
    auth.after_accepted(2, lambda: auth.accept("new"))
    old = {"x-api-key": "old"}
    assert auth.check("POST", "http://x/rows", {"x-api-key": "wrong"}, b"") is not None  # not counted
    assert [auth.check("POST", "http://x/rows", old, b"") is None for _ in range(3)] == [True, True, False]
    assert auth.check("POST", "http://x/rows", {"x-api-key": "new"}, b"") is None
    auth.accept("old")  # the action ran once: no second rotation
    assert [auth.check("POST", "http://x/rows", old, b"") is None for _ in range(3)] == [True] * 3


def test_oauth_tokens_are_issued_to_known_clients_expire_and_can_be_revoked() -> None:
    clock = Clock()
    auth = DownstreamAuth(AuthMode.OAUTH, clients={"c": "s"}, token_lifetime_s=100, clock=clock)
    status, answer = auth.issue_token(basic("c", "s"), FORM)
    assert (status, answer["token_type"], answer["expires_in"]) == (200, "Bearer", 100)
    bearer = {"authorization": f"Bearer {answer['access_token']}"}
    assert auth.check("POST", "u", bearer, b"") is None
    clock.now = 100
    assert auth.check("POST", "u", bearer, b"") is not None  # expired
    status, answer = auth.issue_token(basic("c", "s"), FORM)
    auth.revoke_tokens()
    assert auth.check("POST", "u", {"authorization": f"Bearer {answer['access_token']}"}, b"") is not None


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        (basic("c", "wrong"), FORM, 401),
        (basic("other", "s"), FORM, 401),
        ({"authorization": "Basic !!!"}, FORM, 401),
        ({"authorization": "Basic " + base64.b64encode(b"no-colon").decode()}, FORM, 401),
        ({}, FORM, 401),
        (basic("c", "s"), b"grant_type=password", 400),
    ],
)
def test_the_token_endpoint_refuses_bad_clients_and_grants(
    headers: dict[str, str], body: bytes, status: int
) -> None:
    auth = DownstreamAuth(AuthMode.OAUTH, clients={"c": "s"})
    assert auth.issue_token(headers, body)[0] == status
    assert auth.tokens_issued == 0


def test_a_client_secret_rotation_refuses_the_old_secret() -> None:
    auth = DownstreamAuth(AuthMode.OAUTH, clients={"c": "s1"})
    auth.set_client_secret("c", "s2")
    assert auth.issue_token(basic("c", "s1"), FORM)[0] == 401
    assert auth.issue_token(basic("c", "s2"), FORM)[0] == 200


def test_no_auth_accepts_anything_and_issues_no_token() -> None:
    auth = DownstreamAuth(AuthMode.NONE)
    assert auth.check("POST", "u", {}, b"") is None
    assert auth.issue_token(basic("c", "s"), FORM)[0] == 401


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({}, b'{"rows": [{"key": "k", "body": 1}]}', "missing Idempotency-Key"),
        ({"idempotency-key": "b"}, b"[]", "body is not"),
        ({"idempotency-key": "b"}, b'{"rows": [{"body": 1}]}', "body is not"),
        ({"idempotency-key": "b"}, b'{"rows": []}', "at least one row"),
        ({"idempotency-key": "b"}, b'{"rows": [{"key": "", "body": 1}]}', "each with a key"),
    ],
)
def test_a_malformed_batch_is_refused(headers: dict[str, str], body: bytes, message: str) -> None:
    with pytest.raises(RequestRefusedError, match=message) as raised:
        parse_batch_request(headers, body)
    assert raised.value.status == 400


def test_a_batch_is_parsed_into_its_rows() -> None:
    rows = parse_batch_request(
        {"idempotency-key": "b"}, json.dumps({"rows": [{"key": "k1", "body": {"a": 1}}]}).encode()
    )
    assert [(row.key, row.row) for row in rows] == [("k1", {"a": 1})]
