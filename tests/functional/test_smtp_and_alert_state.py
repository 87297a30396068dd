"""The SMTP sender against the real local SMTP server; the SMTP secret and the alert state on moto."""

import json
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path

import pytest
from _moto_support import moto_client

from s3stagger.adapters.alert_state_store import SsmAlertStateStore
from s3stagger.adapters.smtp_secret import SmtpSecret, SmtpSecretError
from s3stagger.adapters.smtp_sender import (
    SmtpAuthenticationError,
    SmtpCredentials,
    SmtpSender,
    SmtpSendError,
    SmtpServer,
)
from s3stagger.domain.alerts import AlertGroupState
from s3stagger.local.smtp_server import LocalSmtpServer


@pytest.fixture
def smtp_server(tmp_path: Path):
    with LocalSmtpServer(tmp_path / "mail.mbox") as server:
        yield server


def message(subject: str = "hello") -> EmailMessage:
    m = EmailMessage()
    m["Subject"], m["From"], m["To"] = subject, "alerts@example.com", "ops@example.com"
    m.set_content("body\n")
    return m


def sender_for(server: LocalSmtpServer, ca_file: str | None = None) -> SmtpSender:
    return SmtpSender(SmtpServer(server.host, server.port, "starttls", 5, ca_file or str(server.ca_file)))


def test_mail_goes_over_starttls_with_auth_into_the_mbox(smtp_server: LocalSmtpServer) -> None:
    sender_for(smtp_server).send(
        message("first"), SmtpCredentials(smtp_server.username, smtp_server.password)
    )
    assert smtp_server.counters.received == 1
    assert smtp_server.counters.via_starttls == 1
    assert smtp_server.received[0].authenticated_as == smtp_server.username
    text = smtp_server.mbox_path.read_text()
    assert "with ESMTPSA" in text
    assert "Subject: first" in text


def test_wrong_password_is_a_clear_authentication_error(smtp_server: LocalSmtpServer) -> None:
    with pytest.raises(
        SmtpAuthenticationError, match=r"refused the credentials of user 's3stagger-alerts': 535"
    ):
        sender_for(smtp_server).send(message(), SmtpCredentials(smtp_server.username, "wrong"))
    assert smtp_server.counters.received == 0
    assert smtp_server.counters.auth_failures >= 1


def test_the_certificate_is_verified(smtp_server: LocalSmtpServer, tmp_path: Path) -> None:
    import trustme

    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    with pytest.raises(SmtpSendError, match="TLS with SMTP server"):
        sender_for(smtp_server, str(other_ca)).send(
            message(), SmtpCredentials(smtp_server.username, smtp_server.password)
        )


def test_the_server_refuses_mail_before_starttls(smtp_server: LocalSmtpServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as plain:
        plain.ehlo()
        code, _ = plain.mail("alerts@example.com")
    assert code == 530


def test_a_server_that_is_down_then_back(smtp_server: LocalSmtpServer) -> None:
    credentials = SmtpCredentials(smtp_server.username, smtp_server.password)
    smtp_server.stop()
    with pytest.raises(SmtpSendError, match="cannot reach SMTP server"):
        sender_for(smtp_server).send(message(), credentials)
    smtp_server.start()
    sender_for(smtp_server).send(message(), credentials)
    assert smtp_server.counters.received == 1


def test_implicit_tls_to_a_starttls_port_fails_cleanly(smtp_server: LocalSmtpServer) -> None:
    sender = SmtpSender(SmtpServer(smtp_server.host, smtp_server.port, "tls", 3, str(smtp_server.ca_file)))
    with pytest.raises(SmtpSendError):
        sender.send(message(), SmtpCredentials(smtp_server.username, smtp_server.password))
    with pytest.raises(SmtpSendError, match="must be one of"):
        SmtpSender(SmtpServer("h", 1, "plain"))  # type: ignore[arg-type]
    assert isinstance(SmtpServer("h", 1).tls_context(), ssl.SSLContext)


def test_the_secret_is_read_once_and_again_after_forget(endpoint_url: str) -> None:
    client = moto_client(endpoint_url, "secretsmanager")
    client.create_secret(
        Name="s3stagger/alerting/smtp", SecretString=json.dumps({"username": "u", "password": "p1"})
    )
    secret = SmtpSecret(client, "s3stagger/alerting/smtp")
    assert secret.credentials() == SmtpCredentials("u", "p1")
    client.put_secret_value(
        SecretId="s3stagger/alerting/smtp", SecretString=json.dumps({"username": "u", "password": "p2"})
    )
    assert secret.credentials().password == "p1"  # cached
    secret.forget()
    assert secret.credentials().password == "p2"
    assert "p2" not in repr(secret.credentials())


def test_a_missing_or_malformed_secret_says_so(endpoint_url: str) -> None:
    client = moto_client(endpoint_url, "secretsmanager")
    with pytest.raises(SmtpSecretError, match="cannot read SMTP secret 'nope'"):
        SmtpSecret(client, "nope").credentials()
    client.create_secret(Name="bad", SecretString="not json")
    with pytest.raises(SmtpSecretError, match="must be JSON"):
        SmtpSecret(client, "bad").credentials()


def test_alert_state_round_trips_through_ssm(endpoint_url: str) -> None:
    store = SsmAlertStateStore(moto_client(endpoint_url, "ssm"), "/s3stagger/alerting/state")
    group = "alarm:s3stagger-dlq-not-empty-normal"
    assert store.get(group) == AlertGroupState()
    store.put(group, AlertGroupState(window_ends=12.5, seen=("abc",)))
    assert store.get(group) == AlertGroupState(window_ends=12.5, seen=("abc",))
    assert store.parameter_name(group).startswith(
        "/s3stagger/alerting/state/alarm-s3stagger-dlq-not-empty-normal-"
    )
    assert store.parameter_name(group) != store.parameter_name("alarm/s3stagger-dlq-not-empty-normal")
