"""A real SMTP server for tests: aiosmtpd on a loopback port, in a thread, keeping what it gets.

Use the ``smtp_server`` fixture (imported in ``tests/conftest.py``) and point idp at
it, e.g. ``monkeypatch.setitem(app.config, "SMTP_URL", smtp_server.url)``; then
``smtp_server.wait_for_message(email)`` returns the mail as an ``EmailMessage`` and
``extract_code(message)`` the 6-digit code in it. ``running_smtp_server(**options)``
starts one with aiosmtpd's SMTP options (``tls_context``, ``require_starttls``,
``auth_required``, …) and ``make_tls_files`` makes a CA and a certificate for it.
"""

import datetime
import email
import email.policy
import ipaddress
import re
import socket
import ssl
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"
# The code as the mail words it; any lone 6-digit number if the wording changes.
CODE_PATTERNS = (re.compile(r"code is:\s*(\d{6})\b"), re.compile(r"\b(\d{6})\b"))


@dataclass(frozen=True)
class Delivery:
    """One message as the server took it: envelope, parsed message, and how it came."""

    mail_from: str
    rcpt_tos: tuple
    message: email.message.EmailMessage
    tls: bool
    login: str | None


class Mailbox:
    """The aiosmtpd handler: parses each message and wakes whoever waits for it."""

    def __init__(self):
        self.deliveries = []
        self._taken = set()
        self._changed = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        """Keep the message; RFC 5321 §4.2.2's 250 tells the client it was accepted."""
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        login = session.auth_data.login.decode() if session.authenticated else None
        delivery = Delivery(
            envelope.mail_from,
            tuple(envelope.rcpt_tos),
            message,
            tls=server.transport.get_extra_info("ssl_object") is not None,
            login=login,
        )
        with self._changed:
            self.deliveries.append(delivery)
            self._changed.notify_all()
        return "250 Message accepted for delivery"

    def wait_for_delivery(self, to, timeout=10):
        """The oldest delivery to ``to`` not yet returned; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index, delivery in enumerate(self.deliveries):
                    wanted = to.lower() in (rcpt.lower() for rcpt in delivery.rcpt_tos)
                    if wanted and index not in self._taken:
                        self._taken.add(index)
                        return delivery
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no mail to {to} within {timeout} s")
                self._changed.wait(left)


class SMTPServer:
    """A running server: ``url`` for idp's SMTP_URL, and the mailbox behind it."""

    def __init__(self, controller, mailbox, scheme="smtp"):
        self.controller = controller
        self.mailbox = mailbox
        self.host = controller.hostname
        self.port = controller.port
        self.url = f"{scheme}://{self.host}:{self.port}"

    @property
    def deliveries(self):
        """Everything received so far, oldest first."""
        return list(self.mailbox.deliveries)

    def wait_for_delivery(self, to, timeout=10):
        """The next delivery to ``to`` (envelope, TLS and login included)."""
        return self.mailbox.wait_for_delivery(to, timeout)

    def wait_for_message(self, to, timeout=10):
        """The next message to ``to``, parsed as an ``email.message.EmailMessage``."""
        return self.wait_for_delivery(to, timeout).message


def free_port():
    """A loopback port nobody listens on (aiosmtpd must know its port before binding)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextmanager
def running_smtp_server(ssl_context=None, **smtp_options):
    """An aiosmtpd server in its own thread for the ``with`` block.

    ``ssl_context`` makes it implicit TLS (smtps); ``smtp_options`` go to aiosmtpd's
    ``SMTP`` (``tls_context`` + ``require_starttls``, ``auth_required``, …).
    """
    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname=HOST,
        port=free_port(),
        ssl_context=ssl_context,
        server_hostname="localhost",
        **smtp_options,
    )
    controller.start()
    try:
        yield SMTPServer(controller, mailbox, "smtps" if ssl_context else "smtp")
    finally:
        controller.stop()


@pytest.fixture
def smtp_server():
    """A plain SMTP server on 127.0.0.1 that keeps every message it receives.

    idp delivers some mail after its response (``send_in_background``): the server stays
    up until those deliveries finished, so none is cut off mid-session.
    """
    from idp.services import mail

    with running_smtp_server() as server:
        yield server
        mail.drain()


def accept_login(username, password):
    """An aiosmtpd authenticator that accepts exactly one username and password."""

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == username.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok, auth_data=auth_data if ok else None)

    return authenticator


def server_tls_context(cert_file, key_file):
    """The server side of TLS with the certificate from :func:`make_tls_files`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def make_tls_files(folder):
    """A throw-away CA and a certificate it signed for 127.0.0.1 and localhost.

    Returns ``(ca_file, cert_file, key_file)``. A CA plus a leaf, rather than one
    self-signed leaf, is what strict X.509 verification (Python 3.13+) accepts.
    """
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp test CA")])
    ca_cert = _certificate(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = _certificate(name, ca_name, key.public_key(), ca_key, ca=False)
    files = {"ca.pem": ca_cert, "cert.pem": cert}
    for filename, certificate in files.items():
        (folder / filename).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(folder / "ca.pem"), str(folder / "cert.pem"), str(folder / "key.pem")


def _certificate(subject, issuer, public_key, signing_key, ca):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
            critical=False,
        )
    )
    if ca:
        usage = x509.KeyUsage(
            digital_signature=False,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )
        builder = builder.add_extension(usage, critical=True)
    else:
        san = x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
        )
        builder = builder.add_extension(san, critical=False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256())


def extract_code(message):
    """The 6-digit code in a mail's text part (what a user would copy)."""
    text = message.get_body(preferencelist=("plain",)).get_content()
    for pattern in CODE_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1)
    raise AssertionError(f"no 6-digit code in: {text!r}")
