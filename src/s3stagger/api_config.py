"""Settings of the downstream API: authentication, TLS, request mapping, the breaker.

Read from ``S3STAGGER_*`` variables with the rest of :class:`~s3stagger.config.ProcessorSettings`.
Secrets never come from the environment: it holds only the ids (names or ARNs) of Secrets Manager
secrets or SSM SecureString parameters (``ssm:<name>`` or an SSM parameter ARN), which the
processor reads with its own role. See docs/processor.md for each mode.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from s3stagger.domain.breaker import BreakerSettings
from s3stagger.domain.request_mapping import FieldSpec, FieldType, RequestMapping, RowHook, url_placeholders
from s3stagger.env_settings import PREFIX, ConfigError, read, read_float, read_int


class AuthMode(StrEnum):
    NONE = "none"
    API_KEY = "api-key"
    """A key from a secret, in a header (``X-Api-Key`` unless ``AUTH_HEADER`` says otherwise)."""
    BEARER = "bearer"
    """A token from a secret, as ``Authorization: Bearer <token>`` (or in ``AUTH_HEADER``)."""
    OAUTH = "oauth"
    """OAuth 2.0 client credentials: ``{"client_id", "client_secret"}`` from a secret, a token
    from ``OAUTH_TOKEN_URL``, sent as a bearer token."""
    SIGV4 = "sigv4"
    """AWS Signature Version 4 with the function's role (API Gateway IAM auth, function URLs)."""


@dataclass(frozen=True)
class AuthSettings:
    mode: AuthMode = AuthMode.NONE
    secret_id: str | None = None
    header: str = ""
    """The header carrying the key or token; empty for OAuth and SigV4 (``Authorization``)."""
    secret_ttl_s: float = 300.0
    """How long a secret read is reused by the container before it is read again."""
    token_url: str | None = None
    scope: str | None = None
    token_expiry_margin_s: float = 60.0
    """An OAuth token is renewed this long before it expires."""
    sigv4_service: str = "execute-api"
    sigv4_region: str | None = None


@dataclass(frozen=True)
class TlsSettings:
    ca_secret_id: str | None = None
    """A secret holding PEM CA certificates trusted on top of the default bundle."""
    client_cert_secret_id: str | None = None
    """A secret holding ``{"certificate": PEM, "private_key": PEM}`` (or one PEM with both): mTLS."""


@dataclass(frozen=True)
class RequestSettings:
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    fields: tuple[FieldSpec, ...] | None = None
    hook: str | None = None
    """``module:function``: a :data:`~s3stagger.domain.request_mapping.RowHook`."""
    rows_per_request: int = 1
    retryable_statuses: frozenset[int] = frozenset()

    def mapping(self, url_template: str) -> RequestMapping:
        """The request mapping, the hook imported; raises :class:`ConfigError`."""
        hook = load_hook(self.hook) if self.hook else None
        try:
            return RequestMapping(
                url_template,
                self.method,
                self.headers,
                self.fields,
                hook,
                self.rows_per_request,
                self.retryable_statuses,
            )
        except ValueError as error:
            raise ConfigError(f"{PREFIX}DOWNSTREAM_URL / request settings: {error}") from None


@dataclass(frozen=True)
class ApiSettings:
    auth: AuthSettings = field(default_factory=AuthSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    request: RequestSettings = field(default_factory=RequestSettings)
    breaker: BreakerSettings = field(default_factory=BreakerSettings)


def load_hook(spec: str) -> RowHook:
    """Import ``module:function``; raises :class:`ConfigError` naming what is wrong."""
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ConfigError(f"{PREFIX}REQUEST_HOOK={spec!r} must be module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"{PREFIX}REQUEST_HOOK={spec!r}: cannot import {module_name}: {error}") from None
    hook = getattr(module, function_name, None)
    if not callable(hook):
        raise ConfigError(f"{PREFIX}REQUEST_HOOK={spec!r}: {module_name} has no function {function_name}")
    return hook  # type: ignore[no-any-return]


def _json_object(env: Mapping[str, str], name: str) -> dict[str, object] | None:
    raw = read(env, name)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name} is not JSON") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{PREFIX}{name} must be a JSON object")
    return value


def _auth(env: Mapping[str, str]) -> AuthSettings:
    raw_mode = read(env, "AUTH_MODE") or AuthMode.NONE.value
    try:
        mode = AuthMode(raw_mode.lower())
    except ValueError:
        choices = ", ".join(mode.value for mode in AuthMode)
        raise ConfigError(f"{PREFIX}AUTH_MODE={raw_mode!r} must be one of {choices}") from None
    secret_id = read(env, "AUTH_SECRET_ID")
    if mode in (AuthMode.API_KEY, AuthMode.BEARER, AuthMode.OAUTH) and secret_id is None:
        raise ConfigError(
            f"{PREFIX}AUTH_SECRET_ID is required for AUTH_MODE={mode.value}: the Secrets Manager id "
            "or ssm:<parameter> holding the credential (never the credential itself)"
        )
    token_url = read(env, "OAUTH_TOKEN_URL")
    if mode is AuthMode.OAUTH and (token_url is None or not token_url.startswith(("https://", "http://"))):
        raise ConfigError(f"{PREFIX}OAUTH_TOKEN_URL must be the token endpoint's URL for AUTH_MODE=oauth")
    region = read(env, "SIGV4_REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if mode is AuthMode.SIGV4 and not region:
        raise ConfigError(f"{PREFIX}SIGV4_REGION (or AWS_REGION) is required for AUTH_MODE=sigv4")
    default_header = {AuthMode.API_KEY: "X-Api-Key", AuthMode.BEARER: "Authorization"}.get(mode, "")
    return AuthSettings(
        mode=mode,
        secret_id=secret_id,
        header=read(env, "AUTH_HEADER") or default_header,
        secret_ttl_s=read_float(env, "AUTH_SECRET_TTL_S", 300.0, 0.0, 86_400.0),
        token_url=token_url,
        scope=read(env, "OAUTH_SCOPE"),
        token_expiry_margin_s=read_float(env, "OAUTH_EXPIRY_MARGIN_S", 60.0, 0.0, 3_600.0),
        sigv4_service=read(env, "SIGV4_SERVICE") or "execute-api",
        sigv4_region=region,
    )


def _fields(env: Mapping[str, str]) -> tuple[FieldSpec, ...] | None:
    """``REQUEST_FIELDS``: ``{"target": "column[:type[:date format]]"}``."""
    spec = _json_object(env, "REQUEST_FIELDS")
    if spec is None:
        return None
    fields = []
    for target, text in spec.items():
        if not isinstance(text, str) or not text:
            raise ConfigError(f'{PREFIX}REQUEST_FIELDS[{target!r}] must be "column[:type[:format]]"')
        source, _, rest = text.partition(":")
        type_name, _, date_format = rest.partition(":")
        try:
            field_type = FieldType(type_name or FieldType.STRING.value)
        except ValueError:
            choices = ", ".join(kind.value for kind in FieldType)
            raise ConfigError(
                f"{PREFIX}REQUEST_FIELDS[{target!r}]: type {type_name!r} is not one of {choices}"
            ) from None
        if date_format and field_type is not FieldType.DATE:
            raise ConfigError(f"{PREFIX}REQUEST_FIELDS[{target!r}]: only a date takes a format")
        fields.append(FieldSpec(target, source, field_type, date_format or None))
    return tuple(fields)


def _request(env: Mapping[str, str], url: str) -> RequestSettings:
    method = (read(env, "REQUEST_METHOD") or "POST").upper()
    if method not in ("POST", "PUT", "PATCH"):
        raise ConfigError(f"{PREFIX}REQUEST_METHOD={method} must be POST, PUT or PATCH (a row has a body)")
    headers = _json_object(env, "REQUEST_HEADERS") or {}
    if not all(isinstance(value, str) for value in headers.values()):
        raise ConfigError(f"{PREFIX}REQUEST_HEADERS values must be strings")
    fields, hook = _fields(env), read(env, "REQUEST_HOOK")
    if fields is not None and hook is not None:
        raise ConfigError(f"{PREFIX}REQUEST_FIELDS and {PREFIX}REQUEST_HOOK exclude each other")
    statuses = []
    for part in (read(env, "RETRYABLE_STATUSES") or "").split(","):
        if part.strip():
            if not part.strip().isdigit() or not 400 <= int(part) <= 499:
                raise ConfigError(f"{PREFIX}RETRYABLE_STATUSES: {part.strip()!r} is not a 4xx status")
            statuses.append(int(part))
    try:
        url_placeholders(url)
    except ValueError as error:
        raise ConfigError(f"{PREFIX}DOWNSTREAM_URL: {error}") from None
    return RequestSettings(
        method=method,
        headers=tuple((str(name), str(value)) for name, value in headers.items()),
        fields=fields,
        hook=hook,
        rows_per_request=read_int(env, "ROWS_PER_REQUEST", 1, 1, 1000),
        retryable_statuses=frozenset(statuses),
    )


def api_settings_from_env(env: Mapping[str, str], url: str) -> ApiSettings:
    """The downstream API settings; raises :class:`ConfigError` naming the variable."""
    window = read_int(env, "BREAKER_WINDOW", 20, 1, 10_000)
    request = _request(env, url)
    request.mapping(url)  # a hook that does not import, or a batch with a row URL, fails here
    return ApiSettings(
        auth=_auth(env),
        tls=TlsSettings(read(env, "TLS_CA_SECRET_ID"), read(env, "TLS_CLIENT_CERT_SECRET_ID")),
        request=request,
        breaker=BreakerSettings(
            window=window,
            ratio=read_float(env, "BREAKER_RATIO", 0.8, 0.01, 1.0),
            min_rows=read_int(env, "BREAKER_MIN_ROWS", min(5, window), 1, window),
        ),
    )
