"""``s3stagger demo --auth api-key|bearer|oauth|sigv4``: the simulated API requires credentials.

:class:`DemoAuth` makes fresh credentials for one run, has the simulator require them, stores them
in the emulator's Secrets Manager (``s3stagger/demo/downstream-credentials``) and points the
processor at that secret by name — the environment never holds a credential. Once a third of the
row requests are accepted it rotates the credential (:meth:`DemoAuth.rotate`): the processor picks the new
one up with one refresh, without a redeploy and without a failed row. SigV4 needs no secret: the
local Lambda runtime's credentials sign, the simulator verifies with botocore. The
processor also maps each row through the shipped example hook
(``s3stagger.examples.request_hook:order_request``). The run's result gets an ``auth`` section:
the mode, the rotations, the processor's credential refreshes, the requests the simulator refused, the OAuth
tokens it issued.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from s3stagger.api_config import AuthMode
from s3stagger.local.downstream.auth import DownstreamAuth
from s3stagger.local.emulator import FAKE_CREDENTIALS

if TYPE_CHECKING:
    from s3stagger.cli.pipeline_run import PipelineRun

CREDENTIALS_ID = "s3stagger/demo/downstream-credentials"
OAUTH_CLIENT_ID = "s3stagger-demo"
EXAMPLE_HOOK = "s3stagger.examples.request_hook:order_request"


@dataclass
class DemoAuth:
    """The credentials of one demo run, on both sides: the simulator and the processor's secret."""

    mode: AuthMode
    region: str
    credential: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    name: str = "auth"
    rotations: int = 0

    def __post_init__(self) -> None:
        access_key = FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]
        self.simulator_auth = DownstreamAuth(
            self.mode,
            accepted={self.credential},
            clients={OAUTH_CLIENT_ID: self.credential},
            access_keys={access_key: FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]},
            region=self.region,
        )

    @property
    def secret_value(self) -> str | None:
        """What the processor's secret holds (``None`` for SigV4: no secret)."""
        if self.mode is AuthMode.OAUTH:
            return json.dumps({"client_id": OAUTH_CLIENT_ID, "client_secret": self.credential})
        if self.mode in (AuthMode.API_KEY, AuthMode.BEARER):
            return self.credential
        return None

    def processor_environment(self, token_url: str) -> dict[str, str]:
        environment = {"S3STAGGER_AUTH_MODE": self.mode.value, "S3STAGGER_REQUEST_HOOK": EXAMPLE_HOOK}
        if self.secret_value is not None:
            environment["S3STAGGER_AUTH_SECRET_ID"] = CREDENTIALS_ID
        if self.mode is AuthMode.OAUTH:
            environment["S3STAGGER_OAUTH_TOKEN_URL"] = token_url
        if self.mode is AuthMode.SIGV4:
            environment["S3STAGGER_SIGV4_REGION"] = self.region
        return environment

    def store(self, secretsmanager: Any) -> None:
        """Create the processor's secret in the emulator (before the first object arrives)."""
        if self.secret_value is not None:
            secretsmanager.create_secret(Name=CREDENTIALS_ID, SecretString=self.secret_value)

    def rotate(self, secretsmanager: Any) -> None:
        """Rotate the credential in place, as an operator would: the simulator refuses the old one
        from now on, the secret holds the new one; the processor is not redeployed."""
        if self.mode is AuthMode.SIGV4:
            return  # the role's credentials are AWS's to rotate
        self.credential = secrets.token_urlsafe(24)
        secretsmanager.put_secret_value(SecretId=CREDENTIALS_ID, SecretString=self.secret_value)
        self.simulator_auth.accept(self.credential)
        self.simulator_auth.set_client_secret(OAUTH_CLIENT_ID, self.credential)
        self.simulator_auth.revoke_tokens()
        self.rotations += 1

    def rotate_after(self, requests: int, secretsmanager: Any) -> None:
        """Rotate once the simulator has accepted ``requests`` row requests: in its request path, so
        the rows still to come meet the new credential whatever the pace."""
        self.simulator_auth.after_accepted(requests, lambda: self.rotate(secretsmanager))

    def collect(self, run: PipelineRun) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "rotations": self.rotations,
            "auth_refreshes": run.outcomes.auth_refreshes,
            **self.simulator_auth.counts(),
        }
