"""A throwaway certificate authority for the simulator's HTTPS and mutual TLS (trustme).

:func:`local_certificates` makes a CA, a server certificate for 127.0.0.1/localhost and a client
certificate, in memory: the simulator serves with :meth:`LocalCertificates.server_context`, and the
processor gets the CA (``ca_pem``) and the client identity (``client_pem``) through its secrets, as
it would a private CA's in production.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import trustme


@dataclass(frozen=True)
class LocalCertificates:
    ca: trustme.CA
    server: trustme.LeafCert
    client: trustme.LeafCert

    @property
    def ca_pem(self) -> str:
        return self.ca.cert_pem.bytes().decode("ascii")

    @property
    def client_pem(self) -> str:
        """The client certificate chain and its private key, as one PEM."""
        chain = "".join(blob.bytes().decode("ascii") for blob in self.client.cert_chain_pems)
        return chain + self.client.private_key_pem.bytes().decode("ascii")

    def server_context(self, *, require_client_certificate: bool = False) -> ssl.SSLContext:
        """The simulator's TLS context; with ``require_client_certificate`` a client must present a
        certificate this CA issued (mTLS)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server.configure_cert(context)
        if require_client_certificate:
            self.ca.configure_trust(context)
            context.verify_mode = ssl.CERT_REQUIRED
        return context


def local_certificates() -> LocalCertificates:
    ca = trustme.CA(organization_name="s3stagger local CA")
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("s3stagger-processor@local.test")
    return LocalCertificates(ca, server, client)
