"""Mail-in's handler end to end: a built edition, a real store, replies through aiosmtpd
on 127.0.0.1 (or the outbox), messages of our own writing in English and Russian."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import aiohttp
import pytest

from mirror.cli import run
from mirror.config import Config, load_config
from mirror.digest.tokens import unsubscribe_token
from mirror.digest.unsubscribe import make_app
from mirror.errors import SmtpConnectionError
from mirror.mail.smtp import SmtpTransport
from mirror.mail.wire import Outgoing
from mirror.mailin.replies import LOOP_HEADER
from mirror.mailin.tokens import sender_hash, verp_address, verp_subscriber, verp_token_in
from mirror.store import Store

from mailin_rig import (
    ADDRESS,
    DIGEST_SECRET,
    EXTRA_MIRRORS,
    MAILIN,
    MAILIN_SECRET,
    NOW,
    Rig,
    mail,
)
from servers import serve
from smtp_servers import Recorder, SmtpServer, smtp_server


@pytest.fixture
def config(built: Path) -> Config:
    text = built.read_text(encoding="utf-8").replace(
        "[digest]\n",
        "[digest]\n"
        'unsubscribe_url = "https://news.example.org/unsubscribe"\n'
        'unsubscribe_mailto = "leave@courier.example.org"\n'
        'return_path = "bounces@courier.example.org"\n',
    )
    built.write_text(text + EXTRA_MIRRORS + MAILIN, encoding="utf-8")
    return load_config(built)


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with smtp_server(Recorder()) as running:
        yield running


@pytest.fixture
async def rig(config: Config, server: SmtpServer) -> object:
    made = Rig(config, server)
    yield made
    await made.transport.close()
    made.store.close()


def text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def mirror_urls(body: str) -> set[str]:
    known = {"https://a.example.net/m/", "https://hidden.example.com/"}
    known |= {f"https://m{n}.example.net/" for n in range(3)}
    return {url for url in known if url + "index.html" in body}


# --- the commands --------------------------------------------------------------------------


async def test_mirrors_reply_is_a_threaded_auto_reply_with_a_stable_subset(rig: Rig) -> None:
    outcome = await rig.mailin.handle(mail("mirrors", message_id="<one@example.com>"))
    assert outcome.kind == "replied" and outcome.handled
    (reply,) = rig.replies()
    assert reply["Auto-Submitted"] == "auto-replied"
    assert (
        reply["In-Reply-To"] == "<one@example.com>" and "<one@example.com>" in reply["References"]
    )
    assert reply[LOOP_HEADER] and reply["From"].addresses[0].addr_spec == ADDRESS
    body = text(reply)
    chosen = mirror_urls(body)
    assert len(chosen) == 3  # of five, unlisted ones among the candidates
    assert "minisign -Vm" in body and "RW" in body and "SHA-256" in body
    again = await rig.mailin.handle(mail("Re: mirrors", message_id="<two@example.com>"))
    assert again.kind == "replied"
    assert mirror_urls(text(rig.replies()[1])) == chosen  # the same set all week
    assert rig.mailin.report.replied == 2 and rig.mailin.report.handled == 2


async def test_russian_commands_get_russian_replies(rig: Rig) -> None:
    await rig.mailin.handle(mail("зеркала"))
    await rig.mailin.handle(mail("помощь", body="Помогите\n"))
    mirrors, help = rig.replies()
    assert "Зеркала" in text(mirrors) and "Зеркала" in str(mirrors["Subject"])
    assert "подписаться" in text(help) and "отписаться" in text(help)


async def test_russian_replies_link_the_russian_pages(rig: Rig) -> None:
    """The edition has index-ru.html and verify-ru.html: a Russian reader gets those."""
    await rig.mailin.handle(mail("зеркала"))
    await rig.mailin.handle(mail("новости", sender="other@example.com"))
    (mirrors,) = rig.replies()
    (latest,) = rig.replies("other@example.com")
    out = rig.config.edition.output_dir
    assert (out / "index-ru.html").is_file() and (out / "verify-ru.html").is_file()
    for body in (text(mirrors), text(latest)):
        assert re.search(r"https://\S+/index-ru\.html", body), body
        assert re.search(r"https://\S+/verify-ru\.html", body)
        assert not re.search(r"/(index|verify)\.html", body)


async def test_latest_is_a_digest_of_the_newest_articles(rig: Rig) -> None:
    assert (await rig.mailin.handle(mail("latest"))).kind == "replied"
    (reply,) = rig.replies()
    body = text(reply)
    assert body.count("/articles/") >= 4 and "List-Unsubscribe" not in reply
    assert reply["Auto-Submitted"] == "auto-replied" and reply["In-Reply-To"]


async def test_anything_else_gets_mirrors_and_help(rig: Rig) -> None:
    await rig.mailin.handle(mail("where is the news?"))
    body = text(rig.replies()[0])
    assert mirror_urls(body) and "subscribe" in body and "help" in body


# --- subscribing ------------------------------------------------------------------------------


async def test_double_opt_in_by_reply(rig: Rig) -> None:
    outcome = await rig.mailin.handle(mail("subscribe ru", message_id="<s1@example.com>"))
    assert outcome.kind == "subscribed" and rig.subscriber("reader@example.com") is None
    (confirm,) = rig.replies()
    subject = str(confirm["Subject"])
    assert "[confirm:" in subject and "[confirm:" in text(confirm)
    assert "https://news.example.org/confirm?token=" in text(confirm)
    answer = mail(f"Re: {subject}", message_id="<s2@example.com>", body="> quoted\n")
    assert (await rig.mailin.handle(answer)).kind == "confirmed"
    row = rig.subscriber("reader@example.com")
    assert row is not None and row["lang"] == "ru" and row["unsubscribed_at"] is None
    welcome = rig.replies()[1]
    assert "/articles/" in text(welcome) and "List-Unsubscribe" in welcome
    assert rig.mailin.report.subscribed == 1 and rig.mailin.report.confirmed == 1


async def test_a_token_confirms_only_its_own_address(rig: Rig) -> None:
    await rig.mailin.handle(mail("subscribe"))
    subject = str(rig.replies()[0]["Subject"])
    outcome = await rig.mailin.handle(mail(f"Re: {subject}", sender="other@example.com"))
    assert outcome.reason == "token_of_another" and rig.subscriber("other@example.com") is None
    rig.clock.now += timedelta(days=8)
    late = await rig.mailin.handle(mail(f"Re: {subject}", message_id="<late@example.com>"))
    assert late.reason == "bad_token" and rig.subscriber("reader@example.com") is None


async def test_watched_domain_warning_in_the_readers_language(rig: Rig) -> None:
    await rig.mailin.handle(mail("подписаться", sender="chitatel@mail.ru"))
    body = text(rig.replies("chitatel@mail.ru")[0])
    assert "цензора" in body and "юрисдикцией" in body


async def test_unsubscribe_by_command_and_by_mail_to_the_unsubscribe_address(rig: Rig) -> None:
    rig.store.add_subscriber("reader@example.com", "en", NOW)
    rig.store.add_subscriber("second@example.com", "ru", NOW)
    assert (await rig.mailin.handle(mail("unsubscribe"))).kind == "unsubscribed"
    leave = mail("please stop", sender="second@example.com", to="leave@courier.example.org")
    assert (await rig.mailin.handle(leave)).kind == "unsubscribed"
    for address in ("reader@example.com", "second@example.com"):
        row = rig.subscriber(address)
        assert row is not None and row["unsubscribed_at"] is not None
        assert "unsubscribed" in str(rig.replies(address)[0]["Subject"]) or "отписались" in str(
            rig.replies(address)[0]["Subject"]
        )
    assert rig.mailin.report.unsubscribed == 2


# --- safety -----------------------------------------------------------------------------------


async def test_unauthenticated_mail_gets_no_reply(rig: Rig) -> None:
    outcome = await rig.mailin.handle(mail("mirrors", authenticated=False))
    assert outcome.reason == "unauthenticated" and outcome.handled
    assert rig.server.handler.received == []
    assert rig.mailin.report.ignored == {"unauthenticated": 1}


async def test_per_sender_and_global_limits(rig: Rig) -> None:
    for n in range(4):
        await rig.mailin.handle(mail("mirrors", message_id=f"<r{n}@example.com>"))
    assert len(rig.replies()) == 3 and rig.mailin.report.ignored == {"rate_limited": 1}
    rig.clock.now += timedelta(days=1, minutes=1)
    await rig.mailin.handle(mail("mirrors", message_id="<r9@example.com>"))
    assert len(rig.replies()) == 4  # a new day
    assert rig.store.sender_hashes() == [sender_hash(MAILIN_SECRET, "reader@example.com")]


async def test_global_limit_per_hour(config: Config, server: SmtpServer) -> None:
    assert config.mailin is not None
    limited = replace(config, mailin=replace(config.mailin, global_per_hour=2))
    made = Rig(limited, server)
    try:
        for n in range(3):
            await made.mailin.handle(mail("mirrors", sender=f"r{n}@example.com"))
        assert len(server.handler.received) == 2
        assert made.mailin.report.ignored == {"rate_limited": 1}
    finally:
        await made.transport.close()
        made.store.close()


@pytest.mark.parametrize(
    ("headers", "sender", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "reader@example.com", "auto_submitted"),
        ({"List-Id": "<talk.example.com>"}, "reader@example.com", "list"),
        ({}, "mailer-daemon@example.com", "robot"),
    ],
)
async def test_loops_get_no_reply(
    rig: Rig, headers: dict[str, str], sender: str, reason: str
) -> None:
    outcome = await rig.mailin.handle(mail("mirrors", sender=sender, headers=headers))
    assert outcome.reason == reason and rig.server.handler.received == []


async def test_our_own_reply_coming_back_is_not_answered(rig: Rig) -> None:
    await rig.mailin.handle(mail("mirrors"))
    ours = rig.server.handler.received[0].content
    bounced_back = ours.replace(b"To: reader@example.com", b"To: " + ADDRESS.encode())
    outcome = await rig.mailin.handle(
        b"Authentication-Results: mx.courier.example.org; dmarc=pass\r\n" + bounced_back
    )
    assert outcome.reason == "own_message" and len(rig.server.handler.received) == 1


def dsn(subscriber_id: int, status: str, n: int) -> bytes:
    verp = verp_address("bounces@courier.example.org", DIGEST_SECRET, subscriber_id)
    message = EmailMessage()
    message["From"] = "Mail Delivery System <mailer-daemon@mx.example.com>"
    message["To"] = verp
    message["Subject"] = "Undelivered Mail Returned to Sender"
    message["Message-ID"] = f"<dsn{n}.{status}@mx.example.com>"
    message.set_content(f"Your message could not be delivered.\nStatus: {status}\n")
    message.make_mixed()
    message.replace_header("Content-Type", "multipart/report; report-type=delivery-status")
    return message.as_bytes()


async def test_bounces_disable_after_three_permanent_and_count_transient(rig: Rig) -> None:
    subscriber, _ = rig.store.add_subscriber("gone@example.com", "en", NOW)
    for n in range(2):
        assert (await rig.mailin.handle(dsn(subscriber, "5.1.1", n))).kind == "bounce"
    assert (await rig.mailin.handle(dsn(subscriber, "4.2.2", 9))).kind == "bounce"
    row = rig.subscriber("gone@example.com")
    assert row is not None and row["disabled_at"] is None
    await rig.mailin.handle(dsn(subscriber, "5.1.1", 3))
    row = rig.subscriber("gone@example.com")
    assert row is not None and row["disabled_at"] and "5.1.1" in str(row["disabled_reason"])
    assert rig.store.bounce_counts(NOW - timedelta(days=30)) == {subscriber: (3, 1)}
    assert not rig.store.is_subscribed(subscriber)
    assert rig.server.handler.received == [] and rig.mailin.report.bounces == 4


async def test_old_permanent_bounces_fall_out_of_the_window(rig: Rig) -> None:
    subscriber, _ = rig.store.add_subscriber("gone@example.com", "en", NOW)
    for n in range(2):
        await rig.mailin.handle(dsn(subscriber, "5.1.1", n))
    rig.clock.now += timedelta(days=31)
    await rig.mailin.handle(dsn(subscriber, "5.1.1", 5))
    row = rig.subscriber("gone@example.com")
    assert row is not None and row["disabled_at"] is None


# --- exactly once -------------------------------------------------------------------------------


async def test_the_same_message_twice_gets_one_reply(rig: Rig) -> None:
    data = mail("mirrors")
    await rig.mailin.handle(data)
    outcome = await rig.mailin.handle(data)
    assert outcome.reason == "seen" and len(rig.replies()) == 1


class Crash(BaseException):
    """The process dying right after the server took the message."""


class CrashingAfterSend:
    def __init__(self, inner: SmtpTransport) -> None:
        self.inner = inner

    async def send(self, outgoing: Outgoing) -> None:
        await self.inner.send(outgoing)
        raise Crash

    async def close(self) -> None:
        pass


async def test_a_crash_between_send_and_record_repeats_one_reply_with_its_message_id(
    rig: Rig,
) -> None:
    data = mail("mirrors")
    crashing = rig.fresh()
    crashing.transport = CrashingAfterSend(rig.transport)
    with pytest.raises(Crash):
        await crashing.handle(data)
    assert (await rig.fresh().handle(data)).kind == "replied"
    assert (await rig.fresh().handle(data)).reason == "seen"
    first, second = rig.replies()
    assert first["Message-ID"] == second["Message-ID"]
    assert rig.store.sender_hashes()  # counted once: two more replies still allowed
    for n in range(2):
        await rig.mailin.handle(mail("mirrors", message_id=f"<more{n}@example.com>"))
    assert len(rig.replies()) == 4


class Refusing:
    async def send(self, outgoing: Outgoing) -> None:
        raise SmtpConnectionError("connection refused")

    async def close(self) -> None:
        pass


async def test_a_failed_send_leaves_the_message_for_the_next_run(rig: Rig) -> None:
    data = mail("mirrors")
    failing = rig.fresh()
    failing.transport = Refusing()
    outcome = await failing.handle(data)
    assert outcome.kind == "failed" and not outcome.handled
    assert failing.report.failed[0]["reason"].startswith("the reply could not be sent")
    assert (await rig.fresh().handle(data)).kind == "replied"


async def test_no_address_in_logs(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for subject in ("mirrors", "subscribe", "unsubscribe", "latest"):
        await rig.mailin.handle(mail(subject, sender="secret.reader@example.com"))
    await rig.mailin.handle(mail("mirrors", sender="x@example.com", authenticated=False))
    ours = [r for r in caplog.records if r.name.startswith("mirror")]  # not aiosmtpd's
    logged = " ".join(f"{r.getMessage()} {r.args}" for r in ours)
    assert "secret.reader" not in logged and "x@example.com" not in logged
    assert "sender " in logged  # hashes are logged instead


# --- the confirm link on serve-unsubscribe ---------------------------------------------------


async def test_confirm_link_subscribes_only_on_post(rig: Rig) -> None:
    await rig.mailin.handle(mail("subscribe ru"))
    link = re.search(r"https://news\.example\.org/confirm\?token=(\S+)", text(rig.replies()[0]))
    assert link is not None
    app = make_app(rig.config.state.path, DIGEST_SECRET, publication="Courier", now=rig.clock)
    async with serve(app) as port, aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{port}/confirm"
        async with session.get(url, params={"token": link[1]}) as page:
            assert page.status == 200 and '<form method="post">' in await page.text()
        assert rig.subscriber("reader@example.com") is None  # a GET changes nothing
        async with session.post(url, data={"token": link[1] + "x"}) as bad:
            assert bad.status == 400
        async with session.post(url, data={"token": link[1]}) as done:
            assert done.status == 200
        row = rig.subscriber("reader@example.com")
        assert row is not None and row["lang"] == "ru"
        rig.clock.now += timedelta(days=8)
        async with session.get(url, params={"token": link[1]}) as expired:
            assert expired.status == 400


# --- the digest side: VERP, disabled subscribers, the list -----------------------------------


def test_digest_goes_out_with_a_verp_envelope_and_skips_the_disabled(
    config: Config, server: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(config.path)
    text = config.path.read_text(encoding="utf-8").replace(
        "[digest]\n", f'[digest]\nsmtp_url = "smtp+insecure://127.0.0.1:{server.port}"\n'
    )
    config.path.write_text(text, encoding="utf-8")
    for address in ("kept@example.com", "gone@example.com"):
        assert run(["-c", path, "subscribers", "add", address, "--lang", "en"]) == 0
    with Store(config.state.path) as store:
        gone = store.subscriber_id("gone@example.com")
        assert gone is not None
        for _ in range(3):
            store.record_bounce(
                gone, permanent=True, status="5.1.1", at=datetime.now(UTC),
                window_start=datetime.now(UTC) - timedelta(days=30), hard_limit=3,
            )  # fmt: skip
    capsys.readouterr()
    assert run(["-c", path, "digest", "send", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sent"] == 1
    (received,) = server.handler.received
    assert received.rcpt_tos == ("kept@example.com",)
    token = verp_token_in("bounces@courier.example.org", received.mail_from)
    assert received.mail_from.startswith("bounces+") and token is not None
    with Store(config.state.path) as store:
        assert verp_subscriber(DIGEST_SECRET, token) == store.subscriber_id("kept@example.com")
    assert b"Return-Path" not in received.content
    assert run(["-c", path, "subscribers", "list"]) == 0
    listing = capsys.readouterr().out
    gone_line = next(line for line in listing.splitlines() if "gone@" in line)
    assert "disabled" in gone_line and "5.1.1" in gone_line and "bouncing: 3 bounces" in gone_line
    assert run(["-c", path, "subscribers", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["subscribers"]
    assert {r["id"]: r["bounces"]["permanent"] for r in rows}[gone] == 3
    assert all("email" not in r for r in rows)


async def test_a_reply_refused_for_good_finishes_the_message_as_ignored(rig: Rig) -> None:
    rig.server.handler.refuse["reader@example.com"] = "550 5.1.1 <reader@example.com>: no such user"
    data = mail("mirrors")
    outcome = await rig.mailin.handle(data)
    assert outcome.handled and outcome.reason == "reply_refused"
    assert rig.mailin.report.ignored == {"reply_refused": 1} and rig.mailin.report.failed == []
    assert (await rig.fresh().handle(data)).reason == "seen"  # never tried again
    rig.server.handler.defer["second@example.com"] = 1  # 451: for now only
    later = await rig.mailin.handle(mail("mirrors", sender="second@example.com"))
    assert later.kind == "failed" and not later.handled


# --- unsubscribing: automatic mail, the digest's token, no one subscribed ---------------------


@pytest.mark.parametrize(
    ("headers", "to", "reason"),
    [
        ({"Auto-Submitted": "auto-generated"}, ADDRESS, "auto_submitted"),
        ({"List-Id": "<talk.example.com>"}, "leave@courier.example.org", "list"),
    ],
)
async def test_an_unsubscribe_in_automatic_mail_is_acted_on_without_a_reply(
    rig: Rig, headers: dict[str, str], to: str, reason: str
) -> None:
    rig.store.add_subscriber("reader@example.com", "en", NOW)
    outcome = await rig.mailin.handle(mail("unsubscribe", to=to, headers=headers))
    assert outcome.kind == "unsubscribed" and outcome.reason == reason and not outcome.replied
    row = rig.subscriber("reader@example.com")
    assert row is not None and row["unsubscribed_at"] is not None
    assert rig.server.handler.received == []  # the loop rules forbid only the reply
    report = rig.mailin.report
    assert (report.unsubscribed, report.replied, report.handled) == (1, 0, 1)


async def test_an_unauthenticated_or_our_own_unsubscribe_changes_nothing(rig: Rig) -> None:
    rig.store.add_subscriber("reader@example.com", "en", NOW)
    forged = mail("unsubscribe", authenticated=False, headers={"Auto-Submitted": "auto-replied"})
    assert (await rig.mailin.handle(forged)).reason == "unauthenticated"
    own = mail("unsubscribe", headers={LOOP_HEADER: "x"}, message_id="<own@example.com>")
    assert (await rig.mailin.handle(own)).reason == "own_message"
    row = rig.subscriber("reader@example.com")
    assert row is not None and row["unsubscribed_at"] is None


async def test_the_digests_signed_token_unsubscribes_its_subscriber(rig: Rig) -> None:
    """The digest's mailto List-Unsubscribe puts "unsubscribe TOKEN" in the subject: the
    reader may write from another address (a forward, an alias) than the one subscribed."""
    subscriber, _ = rig.store.add_subscriber("alias@example.com", "en", NOW)
    token = unsubscribe_token(DIGEST_SECRET, subscriber)
    leave = mail(f"unsubscribe {token}", to="leave@courier.example.org")
    outcome = await rig.mailin.handle(leave)
    assert outcome.kind == "unsubscribed" and not rig.store.is_subscribed(subscriber)
    assert str(rig.replies()[0]["Subject"]) == "You are unsubscribed"
    assert rig.mailin.report.unsubscribed == 1


async def test_an_unsubscribe_that_finds_no_one_says_so_and_claims_nothing(rig: Rig) -> None:
    rig.store.add_subscriber("kept@example.com", "en", NOW)
    forged_token = "1." + "A" * 22  # the right shape, a wrong mac: falls back to the sender
    outcome = await rig.mailin.handle(mail(f"unsubscribe {forged_token}"))
    assert outcome.kind == "replied"
    assert rig.store.is_subscribed(rig.store.subscriber_id("kept@example.com") or 0)
    (reply,) = rig.replies()
    assert str(reply["Subject"]) == "Not subscribed" and "not subscribed" in text(reply)
    await rig.mailin.handle(mail("отписаться", message_id="<ru@example.com>"))
    assert "не подписан" in text(rig.replies()[1])
    report = rig.mailin.report
    assert (report.unsubscribed, report.replied) == (0, 2)


async def test_an_unsubscribe_over_the_limit_still_unsubscribes(rig: Rig) -> None:
    for n in range(3):
        await rig.mailin.handle(mail("mirrors", message_id=f"<l{n}@example.com>"))
    rig.store.add_subscriber("reader@example.com", "en", NOW)
    outcome = await rig.mailin.handle(mail("unsubscribe", message_id="<lu@example.com>"))
    assert outcome.kind == "unsubscribed" and outcome.reason == "rate_limited"
    assert len(rig.replies()) == 3 and rig.mailin.report.unsubscribed == 1
    row = rig.subscriber("reader@example.com")
    assert row is not None and row["unsubscribed_at"] is not None


async def test_a_crash_after_an_unsubscribe_repeats_the_same_reply(rig: Rig) -> None:
    rig.store.add_subscriber("reader@example.com", "en", NOW)
    data = mail("unsubscribe")
    crashing = rig.fresh()
    crashing.transport = CrashingAfterSend(rig.transport)
    with pytest.raises(Crash):
        await crashing.handle(data)
    assert (await rig.fresh().handle(data)).kind == "unsubscribed"
    first, second = rig.replies()
    assert first["Message-ID"] == second["Message-ID"]
    assert str(second["Subject"]) == "You are unsubscribed"


# --- the welcome after a confirmation on the web ---------------------------------------------


async def test_a_web_confirmation_owes_a_welcome_sent_once_at_the_next_run(rig: Rig) -> None:
    await rig.mailin.handle(mail("subscribe ru"))
    link = re.search(r"https://news\.example\.org/confirm\?token=(\S+)", text(rig.replies()[0]))
    assert link is not None
    app = make_app(rig.config.state.path, DIGEST_SECRET, publication="Courier", now=rig.clock)
    async with serve(app) as port, aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{port}/confirm"
        for _ in range(2):  # a second press owes nothing more
            async with session.post(url, data={"token": link[1]}) as done:
                assert done.status == 200
    subscriber = rig.store.subscriber_id("reader@example.com")
    assert subscriber is not None and len(rig.store.owed_welcomes(10)) == 1
    assert len(rig.replies()) == 1  # the web sends no mail
    later = rig.fresh()
    assert await later.send_owed_welcomes() == 1 and later.report.welcomed == 1
    welcome = rig.replies()[1]
    assert "Courier" in str(welcome["Subject"]) and "/articles/" in text(welcome)
    assert "List-Unsubscribe" in welcome and "In-Reply-To" not in welcome
    assert await rig.fresh().send_owed_welcomes() == 0 and len(rig.replies()) == 2


async def test_an_owed_welcome_that_cannot_be_sent_stays_owed(rig: Rig) -> None:
    subscriber, _ = rig.store.add_subscriber("reader@example.com", "en", NOW)
    rig.store.owe_welcome(subscriber, NOW)
    failing = rig.fresh()
    failing.transport = Refusing()
    assert await failing.send_owed_welcomes() == 0
    assert rig.store.owed_welcomes(10) == [(subscriber, NOW.isoformat())]
    assert await rig.fresh().send_owed_welcomes() == 1
    assert rig.store.owed_welcomes(10) == []


# --- what the store keeps of a message -------------------------------------------------------


async def test_message_ids_are_kept_only_as_keyed_hashes_and_only_for_the_window(
    rig: Rig,
) -> None:
    data = mail("mirrors", message_id="<id.reader-laptop.home@example.com>")
    await rig.mailin.handle(data)
    rows = [dict(r) for r in rig.store.execute("SELECT * FROM mailin_messages").fetchall()]
    assert len(rows) == 1 and "reader-laptop" not in json.dumps(rows)
    assert rows[0]["message_key"].startswith("mid:")
    resent = mail("mirrors", message_id="<id.reader-laptop.home@example.com>", body="Again\n")
    assert (await rig.fresh().handle(resent)).reason == "seen"  # the same id, other bytes
    rig.clock.now += timedelta(days=1, minutes=1)
    later = rig.fresh()
    await later.handle(mail("help", message_id="<next@example.com>"))
    keys = [r[0] for r in rig.store.execute("SELECT message_key FROM mailin_messages")]
    assert len(keys) == 1  # the first is forgotten: past the window, it is handled again
    assert (await later.handle(data)).kind == "replied"
