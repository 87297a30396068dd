"""A small threaded HTTP server on 127.0.0.1 (free port) for the local telemetry receivers.

The Splunk HEC receiver and the Dynatrace ingest receiver are real HTTP servers: a client (the
local Firehose stand-in, curl, a test) talks to them over a socket exactly as it would to the real
services. Each receiver is an :class:`HttpReceiver` with one method, :meth:`HttpReceiver.answer`,
that turns one request into one reply; this module does the sockets and threads.
"""

from __future__ import annotations

import json
import threading
from abc import abstractmethod
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from s3stagger.errors import S3StaggerError
from s3stagger.local.lifecycle import LocalService

HOST = "127.0.0.1"
MAX_REQUEST_BYTES = 16 * 1024 * 1024
"""Bodies larger than this are refused with 413 before they are read (each receiver has its own,
smaller, documented limit too)."""


class ReceiverStartError(S3StaggerError, OSError):
    """A receiver could not listen on 127.0.0.1."""


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, document: Any) -> HttpReply:
        return cls(status, json.dumps(document).encode("utf-8"), {"Content-Type": "application/json"})


class HttpReceiver(LocalService):
    """A receiver on 127.0.0.1; ``url`` once started. Subclasses implement :meth:`answer`."""

    server_name = "s3stagger-receiver"

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @abstractmethod
    def answer(self, request: HttpRequest) -> HttpReply:
        """The reply to one request (called on the server's threads: be thread-safe)."""

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running receiver."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            server_version = receiver.server_name
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_REQUEST_BYTES:
                    self._reply(HttpReply.json(413, {"error": "request body too large"}), close=True)
                    return
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = HttpRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=body,
                )
                self._reply(receiver.answer(request))

            def _reply(self, reply: HttpReply, close: bool = False) -> None:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the receivers keep their own figures

        try:
            self._server = ThreadingHTTPServer((HOST, self._port), Handler)
        except OSError as error:
            raise ReceiverStartError(
                f"{type(self).__name__} cannot listen on {HOST}:{self._port}: {error}"
            ) from error
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f"{self.server_name}-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
