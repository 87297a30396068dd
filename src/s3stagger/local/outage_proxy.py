"""A TCP proxy in front of the downstream simulator that can be switched off: a downstream outage.

``DownstreamOutageProxy(target_port)`` listens on 127.0.0.1 (a free port) and forwards every
connection to the target. :meth:`outage` closes the listener and every open connection, so clients
get "connection refused" — an unreachable downstream, as when a real API goes away; :meth:`restore`
listens again on the same port. The simulator behind it keeps running, so its figures (rows applied,
duplicates) cover the whole run.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Self

from s3stagger.local.emulator import LOOPBACK, free_port
from s3stagger.local.lifecycle import LocalService

BUFFER = 65536


class DownstreamOutageProxy(LocalService):
    def __init__(self, target_port: int, target_host: str = LOOPBACK) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.outages = 0

    def url(self, path: str = "") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    @property
    def up(self) -> bool:
        return self._listener is not None

    def start(self) -> Self:
        self.restore()
        return self

    def stop(self) -> None:
        self.outage()

    def restore(self) -> None:
        """Listen (again) on the proxy's port."""
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((LOOPBACK, self.port))
            listener.listen(256)
            self._listener = listener
        threading.Thread(
            target=self._accept, args=(listener,), name="outage-proxy-accept", daemon=True
        ).start()

    def outage(self) -> None:
        """Refuse new connections and cut the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, set()
            if listener is not None:
                self.outages += 1
        if listener is not None:
            _close(listener)
        for connection in connections:
            _close(connection)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: an outage or stop
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:
                    _close(client)
                    _close(upstream)
                    return
                self._connections.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(BUFFER):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with self._lock:
                    self._connections.discard(end)
                _close(end)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
