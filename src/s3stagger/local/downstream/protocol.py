"""HTTP/1.1 for the downstream simulator: the h11 state machine over asyncio streams.

:func:`serve_connection` reads requests off one keep-alive connection, hands each to the
application (a coroutine that turns a :class:`Request` into a
:class:`~s3stagger.local.downstream.model.Reply`) and writes the answers back as JSON. What the
protocol refuses on its own — a body over the limit (413), a request h11 cannot parse — is
answered here and closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import h11

from s3stagger.local.downstream.model import Reply, RequestRefusedError

READ_CHUNK = 65_536


@dataclass(frozen=True)
class Request:
    """One HTTP request: method (upper case), path (no query), headers (lower-case names), body."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    query: str = ""
    """The query string (without ``?``), for checks that sign the whole URL (SigV4)."""


Application = Callable[[Request], Awaitable[Reply]]


@dataclass(frozen=True)
class ConnectionHooks:
    """What the server is told about a connection: one opened, a body refused as too large."""

    opened: Callable[[], None]
    oversized: Callable[[RequestRefusedError], Reply]
    """Counts the refusal and returns its answer (sent, then the connection closes)."""


async def serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    application: Application,
    max_body_bytes: int,
    hooks: ConnectionHooks,
) -> None:
    """Serve requests on one connection until the peer closes it, an answer closes it, or the task
    is cancelled (the server stopping); the writer is closed on the way out."""
    hooks.opened()
    connection = h11.Connection(h11.SERVER)
    try:
        await _serve_requests(connection, reader, writer, application, max_body_bytes)
    except RequestRefusedError as error:  # body over the limit: answered, then the connection is closed
        await _try_to_answer(connection, writer, hooks.oversized(error))
    except h11.RemoteProtocolError as error:
        reply = Reply(error.error_status_hint, {"error": f"malformed HTTP request: {error}"}, close=True)
        await _try_to_answer(connection, writer, reply)
    except (ConnectionError, asyncio.IncompleteReadError, h11.LocalProtocolError):
        pass
    except asyncio.CancelledError:
        # Only the server stopping cancels connections. Ending normally keeps Python 3.11's stream
        # callback from logging the cancellation as an unhandled error.
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _serve_requests(
    connection: h11.Connection,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    application: Application,
    max_body_bytes: int,
) -> None:
    while True:
        request = await read_request(connection, reader, writer, max_body_bytes)
        if request is None:
            return
        reply = await application(request)
        await write_reply(connection, writer, reply)
        if reply.close or connection.our_state is not h11.DONE:
            return
        connection.start_next_cycle()


async def _try_to_answer(connection: h11.Connection, writer: asyncio.StreamWriter, reply: Reply) -> None:
    with contextlib.suppress(Exception):
        await write_reply(connection, writer, reply)


def _too_large(max_body_bytes: int) -> RequestRefusedError:
    return RequestRefusedError(413, f"body exceeds {max_body_bytes} bytes")


async def read_request(
    connection: h11.Connection,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    max_body_bytes: int,
) -> Request | None:
    """The next request on the connection, or ``None`` when the peer closed it.

    Raises :class:`RequestRefusedError` (413) as soon as the body is known to be over the limit.
    """
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            if connection.they_are_waiting_for_100_continue:  # e.g. curl with a body over 1 KiB
                writer.write(connection.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
            connection.receive_data(await reader.read(READ_CHUNK))
        elif isinstance(event, h11.Request):
            request = event
            length = dict(event.headers).get(b"content-length")
            if length is not None and int(length) > max_body_bytes:
                raise _too_large(max_body_bytes)
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > max_body_bytes:
                raise _too_large(max_body_bytes)
        elif isinstance(event, h11.EndOfMessage) and request is not None:
            return _request_of(request, bytes(body))
        else:  # ConnectionClosed, or PAUSED after the peer half-closed
            return None


def _request_of(request: h11.Request, body: bytes) -> Request:
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in request.headers}
    target, _, query = request.target.decode("latin-1").partition("?")
    return Request(request.method.decode("ascii").upper(), target, headers, body, query)


async def write_reply(connection: h11.Connection, writer: asyncio.StreamWriter, reply: Reply) -> None:
    """Send ``reply`` as a JSON response (``Connection: close`` when it closes the connection)."""
    payload = json.dumps(reply.payload).encode("utf-8")
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload))), *reply.headers]
    if reply.close:
        headers.append(("Connection", "close"))
    data = connection.send(h11.Response(status_code=reply.status, headers=headers)) or b""
    data += connection.send(h11.Data(data=payload)) or b""
    data += connection.send(h11.EndOfMessage()) or b""
    writer.write(data)
    await writer.drain()
