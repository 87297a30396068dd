"""The local central SMTP server: aiosmtpd on 127.0.0.1 with STARTTLS and AUTH, mail kept in an mbox.

It behaves like the relay the notifier talks to on AWS: STARTTLS is required before AUTH and MAIL
(``require_starttls``; plain MAIL gets 530), AUTH PLAIN/LOGIN is required (a bad login gets 535),
and the certificate comes from a test CA made with ``trustme`` — its PEM is written next to the
mbox so the notifier verifies the server exactly as it verifies a real one
(``S3STAGGER_SMTP_CA_FILE``). Each accepted message gets a ``Received:`` header saying how it came
in (``with ESMTPSA`` = STARTTLS + AUTH, RFC 3848) and is appended to an mbox file that
``s3stagger mail`` lists and shows.

aiosmtpd's ``Controller(port=0)`` cannot report the port it bound, so a free port is picked first;
:meth:`LocalSmtpServer.stop` and :meth:`start` again reuse it (an outage in tests and demos).
"""

from __future__ import annotations

import email.utils
import logging
import mailbox
import secrets
import ssl
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from s3stagger.local.emulator import LOOPBACK, free_port
from s3stagger.local.lifecycle import LocalService

SERVER_NAME = "s3stagger-local-smtp"


class _OwnDeprecationNotice(logging.Filter):
    """aiosmtpd 1.4 logs a deprecation warning about its own use of ``Session.login_data`` on every
    AUTH; it says nothing about this server."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Session.login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_OwnDeprecationNotice())
DEFAULT_USER = "s3stagger-alerts"


@dataclass(frozen=True)
class ReceivedMail:
    subject: str
    sender: str
    recipients: tuple[str, ...]
    via_starttls: bool
    authenticated_as: str | None


@dataclass
class SmtpServerCounters:
    received: int = 0
    via_starttls: int = 0
    auth_failures: int = 0


class _MailboxHandler:
    def __init__(self, server: LocalSmtpServer) -> None:
        self._server = server

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._server._deliver(session, envelope)
        return "250 Message accepted for delivery"


class LocalSmtpServer(LocalService):
    """aiosmtpd with STARTTLS (trustme test CA) and AUTH on 127.0.0.1, delivering to an mbox."""

    def __init__(
        self,
        mbox_path: Path,
        *,
        username: str = DEFAULT_USER,
        password: str | None = None,
        port: int | None = None,
    ) -> None:
        self.mbox_path = Path(mbox_path)
        self.username = username
        self.password = password or secrets.token_urlsafe(18)
        self.port = port or free_port()
        self.host = LOOPBACK
        self.counters = SmtpServerCounters()
        self.received: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        self._ca = trustme.CA(organization_name="s3stagger local test CA")
        self._certificate = self._ca.issue_cert(LOOPBACK, "localhost")
        self.ca_file = self.mbox_path.with_name(self.mbox_path.stem + "-ca.pem")

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> LocalSmtpServer:
        if self._controller is not None:
            return self
        self.mbox_path.parent.mkdir(parents=True, exist_ok=True)
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._certificate.configure_cert(context)
        controller = Controller(
            _MailboxHandler(self),
            hostname=self.host,
            port=self.port,
            server_hostname=SERVER_NAME,
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=self._authenticate,
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # -- what the server does ---------------------------------------------------------------------
    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and secrets.compare_digest(auth_data.login, self.username.encode())
            and secrets.compare_digest(auth_data.password, self.password.encode())
        )
        if not ok:
            with self._lock:
                self.counters.auth_failures += 1
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)  # aiosmtpd answers 535

    def _deliver(self, session: Session, envelope: Envelope) -> None:
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=policy.default)
        via_starttls = session.ssl is not None
        auth_data = session.auth_data
        user = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else None
        protocol = "ESMTPSA" if via_starttls and session.authenticated else "ESMTP"
        tls = f" ({session.ssl.get('cipher', ('',))[0] if isinstance(session.ssl, dict) else ''})"
        received = (
            f"from {session.host_name or 'unknown'} ([{session.peer[0] if session.peer else '?'}]) "
            f"by {SERVER_NAME} with {protocol}{tls if via_starttls else ''}"
            f"{f' (authenticated as {user})' if user else ''}; {email.utils.formatdate(usegmt=True)}"
        )
        traced = f"Received: {received}\r\n".encode() + content
        with self._lock:
            box = mailbox.mbox(str(self.mbox_path))
            try:
                box.lock()
                box.add(mailbox.mboxMessage(traced))
                box.flush()
            finally:
                box.unlock()
                box.close()
            self.received.append(
                ReceivedMail(
                    subject=" ".join(str(message.get("Subject", "")).split()),
                    sender=str(envelope.mail_from),
                    recipients=tuple(envelope.rcpt_tos),
                    via_starttls=via_starttls,
                    authenticated_as=user,
                )
            )
            self.counters.received += 1
            self.counters.via_starttls += int(via_starttls)

    def settings(self) -> dict[str, str]:
        """What a client needs: host, port, security, CA file, user and password."""
        return {
            "host": self.host,
            "port": str(self.port),
            "security": "starttls",
            "ca_file": str(self.ca_file),
            "username": self.username,
            "password": self.password,
        }
