"""`mirror mail-in` end to end, on the real parsers: `--stdin` as Postfix's pipe runs it
(sysexits), `once` and `run` against Dovecot on 127.0.0.1, `sync` running mail-in;
replies through aiosmtpd. Messages of our own writing, English and Russian."""

from __future__ import annotations

import contextlib
import email
import email.policy
import imaplib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mirror.cli import run
from mirror.config import load_config
from mirror.digest.tokens import unsubscribe_token
from mirror.errors import ImapAuthError, ImapConnectionError, MailboxError
from mirror.mail.imap import ImapMailbox, ImapSettings
from mirror.mail.outbox import OutboxTransport
from mirror.mail.smtp import SmtpTransport
from mirror.mailin.handle import MailIn
from mirror.mailin.parsers import real_parsers
from mirror.mailin.run import MailInSecrets, mail_in_forever
from mirror.mailin.tokens import verp_address
from mirror.newsroom import RunningNewsroom
from mirror.retry import RetryPolicy
from mirror.store import RunLock, Store

from cli_configs import sync_config
from dovecot import Dovecot
from servers import closed_port
from smtp_servers import Recorder, SmtpServer, smtp_server

ADDRESS = "news@courier.example.org"
AUTHSERV = "mx.courier.example.org"
MAILIN_SECRET = "mail-in-test-secret-0123456789"
DIGEST_SECRET = b"a-long-enough-unsubscribe-secret"  # conftest's `built` sets it
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
    to: str = ADDRESS,
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
    message["To"] = to
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
            digest_secret=DIGEST_SECRET, parsers=real_parsers(config),
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


def test_stdin_config_errors_keep_the_mail_and_say_so_loudly(
    config_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not 78 (EX_CONFIG): Postfix bounces on it, to a sender who may be forged."""
    monkeypatch.delenv("MIRROR_MAILIN_SECRET")
    assert piped(config_path, mail("mirrors"), monkeypatch) == 75
    assert "MIRROR_MAILIN_SECRET" in capsys.readouterr().err
    config_path.write_text("[mailin\n", encoding="utf-8")
    assert piped(config_path, mail("mirrors"), monkeypatch) == 75
    err = capsys.readouterr().err
    assert "not configured right" in err and "stays with the MTA" in err


def test_stdin_keeps_the_mail_when_the_store_is_not_a_database(
    config_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = load_config(config_path).state.path
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes(b"this is not a database, " * 200)
    capsys.readouterr()
    assert piped(config_path, mail("mirrors"), monkeypatch) == 75
    err = capsys.readouterr().err
    assert "Traceback" not in err and "not a database" in err and "stays with the MTA" in err


def test_stdin_keeps_the_mail_on_an_unexpected_error_in_one_line_without_the_address(
    config_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("reader@example.com")

    monkeypatch.setattr("mirror.mailin.run.handle_piped", broken)
    capsys.readouterr()
    assert piped(config_path, mail("mirrors"), monkeypatch) == 75
    err = capsys.readouterr().err
    assert "Traceback" not in err and "reader@example.com" not in err
    (line,) = [line for line in err.splitlines() if "KeyError" in line]
    assert "stays with the MTA" in line and "test_mailin_cli.py:" in line


def test_mail_in_without_an_action_is_a_usage_error(config_path: Path) -> None:
    assert run(["-c", str(config_path), "mail-in"]) == 2


# --- once, run and sync against Dovecot --------------------------------------------------------

MAX_BYTES = 3_000


def imap_section(server: Dovecot, **extra: str) -> dict[str, str]:
    return {
        "imap_url": f'"{server.url()}"', "username": f'"{server.username}"',
        "max_message_bytes": str(MAX_BYTES), "batch": "2", "timeout_s": "10", **extra,
    }  # fmt: skip


@pytest.fixture
def imap_config(
    built: Path, server: SmtpServer, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("MIRROR_MAILIN_SECRET", MAILIN_SECRET)
    monkeypatch.setenv("MIRROR_IMAP_PASSWORD", dovecot.password)
    return with_smtp(built, f"smtp+insecure://127.0.0.1:{server.port}", **imap_section(dovecot))


def dsn(verp: str, status: str = "5.1.1") -> bytes:
    """A delivery status notification (RFC 3464) for a digest that came back to `verp`."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n"
        f"To: {verp}\r\nDelivered-To: {verp}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn1@mx.example.com>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe digest could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        f"Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} user unknown\r\n--B--\r\n"
    ).encode()


def once(capsys: pytest.CaptureFixture[str], config_path: Path) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    status = run(["-c", str(config_path), "mail-in", "once", "--json"])
    return status, json.loads(capsys.readouterr().out)


def test_once_answers_what_waits_and_a_second_once_makes_three_round_trips(
    imap_config: Path, server: SmtpServer, dovecot: Dovecot, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(imap_config)
    with Store(config.state.path) as store:
        gone, _ = store.add_subscriber("gone@example.com", "en", NOW)
    verp = verp_address("bounces@courier.example.org", DIGEST_SECRET, gone)
    for data in (
        mail("mirrors", message_id="<a@example.com>"),
        mail("зеркала", sender="chitatel@example.ru", message_id="<b@example.ru>"),
        mail("latest", sender="forger@example.com", message_id="<c@example.com>", dmarc="fail"),
        dsn(verp),
        mail("mirrors", message_id="<big@example.com>", body="x" * (MAX_BYTES + 10) + "\n"),
    ):
        dovecot.append("INBOX", data)
    status, report = once(capsys, imap_config)
    assert status == 0, report
    assert report == {
        "handled": 5, "replied": 2, "subscribed": 0, "confirmed": 0, "unsubscribed": 0,
        "bounces": 1, "welcomed": 0, "ignored": {"unauthenticated": 1, "too_large": 1},
        "failed": [],
    }  # fmt: skip
    assert len(replies(server)) == 1 and len(replies(server, "chitatel@example.ru")) == 1
    assert "Зеркала" in str(replies(server, "chitatel@example.ru")[0]["Subject"])
    assert dovecot.uids("INBOX") == [] and len(dovecot.uids("Handled")) == 5
    with Store(config.state.path) as store:
        assert store.bounce_counts(NOW - timedelta(days=30)) == {gone: (1, 0)}
    mark = dovecot.mark()
    status, report = once(capsys, imap_config)
    assert status == 0 and report["handled"] == 0
    commands = dovecot.commands_since(mark)
    assert len(commands) <= 3, commands
    assert len(server.handler.received) == 2


def test_once_leaves_a_message_whose_reply_could_not_be_sent(
    built: Path,
    dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MIRROR_MAILIN_SECRET", MAILIN_SECRET)
    monkeypatch.setenv("MIRROR_IMAP_PASSWORD", dovecot.password)
    url = f"smtp+insecure://127.0.0.1:{closed_port()}"
    path = with_smtp(built, url, **imap_section(dovecot))
    dovecot.append("INBOX", mail("mirrors"))
    dovecot.append("INBOX", mail("mirrors", dmarc="fail", message_id="<x@example.com>"))
    status, report = once(capsys, path)
    assert status == 1 and report["handled"] == 1 and len(report["failed"]) == 1
    assert "could not be sent" in report["failed"][0]["reason"]
    assert "reader@example.com" not in json.dumps(report)
    assert len(dovecot.uids("INBOX")) == 1 and len(dovecot.uids("Handled")) == 1


@pytest.mark.slow  # Dovecot's auth delay on a failed login
def test_once_with_a_wrong_password_exits_1_without_showing_it(
    imap_config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MIRROR_IMAP_PASSWORD", "not-the-password-42")
    assert run(["-c", str(imap_config), "mail-in", "once"]) == 1
    err = capsys.readouterr().err
    assert "not-the-password-42" not in err and "login" in err.lower()


def test_run_answers_mail_appended_while_it_idles_and_stops_on_sigterm(
    imap_config: Path, server: SmtpServer, dovecot: Dovecot
) -> None:
    dovecot.append("INBOX", mail("mirrors", message_id="<before@example.com>"))
    env = {**os.environ, "MIRROR_MAILIN_SECRET": MAILIN_SECRET}
    env["MIRROR_IMAP_PASSWORD"] = dovecot.password
    command = [sys.executable, "-m", "mirror", "-c", str(imap_config), "mail-in", "run"]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: len(server.handler.received) == 1)
        dovecot.append("INBOX", mail("зеркала", sender="chitatel@example.ru", message_id="<w@x>"))
        wait_for(lambda: len(server.handler.received) == 2)
        assert replies(server, "chitatel@example.ru")
        wait_for(lambda: dovecot.uids("INBOX") == [])
        # `run` holds the store only while it handles mail: other runs go on beside it
        with RunLock(load_config(imap_config).state.path):
            pass
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 143, err.decode()
    assert b"Traceback" not in err and b"SIGTERM" in err


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_sync_runs_mail_in_after_the_publish(
    tmp_path: Path,
    web_root: tuple[Path, str],
    newsroom: RunningNewsroom,
    dovecot: Dovecot,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MIRROR_UNSUBSCRIBE_SECRET", "a-long-enough-unsubscribe-secret")
    monkeypatch.setenv("MIRROR_MAILIN_SECRET", MAILIN_SECRET)
    monkeypatch.setenv("MIRROR_IMAP_PASSWORD", dovecot.password)
    path = Path(sync_config(tmp_path, newsroom, web_root))
    with path.open("a", encoding="utf-8") as config:
        config.write(mailin_section(**imap_section(dovecot)))
    dovecot.append("INBOX", mail("latest"))
    capsys.readouterr()
    assert run(["-c", str(path), "sync", "--json"]) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert report["ok"] and report["publish"]["mirrors"][0]["ok"]
    assert report["mailin"]["replied"] == 1 and report["mailin_error"] == ""
    assert "mail-in: 1 handled, 1 replied" in out.err
    (reply,) = [p for p in (tmp_path / "outbox").glob("*.eml")]
    assert "reader@example.com" in reply.read_text(encoding="utf-8")
    assert dovecot.uids("INBOX") == []
    monkeypatch.setenv("MIRROR_IMAP_PASSWORD", "wrong-password")
    dovecot.append("INBOX", mail("latest", message_id="<again@example.com>"))
    assert run(["-c", str(path), "sync", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["publish"]["mirrors"][0]["ok"] and report["mailin"] is None
    assert report["mailin_error"].startswith("mail-in: ")


@pytest.mark.slow
async def test_a_thousand_waiting_messages_are_sized_fetched_and_moved(dovecot: Dovecot) -> None:
    """aioimaplib reads a response one recursion level per line (its issue 118): a
    1,200-line answer used to drop the connection."""
    client = imaplib.IMAP4("127.0.0.1", dovecot.port, timeout=30)
    client._encoding = "utf-8"  # type: ignore[attr-defined]  # the non-ASCII password
    client.login(dovecot.username, dovecot.password)
    for number in range(1200):
        client.append("INBOX", "", None, mail("mirrors", message_id=f"<{number}@example.com>"))
    client.logout()
    settings = ImapSettings(
        url=dovecot.url(), username=dovecot.username, password=dovecot.password, batch=10_000
    )
    async with ImapMailbox(settings) as mailbox:
        waiting = await mailbox.waiting()
        assert len(waiting) == 1200
        fetched = [uid async for uid, _ in mailbox.fetch(w.uid for w in waiting)]
        assert len(fetched) == 1200
        await mailbox.finish(fetched)
    assert dovecot.uids("INBOX") == [] and len(dovecot.uids("Handled")) == 1200


async def test_run_reconnects_with_backoff_and_stops_on_a_refused_login(
    config_path: Path,
) -> None:
    errors: list[MailboxError] = [
        ImapConnectionError("dropped"), ImapConnectionError("dropped"), ImapAuthError("refused"),
    ]  # fmt: skip
    slept: list[float] = []

    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[Any]:
        raise errors.pop(0)
        yield  # pragma: no cover

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    with pytest.raises(ImapAuthError):
        await mail_in_forever(
            load_config(config_path), now=lambda: NOW,
            secrets=MailInSecrets(MAILIN_SECRET.encode(), DIGEST_SECRET), connect=connect,
            make_transport=lambda: OutboxTransport(config_path.parent / "outbox"),
            policy=RetryPolicy(retries=10, backoff_s=1.0), sleep=sleep,
        )  # fmt: skip
    assert slept == [1.0, 2.0] and errors == []


def test_stdin_takes_a_message_whose_reply_is_refused_for_good(
    config_path: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.handler.refuse["reader@example.com"] = "550 5.1.1 no such user"
    assert piped(config_path, mail("mirrors"), monkeypatch) == 0  # not 75 forever
    assert server.handler.received == []


def test_once_moves_a_message_whose_reply_is_refused_for_good(
    imap_config: Path, server: SmtpServer, dovecot: Dovecot, capsys: pytest.CaptureFixture[str]
) -> None:
    server.handler.refuse["reader@example.com"] = "550 5.1.1 no such user"
    dovecot.append("INBOX", mail("mirrors"))
    status, report = once(capsys, imap_config)
    assert status == 0 and report["ignored"] == {"reply_refused": 1} and report["failed"] == []
    assert dovecot.uids("INBOX") == [] and len(dovecot.uids("Handled")) == 1


def test_exit_statuses_of_stdin_are_in_the_help_and_the_readme(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        run(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "75 (EX_TEMPFAIL)" in out and "78, EX_CONFIG" in out
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("### Exit status") :]
    assert "\n| 75 | `mail-in --stdin`" in table and "\n| 78 | never" in table


def test_stdin_unsubscribes_by_the_digests_token_from_another_address(
    config_path: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a mail client sends for the digest's mailto List-Unsubscribe, from an alias."""
    config = load_config(config_path)
    with Store(config.state.path) as store:
        subscriber, _ = store.add_subscriber("digest-reader@example.com", "ru", NOW)
    token = unsubscribe_token(DIGEST_SECRET, subscriber)
    leave = mail(f"unsubscribe {token}", to="leave@courier.example.org")
    assert piped(config_path, leave, monkeypatch) == 0
    with Store(config.state.path) as store:
        assert not store.is_subscribed(subscriber)
    (reply,) = replies(server)
    assert str(reply["Subject"]) == "You are unsubscribed"


def test_stdin_sends_the_welcome_owed_to_a_reader_who_confirmed_on_the_web(
    config_path: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(config_path)
    with Store(config.state.path) as store:
        subscriber, _ = store.add_subscriber("web-reader@example.com", "ru", NOW)
        store.owe_welcome(subscriber, NOW)
    assert piped(config_path, mail("mirrors"), monkeypatch) == 0
    (welcome,) = replies(server, "web-reader@example.com")
    assert "Добро пожаловать" in str(welcome["Subject"])
    with Store(config.state.path) as store:
        assert store.owed_welcomes(10) == []
