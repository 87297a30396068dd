"""The local Lambda runtime: where local mode hooks into moto's Lambda.

Without Docker, moto's Lambda (``LambdaSimpleBackend``) answers every ``Invoke`` with a canned
string. :class:`LocalLambdaRuntime` replaces that one method, ``LambdaSimpleBackend.invoke``, so an
invocation of a created function runs the project's handler in this process, as Lambda would:

- the handler named by the function's ``Handler`` (``package.module.function``), or one registered
  for the function name with :meth:`LocalLambdaRuntime.register` (tests);
- the function's configured environment, plus what Lambda sets (``AWS_REGION``,
  ``AWS_LAMBDA_FUNCTION_NAME``, ...) and ``AWS_ENDPOINT_URL`` pointing at the emulator, applied to
  ``os.environ`` for the duration of the call. Handlers read ``os.environ``, which is process-wide,
  so invocations whose environments differ are serialised; identical ones run concurrently;
- a Lambda-like context (``aws_request_id``, ``function_name``, ``get_remaining_time_in_millis()``
  counting down the function's timeout);
- the timeout: past it the caller gets ``Sandbox.Timedout`` as from Lambda (the Python thread
  cannot be killed: it finishes in the background, keeping its environment until then);
- reserved concurrency: over it the call fails with ``TooManyRequestsException`` (HTTP 429), which
  Step Functions sees as ``Lambda.TooManyRequestsException``;
- an exception in the handler becomes an ``Unhandled`` function error with
  ``errorType``/``errorMessage``, which Step Functions sees as the error name.

This is local mode's hook into moto's Lambda; the Step Functions interpreter's are
``EMULATOR_PATCHES`` in :mod:`s3stagger.local.emulator`. moto is pinned (5.2.5);
``tests/local/test_local_lambda_runtime.py`` fails loudly if an upgrade moves the hook point.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import moto
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda_simple.models import LambdaSimpleBackend

from s3stagger.errors import S3StaggerError

SUPPORTED_MOTO_VERSION = "5.2.5"

Handler = Callable[[Any, Any], Any]

_invocation = threading.local()


def current_invocation() -> LambdaContext | None:
    """The context of the invocation running on this thread (``None`` outside a handler): what tells
    the local log capture which function, log group and log stream a line belongs to."""
    context: LambdaContext | None = getattr(_invocation, "context", None)
    return context


@contextmanager
def running_invocation(context: LambdaContext) -> Iterator[None]:
    """Mark this thread as running the invocation of ``context`` while inside."""
    _invocation.context = context
    try:
        yield
    finally:
        _invocation.context = None


class TooManyRequestsException(LambdaClientError, S3StaggerError):
    """Lambda's answer to an invocation over the function's reserved concurrency (moto renders a
    ``LambdaClientError`` as the HTTP error the client sees)."""

    code = 429

    def __init__(self, function_name: str, limit: int) -> None:
        super().__init__(
            "TooManyRequestsException",
            f"Rate Exceeded. Function {function_name} is at its reserved concurrency ({limit}).",
        )


class LambdaRuntimeError(S3StaggerError, RuntimeError):
    """The local runtime cannot be installed or cannot resolve a handler."""


@dataclass
class LambdaContext:
    """What a Python Lambda handler receives as ``context``."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_monotonic: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


@dataclass
class FunctionCounters:
    """Invocation figures of one function, since the runtime was installed."""

    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    timeouts: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    billed_ms: int = 0
    """Handler run time summed over invocations, each rounded up to the millisecond (Lambda's billing)."""

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _EnvironmentLease:
    """Applies one environment to ``os.environ`` while at least one invocation uses it."""

    condition: threading.Condition = field(default_factory=threading.Condition)
    active: dict[str, str] | None = None
    holders: int = 0
    saved: dict[str, str | None] = field(default_factory=dict)

    def acquire(self, environment: dict[str, str]) -> None:
        with self.condition:
            self.condition.wait_for(lambda: self.holders == 0 or self.active == environment)
            if self.holders == 0:
                self.saved = {name: os.environ.get(name) for name in environment}
                os.environ.update(environment)
                self.active = environment
            self.holders += 1

    def release(self) -> None:
        with self.condition:
            self.holders -= 1
            if self.holders == 0:
                for name, value in self.saved.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
                self.active = None
                self.condition.notify_all()


class LocalLambdaRuntime:
    """Runs invoked functions' handlers in-process; install with ``with`` or :meth:`install`."""

    _installed: LocalLambdaRuntime | None = None

    def __init__(self, endpoint_url: str, region: str, credentials: Mapping[str, str]) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.credentials = dict(credentials)
        self._handlers: dict[str, Handler] = {}
        self._counters: dict[str, FunctionCounters] = {}
        self._lock = threading.Lock()
        self._lease = _EnvironmentLease()
        self._original_invoke: Any = None

    # -- installation -------------------------------------------------------------------------
    def install(self) -> LocalLambdaRuntime:
        check_moto_version()
        if LocalLambdaRuntime._installed is not None:
            raise LambdaRuntimeError("a local Lambda runtime is already installed in this process")
        self._original_invoke = LambdaSimpleBackend.invoke
        runtime = self

        def invoke(  # noqa: PLR0917 - moto's signature
            backend: LambdaSimpleBackend,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> bytes:
            return runtime.invoke(backend, function_name, qualifier, body, headers, response_headers)

        invoke.__s3stagger_hook__ = True  # type: ignore[attr-defined]
        LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign,assignment]
        LocalLambdaRuntime._installed = self
        return self

    def uninstall(self) -> None:
        if LocalLambdaRuntime._installed is self:
            LambdaSimpleBackend.invoke = self._original_invoke  # type: ignore[method-assign]
            LocalLambdaRuntime._installed = None

    def __enter__(self) -> LocalLambdaRuntime:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback_: TracebackType | None,
    ) -> None:
        self.uninstall()

    # -- configuration ------------------------------------------------------------------------
    def register(self, function_name: str, handler: Handler) -> None:
        """Run ``handler`` for ``function_name`` instead of the function's ``Handler`` setting."""
        with self._lock:
            self._handlers[function_name] = handler

    def counters(self, function_name: str) -> FunctionCounters:
        """A copy of the invocation figures of ``function_name``."""
        with self._lock:
            return FunctionCounters(**self._counters.get(function_name, FunctionCounters()).as_dict())

    # -- the hook -----------------------------------------------------------------------------
    def invoke(  # noqa: PLR0917 - moto's signature
        self,
        backend: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        function = backend.get_function(function_name, qualifier)
        name: str = function.function_name
        invocation_type = _header(headers, "X-Amz-Invocation-Type") or "RequestResponse"
        if invocation_type == "DryRun":
            return b""
        try:
            handler = self._resolve(name, function.handler)
        except LambdaRuntimeError as error:
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload("Runtime.ImportModuleError", str(error), [])
        event = json.loads(body) if body else {}
        limit = _reserved_concurrency(function.reserved_concurrency)
        with self._lock:
            counters = self._counters.setdefault(name, FunctionCounters())
            if limit is not None and counters.in_flight >= limit:
                counters.throttles += 1
                raise TooManyRequestsException(name, limit)
            counters.invocations += 1
            counters.in_flight += 1
            counters.peak_in_flight = max(counters.peak_in_flight, counters.in_flight)
        timeout_s = float(function.timeout)
        context = LambdaContext(
            function_name=name,
            function_version=str(getattr(function, "version", "$LATEST")),
            invoked_function_arn=str(function.function_arn),
            memory_limit_in_mb=int(function.memory_size),
            aws_request_id=str(uuid.uuid4()),
            log_group_name=f"/aws/lambda/{name}",
            log_stream_name=f"local/{uuid.uuid4().hex}",
            deadline_monotonic=time.monotonic() + timeout_s,
        )
        environment = self._environment(function)
        outcome: dict[str, Any] = {}

        def run() -> None:
            self._lease.acquire(environment)
            began = time.monotonic()
            try:
                with running_invocation(context):
                    outcome["result"] = handler(event, context)
            except BaseException as error:  # reported to the caller, as Lambda does
                outcome["error"] = error
                outcome["trace"] = traceback.format_exception(error)
            finally:
                self._lease.release()
                with self._lock:
                    counters.in_flight -= 1
                    counters.billed_ms += max(1, math.ceil((time.monotonic() - began) * 1000))

        worker = threading.Thread(target=run, name=f"lambda-{name}-{context.aws_request_id[:8]}", daemon=True)
        worker.start()
        if invocation_type == "Event":
            return b""
        worker.join(timeout_s)
        if worker.is_alive():
            with self._lock:
                counters.timeouts += 1
                counters.errors += 1
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload("Sandbox.Timedout", f"Task timed out after {timeout_s:.2f} seconds", [])
        if "error" in outcome:
            with self._lock:
                counters.errors += 1
            raised = outcome["error"]
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload(type(raised).__name__, str(raised), outcome["trace"])
        try:
            return json.dumps(outcome.get("result")).encode("utf-8")
        except (TypeError, ValueError) as unmarshallable:
            with self._lock:
                counters.errors += 1
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error_payload("Runtime.MarshalError", f"Unable to marshal response: {unmarshallable}", [])

    def _resolve(self, function_name: str, handler_path: str | None) -> Handler:
        with self._lock:
            registered = self._handlers.get(function_name)
        if registered is not None:
            return registered
        if not handler_path or "." not in handler_path:
            raise LambdaRuntimeError(f"function {function_name} has no usable Handler ({handler_path!r})")
        module_name, _, attribute = handler_path.rpartition(".")
        try:
            handler: Handler = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise LambdaRuntimeError(
                f"function {function_name}: cannot load handler {handler_path!r}: {error}"
            ) from error
        return handler

    def _environment(self, function: Any) -> dict[str, str]:
        environment = {str(k): str(v) for k, v in (function.environment_vars or {}).items()}
        environment.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_LAMBDA_FUNCTION_NAME": str(function.function_name),
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout),
                **self.credentials,
            }
        )
        return environment


def check_moto_version() -> None:
    """Refuse to hook into a moto other than the one the hook was written for."""
    if moto.__version__ != SUPPORTED_MOTO_VERSION:
        raise LambdaRuntimeError(
            f"moto {moto.__version__} is installed but the local Lambda runtime hooks into moto "
            f"{SUPPORTED_MOTO_VERSION}; check LambdaSimpleBackend.invoke and update the pin"
        )
    if not callable(getattr(LambdaSimpleBackend, "invoke", None)):
        raise LambdaRuntimeError("moto's LambdaSimpleBackend.invoke is gone: the hook point moved")


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return None if value is None else str(value)


def _reserved_concurrency(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def _error_payload(error_type: str, message: str, trace: list[str]) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": trace}).encode()
