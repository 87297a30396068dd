"""Downstream API settings from S3STAGGER_* variables; what the handler builds from them (moto secrets)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from s3stagger.adapters.api_setup import build_api_setup
from s3stagger.adapters.auth import HeaderSecretAuth, NoAuth, OAuthClientCredentials, SigV4Auth
from s3stagger.adapters.secrets import AwsSecretReader, SecretUnavailableError, is_ssm_parameter
from s3stagger.adapters.tls import TlsConfigError, client_certificate_parts, tls_context
from s3stagger.api_config import AuthMode
from s3stagger.config import ConfigError, ProcessorSettings
from s3stagger.domain.request_mapping import FieldSpec, FieldType, SourceRow

URL = {"S3STAGGER_DOWNSTREAM_URL": "https://api.test/rows"}


def settings(**variables: str) -> ProcessorSettings:
    return ProcessorSettings.from_env(URL | {f"S3STAGGER_{k}": v for k, v in variables.items()})


def test_without_api_settings_rows_go_as_json_one_per_post_unauthenticated() -> None:
    api = settings().api
    assert api.auth.mode is AuthMode.NONE
    assert (api.request.method, api.request.rows_per_request, api.request.fields) == ("POST", 1, None)
    assert (api.breaker.window, api.breaker.ratio, api.breaker.min_rows) == (20, 0.8, 5)


def test_every_api_setting_is_read() -> None:
    api = settings(
        AUTH_MODE="API-KEY",
        AUTH_SECRET_ID="arn:aws:secretsmanager:eu-west-1:123456789012:secret:api-key-AbCdEf",
        AUTH_SECRET_TTL_S="60",
        REQUEST_METHOD="put",
        REQUEST_HEADERS='{"X-Tenant": "acme"}',
        REQUEST_FIELDS='{"orderId": "id:int", "placed": "day:date:%d/%m/%Y", "name": "name"}',
        RETRYABLE_STATUSES="409, 423",
        ROWS_PER_REQUEST="25",
        BREAKER_WINDOW="50",
        BREAKER_RATIO="0.5",
        BREAKER_MIN_ROWS="10",
        TLS_CA_SECRET_ID="ssm:/downstream/ca",
    ).api
    assert (api.auth.mode, api.auth.header, api.auth.secret_ttl_s) == (AuthMode.API_KEY, "X-Api-Key", 60.0)
    assert api.request.method == "PUT"
    assert api.request.headers == (("X-Tenant", "acme"),)
    assert api.request.fields == (
        FieldSpec("orderId", "id", FieldType.INT),
        FieldSpec("placed", "day", FieldType.DATE, "%d/%m/%Y"),
        FieldSpec("name", "name", FieldType.STRING),
    )
    assert api.request.retryable_statuses == frozenset({409, 423})
    assert api.request.rows_per_request == 25
    assert (api.breaker.window, api.breaker.ratio, api.breaker.min_rows) == (50, 0.5, 10)
    assert api.tls.ca_secret_id == "ssm:/downstream/ca"


def test_a_bearer_token_defaults_to_authorization_and_sigv4_to_the_function_region() -> None:
    assert settings(AUTH_MODE="bearer", AUTH_SECRET_ID="t").api.auth.header == "Authorization"
    sigv4 = ProcessorSettings.from_env(
        URL | {"S3STAGGER_AUTH_MODE": "sigv4", "AWS_REGION": "eu-west-3"}
    ).api.auth
    assert (sigv4.sigv4_region, sigv4.sigv4_service) == ("eu-west-3", "execute-api")


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"AUTH_MODE": "basic"}, "AUTH_MODE='basic' must be one of none, api-key, bearer, oauth, sigv4"),
        ({"AUTH_MODE": "api-key"}, "AUTH_SECRET_ID is required for AUTH_MODE=api-key"),
        ({"AUTH_MODE": "oauth", "AUTH_SECRET_ID": "c"}, "OAUTH_TOKEN_URL must be the token endpoint"),
        ({"AUTH_MODE": "sigv4"}, "SIGV4_REGION (or AWS_REGION) is required"),
        ({"REQUEST_METHOD": "GET"}, "REQUEST_METHOD=GET must be POST, PUT or PATCH"),
        ({"REQUEST_HEADERS": "[1]"}, "REQUEST_HEADERS must be a JSON object"),
        ({"REQUEST_HEADERS": "{"}, "REQUEST_HEADERS is not JSON"),
        ({"REQUEST_HEADERS": '{"a": 1}'}, "REQUEST_HEADERS values must be strings"),
        (
            {"REQUEST_FIELDS": '{"a": "b:float"}'},
            "type 'float' is not one of string, int, decimal, bool, date",
        ),
        ({"REQUEST_FIELDS": '{"a": 3}'}, "REQUEST_FIELDS['a'] must be"),
        ({"REQUEST_FIELDS": '{"a": "b:int:%Y"}'}, "only a date takes a format"),
        ({"REQUEST_FIELDS": "{}", "REQUEST_HOOK": "m:f"}, "exclude each other"),
        ({"REQUEST_HOOK": "nomodule"}, "must be module:function"),
        ({"REQUEST_HOOK": "s3stagger.no_such_module:f"}, "cannot import s3stagger.no_such_module"),
        ({"REQUEST_HOOK": "s3stagger.examples.request_hook:nope"}, "has no function nope"),
        ({"RETRYABLE_STATUSES": "409,500"}, "'500' is not a 4xx status"),
        ({"ROWS_PER_REQUEST": "0"}, "ROWS_PER_REQUEST=0 must be between 1 and 1000"),
        ({"ROWS_PER_REQUEST": "2.5"}, "ROWS_PER_REQUEST='2.5' is not an integer"),
        ({"BREAKER_RATIO": "half"}, "BREAKER_RATIO='half' is not a number"),
        ({"BREAKER_MIN_ROWS": "30"}, "BREAKER_MIN_ROWS=30 must be between 1 and 20"),
    ],
)
def test_a_malformed_api_setting_names_its_variable(variables: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings(**variables)
    assert message in str(raised.value)


def test_a_url_with_row_values_cannot_carry_several_rows_and_must_be_well_formed() -> None:
    with pytest.raises(ConfigError, match="cannot carry several rows"):
        ProcessorSettings.from_env(
            {"S3STAGGER_DOWNSTREAM_URL": "https://api.test/{id}", "S3STAGGER_ROWS_PER_REQUEST": "3"}
        )
    with pytest.raises(ConfigError, match="placeholders are"):
        ProcessorSettings.from_env({"S3STAGGER_DOWNSTREAM_URL": "https://api.test/{id!r}"})


def test_the_hook_setting_loads_the_shipped_example() -> None:
    mapping = settings(REQUEST_HOOK="s3stagger.examples.request_hook:order_request").api.request.mapping(
        URL["S3STAGGER_DOWNSTREAM_URL"]
    )
    values = {"record_id": "r", "customer_id": "c1", "amount": "2", "currency": "SEK", "created_at": "t"}
    request = mapping.map_row(SourceRow("b", "k", 1, values))
    assert request.body["customer"] == {"id": "c1"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.session.Session(region_name="us-east-1")


def test_secrets_are_read_from_secrets_manager_and_ssm_securestring(aws: Any) -> None:
    arn = aws.client("secretsmanager").create_secret(Name="api-key", SecretString="k-1")["ARN"]
    aws.client("ssm").put_parameter(Name="/downstream/token", Value="t-1", Type="SecureString")
    reader = AwsSecretReader(aws.client)
    assert reader.read(arn) == "k-1"
    assert reader.read("api-key") == "k-1"
    assert reader.read("ssm:/downstream/token") == "t-1"
    with pytest.raises(SecretUnavailableError, match="cannot read secret missing: ResourceNotFoundException"):
        reader.read("missing")
    with pytest.raises(SecretUnavailableError, match="cannot read secret ssm:/nope: ParameterNotFound"):
        reader.read("ssm:/nope")
    assert is_ssm_parameter("arn:aws:ssm:eu-west-1:123456789012:parameter/downstream/token")
    assert not is_ssm_parameter(arn)


def test_the_setup_builds_the_provider_each_mode_names(aws: Any) -> None:
    aws.client("secretsmanager").create_secret(Name="key", SecretString="k")
    built = {
        mode: build_api_setup(settings(**variables), aws.client, aws.get_credentials).auth
        for mode, variables in {
            "none": {},
            "api-key": {"AUTH_MODE": "api-key", "AUTH_SECRET_ID": "key"},
            "oauth": {"AUTH_MODE": "oauth", "AUTH_SECRET_ID": "key", "OAUTH_TOKEN_URL": "https://a.test/t"},
            "sigv4": {"AUTH_MODE": "sigv4", "SIGV4_REGION": "us-east-1"},
        }.items()
    }
    assert isinstance(built["none"], NoAuth)
    assert isinstance(built["api-key"], HeaderSecretAuth)
    assert isinstance(built["oauth"], OAuthClientCredentials)
    assert isinstance(built["sigv4"], SigV4Auth)
    request = httpx.Request("POST", "https://api.test/rows", content=b"{}")
    built["sigv4"].authorize(request)
    signature = request.headers["authorization"]
    assert signature.startswith("AWS4-HMAC-SHA256 Credential=")
    assert "/us-east-1/execute-api/aws4_request" in signature
    keyed = httpx.Request("POST", "https://api.test/rows")
    built["api-key"].authorize(keyed)
    assert keyed.headers["x-api-key"] == "k"


def test_a_tls_secret_that_is_not_pem_is_refused_clearly() -> None:
    with pytest.raises(TlsConfigError, match="CA bundle secret holds no usable PEM"):
        tls_context("not a certificate")
    with pytest.raises(TlsConfigError, match="certificate and its private key"):
        client_certificate_parts("-----BEGIN CERTIFICATE-----\n...")
    with pytest.raises(TlsConfigError, match="needs certificate and private_key"):
        client_certificate_parts(json.dumps({"certificate": "x"}))
    assert client_certificate_parts(json.dumps({"certificate": "C", "private_key": "K"})) == ("C", "K")
    with pytest.raises(TlsConfigError, match="do not load"):
        tls_context(None, json.dumps({"certificate": "-----BEGIN CERTIFICATE-----", "private_key": "x"}))
    assert tls_context() is tls_context()
