"""`mirror mail-in` end to end, on the real parsers: `--stdin` as Postfix's pipe runs it
(sysexits), `once` and `run` against Dovecot on 127.0.0.1, `sync` running mail-in;
replies through aiosmtpd. Messages of our own writing, English and Russian."""

from __future__ import annotations

import email
import email.policy
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from mirror.cli import run
from mirror.config import load_config
from mirror.mail.smtp import SmtpTransport
from mirror.mailin.handle import MailIn
from mirror.mailin.parsers import real_parsers
from mirror.store import RunLock, Store

from servers import closed_port
from smtp_servers import Recorder, SmtpServer, smtp_server

ADDRESS = "news@courier.example.org"
AUTHSERV = "mx.courier.example.org"
MAILIN_SECRET = "mail-in-test-secret-0123456789"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def mailin_section(**extra: str) -> str:
    lines = "".join(f"{key} = {value}\n" for key, value in extra.items())
    return (
        f'\n[mailin]\naddress = "{ADDRESS}"\ntrusted_authserv_ids = ["{AUTHSERV}"]\n'
        f"latest_articles = 4\n{lines}"
    )


def with_smtp(config_path: Path, smtp_url: str, **mailin: str) -> Path:
    text = config_path.read_text(encoding="utf-8").replace(
        "[digest]\n",
        f'[digest]\nsmtp_url = "{smtp_url}"\n'
        'unsubscribe_mailto = "leave@courier.example.org"\n'
        'return_path = "bounces@courier.example.org"\n',
    )
    config_path.write_text(text + mailin_section(**mailin), encoding="utf-8")
    return config_path


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with smtp_server(Recorder()) as running:
        yield running


@pytest.fixture
def config_path(built: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MIRROR_MAILIN_SECRET", MAILIN_SECRET)
    return with_smtp(built, f"smtp+insecure://127.0.0.1:{server.port}")


def mail(
    subject: str,
    *,
    sender: str = "reader@example.com",
    body: str = "Hello.\n",
    message_id: str = "<m1@example.com>",
    authserv: str = AUTHSERV,
    dmarc: str = "pass",
) -> bytes:
    """A reader's message as the receiving server hands it on: with its own
    Authentication-Results (the real parsers judge it)."""
    domain = sender.rpartition("@")[2]
    message = EmailMessage()
    message["Authentication-Results"] = (
        f"{authserv}; dkim=pass header.d={domain}; dmarc={dmarc} header.from={domain}"
    )
    message["From"] = f"Читатель <{sender}>"
    message["To"] = ADDRESS
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content(body)
    return message.as_bytes()


def replies(server: SmtpServer, to: str = "reader@example.com") -> list[EmailMessage]:
    found = [r.content for r in server.handler.received if to in r.rcpt_tos]
    parsed = [email.message_from_bytes(c, policy=email.policy.default) for c in found]
    return [message for message in parsed if isinstance(message, EmailMessage)]


def text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def piped(config_path: Path, data: bytes, monkeypatch: pytest.MonkeyPatch) -> int:
    """`mirror mail-in --stdin` with `data` on stdin, as Postfix's pipe runs it."""
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    return run(["-c", str(config_path), "mail-in", "--stdin"])


# --- the real parsers through the handler ----------------------------------------------------


async def test_real_parsers_subscribe_and_confirm_through_the_handler(
    config_path: Path, server: SmtpServer
) -> None:
    config = load_config(config_path)
    transport = SmtpTransport(
        f"smtp+insecure://127.0.0.1:{server.port}", sender=ADDRESS, connections=1
    )
    with Store(config.state.path) as store:
        mailin = MailIn(
            config, store, transport, now=lambda: NOW, secret=MAILIN_SECRET.encode(),
            digest_secret=b"a-long-enough-unsubscribe-secret", parsers=real_parsers(config),
        )  # fmt: skip
        asked = await mailin.handle(mail("Подписаться", message_id="<s1@example.com>"))
        assert asked.kind == "subscribed"
        (confirmation,) = replies(server)
        subject = str(confirmation["Subject"])
        answer = mail(f"Re: {subject}", message_id="<s2@example.com>", body="> quoted\n")
        assert (await mailin.handle(answer)).kind == "confirmed"
        found = store.subscriber_id("reader@example.com")
        assert found is not None and store.subscriber(found)["lang"] == "ru"
        forged = mail("mirrors", message_id="<f@example.com>", authserv="mx.elsewhere.example")
        assert (await mailin.handle(forged)).reason == "unauthenticated"
        assert len(replies(server)) == 2  # the confirmation and the welcome only
    await transport.close()


# --- --stdin -------------------------------------------------------------------------------------


def test_stdin_answers_a_russian_request(
    config_path: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert piped(config_path, mail("зеркала"), monkeypatch) == 0
    (reply,) = replies(server)
    assert "Зеркала" in str(reply["Subject"]) and "minisign" in text(reply)
    assert reply["In-Reply-To"] == "<m1@example.com>"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert piped(config_path, mail("зеркала"), monkeypatch) == 0  # Postfix delivered it twice
    assert len(replies(server)) == 1


@pytest.mark.parametrize(
    "data",
    [
        mail("mirrors", dmarc="fail"),  # a forged sender: recorded, never answered
        mail("mirrors", authserv="mx.elsewhere.example"),  # a server we do not trust
        b"\x00\xff not a mail at all \r\n\r\n",
        b"Subject: " + b"x" * 2_000_000 + b"\r\n\r\n",  # too large: read no further
    ],
)
def test_stdin_takes_what_it_will_not_answer_without_a_bounce(
    config_path: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch, data: bytes
) -> None:
    assert piped(config_path, data, monkeypatch) == 0
    assert server.handler.received == []


def test_stdin_asks_the_mta_to_retry_while_the_reply_cannot_be_sent(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIRROR_MAILIN_SECRET", MAILIN_SECRET)
    path = with_smtp(built, f"smtp+insecure://127.0.0.1:{closed_port()}")
    assert piped(path, mail("mirrors"), monkeypatch) == 75
    with smtp_server(Recorder()) as running:
        text = path.read_text(encoding="utf-8")
        start = text.index("smtp+insecure://127.0.0.1:")
        end = text.index('"', start)
        url = f"smtp+insecure://127.0.0.1:{running.port}"
        path.write_text(text[:start] + url + text[end:], encoding="utf-8")
        assert piped(path, mail("mirrors"), monkeypatch) == 0  # Postfix's retry
        assert len(replies(running)) == 1


def test_stdin_tempfails_while_another_run_holds_the_store(
    config_path: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(config_path)
    with RunLock(config.state.path):
        assert piped(config_path, mail("mirrors"), monkeypatch) == 75
    assert server.handler.received == []
    assert piped(config_path, mail("mirrors"), monkeypatch) == 0
    assert len(replies(server)) == 1


def test_stdin_config_errors_are_ex_config(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MIRROR_MAILIN_SECRET")
    assert piped(config_path, mail("mirrors"), monkeypatch) == 78
    config_path.write_text("[mailin\n", encoding="utf-8")
    assert piped(config_path, mail("mirrors"), monkeypatch) == 78


def test_mail_in_without_an_action_is_a_usage_error(config_path: Path) -> None:
    assert run(["-c", str(config_path), "mail-in"]) == 2


def json_of(out: str) -> dict[str, object]:
    document: dict[str, object] = json.loads(out)
    return document
