"""Counts every AWS API request the embedded emulator serves, by origin, service and action.

Every AWS call of a local run reaches moto's server over HTTP — the processor's boto3 clients, the
local scheduler, and moto's own Step Functions interpreter, which calls services back at
``localhost:$MOTO_PORT`` — so a WSGI middleware around moto's application sees the whole billable
work of a run. :func:`install` wraps a started ``ThreadedMotoServer``'s application; the
:class:`RequestCounter` it returns gives consistent snapshots from any thread.

Each request gets an *origin* from its ``User-Agent``: clients built with
``Config(user_agent_extra=HARNESS_USER_AGENT)`` are the measuring harness (its monitoring and
accounting calls, billed to nobody), those with ``USER_USER_AGENT`` stand for the user (the upload
PUT is the user's, not the pattern's), everything else is the pattern's own work.

An SQS ``ReceiveMessage`` that returned no message is counted as ``ReceiveMessage.empty`` as well
(AWS bills empty receives like any request; they show how much a consumer polls idle queues).
"""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

HARNESS_USER_AGENT = "s3stagger-harness"
"""``user_agent_extra`` of the clients that measure a run (not billed to the pattern)."""
USER_USER_AGENT = "s3stagger-user"
"""``user_agent_extra`` of the clients that act as the user (the uploads)."""

ORIGIN_PATTERN = "pattern"
ORIGIN_HARNESS = "harness"
ORIGIN_USER = "user"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_TARGET_SERVICES = {
    "AmazonSQS": "sqs",
    "AWSStepFunctions": "stepfunctions",
    "AWSEvents": "events",
    "AmazonSSM": "ssm",
    "Logs_20140328": "logs",
    "GraniteServiceVersion20100801": "cloudwatch",
}


def origin_of(user_agent: str) -> str:
    """The origin of a request from its ``User-Agent`` header."""
    if HARNESS_USER_AGENT in user_agent:
        return ORIGIN_HARNESS
    if USER_USER_AGENT in user_agent:
        return ORIGIN_USER
    return ORIGIN_PATTERN


def service_of(environ: dict[str, Any]) -> str:
    """The AWS service a request is for: the SigV4 credential scope, else the JSON target."""
    authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
    marker = "Credential="
    if marker in authorization:
        scope = authorization.split(marker, 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            return "stepfunctions" if scope[3] == "states" else scope[3]
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    prefix = target.split(".", 1)[0]
    return _TARGET_SERVICES.get(prefix, "unknown")


def s3_action(method: str, path: str, query: str) -> str:
    """The S3 API of a path-style REST request (``/bucket`` or ``/bucket/key``)."""
    parts = [part for part in path.split("/", 2) if part]
    on_object = len(parts) >= 2
    parameters = parse_qs(query, keep_blank_values=True)
    if method == "GET":
        if on_object:
            return "GetObject"
        return "ListObjects" if "list-type" in parameters or not parameters else "GetBucket"
    if method == "HEAD":
        return "HeadObject" if on_object else "HeadBucket"
    if method == "PUT":
        return "PutObject" if on_object else "PutBucket"
    if method == "DELETE":
        return "DeleteObject" if on_object else "DeleteBucket"
    if method == "POST":
        return "DeleteObjects" if "delete" in parameters else "PostObject"
    return method


def action_of(service: str, environ: dict[str, Any], body: bytes) -> str:
    """The API action of a request: JSON target, query ``Action``, Lambda path, or S3 REST."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if "." in target:
        return target.rsplit(".", 1)[1]
    method = str(environ.get("REQUEST_METHOD", "GET"))
    path = str(environ.get("PATH_INFO", ""))
    query = str(environ.get("QUERY_STRING", ""))
    if service == "s3":
        return s3_action(method, path, query)
    if service == "lambda":
        if path.endswith("/invocations"):
            return "Invoke"
        return f"{method} {path.split('/', 3)[2] if path.count('/') >= 2 else path}"
    for source in (query, body.decode("utf-8", "replace") if body else ""):
        action = parse_qs(source).get("Action")
        if action:
            return action[0]
    return method


def is_empty_receive(body: bytes) -> bool:
    """Whether an SQS ``ReceiveMessage`` answer (JSON or XML protocol) carries no message."""
    text = body.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            return not json.loads(text).get("Messages")
        except ValueError:
            return False
    return "<Message>" not in text


class RequestCounter:
    """WSGI middleware counting requests as ``(origin, service, action)``; thread-safe."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = _buffer_body(environ)
        service = service_of(environ)
        action = action_of(service, environ, body)
        origin = origin_of(str(environ.get("HTTP_USER_AGENT", "")))
        answer = self.app(environ, start_response)
        if service == "sqs" and action == "ReceiveMessage":
            chunks = list(answer)
            close = getattr(answer, "close", None)
            if close is not None:
                close()
            empty = is_empty_receive(b"".join(chunks))
            self._count(origin, service, action, empty)
            return chunks
        self._count(origin, service, action, False)
        return answer

    def _count(self, origin: str, service: str, action: str, empty_receive: bool) -> None:
        with self._lock:
            self._counts[(origin, service, action)] += 1
            if empty_receive:
                self._counts[(origin, service, f"{action}.empty")] += 1

    def reset(self) -> None:
        """Forget every count (e.g. once provisioning is done)."""
        with self._lock:
            self._counts.clear()

    def snapshot(self, origin: str | None = None) -> dict[str, dict[str, int]]:
        """Counts as ``{service: {action: n}}``, of one origin or of all of them."""
        with self._lock:
            items = list(self._counts.items())
        counts: dict[str, dict[str, int]] = {}
        for (request_origin, service, action), count in sorted(items):
            if origin is not None and request_origin != origin:
                continue
            by_action = counts.setdefault(service, {})
            by_action[action] = by_action.get(action, 0) + count
        return counts


def _buffer_body(environ: dict[str, Any]) -> bytes:
    """Read a form-encoded (query protocol) body and put it back, so moto still reads it; other
    bodies (S3 uploads, JSON) are left alone: their action is in the path or a header."""
    if "x-www-form-urlencoded" not in str(environ.get("CONTENT_TYPE", "")):
        return b""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    stream = environ["wsgi.input"]
    body: bytes = stream.read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def install(server: Any) -> RequestCounter:
    """Wrap a started ``ThreadedMotoServer``'s WSGI application with a :class:`RequestCounter`.

    werkzeug reads ``server.app`` for every request, so requests from now on are counted.
    """
    wsgi_server = server._server  # moto exposes no other handle on its WSGI server
    counter = RequestCounter(wsgi_server.app)
    wsgi_server.app = counter
    return counter


def client_as(agent: str, service: str, client_settings: Mapping[str, str]) -> Any:
    """A boto3 client whose requests the counter files under ``agent``'s origin
    (:data:`HARNESS_USER_AGENT` or :data:`USER_USER_AGENT`); ``client_settings`` as
    ``Emulator.client_settings()``."""
    import boto3  # noqa: PLC0415 - only callers that build clients need it
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        user_agent_extra=agent, retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=20
    )
    return boto3.client(service, config=config, **client_settings)  # type: ignore[call-overload]
