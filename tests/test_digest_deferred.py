"""A recipient deferred (451) never holds the digest back for the others: the digest
finishes, stays open for them alone and is tried again at each run; newer digests go
to everyone else; once it goes through, their next digest covers all they missed, each
article once. After digest.max_deferrals runs, the send counts failed. Real aiosmtpd on
127.0.0.1 (tests/smtp_servers.py), the CLI as ops run it."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mirror.cli import run
from mirror.config import load_config
from mirror.digest.run import send_digest
from mirror.store import Store

from digest_rig import parse, send, subscribe, welcomed, with_smtp
from smtp_servers import Recorder, smtp_server

OK, DEFER = "ok1@example.org", "defer9@example.org"
MIRROR_LINK = re.compile(
    r"^  https://(?:a\.example\.net/m|hidden\.example\.com)/(articles/\S+)\r?$", re.M
)


def digest_lines(config: Path, *lines: str) -> None:
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[digest]\n", "[digest]\n" + "".join(lines), 1), "utf-8")


def add_articles(config: Path, count: int, *, first: int = 0) -> None:
    """`count` new articles in the store (copies of a stored one, each its own URL and
    title), as a fetch finding new stories would leave them: the next build has them."""
    now = datetime.now(UTC)
    with Store(config.parent / "state" / "mirror.db") as store:
        source = store.execute("SELECT id FROM articles ORDER BY id LIMIT 1").fetchone()[0]
        revision = store.revision(source)
        assert revision is not None
        for i in range(first, first + count):
            url = f"http://127.0.0.1:9/news/later-{i}"
            row = store.add_article(url, guid=None, feed_url=None, published_at=now, at=now)
            fresh = replace(
                revision, content_hash=f"later-{i}", title=f"Later story {i}",
                canonical_url=url, published_at=now + timedelta(minutes=i),
            )  # fmt: skip
            assert (
                store.save_revision(row.id, fresh, etag=None, last_modified=None, at=now) == "new"
            )


def linked(server_handler: Recorder, address: str) -> list[list[str]]:
    """The article paths of each message `address` got, in the order they came."""
    return [
        list(dict.fromkeys(MIRROR_LINK.findall(parse(r.content).get_content())))
        for r in server_handler.received
        if r.rcpt_tos == (address,)
    ]


def test_a_deferred_recipient_holds_nobody_back_and_misses_nothing(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The audit's case: ok1@ and defer9@ (451 twice). Digest 1 reaches ok1@; 3 new
    articles, edition 2; the next run mails ok1@ digest 2 (the 3) and tries defer9@'s
    digest 1 again; when defer9@ accepts they get digest 1, then the 3: each article
    once, nobody anything twice."""
    handler = Recorder(defer={DEFER: 2})
    with smtp_server(handler) as server:
        with_smtp(built, server.port)
        digest_lines(built, "retries = 0\n")
        subscribe(built, (OK, "any"), (DEFER, "any"))
        welcomed(built)
        capsys.readouterr()
        status, report = send(built, capsys)
        assert status == 1 and (report["digest"], report["sent"], report["deferred"]) == (1, 1, 1)
        (deferral,) = report["deferrals"]
        assert deferral["reason"] == (
            "message deferred: 451 4.3.0 try again later: will be retried at the next run"
        )
        with Store(built.parent / "state" / "mirror.db") as store:
            assert store.digest(1)["finished_at"] is not None  # done for everyone else

        add_articles(built, 3)
        assert run(["-c", str(built), "build"]) == 0
        capsys.readouterr()
        assert run(["-c", str(built), "digest", "send", "--dry-run"]) == 0
        said = capsys.readouterr().err
        assert (
            "1 subscriber would get this digest; 1 deferred at an earlier run would be tried again"
            in said
        )
        status, report = send(built, capsys)
        assert status == 1 and report["digest"] == 2 and not report["resumed"]
        assert (report["sent"], report["deferred"], report["retried"]) == (1, 1, 1)
        assert len(linked(handler, OK)) == 2 and len(linked(handler, OK)[1]) == 3

        status, report = send(built, capsys)  # defer9@ accepts: digest 1, as it was
        assert status == 0 and (report["sent"], report["retried"], report["digest"]) == (1, 1, None)
        status, report = send(built, capsys)  # no newer edition: no new digest
        assert status == 0 and report["nothing_new"] and report["retried"] == 0
        add_articles(built, 1, first=3)
        assert run(["-c", str(built), "build"]) == 0
        capsys.readouterr()
        status, report = send(built, capsys)  # digest 3: defer9@'s covers the 3 they missed
        assert status == 0 and report["digest"] == 3 and report["sent"] == 2

    ok, deferred = linked(handler, OK), linked(handler, DEFER)
    assert [len(m) for m in ok] == [8, 3, 1] and [len(m) for m in deferred] == [8, 4]
    assert ok[0] == deferred[0] and deferred[1] == ok[2] + ok[1]  # newest first
    every = [path for message in deferred for path in message]
    assert len(every) == len(set(every)) == 12  # each article once
    ids = [parse(r.content)["Message-ID"] for r in handler.received if r.rcpt_tos == (DEFER,)]
    assert len(set(ids)) == 2
    assert handler.attempts == 5 + 2  # 5 messages taken, 2 answered 451


def test_a_recipient_deferred_at_max_deferrals_runs_counts_failed(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = Recorder(defer={DEFER: 2})
    with smtp_server(handler) as server:
        with_smtp(built, server.port)
        digest_lines(built, "retries = 0\n", "max_deferrals = 2\n")
        subscribe(built, (OK, "any"), (DEFER, "any"))
        welcomed(built)
        capsys.readouterr()
        status, report = send(built, capsys)
        assert status == 1 and report["deferred"] == 1 and report["failed"] == []
        status, report = send(built, capsys)  # the second run deferred: given up
        assert status == 1 and report["retried"] == 1 and report["deferrals"] == []
        (failure,) = report["failed"]
        assert failure["reason"] == (
            "deferred at 2 runs, given up (digest.max_deferrals): "
            "message deferred: 451 4.3.0 try again later"
        )
        status, report = send(built, capsys)  # digest 1 is not tried again
        assert status == 0 and report["nothing_new"] and report["retried"] == 0
        # what it held comes with their next digest, which new articles make
        add_articles(built, 1)
        assert run(["-c", str(built), "build"]) == 0
        capsys.readouterr()
        status, report = send(built, capsys)
        assert (status, report["digest"], report["sent"], report["retried"]) == (0, 2, 2, 0)
        assert handler.attempts == 5
    assert [len(m) for m in linked(handler, OK)] == [8, 1] and linked(handler, DEFER) == [
        linked(handler, OK)[1] + linked(handler, OK)[0]
    ]
    with Store(built.parent / "state" / "mirror.db") as store:
        states = store.execute(
            "SELECT digest_id, subscriber_id, state, deferrals FROM digest_sends"
            " ORDER BY digest_id, subscriber_id"
        )
        ok, defer = (row["id"] for row in store.subscribers())
        assert [tuple(row) for row in states.fetchall()] == [
            (1, ok, "sent", 0), (1, defer, "failed", 1), (2, ok, "sent", 0), (2, defer, "sent", 0),
        ]  # fmt: skip


def test_without_a_new_digest_only_the_deferred_are_tried_again(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """sync before digest.min_interval_h has passed (new_digest=False): the deferred
    send goes; the new articles wait for the next digest."""
    handler = Recorder(defer={DEFER: 1})
    with smtp_server(handler) as server:
        with_smtp(built, server.port)
        digest_lines(built, "retries = 0\n")
        subscribe(built, (OK, "any"), (DEFER, "any"))
        welcomed(built)
        capsys.readouterr()
        assert send(built, capsys)[1]["deferred"] == 1
        add_articles(built, 2)
        assert run(["-c", str(built), "build"]) == 0
        config = load_config(built)
        with Store(config.state.path) as store:
            report = asyncio.run(
                send_digest(config, store, now=datetime.now(UTC), new_digest=False)
            )
            assert store.open_deferrals() == []
        assert (report.sent, report.retried, report.digest) == (1, 1, None)
        assert report.summary() == (
            "digest: no new digest: 1 sent, 0 skipped, 0 failed; 1 deferred earlier retried"
        )
    assert [len(m) for m in linked(handler, DEFER)] == [8] and len(linked(handler, OK)) == 1
