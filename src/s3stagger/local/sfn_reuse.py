"""Stand-in for how fast AWS runs a state: moto's interpreter reuses what it builds.

moto 5.2.5's Step Functions interpreter rebuilds, every time, three things AWS builds once:

- the parsed state machine (ANTLR over the whole definition, about 0.2 s of CPU for the
  dispatcher's 42 KB) at every execution, even a scheduled start that ends after 3 states;
- a boto3 client (``boto_client_for``, tens of milliseconds) at every Task state;
- a parsed JSONPath (``jsonpath_ng``, a parser built per call) at every path it reads.

All of it runs under the GIL of the process that also serves the calls and runs the processor. With
ten slots taking their next messages at once, a Task took 0.5 s instead of 0.05 s, and the
downstream sat idle between objects: the emulator's overhead, not the dispatcher's (on AWS a state
takes milliseconds). Measured with ``benchmarks/dispatcher_profile.py 10 60`` and py-spy.

:func:`install` makes the interpreter reuse them: one parsed program per definition (its
components hold no execution state: that lives in each execution's ``Environment`` and workers),
one client per region, service and endpoint (boto3 clients are thread-safe), one parsed expression
per JSONPath.
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Callable, Iterable
from typing import Any

import boto3
import jsonpath_ng.ext.parser
import jsonpath_ng.parser
from botocore.client import BaseClient
from botocore.config import Config
from moto.core.models import botocore_stubber
from moto.settings import moto_server_port
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for as new_client_per_call
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

_EXEC = "moto.stepfunctions.parser.asl.component.state.exec"
CLIENT_USERS = (
    f"{_EXEC}.state_task.lambda_eval_utils",
    f"{_EXEC}.state_task.service.state_task_service_aws_sdk",
    f"{_EXEC}.state_task.service.state_task_service_events",
    f"{_EXEC}.state_task.service.state_task_service_sfn",
    f"{_EXEC}.state_task.service.state_task_service_sqs",
)
"""The interpreter's modules whose Task states the dispatcher uses (aws-sdk, Lambda, EventBridge,
Step Functions, SQS); each imports ``boto_client_for`` by name."""
JSONPATH_USERS: dict[str, Callable[[str], Any]] = {
    "moto.stepfunctions.parser.asl.utils.json_path": jsonpath_ng.ext.parser.parse,
    "moto.stepfunctions.parser.asl.component.common.path.result_path": jsonpath_ng.parser.parse,
}
"""The interpreter's modules that parse JSONPaths, each with the parser it imports as ``parse``."""
POOL_CONNECTIONS = 64
"""Connections per client: one per Task running at once (a Map over up to 40 slots, plus the lease)."""

_clients: dict[tuple[str, str, str | None], BaseClient] = {}
_lock = threading.Lock()
_parse_each_time: Any = ExecutionWorker._get_evaluation_entrypoint


def _endpoint_url() -> str | None:
    """Where the interpreter's calls go: moto's server, or nowhere when moto intercepts boto."""
    return None if botocore_stubber.enabled else f"http://localhost:{moto_server_port()}"


def _new_client(region: str, service: str, endpoint_url: str | None) -> BaseClient:
    """A client configured as moto's ``boto_client_for`` configures one, with a larger pool."""
    client: BaseClient = boto3.session.Session().client(  # type: ignore[call-overload]
        service,
        region_name=region,
        aws_access_key_id="ak",
        aws_secret_access_key="sk",  # noqa: S106  # nosec B106 - moto takes any key
        endpoint_url=endpoint_url,
        config=Config(
            parameter_validation=False,
            retries={"max_attempts": 0, "total_max_attempts": 1},
            connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
            read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
            max_pool_connections=POOL_CONNECTIONS,
        ),
    )
    return client


def boto_client_for(region: str, service: str, state_credentials: object = None) -> BaseClient:
    """The one client for ``region``/``service`` at the emulator's endpoint (built on first use).

    ``state_credentials`` (the execution's role) is ignored, as moto's own function ignores it."""
    key = (region, service, _endpoint_url())
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = _new_client(*key)
        return client


@functools.lru_cache(maxsize=32)
def parsed_program(definition: str) -> Any:
    """The evaluation entry point of ``definition``, parsed once."""
    return AmazonStateLanguageParser.parse(definition)[0]


def _get_evaluation_entrypoint(self: ExecutionWorker) -> Any:
    return parsed_program(self._evaluation_details.state_machine_details.definition)


def _replace(module_names: Iterable[str], attribute: str, value: Callable[[str], Any]) -> None:
    for name in module_names:
        setattr(importlib.import_module(name), attribute, value(name))


def install() -> None:
    """Make the interpreter reuse programs, clients and JSONPaths (idempotent)."""
    ExecutionWorker._get_evaluation_entrypoint = _get_evaluation_entrypoint  # type: ignore[method-assign]
    _replace(CLIENT_USERS, "boto_client_for", lambda _: boto_client_for)
    _replace(JSONPATH_USERS, "parse", lambda name: functools.lru_cache(maxsize=1024)(JSONPATH_USERS[name]))


def uninstall() -> None:
    """Put moto's functions back and drop what was kept (clients point at a stopped emulator)."""
    ExecutionWorker._get_evaluation_entrypoint = _parse_each_time  # type: ignore[method-assign]
    _replace(CLIENT_USERS, "boto_client_for", lambda _: new_client_per_call)
    _replace(JSONPATH_USERS, "parse", JSONPATH_USERS.__getitem__)
    with _lock:
        _clients.clear()
    parsed_program.cache_clear()


def installed() -> bool:
    return ExecutionWorker._get_evaluation_entrypoint is _get_evaluation_entrypoint and all(
        importlib.import_module(name).boto_client_for is boto_client_for for name in CLIENT_USERS
    )
