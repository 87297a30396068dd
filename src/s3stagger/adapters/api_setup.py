"""What the processor needs to talk to the downstream API, built from the settings once per container.

The request mapping (its hook imported), the authentication provider (its secrets and token cached
across invocations) and the secrets of the TLS context. The handler keeps one :class:`ApiSetup` per
distinct settings, so a warm container neither re-reads a secret before its TTL nor fetches a new
OAuth token before the old one nears its expiry.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from botocore.credentials import Credentials, ReadOnlyCredentials

from s3stagger.adapters.auth import (
    AuthenticationError,
    HeaderSecretAuth,
    NoAuth,
    OAuthClientCredentials,
    RequestAuth,
    SigV4Auth,
)
from s3stagger.adapters.secrets import AwsSecretReader, CachedSecret, ClientFactory, SecretReader
from s3stagger.adapters.tls import tls_context
from s3stagger.api_config import AuthMode
from s3stagger.config import ProcessorSettings
from s3stagger.domain.request_mapping import RequestMapping


@dataclass
class ApiSetup:
    mapping: RequestMapping
    auth: RequestAuth
    ca: CachedSecret | None
    client_certificate: CachedSecret | None

    def tls(self) -> ssl.SSLContext:
        """The TLS context for the CA and client certificate as their secrets hold them now."""
        return tls_context(
            self.ca.get() if self.ca else None,
            self.client_certificate.get() if self.client_certificate else None,
        )


def build_api_setup(
    settings: ProcessorSettings,
    client_factory: ClientFactory,
    credentials: Callable[[], Credentials | None],
    reader: SecretReader | None = None,
) -> ApiSetup:
    """Build from ``settings``; ``credentials`` gives the function's AWS credentials (SigV4)."""
    api = settings.api
    secrets = reader or AwsSecretReader(client_factory)
    ttl = api.auth.secret_ttl_s

    def cached(secret_id: str | None) -> CachedSecret | None:
        return CachedSecret(secrets, secret_id, ttl) if secret_id else None

    setup = ApiSetup(
        api.request.mapping(settings.downstream_url),
        NoAuth(),
        cached(api.tls.ca_secret_id),
        cached(api.tls.client_cert_secret_id),
    )
    setup.auth = _auth(settings, setup, cached(api.auth.secret_id), credentials)
    return setup


def _auth(
    settings: ProcessorSettings,
    setup: ApiSetup,
    secret: CachedSecret | None,
    credentials: Callable[[], Credentials | None],
) -> RequestAuth:
    auth = settings.api.auth
    if auth.mode in (AuthMode.API_KEY, AuthMode.BEARER) and secret is not None:
        bearer = auth.mode is AuthMode.BEARER and auth.header.lower() == "authorization"
        return HeaderSecretAuth(secret, auth.header, "Bearer " if bearer else "")
    if auth.mode is AuthMode.OAUTH and secret is not None and auth.token_url is not None:
        timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
        http = httpx.Client(verify=setup.tls(), timeout=timeout)
        return OAuthClientCredentials(
            auth.token_url, secret, http, scope=auth.scope, margin_s=auth.token_expiry_margin_s
        )
    if auth.mode is AuthMode.SIGV4 and auth.sigv4_region is not None:

        def frozen() -> ReadOnlyCredentials:
            current = credentials()
            if current is None:
                raise AuthenticationError("SigV4 needs AWS credentials and the function has none")
            return current.get_frozen_credentials()

        return SigV4Auth(frozen, auth.sigv4_region, auth.sigv4_service)
    return NoAuth()
