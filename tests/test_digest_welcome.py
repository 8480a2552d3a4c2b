"""A subscriber ops add (`subscribers add`/`import`) gets, at the next digest run, a
welcome (why it comes, the mirrors, the newest articles, how to unsubscribe), exactly
once; one who confirmed by mail-in (which sends its own welcome) is not welcomed again.
Through the CLI to aiosmtpd on 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mirror.cli import run
from mirror.config import load_config
from mirror.digest.compose import Composer, DigestContext, DigestMirror, Recipient, compose
from mirror.store import Store

from digest_rig import parse, send, subscribe, with_smtp
from mailin_rig import MAILIN, Rig, mail
from smtp_servers import Recorder, SmtpServer, smtp_server

WELCOME_LINE = "your address was added to this mailing list"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_a_subscriber_added_by_ops_is_welcomed_once_at_the_next_digest(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = Recorder()
    with smtp_server(handler) as server:
        with_smtp(built, server.port, retries="0")
        built.write_text(built.read_text().replace('retries = "0"', "retries = 0"))
        subscribe(built, ("old@example.org", "any"))
        capsys.readouterr()
        assert send(built, capsys)[1]["welcomed"] == 1  # the first digest: old's welcome
        status, report = send(built, capsys)
        assert status == 0 and report["nothing_new"]

        subscribe(built, ("new@example.org", "en"))
        handler.defer["new@example.org"] = 1  # a 451 first: the welcome waits for the next run
        capsys.readouterr()
        status, report = send(built, capsys)
        assert status == 1 and report["deferred"] == 1 and report["sent"] == 0
        assert report["skipped"] == 1  # old: nothing new for them
        status, report = send(built, capsys)  # tried again: the welcome goes
        assert status == 0 and (report["sent"], report["welcomed"]) == (1, 1)
        assert report["retried"] == 1
        (welcome,) = received(server, "new@example.org")
        assert str(welcome["Subject"]).startswith("Welcome to ")
        assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        body = " ".join(str(welcome.get_content()).split())
        assert WELCOME_LINE in body and "https://a.example.net/m/index.html" in body
        assert "/articles/" in body and "To unsubscribe" in body
        assert 1 <= body.count("Read on a mirror:") <= 10  # digest.welcome_articles

        status, report = send(built, capsys)  # once only
        assert status == 0 and report["nothing_new"]
        assert len(received(server, "new@example.org")) == 1
        (first,) = received(server, "old@example.org")
        assert WELCOME_LINE in " ".join(str(first.get_content()).split())


def test_a_reader_who_confirmed_by_mail_is_not_welcomed_twice(
    built: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with smtp_server(Recorder()) as server:
        with_smtp(built, server.port)
        built.write_text(built.read_text() + MAILIN)
        subscribe(built, ("first@example.org", "any"))
        capsys.readouterr()
        assert send(built, capsys)[1]["sent"] == 1  # a digest done: the others start after it
        subscribe(built, ("ops-then-mail@example.com", "en"))  # ops first, then the reader
        asyncio.run(confirm_by_mail(built, server, "ops-then-mail@example.com"))
        asyncio.run(confirm_by_mail(built, server, "mail-then-ops@example.com"))
        listing = tmp_path / "list.csv"
        listing.write_text("email,lang\nmail-then-ops@example.com,en\n")
        assert run(["-c", str(built), "subscribers", "import", str(listing)]) == 0
        with Store(built.parent / "state" / "mirror.db") as store:
            assert [r["welcome_due"] for r in store.subscribers()] == [0, 0, 0]
        for reader in ("ops-then-mail@example.com", "mail-then-ops@example.com"):
            (reply,) = [m for m in received(server, reader) if "[confirm:" not in m["Subject"]]
            assert str(reply["Subject"]).startswith("Welcome to ")  # mail-in's welcome
        capsys.readouterr()
        status, report = send(built, capsys)
        assert status == 0 and report["nothing_new"] and report["welcomed"] == 0
        for reader in ("ops-then-mail@example.com", "mail-then-ops@example.com"):
            assert len(received(server, reader)) == 2  # the confirmation and one welcome


async def confirm_by_mail(config: Path, server: SmtpServer, reader: str) -> None:
    """`subscribe`, then the answer to the confirmation, through mail-in."""
    rig = Rig(load_config(config), server)
    try:
        await rig.mailin.handle(mail("subscribe", sender=reader))
        (ask,) = rig.replies(reader)
        answer = mail(f"Re: {ask['Subject']}", sender=reader, body="> quoted\n")
        assert (await rig.mailin.handle(answer)).kind == "confirmed"
    finally:
        await rig.transport.close()
        rig.store.close()


def received(server: SmtpServer, address: str) -> list:  # type: ignore[type-arg]
    return [parse(r.content) for r in server.handler.received if address in r.rcpt_tos]


@pytest.mark.parametrize("key", ["welcome_articles", "max_articles"])
def test_the_welcome_and_the_digest_bring_the_newest_articles(
    built: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    with smtp_server(Recorder()) as server:
        with_smtp(built, server.port)
        built.write_text(built.read_text().replace("[digest]\n", f"[digest]\n{key} = 2\n"))
        database = built.parent / "state" / "mirror.db"
        with Store(database) as store:
            newest = [a.path for a in store.digest_articles(0, 10**6, revisions=False)][:2]
            if key == "max_articles":  # confirmed by mail: a digest, not a welcome
                store.add_subscriber("reader@example.org", "any", NOW)
        if key == "welcome_articles":
            subscribe(built, ("reader@example.org", "any"))
        capsys.readouterr()
        assert send(built, capsys)[1]["welcomed"] == (key == "welcome_articles")
        (message,) = received(server, "reader@example.org")
        body = str(message.get_content())
        linked = {path for path in re.findall(r"https://a\.example\.net/m/(articles/\S+)", body)}
        assert linked == set(newest)


def test_a_welcome_is_composed_the_same_whole_and_fast_even_with_no_article() -> None:
    context = DigestContext(
        digest_id=1, date=NOW, publication="The Courier", sender="Courier <d@example.org>",
        language="en", mirrors=(DigestMirror("a", "https://a.example.net/m/", True),),
        links_per_article=3, public_key_line="RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1",
        manifest_version=3, manifest_sha256="ab" * 32,
        unsubscribe_url="https://news.example.org/unsubscribe", unsubscribe_mailto="",
        list_id="", full_text=True, max_message_bytes=200_000, neutral=False,
        neutral_sender="Newsletter", neutral_subject="Weekly notes", secret=b"s" * 32,
    )  # fmt: skip
    welcome = Recipient(5, "w@example.org", "ru", welcome=True)
    message = compose(context, welcome, [])
    assert Composer(context).message_bytes(welcome, []) == message.as_bytes()
    assert str(message["Subject"]) == "Добро пожаловать: The Courier"
    body = " ".join(str(message.get_content()).split())
    assert "ваш адрес добавлен в этот список рассылки" in body
    assert (
        "https://a.example.net/m/index" in body and "https://news.example.org/unsubscribe" in body
    )
    plain = compose(context, replace(welcome, welcome=False), [])
    assert "Добро пожаловать" not in str(plain["Subject"]) + str(plain.get_content())
