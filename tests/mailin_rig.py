"""The mail-in test rig: a `MailIn` over a built edition's store, replying through a
real aiosmtpd, the config lines that turn mail-in on, and inbound mail to feed it
(shared by test_mailin_flow and test_daily)."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

from conftest import SECRET

from mirror.config import Config
from mirror.mail.smtp import SmtpTransport
from mirror.mailin.handle import MailIn
from mirror.store import Store

from mailin_stubs import PARSERS
from smtp_servers import SmtpServer

MAILIN_SECRET = b"mail-in-test-secret-0123456789"
DIGEST_SECRET = SECRET.encode()
ADDRESS = "news@courier.example.org"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MAILIN = f"""
[mailin]
address = "{ADDRESS}"
trusted_authserv_ids = ["mx.courier.example.org"]
per_sender_per_day = 3
global_per_hour = 200
mirrors_per_reply = 3
latest_articles = 4
"""
EXTRA_MIRRORS = "".join(
    f'\n[[mirrors]]\nname = "m{n}"\ntype = "directory"\npath = "m{n}"\n'
    f'public_url = "https://m{n}.example.net/"\n'
    for n in range(3)
)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Rig:
    """A MailIn over the config's store, replying through aiosmtpd."""

    def __init__(self, config: Config, server: SmtpServer) -> None:
        self.config = config
        self.server = server
        self.clock = Clock()
        self.store = Store(config.state.path)
        self.transport = SmtpTransport(
            f"smtp+insecure://127.0.0.1:{server.port}", sender=ADDRESS, connections=1
        )
        self.mailin = self.fresh()

    def fresh(self) -> MailIn:
        return MailIn(
            self.config, self.store, self.transport, now=self.clock,
            secret=MAILIN_SECRET, digest_secret=DIGEST_SECRET, parsers=PARSERS,
        )  # fmt: skip

    def replies(self, to: str = "reader@example.com") -> list[EmailMessage]:
        found = [r.content for r in self.server.handler.received if to in r.rcpt_tos]
        return [parse(content) for content in found]

    def subscriber(self, address: str) -> dict[str, object] | None:
        found = self.store.subscriber_id(address)
        return self.store.subscriber(found) if found else None


def parse(content: bytes) -> EmailMessage:
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def mail(
    subject: str,
    *,
    sender: str = "reader@example.com",
    to: str = ADDRESS,
    body: str = "Hello.\n",
    message_id: str | None = None,
    authenticated: bool = True,
    headers: dict[str, str] | None = None,
) -> bytes:
    message = EmailMessage()
    if authenticated:
        message["Authentication-Results"] = "mx.courier.example.org; dmarc=pass header.from=x"
    else:
        message["Authentication-Results"] = "mx.courier.example.org; dmarc=fail header.from=x"
    message["From"] = f"A Reader <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or f"<{abs(hash((subject, sender, body)))}@example.com>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes()
