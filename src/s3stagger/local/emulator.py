"""The embedded AWS emulator: moto's threaded server on 127.0.0.1, on a free port.

moto's Step Functions interpreter calls services back at ``localhost:$MOTO_PORT``, so the port is
published in ``MOTO_PORT`` while the emulator runs (and restored afterwards). State machines are
executed and Lambda runs without Docker (``/moto-api/config``); the local Lambda runtime
(:mod:`s3stagger.local.lambda_runtime`) then runs the project's handlers in-process, and
:data:`EMULATOR_PATCHES` fill what moto leaves out, each in its own module (see
``docs/local-mode.md``).
"""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from s3stagger.errors import S3StaggerError
from s3stagger.local import (
    request_counter,
    s3_bucket_policy_conditions,
    sfn_parameter_casing,
    sfn_provider_actions,
    sfn_reuse,
    sqs_redrive_allow_policy,
)
from s3stagger.local.lifecycle import LocalService

LOOPBACK = "127.0.0.1"
EMULATOR_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}
DEFAULT_REGION = "us-east-1"
EMULATOR_PATCHES = (
    sfn_reuse,
    sfn_parameter_casing,
    sfn_provider_actions,
    sqs_redrive_allow_policy,
    s3_bucket_policy_conditions,
)
"""Stand-ins for what moto 5.2.5 leaves out or gets wrong, installed while an emulator runs:
integration parameter casing (the dispatcher's ``states:startExecution``), the interpreter's reuse
of parsed definitions, clients and JSONPaths (moto rebuilds them at every execution and state), and
what Terraform's resources need: the Step Functions actions the provider calls, a DLQ's
``RedriveAllowPolicy`` read back, the TLS-only conditions of the buckets' policies
(``docs/local-mode.md`` lists them all)."""
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # nosec B105 - moto takes any key


class EmulatorError(S3StaggerError, RuntimeError):
    """The emulator could not be started or configured."""


class Emulator(LocalService):
    """moto's server in a thread of this process; use as a context manager.

    Only one emulator can run per process: moto keeps its state in process-wide backends and its
    Step Functions interpreter reads the port from the process environment.
    """

    _running: Emulator | None = None

    def __init__(self, region: str = DEFAULT_REGION) -> None:
        self.region = region
        self._server: ThreadedMotoServer | None = None
        self._port: int | None = None
        self._saved_env: dict[str, str | None] = {}
        self.request_counter: request_counter.RequestCounter | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmulatorError("the emulator is not running")
        return self._port

    @property
    def endpoint_url(self) -> str:
        """Base URL of the emulator, e.g. ``http://127.0.0.1:53211``."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Emulator:
        if Emulator._running is not None:
            raise EmulatorError("an emulator is already running in this process; stop it first")
        server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
        server.start()
        self.request_counter = request_counter.install(server)  # AWS requests by origin/service/action
        self._server = server
        self._port = int(server.get_host_and_port()[1])
        Emulator._running = self
        for patch in EMULATOR_PATCHES:
            patch.install()
        self._set_env("MOTO_PORT", str(self._port))
        try:
            self._post("/moto-api/reset", None)
            self._post("/moto-api/config", EMULATOR_CONFIG)
        except OSError as error:
            self.stop()
            raise EmulatorError(f"the emulator at {self.endpoint_url} did not answer: {error}") from error
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        try:
            if server is not None:
                server.stop()
        finally:  # the process's one emulator slot is freed even if the server's shutdown fails
            for name, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            self._saved_env.clear()
            if Emulator._running is self:
                Emulator._running = None
                for patch in EMULATOR_PATCHES:
                    patch.uninstall()

    def client_settings(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client(...)`` bound to this emulator."""
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        }

    def _set_env(self, name: str, value: str) -> None:
        self._saved_env.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def _post(self, path: str, body: dict[str, Any] | None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        request = urllib.request.Request(  # noqa: S310 - loopback URL built here
            self.endpoint_url + path, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # nosec B310
            response.read()


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])
