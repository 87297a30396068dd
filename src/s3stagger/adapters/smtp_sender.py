"""Sending email through a central SMTP server with the standard library's ``smtplib``.

Amazon SES's SMTP interface (``email-smtp.<region>.amazonaws.com``: STARTTLS on 587, implicit TLS
on 465) and a corporate relay both speak it. The connection is always encrypted — STARTTLS
(``security="starttls"``, refused if the server does not offer it) or implicit TLS
(``security="tls"``) — with certificate and host-name verification on, against the system trust
store plus an optional extra CA file (a private relay's CA). Then AUTH with the user and password
of :class:`SmtpCredentials`.

Every failure raises :class:`SmtpSendError` (wrong credentials: :class:`SmtpAuthenticationError`)
with one line that says what to check, so the notifier lets the message be retried.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal

from s3stagger.errors import S3StaggerError

Security = Literal["starttls", "tls"]
SECURITY_CHOICES: tuple[Security, ...] = ("starttls", "tls")


class SmtpSendError(S3StaggerError):
    """The message could not be handed to the SMTP server; retry later."""


class SmtpAuthenticationError(SmtpSendError):
    """The SMTP server refused the user and password (fix the secret, then redrive)."""


@dataclass(frozen=True)
class SmtpCredentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never log the password
        return f"SmtpCredentials(username={self.username!r}, password=***)"


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: Security = "starttls"
    timeout_s: float = 10.0
    ca_file: str | None = None
    """A PEM file of extra CAs to trust (a private relay); the system store is always trusted."""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file:
            context.load_verify_locations(cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


class SmtpSender:
    """Sends one message per call: connect, TLS, AUTH, send, quit."""

    def __init__(self, server: SmtpServer) -> None:
        if server.security not in SECURITY_CHOICES:
            raise SmtpSendError(
                f"SMTP security {server.security!r} must be one of {', '.join(SECURITY_CHOICES)}"
            )
        self.server = server
        self._context = server.tls_context()

    def send(self, message: EmailMessage, credentials: SmtpCredentials) -> None:
        server = self.server
        try:
            with self._connect() as smtp:
                if server.security == "starttls":
                    smtp.ehlo()
                    if not smtp.has_extn("starttls"):
                        raise SmtpSendError(
                            f"SMTP server {server.address} does not offer STARTTLS; refusing to send in clear"
                        )
                    smtp.starttls(context=self._context)
                smtp.ehlo()
                smtp.login(credentials.username, credentials.password)
                refused = smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as error:
            raise SmtpAuthenticationError(
                f"SMTP server {server.address} refused the credentials of user {credentials.username!r}: "
                f"{error.smtp_code} {_text(error.smtp_error)}; "
                "fix the SMTP secret, then redrive the alert DLQ"
            ) from error
        except ssl.SSLError as error:
            raise SmtpSendError(f"TLS with SMTP server {server.address} failed: {error}") from error
        except smtplib.SMTPException as error:
            raise SmtpSendError(f"SMTP server {server.address} did not take the message: {error}") from error
        except OSError as error:
            raise SmtpSendError(f"cannot reach SMTP server {server.address}: {error}") from error
        if refused:
            raise SmtpSendError(f"SMTP server {server.address} refused recipient(s) {sorted(refused)}")

    def _connect(self) -> smtplib.SMTP:
        server = self.server
        if server.security == "tls":
            return smtplib.SMTP_SSL(server.host, server.port, timeout=server.timeout_s, context=self._context)
        return smtplib.SMTP(server.host, server.port, timeout=server.timeout_s)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


__all__ = [
    "SECURITY_CHOICES",
    "SmtpAuthenticationError",
    "SmtpCredentials",
    "SmtpSendError",
    "SmtpSender",
    "SmtpServer",
]
