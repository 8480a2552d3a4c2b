"""`mirror digest send` end to end: a built edition, subscribers, and aiosmtpd on
127.0.0.1 receiving what is sent; messages parsed back with the standard parser."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest
from conftest import SECRET

from mirror.cli import run
from mirror.store import Store

from digest_rig import parse, send, subscribe, welcomed, with_smtp, with_unsubscribe
from smtp_servers import Recorder, smtp_server


@pytest.mark.slow
def test_digest_reaches_every_subscriber_once_in_their_language(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with smtp_server() as server:
        with_smtp(built, server.port)
        subscribe(
            built, ("en@example.org", "en"), ("ru@example.org", "ru"), ("all@example.org", "any")
        )
        capsys.readouterr()
        status, report = send(built, capsys)
        assert status == 0 and report["sent"] == 3 and report["failed"] == []
        messages = {r.rcpt_tos[0]: parse(r.content) for r in server.handler.received}
        assert set(messages) == {"en@example.org", "ru@example.org", "all@example.org"}
        english, russian, every = (
            messages[a].get_content()
            for a in ("en@example.org", "ru@example.org", "all@example.org")
        )
        assert "Зеркала" in russian and "Mirrors" in english
        assert len(every) > len(english) and len(every) > len(russian)
        for address, message in messages.items():
            assert message["To"] == address
            assert message["Message-ID"] and message["Date"] and message["List-Id"]
            assert "https://news.example.org/unsubscribe?token=" in message["List-Unsubscribe"]
            assert "mailto:leave@news.example.org" in message["List-Unsubscribe"]
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            body = message.get_content()
            assert "RW" in body and "<p>" not in body and "<img" not in body
            assert (
                "https://a.example.net/m/articles/" in body
                or "https://hidden.example.com/articles/" in body
            )

        status, report = send(built, capsys)  # nothing new since
        assert status == 0 and report["nothing_new"] and report["sent"] == 0
        assert len(server.handler.received) == 3
    with Store(built.parent / "state" / "mirror.db") as store:
        sends = store.execute("SELECT state FROM digest_sends").fetchall()
        assert [row[0] for row in sends] == ["sent"] * 3


def test_one_refused_recipient_does_not_stop_the_others(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = Recorder(refuse={"gone@example.org": "550 5.1.1 no such user"})
    with smtp_server(handler) as server:
        with_smtp(built, server.port)
        subscribe(
            built, ("a@example.org", "any"), ("gone@example.org", "any"), ("b@example.org", "any")
        )
        capsys.readouterr()
        status, report = send(built, capsys)
        assert status == 1
        assert report["sent"] == 2 and len(report["failed"]) == 1
        failure = report["failed"][0]
        assert isinstance(failure["subscriber"], int) and "gone@" not in failure["reason"]
        assert "550" in failure["reason"]


def test_server_down_sends_nothing_and_the_next_run_delivers_all(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from servers import closed_port

    with_smtp(built, closed_port(), retries="0")
    text = built.read_text().replace('retries = "0"\n', "retries = 0\n")
    built.write_text(text)
    subscribe(built, ("a@example.org", "any"), ("b@example.org", "en"))
    capsys.readouterr()
    status, report = send(built, capsys)
    assert status == 1 and report["sent"] == 0 and report["deferred"] == 2
    with smtp_server() as server:
        port = int(text.split("smtp+insecure://127.0.0.1:")[1].split('"')[0])
        built.write_text(text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{server.port}"))
        status, report = send(built, capsys)
        assert status == 0 and report["sent"] == 2 and report["retried"] == 2
        assert sorted(r.rcpt_tos[0] for r in server.handler.received) == [
            "a@example.org",
            "b@example.org",
        ]


def test_dry_run_shows_one_message_and_sends_nothing(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_unsubscribe(built)
    subscribe(built, ("a@example.org", "any"), ("b@example.org", "ru"))
    capsys.readouterr()
    assert run(["-c", str(built), "digest", "send", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "2 subscribers would get" in out.err
    assert "List-Unsubscribe" in out.out and "a@example.org" in out.out
    with Store(built.parent / "state" / "mirror.db") as store:
        assert store.execute("SELECT COUNT(*) FROM digests").fetchone()[0] == 0


def test_outbox_without_smtp_and_missing_secret(
    built: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with_unsubscribe(built)
    subscribe(built, ("a@example.org", "any"))
    capsys.readouterr()
    status, report = send(built, capsys)
    assert status == 0 and report["sent"] == 1
    files = list((built.parent / "outbox").glob("*.eml"))
    assert len(files) == 1 and parse(files[0].read_bytes())["To"] == "a@example.org"
    monkeypatch.delenv("MIRROR_UNSUBSCRIBE_SECRET")
    status = run(["-c", str(built), "digest", "send"])
    err = capsys.readouterr().err
    assert status == 2 and "MIRROR_UNSUBSCRIBE_SECRET" in err and "Traceback" not in err


KILLER = """
import sys
from mirror.cli import main
main(["-c", sys.argv[1], "-q", "digest", "send"])
"""


def reached(handler: Recorder, addresses: int, within_s: float = 60.0) -> bool:
    """Wait until the server took messages for `addresses` distinct recipients."""
    deadline = time.monotonic() + within_s
    while len({r.rcpt_tos[0] for r in list(handler.received)}) < addresses:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


@pytest.mark.slow
def test_killed_sends_resume_with_no_message_lost_or_doubled(built: Path) -> None:
    """SIGKILL `mirror digest send` mid-run (once the server took 10, 20, ... 80 of its
    120 messages, give or take a few: at 200 a second the rest take 0.2 s or more, so
    every kill lands), start it again until it finishes: every subscriber gets the
    digest, and any second copy (a message in flight at a kill) carries the same
    Message-ID."""
    import random

    rng = random.Random(7)
    people = [f"reader{i}@example.org" for i in range(120)]
    csv_file = built.parent / "people.csv"
    csv_file.write_text("".join(f"{p},any\n" for p in people))
    assert run(["-c", str(built), "subscribers", "import", str(csv_file)]) == 0
    handler = Recorder()
    kills = 0
    with smtp_server(handler) as server:
        with_smtp(built, server.port)
        text = built.read_text().replace("[digest]\n", "[digest]\nrate_per_s = 200\n")
        built.write_text(text)
        env = {**os.environ, "MIRROR_UNSUBSCRIBE_SECRET": SECRET}
        for round_ in range(1, 9):
            child = subprocess.Popen([sys.executable, "-c", KILLER, str(built)], env=env)
            assert reached(handler, 10 * round_ + rng.randint(-3, 3)), "no progress"
            assert child.poll() is None, "the send finished before its kill"
            child.send_signal(signal.SIGKILL)
            child.wait()
            kills += 1
        final = subprocess.run(
            [sys.executable, "-c", KILLER, str(built)], env=env, timeout=120, check=False
        )
        assert final.returncode == 0
    assert kills == 8
    ids: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for received in handler.received:
        address = received.rcpt_tos[0]
        counts[address] = counts.get(address, 0) + 1
        ids.setdefault(address, set()).add(parse(received.content)["Message-ID"])
    assert set(counts) == set(people)  # nobody lost
    assert all(len(message_ids) == 1 for message_ids in ids.values())  # resends fold
    doubled = sum(count - 1 for count in counts.values())
    assert doubled <= kills * 4  # at most the messages in flight at each kill (4 connections)


def test_an_invalid_address_in_the_list_is_reported_and_skipped(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with smtp_server() as server:
        with_smtp(built, server.port)
        subscribe(built, ("good@example.org", "any"))
        with Store(built.parent / "state" / "mirror.db") as store:  # as an old import left it
            store.execute(
                "INSERT INTO subscribers (email, lang, added_at) VALUES (?, 'any', '2026-01-01')",
                ("evil@example.org\r\nBcc: everyone@example.org",),
            )
        capsys.readouterr()
        status, report = send(built, capsys)
        assert status == 1 and report["sent"] == 1
        assert len(report["failed"]) == 1 and "evil" not in report["failed"][0]["reason"]
        assert [r.rcpt_tos for r in server.handler.received] == [("good@example.org",)]


MIRROR_LINK = re.compile(
    r"^  https://(?:a\.example\.net/m|hidden\.example\.com)/(articles/\S+)\r?$", re.M
)


def linked_paths(message: email.message.EmailMessage) -> list[str]:
    """The edition paths the message links to, in the order they come."""
    return list(dict.fromkeys(MIRROR_LINK.findall(message.get_content())))


def published_articles(config: Path) -> list[tuple[str, str]]:
    """(edition path, language) of every article in the edition, newest first."""
    with Store(config.parent / "state" / "mirror.db") as store:
        rows = store.execute(
            """SELECT a.path, r.language, r.published_at FROM articles a JOIN revisions r
               ON r.article_id = a.id AND r.revision = a.revision
               WHERE a.path IS NOT NULL ORDER BY r.published_at DESC"""
        ).fetchall()
    return [(row["path"], row["language"].split("-")[0]) for row in rows]


def index_order(config: Path) -> list[str]:
    """The article paths of the built edition's index.html, in the order it lists them."""
    index = config.parent / "edition" / "index.html"
    hrefs = lxml.html.fromstring(index.read_bytes()).xpath("//a/@href")
    return [href for href in dict.fromkeys(hrefs) if href.startswith("articles/")]


def test_articles_come_newest_first_like_the_index_in_the_subscribers_language(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    articles = published_articles(built)  # the sample's ids run newest first: not this order
    assert [path for path, _ in articles] == index_order(built)
    assert len(articles) == 8 and {lang for _, lang in articles} == {"en", "ru"}
    with smtp_server() as server:
        with_smtp(built, server.port)
        subscribe(
            built, ("en@example.org", "en"), ("ru@example.org", "ru"), ("all@example.org", "any")
        )
        welcomed(built)  # a plain digest, whose subject counts the articles
        capsys.readouterr()
        assert send(built, capsys)[1]["sent"] == 3
        messages = {r.rcpt_tos[0]: parse(r.content) for r in server.handler.received}
    english = [path for path, lang in articles if lang == "en"]
    russian = [path for path, lang in articles if lang == "ru"]
    assert linked_paths(messages["en@example.org"]) == english
    assert linked_paths(messages["ru@example.org"]) == russian
    assert linked_paths(messages["all@example.org"]) == [path for path, _ in articles]
    assert ": 4 new articles, " in messages["en@example.org"]["Subject"]
    assert ": 4 новые статьи, " in messages["ru@example.org"]["Subject"]
    assert ": 8 new articles, " in messages["all@example.org"]["Subject"]


def revise(config: Path, path: str) -> str:
    """Store a new revision of the article at `path` (as a fetch of a corrected page
    would); returns its new title."""
    with Store(config.parent / "state" / "mirror.db") as store:
        article_id = store.execute("SELECT id FROM articles WHERE path = ?", (path,)).fetchone()[0]
        current = store.revision(article_id)
        assert current is not None
        corrected = replace(
            current,
            content_hash="corrected-" + current.content_hash,
            title=current.title + " (corrected)",
            body_html=current.body_html + "<p>Correction: the vote was on Friday.</p>",
        )
        outcome = store.save_revision(
            article_id, corrected, etag=None, last_modified=None, at=datetime.now(UTC)
        )
        assert outcome == "changed"
    return corrected.title


@pytest.mark.parametrize("send_revisions", [False, True], ids=["default", "send_revisions"])
def test_a_revised_article_is_mailed_again_only_with_send_revisions(
    built: Path, capsys: pytest.CaptureFixture[str], send_revisions: bool
) -> None:
    """An article revised in a later edition: by default not mailed again; with
    `send_revisions = true`, mailed again (the new revision, alone)."""
    with smtp_server() as server:
        with_smtp(built, server.port)
        if send_revisions:  # else the key is left out: the default
            text = built.read_text(encoding="utf-8")
            built.write_text(text.replace("[digest]\n", "[digest]\nsend_revisions = true\n"))
        subscribe(built, ("a@example.org", "any"))
        capsys.readouterr()
        assert send(built, capsys)[1]["sent"] == 1
        path = published_articles(built)[2][0]
        title = revise(built, path)
        assert run(["-c", str(built), "build", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["version"] == 2
        status, report = send(built, capsys)
        assert status == 0 and report["failed"] == []
        received = [parse(r.content) for r in server.handler.received]
    if not send_revisions:
        assert report["nothing_new"] and report["sent"] == 0 and len(received) == 1
        return
    assert report["sent"] == 1 and len(received) == 2
    again = received[1]
    body = again.get_content()
    assert linked_paths(again) == [path] and ": 1 new article, " in again["Subject"]
    assert title in body and "Correction: the vote was on Friday." in body


def test_a_page_claiming_another_articles_url_keeps_its_own_original_in_the_digest(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As on the pages: a canonical URL that is another article's fetched URL gives way to
    the article's own, so the digest never shows one article as another's original."""
    with Store(built.parent / "state" / "mirror.db") as store:
        rows = store.execute("SELECT id, url FROM articles ORDER BY id LIMIT 2").fetchall()
        (_, first_url), (second_id, second_url) = rows
        store.execute(
            "UPDATE revisions SET canonical_url = ? WHERE article_id = ?", (first_url, second_id)
        )
    with smtp_server() as server:
        with_smtp(built, server.port)
        subscribe(built, ("all@example.org", "any"))
        capsys.readouterr()
        assert send(built, capsys)[1]["sent"] == 1
        body = parse(server.handler.received[0].content).get_content()
    originals = re.findall(r"^  (https?://127\.0\.0\.1:\d+/\S+)$", body, re.MULTILINE)
    assert originals.count(first_url) == 1
    assert second_url in originals
