"""Secrets for the downstream API: read from Secrets Manager or SSM SecureString, cached with a TTL.

The environment names a secret (``S3STAGGER_AUTH_SECRET_ID`` and the TLS ids), never holds it. An
id is a Secrets Manager name or ARN, or an SSM parameter as ``ssm:<name>`` or its ARN. Values are
never logged: errors name the secret id and the AWS error code only.

Reads are synchronous boto3 calls: they happen once per TTL per container (plus one forced re-read
after a 401/403), so they cost one round trip now and then, and no two rows read at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from s3stagger.errors import S3StaggerError

Clock = Callable[[], float]
ClientFactory = Callable[[str], Any]
"""``factory("secretsmanager")`` / ``factory("ssm")``: a boto3 client."""


class SecretUnavailableError(S3StaggerError, RuntimeError):
    """A secret cannot be read (missing, no permission, not a string): the invocation fails."""


class SecretReader(Protocol):
    def read(self, secret_id: str) -> str:
        """The secret's current value; raises :class:`SecretUnavailableError`."""
        ...


def is_ssm_parameter(secret_id: str) -> bool:
    """An SSM parameter (``ssm:<name>`` or ``arn:<partition>:ssm:...``), else a Secrets Manager id."""
    return secret_id.startswith("ssm:") or (
        secret_id.startswith("arn:") and secret_id.split(":")[2:3] == ["ssm"]
    )


class AwsSecretReader:
    """Reads Secrets Manager secrets (``SecretString``) and SSM SecureString parameters (decrypted)."""

    def __init__(self, client_factory: ClientFactory) -> None:
        self._client_factory = client_factory
        self._clients: dict[str, Any] = {}

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._client_factory(service)
        return self._clients[service]

    def read(self, secret_id: str) -> str:
        try:
            if is_ssm_parameter(secret_id):
                name = secret_id.removeprefix("ssm:")
                answer = self._client("ssm").get_parameter(Name=name, WithDecryption=True)
                value = answer["Parameter"]["Value"]
            else:
                value = (
                    self._client("secretsmanager").get_secret_value(SecretId=secret_id).get("SecretString")
                )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise SecretUnavailableError(f"cannot read secret {secret_id}: {code}") from None
        except BotoCoreError as error:
            raise SecretUnavailableError(f"cannot read secret {secret_id}: {type(error).__name__}") from None
        if not isinstance(value, str) or not value:
            raise SecretUnavailableError(f"secret {secret_id} has no string value")
        return value


class CachedSecret:
    """One secret, read at most once per ``ttl_s`` unless a refusal forces a re-read.

    ``generation`` grows whenever the value read differs from the one before, so a caller can tell
    whether a request was made with the current value.
    """

    def __init__(
        self, reader: SecretReader, secret_id: str, ttl_s: float, clock: Clock = time.monotonic
    ) -> None:
        self.secret_id = secret_id
        self._reader = reader
        self._ttl_s = ttl_s
        self._clock = clock
        self._value: str | None = None
        self._read_at = 0.0
        self.generation = 0
        self.reads = 0

    def get(self) -> str:
        if self._value is None or self._clock() - self._read_at >= self._ttl_s:
            return self._read()
        return self._value

    def reread(self) -> bool:
        """Read again now; True when the value changed."""
        before = self.generation
        self._read()
        return self.generation != before

    def _read(self) -> str:
        value = self._reader.read(self.secret_id)
        self.reads += 1
        if self._value is not None and value != self._value:
            self.generation += 1
        self._value = value
        self._read_at = self._clock()
        return value
