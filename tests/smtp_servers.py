"""Real SMTP servers on 127.0.0.1 for tests: aiosmtpd in a thread, on a free port.

`smtp_server(...)` starts one (plain, STARTTLS, implicit TLS, with or without AUTH) and
yields a `SmtpServer` whose `Recorder` handler keeps every message it took, can refuse
chosen recipients (5xx) or defer them (4xx) a number of times.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from servers import free_port

START_ATTEMPTS = 3  # another process may take the free port before the server binds it


@dataclass(frozen=True)
class Received:
    """One message the server took."""

    peer: tuple[str, int]  # the client's end of the connection: one per session
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes


@dataclass
class Recorder:
    """An aiosmtpd handler that records what it takes, refusing or deferring on request."""

    refuse: dict[str, str] = field(default_factory=dict)  # address -> "550 ..." at RCPT
    defer: dict[str, int] = field(default_factory=dict)  # address -> 451s at DATA before OK
    received: list[Received] = field(default_factory=list)
    attempts: int = 0  # DATA commands seen
    pipelining: bool = True  # offer PIPELINING (aiosmtpd reads pipelined commands in order)
    ehlo_names: list[str] = field(default_factory=list)  # what clients said in EHLO
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self.ehlo_names.append(hostname)
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.attempts += 1
            for address in envelope.rcpt_tos:
                if self.defer.get(address, 0) > 0:
                    self.defer[address] -= 1
                    return "451 4.3.0 try again later"
            self.received.append(
                Received(
                    session.peer, envelope.mail_from, tuple(envelope.rcpt_tos), envelope.content
                )
            )
        return "250 2.0.0 OK"

    def sessions(self) -> int:
        """How many connections delivered at least one message."""
        return len({r.peer for r in self.received})

    def count(self, address: str) -> int:
        return sum(address in r.rcpt_tos for r in self.received)


@dataclass(frozen=True)
class SmtpServer:
    port: int
    handler: Recorder


@contextlib.contextmanager
def smtp_server(
    handler: Recorder | None = None,
    *,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    logins: dict[str, str] | None = None,
    smtputf8: bool = True,
) -> Iterator[SmtpServer]:
    """An aiosmtpd server on 127.0.0.1; AUTH (over TLS only) when `logins` is given."""
    handler = handler or Recorder()
    options: dict[str, Any] = {"enable_SMTPUTF8": smtputf8, "ssl_context": implicit_tls}
    if starttls is not None:
        options.update(tls_context=starttls)
    if logins is not None:
        options.update(
            authenticator=_authenticator(logins), auth_required=True, auth_require_tls=True
        )
    controller = _started(handler, options)
    try:
        yield SmtpServer(controller.port, handler)
    finally:
        controller.stop()


def _started(handler: Recorder, options: dict[str, Any]) -> Controller:
    """A started controller on a free port; another port if one is taken before we bind."""
    for _ in range(START_ATTEMPTS - 1):
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
        try:
            controller.start()
            return controller
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    return controller


def _authenticator(logins: dict[str, str]) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            return AuthResult(success=logins.get(user) == password, handled=False)
        return AuthResult(success=False, handled=False)

    return check


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for localhost and 127.0.0.1, and contexts using it."""

    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Verification on, trusting this certificate only."""
        return ssl.create_default_context(cafile=str(self.cert_file))


def make_certificate(folder: Path) -> Certificate:
    """A fresh key and self-signed certificate (SAN localhost, 127.0.0.1) in `folder`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)
