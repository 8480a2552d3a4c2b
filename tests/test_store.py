from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mirror.errors import StoreError, StoreLockedError
from mirror.store import SCHEMA_VERSION, Revision, RunLock, Store, StoredImage

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def revision(body: str = "<p>One.</p>") -> Revision:
    return Revision(
        content_hash=f"hash-{body}",
        title="Title",
        authors=("A. Writer",),
        published_at=NOW,
        updated_at=None,
        lead="Lead",
        language="en",
        canonical_url="https://news.example.org/a",
        body_html=body,
        images=("https://news.example.org/i.jpg",),
    )


def test_new_store_is_migrated_and_in_wal_mode(tmp_path: Path) -> None:
    with Store(tmp_path / "s" / "m.db") as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_old_store_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    from mirror.store import MIGRATIONS

    path = tmp_path / "m.db"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    db.execute("INSERT INTO articles (url, first_seen_at) VALUES ('https://n.org/a', '2026-01-01')")
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.find_article("https://n.org/a") is not None
        assert store.execute("SELECT COUNT(*) FROM edition_files").fetchone()[0] == 0


def test_store_from_a_newer_mirror_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this mirror"):
        Store(path)


def test_revisions_new_unchanged_changed(tmp_path: Path) -> None:
    with Store(tmp_path / "m.db") as store:
        row = store.add_article(
            "https://news.example.org/a", guid="g1", feed_url=None, published_at=NOW, at=NOW
        )
        assert (
            store.save_revision(row.id, revision(), etag='"1"', last_modified=None, at=NOW) == "new"
        )
        assert (
            store.save_revision(row.id, revision(), etag='"2"', last_modified=None, at=NOW)
            == "unchanged"
        )
        changed = revision("<p>Two.</p>")
        assert (
            store.save_revision(row.id, changed, etag='"3"', last_modified=None, at=NOW)
            == "changed"
        )
        assert store.revision(row.id) == changed
        assert store.revision(row.id, 1) == revision()
        found = store.find_article("https://other.example.org/x", guid="g1")
        assert found is not None and found.revision == 2 and found.etag == '"3"'


def test_failure_keeps_an_article_that_was_fine(tmp_path: Path) -> None:
    with Store(tmp_path / "m.db") as store:
        row = store.add_article(
            "https://n.org/a", guid=None, feed_url=None, published_at=None, at=NOW
        )
        store.save_article_error(row.id, "HTTP 500", NOW)
        assert store.find_article("https://n.org/a").state == "failed"  # type: ignore[union-attr]
        store.save_revision(row.id, revision(), etag=None, last_modified=None, at=NOW)
        store.save_article_error(row.id, "HTTP 500", NOW)
        assert store.find_article("https://n.org/a").state == "ok"  # type: ignore[union-attr]
        store.save_gone(row.id, 410, NOW)
        assert store.find_article("https://n.org/a").state == "gone"  # type: ignore[union-attr]


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    with Store(tmp_path / "m.db") as store:
        with pytest.raises(RuntimeError), store.transaction() as db:
            db.execute("INSERT INTO meta (key, value) VALUES ('a', 'b')")
            raise RuntimeError("boom")
        assert store.execute("SELECT COUNT(*) FROM meta").fetchone()[0] == 0


def test_a_failed_write_is_a_store_error_and_leaves_nothing_half_done(tmp_path: Path) -> None:
    now = datetime(2026, 11, 25, tzinfo=UTC)
    with Store(tmp_path / "m.db") as store:
        store.add_subscriber("first@example.org", "en", now)
        # as a full disk would: the second insert of one transaction fails
        store.execute(
            "CREATE TRIGGER full AFTER INSERT ON subscribers WHEN NEW.email LIKE 'b%'"
            " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
        full = pytest.raises(StoreError, match="could not be written: database or disk is full")
        with full, store.transaction():
            store.add_subscriber("a@example.org", "en", now)
            store.add_subscriber("b@example.org", "en", now)
        assert [row["email"] for row in store.subscribers()] == ["first@example.org"]
        store.add_subscriber("c@example.org", "en", now)  # the store still works
        assert len(store.subscribers()) == 2


def test_images_are_kept_once_per_content_hash(tmp_path: Path) -> None:
    image = StoredImage("ab" * 32, "image/jpeg", 10, 5, 3)
    with Store(tmp_path / "m.db") as store:
        store.save_image("https://n.org/1.jpg", image, b"abc", NOW)
        store.save_image("https://n.org/2.jpg", image, b"abc", NOW)
        assert store.count_images() == 1
        assert store.image_for_url("https://n.org/2.jpg") == image
        assert store.image_data(image.sha256) == b"abc"


def test_second_run_lock_is_refused_and_released_on_exit(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with RunLock(path), pytest.raises(StoreLockedError, match="another mirror run"):
        RunLock(path).__enter__()
    with RunLock(path):
        pass


def test_lock_is_released_when_the_holder_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    code = (
        "import sys, time; from pathlib import Path; from mirror.store import RunLock\n"
        f"lock = RunLock(Path({str(path)!r})).__enter__()\n"
        "print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLockedError, match="pid"):
            RunLock(path).__enter__()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(path):
        pass


def test_backup_refuses_to_overwrite_the_store(tmp_path: Path) -> None:
    with Store(tmp_path / "m.db") as store, pytest.raises(StoreError, match="the store itself"):
        store.backup(tmp_path)


def test_backup_is_consistent_while_writes_go_on(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    Store(path).close()
    stop = threading.Event()
    written = []

    def writer() -> None:
        with Store(path) as other:
            while not stop.is_set():
                n = len(written)
                url = f"https://n.org/{n}"
                other.add_article(url, guid=None, feed_url=None, published_at=None, at=NOW)
                written.append(n)

    thread = threading.Thread(target=writer)
    thread.start()
    dest = tmp_path / "backup"
    dest.mkdir()
    try:
        while len(written) < 50:
            pass
        with Store(path) as store:
            store.backup(dest)
    finally:
        stop.set()
        thread.join()
    copy = sqlite3.connect(dest / "m.db")
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    copied = copy.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
    assert 50 <= copied <= len(written)


def test_a_claimed_canonical_url_gives_way_to_the_articles_own() -> None:
    from dataclasses import replace

    from mirror.store import EditionArticle, link_map, with_own_canonicals

    def article(number: int, canonical: str) -> EditionArticle:
        url = f"https://news.example.org/{number}"
        claimed = replace(revision(), canonical_url=canonical)
        return EditionArticle(number, url, f"articles/{number}.html", 1, False, claimed)

    given = [
        article(3, "https://news.example.org/shared"),  # claims what 2 claimed first
        article(1, "https://news.example.org/1?utm_source=rss"),  # no other article holds it: kept
        article(2, "https://news.example.org/shared"),
        article(4, "https://news.example.org/1"),  # another article's fetched URL
    ]
    own = with_own_canonicals(given)
    assert [a.id for a in own] == [3, 1, 2, 4]  # order kept
    assert [a.revision.canonical_url for a in own] == [
        "https://news.example.org/3",
        "https://news.example.org/1?utm_source=rss",
        "https://news.example.org/shared",
        "https://news.example.org/4",
    ]
    assert link_map(own)["https://news.example.org/1"] == "articles/1.html"


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_store_lock_and_backup_are_private_whatever_the_umask(
    tmp_path: Path, umask_022: None
) -> None:
    path = tmp_path / "state" / "m.db"
    with RunLock(path), Store(path) as store:
        store.add_subscriber("reader@example.org", "en", NOW)
        for name in ("m.db", "m.db-wal", "m.db-shm", "m.db.lock"):
            assert mode(path.parent / name) == 0o600, name
        store.backup(tmp_path / "backup.db")
        (tmp_path / "folder").mkdir()
        store.backup(tmp_path / "folder")
    assert mode(path.parent) == 0o700
    assert mode(tmp_path / "backup.db") == 0o600
    assert mode(tmp_path / "folder" / "m.db") == 0o600


def test_a_store_made_readable_by_others_is_tightened_when_opened(
    tmp_path: Path, umask_022: None
) -> None:
    path = tmp_path / "m.db"
    Store(path).close()
    for suffix in ("", "-wal", "-shm", ".lock"):
        extra = path.with_name(path.name + suffix)
        extra.touch()
        extra.chmod(0o644)
    with RunLock(path), Store(path):
        for suffix in ("", "-wal", "-shm", ".lock"):
            assert mode(path.with_name(path.name + suffix)) == 0o600, suffix


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "mirror.db"
    path.write_bytes(b"not a database at all " * 100)
    with pytest.raises(StoreError, match="not a database"):
        Store(path)
