"""SMTP user and password from a Secrets Manager secret, fetched once and cached.

The secret's value is JSON ``{"username": ..., "password": ...}`` (for Amazon SES, the SMTP
credentials derived from an IAM key; for a relay, its account). The cache lives as long as the
Lambda execution environment; :meth:`SmtpSecret.forget` drops it after the server refused the
credentials, so a corrected secret is read on the retry.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from s3stagger.adapters.smtp_sender import SmtpCredentials
from s3stagger.errors import S3StaggerError


class SmtpSecretError(S3StaggerError):
    """The SMTP secret cannot be read or is not ``{"username", "password"}``."""


class SmtpSecret:
    def __init__(self, client: Any, secret_id: str) -> None:
        self._client = client
        self.secret_id = secret_id
        self._cached: SmtpCredentials | None = None
        self._lock = threading.Lock()

    def credentials(self) -> SmtpCredentials:
        with self._lock:
            if self._cached is None:
                self._cached = self._fetch()
            return self._cached

    def forget(self) -> None:
        with self._lock:
            self._cached = None

    def _fetch(self) -> SmtpCredentials:
        try:
            value = self._client.get_secret_value(SecretId=self.secret_id)["SecretString"]
        except (ClientError, BotoCoreError, KeyError) as error:
            raise SmtpSecretError(f"cannot read SMTP secret {self.secret_id!r}: {error}") from error
        try:
            data = json.loads(value)
            return SmtpCredentials(username=str(data["username"]), password=str(data["password"]))
        except (ValueError, KeyError, TypeError) as error:
            raise SmtpSecretError(
                f'SMTP secret {self.secret_id!r} must be JSON {{"username": ..., "password": ...}}'
            ) from error
