"""TLS for the downstream API: verification always on, a private CA and a client certificate (mTLS).

The CA bundle (PEM, trusted on top of the default bundle) and the client certificate
(``{"certificate": PEM, "private_key": PEM}``, or one PEM holding both) come from secrets, never
from files baked into the package or from the environment. A context is built once per distinct
content and reused by every connection and invocation of the container (loading a CA bundle costs
about 20 ms of CPU).
"""

from __future__ import annotations

import functools
import json
import os
import ssl
import tempfile

import httpx

from s3stagger.errors import S3StaggerError


class TlsConfigError(S3StaggerError, ValueError):
    """A CA bundle or client certificate secret is not usable PEM."""


@functools.lru_cache(maxsize=8)
def tls_context(ca_pem: str | None = None, client_pem: str | None = None) -> ssl.SSLContext:
    """The verifying context for ``ca_pem`` and ``client_pem`` (cached per content)."""
    context = httpx.create_ssl_context()  # certifi's bundle, CERT_REQUIRED, hostname checked
    if ca_pem is not None:
        try:
            context.load_verify_locations(cadata=ca_pem)
        except (ssl.SSLError, ValueError):
            raise TlsConfigError("the CA bundle secret holds no usable PEM certificate") from None
    if client_pem is not None:
        certificate, key = client_certificate_parts(client_pem)
        _load_client_certificate(context, certificate, key)
    return context


def client_certificate_parts(secret: str) -> tuple[str, str]:
    """(certificate chain PEM, private key PEM) from a client certificate secret."""
    text = secret.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
            return str(document["certificate"]), str(document["private_key"])
        except (ValueError, KeyError, TypeError):
            raise TlsConfigError(
                "a client certificate secret in JSON needs certificate and private_key"
            ) from None
    if "PRIVATE KEY-----" not in text or "CERTIFICATE-----" not in text:
        raise TlsConfigError(
            "the client certificate secret must hold a certificate and its private key (PEM)"
        )
    return text, text


def _load_client_certificate(context: ssl.SSLContext, certificate: str, key: str) -> None:
    """``ssl`` loads a certificate only from files: written to a private directory, removed at once."""
    with tempfile.TemporaryDirectory(prefix="s3stagger-tls-") as directory:
        os.chmod(directory, 0o700)
        cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
        for path, text in ((cert_path, certificate), (key_path, key)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
        try:
            context.load_cert_chain(cert_path, key_path)
        except (ssl.SSLError, ValueError):
            raise TlsConfigError(
                "the client certificate and private key do not load (PEM, matching pair)"
            ) from None
