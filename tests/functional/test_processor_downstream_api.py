"""The processor handler against the simulator with authentication, TLS, mTLS and a batch endpoint;
secrets in moto's Secrets Manager, objects in moto's S3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from _processor_support import BUCKET, csv_bytes, invoke, moto_s3, processor_env

from s3stagger.api_config import AuthMode
from s3stagger.handlers import process_object
from s3stagger.local.downstream import DownstreamSimulator, LatencySpec, SimulatorSettings
from s3stagger.local.downstream.auth import DownstreamAuth
from s3stagger.local.downstream.tls import local_certificates
from s3stagger.processor import DownstreamUnavailableError, SystemicRejectionError

FAST = SimulatorSettings(capacity=8, latency=LatencySpec.fixed(0.002), seed=1)
ROWS = 60


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_s3(monkeypatch) as client:
        process_object._api_setups.clear()
        yield client
        process_object._api_setups.clear()


def secret(name: str, value: str) -> str:
    return str(
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name=name, SecretString=value)[
            "ARN"
        ]
    )


def rotate(arn: str, value: str) -> None:
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(SecretId=arn, SecretString=value)


def put(s3: Any, key: str, rows: int = ROWS) -> dict[str, Any]:
    body = csv_bytes(rows)
    etag = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"]
    return {"object": {"bucket": BUCKET, "key": key, "etag": etag, "size": len(body)}, "cursor": None}


def sink_objects(s3: Any) -> list[str]:
    return [
        item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="failed-rows/").get("Contents", [])
    ]


def test_an_api_key_from_secrets_manager_applies_every_row(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    arn = secret("downstream/api-key", "key-1")
    auth = DownstreamAuth(AuthMode.API_KEY, accepted={"key-1"})
    with DownstreamSimulator(FAST, auth=auth) as sim:
        processor_env(monkeypatch, sim.rows_url, AUTH_MODE="api-key", AUTH_SECRET_ID=arn)
        answer = invoke(put(s3, "normal/a.csv"))
        stats = sim.stats()
    assert (answer["status"], answer["rows_applied"], answer["auth_refreshes"]) == ("COMPLETE", ROWS, 0)
    assert (stats.effects_applied, auth.refused) == (ROWS, 0)


def test_a_rotated_key_recovers_after_one_refresh_with_no_row_in_the_sink(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = secret("downstream/api-key", "old")
    auth = DownstreamAuth(AuthMode.API_KEY, accepted={"old"})
    with DownstreamSimulator(FAST, auth=auth) as sim:
        processor_env(monkeypatch, sim.rows_url, AUTH_MODE="api-key", AUTH_SECRET_ID=arn, MAX_CONCURRENCY=4)
        assert invoke(put(s3, "normal/warm.csv", 5))["rows_applied"] == 5  # the container caches "old"
        rotate(arn, "new")
        auth.accept("new")  # the old key is refused from now on
        answer = invoke(put(s3, "normal/after-rotation.csv"))
        stats = sim.stats()
    assert (answer["status"], answer["rows_applied"], answer["rows_failed"]) == ("COMPLETE", ROWS, 0)
    assert answer["auth_refreshes"] == 1
    assert answer["failed_rows_object"] is None
    assert sink_objects(s3) == []
    assert stats.effects_applied == 5 + ROWS
    assert stats.duplicate_effects == 0


def test_a_wrong_key_stops_the_object_then_a_fixed_one_applies_every_row_once(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = secret("downstream/api-key", "wrong")
    auth = DownstreamAuth(AuthMode.API_KEY, accepted={"right"})
    event = put(s3, "normal/b.csv", 200)
    with DownstreamSimulator(FAST, auth=auth) as sim:
        processor_env(monkeypatch, sim.rows_url, AUTH_MODE="api-key", AUTH_SECRET_ID=arn)
        with pytest.raises(SystemicRejectionError, match="refuses most rows of the object with HTTP 401"):
            invoke(event)
        refused = auth.refused
        assert sink_objects(s3) == []
        rotate(arn, "right")
        answer = invoke(event)  # the message redriven once the secret is fixed
        stats = sim.stats()
    assert refused < 200  # stopped early, most rows never sent
    assert (answer["status"], answer["rows_applied"], answer["rows_failed"]) == ("COMPLETE", 200, 0)
    assert stats.effects_applied == 200
    assert stats.duplicate_effects == 0
    assert sink_objects(s3) == []


def test_oauth_client_credentials_apply_every_row_with_one_token(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = secret("downstream/oauth", json.dumps({"client_id": "s3stagger", "client_secret": "s3cret"}))
    auth = DownstreamAuth(AuthMode.OAUTH, clients={"s3stagger": "s3cret"})
    with DownstreamSimulator(FAST, auth=auth) as sim:
        processor_env(
            monkeypatch, sim.rows_url, AUTH_MODE="oauth", AUTH_SECRET_ID=arn, OAUTH_TOKEN_URL=sim.token_url
        )
        first = invoke(put(s3, "normal/c.csv"))
        auth.revoke_tokens()
        second = invoke(put(s3, "normal/d.csv"))
        stats = sim.stats()
    assert (first["rows_applied"], first["auth_refreshes"]) == (ROWS, 0)
    assert (second["rows_applied"], second["auth_refreshes"], second["rows_failed"]) == (ROWS, 1, 0)
    assert auth.tokens_issued == 2
    assert stats.effects_applied == 2 * ROWS


def test_sigv4_requests_are_verified_by_the_simulator(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # mock_aws gives the function these credentials
    auth = DownstreamAuth(AuthMode.SIGV4, access_keys={"FOOBARKEY": "FOOBARSECRET"}, region="us-east-1")
    with DownstreamSimulator(FAST, auth=auth) as sim:
        processor_env(monkeypatch, sim.rows_url, AUTH_MODE="sigv4", SIGV4_REGION="us-east-1")
        answer = invoke(put(s3, "normal/e.csv"))
    assert (answer["status"], answer["rows_applied"], auth.refused) == ("COMPLETE", ROWS, 0)


def test_https_with_a_private_ca_and_a_client_certificate(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    certificates = local_certificates()
    ca = secret("downstream/ca", certificates.ca_pem)
    client = secret("downstream/client", certificates.client_pem)
    tls = certificates.server_context(require_client_certificate=True)
    with DownstreamSimulator(FAST, tls=tls) as sim:
        assert sim.rows_url.startswith("https://127.0.0.1:")
        processor_env(monkeypatch, sim.rows_url, TLS_CA_SECRET_ID=ca, TLS_CLIENT_CERT_SECRET_ID=client)
        answer = invoke(put(s3, "normal/f.csv"))
        process_object._api_setups.clear()
        processor_env(
            monkeypatch, sim.rows_url, TLS_CA_SECRET_ID=ca, TLS_CLIENT_CERT_SECRET_ID="", MAX_ATTEMPTS=2
        )
        with pytest.raises(DownstreamUnavailableError):  # no client certificate: the handshake fails
            invoke(put(s3, "normal/g.csv"))
        stats = sim.stats()
    assert (answer["status"], answer["rows_applied"]) == ("COMPLETE", ROWS)
    assert stats.effects_applied == ROWS


def test_an_unknown_ca_is_never_trusted(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with DownstreamSimulator(FAST, tls=local_certificates().server_context()) as sim:
        processor_env(monkeypatch, sim.rows_url, MAX_ATTEMPTS=2)
        with pytest.raises(DownstreamUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
            invoke(put(s3, "normal/h.csv"))
        assert sim.stats().effects_applied == 0


def test_a_batch_endpoint_gets_n_rows_per_request_and_answers_each(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with DownstreamSimulator(FAST) as sim:
        processor_env(monkeypatch, sim.batch_url, ROWS_PER_REQUEST=10)
        answer = invoke(put(s3, "normal/i.csv", 95))
        again = invoke(put(s3, "normal/i.csv", 95))  # the same object again: every row replayed
        stats = sim.stats()
    assert (answer["status"], answer["rows_applied"], again["rows_applied"]) == ("COMPLETE", 95, 95)
    assert stats.requests == 20  # 10 batches per run
    assert (stats.effects_applied, stats.duplicate_deliveries, stats.duplicate_effects) == (95, 95, 0)
