"""The store: one SQLite file (WAL) holding articles, revisions, images, validators and
the later stages' state, plus the run lock beside it.

Every write that belongs together happens in one transaction, so a run killed at any
instant leaves the store as it was before or after that write, never between.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from mirror.errors import StoreError, StoreLockedError

# Each entry migrates the schema from version i to i + 1; never edit a released one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE feeds (
        url TEXT PRIMARY KEY,
        etag TEXT, last_modified TEXT,
        checked_at TEXT, changed_at TEXT, last_error TEXT
    );
    CREATE TABLE articles (
        id INTEGER PRIMARY KEY,
        url TEXT NOT NULL UNIQUE,
        guid TEXT,
        feed_url TEXT,
        canonical_url TEXT,
        first_seen_at TEXT NOT NULL,
        listed_published_at TEXT,
        etag TEXT, last_modified TEXT, checked_at TEXT,
        state TEXT NOT NULL DEFAULT 'pending',  -- pending | ok | gone | failed
        gone_status INTEGER,
        hidden INTEGER NOT NULL DEFAULT 0,
        revision INTEGER NOT NULL DEFAULT 0,
        path TEXT UNIQUE,  -- its edition path, assigned once and kept forever
        last_error TEXT
    );
    CREATE INDEX articles_guid ON articles (guid);
    CREATE TABLE revisions (
        article_id INTEGER NOT NULL REFERENCES articles (id),
        revision INTEGER NOT NULL,
        fetched_at TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        title TEXT NOT NULL,
        authors TEXT NOT NULL,  -- JSON list
        published_at TEXT, updated_at TEXT,
        lead TEXT NOT NULL, language TEXT NOT NULL, canonical_url TEXT NOT NULL,
        body_html TEXT NOT NULL,
        images TEXT NOT NULL,  -- JSON list of image URLs in body order
        PRIMARY KEY (article_id, revision)
    );
    CREATE TABLE images (
        sha256 TEXT PRIMARY KEY,
        mime TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
        size INTEGER NOT NULL, data BLOB NOT NULL
    );
    CREATE TABLE image_urls (
        url TEXT PRIMARY KEY,
        sha256 TEXT REFERENCES images (sha256),
        etag TEXT, last_modified TEXT, checked_at TEXT, last_error TEXT
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY, command TEXT NOT NULL,
        started_at TEXT NOT NULL, finished_at TEXT, exit_status INTEGER, summary TEXT
    );
    CREATE TABLE editions (
        version INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL, expires_at TEXT NOT NULL, manifest_sha256 TEXT NOT NULL
    );
    CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, lang TEXT NOT NULL,
        added_at TEXT NOT NULL, unsubscribed_at TEXT
    );
    CREATE TABLE digests (
        id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, manifest_version INTEGER
    );
    CREATE TABLE digest_sends (
        digest_id INTEGER NOT NULL REFERENCES digests (id),
        subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
        message_id TEXT NOT NULL, state TEXT NOT NULL,
        attempted_at TEXT, done_at TEXT, error TEXT,
        PRIMARY KEY (digest_id, subscriber_id)
    );
    """,
    """
    CREATE TABLE edition_files (
        path TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL, size INTEGER NOT NULL,
        render_key TEXT  -- what the file was made from; same key, same bytes
    );
    CREATE TABLE image_renditions (
        sha256 TEXT NOT NULL, max_width INTEGER NOT NULL, quality INTEGER NOT NULL,
        mime TEXT NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (sha256, max_width, quality)
    );
    ALTER TABLE editions ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE editions ADD COLUMN files INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE articles ADD COLUMN hidden_at TEXT;
    """,
    """
    ALTER TABLE articles ADD COLUMN first_version INTEGER;  -- the edition that first had it
    ALTER TABLE articles ADD COLUMN published_revision INTEGER;  -- its revision in the last one
    ALTER TABLE articles ADD COLUMN revised_version INTEGER;  -- the edition with that revision
    ALTER TABLE subscribers ADD COLUMN since_version INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE digests ADD COLUMN finished_at TEXT;
    ALTER TABLE digests ADD COLUMN manifest_sha256 TEXT;
    CREATE INDEX articles_first_version ON articles (first_version);
    CREATE INDEX digest_sends_subscriber ON digest_sends (subscriber_id, state);
    """,
    """
    CREATE TABLE mailin_messages (
        message_key TEXT PRIMARY KEY,  -- "mid:<HMAC of the Message-ID>", or "sha256:<hex>"
        sha256 TEXT NOT NULL UNIQUE,  -- of the raw bytes: a message is handled once
        state TEXT NOT NULL,  -- replying (reply being sent) | done
        outcome TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
        reply_message_id TEXT,  -- derived from the message: a repeat folds into the first
        handled_at TEXT NOT NULL
    );
    CREATE TABLE mailin_senders (  -- per-sender reply counts; keyed hashes, never addresses
        sender_hash TEXT PRIMARY KEY, window_start TEXT NOT NULL, replies INTEGER NOT NULL
    );
    CREATE INDEX mailin_senders_window ON mailin_senders (window_start);
    CREATE TABLE mailin_hours (hour TEXT PRIMARY KEY, replies INTEGER NOT NULL);
    CREATE TABLE bounces (
        id INTEGER PRIMARY KEY,
        subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
        at TEXT NOT NULL, permanent INTEGER NOT NULL, status TEXT NOT NULL
    );
    CREATE INDEX bounces_subscriber ON bounces (subscriber_id, at);
    ALTER TABLE subscribers ADD COLUMN disabled_at TEXT;  -- no digests; kept, never deleted
    ALTER TABLE subscribers ADD COLUMN disabled_reason TEXT;
    """,
    """
    CREATE TABLE fleet (  -- mirrors spawned from pools, and configured ones whose state changed
        name TEXT PRIMARY KEY,
        origin TEXT NOT NULL,  -- config | pool:NAME
        type TEXT NOT NULL, bucket TEXT NOT NULL DEFAULT '', path TEXT NOT NULL DEFAULT '',
        public_url TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,  -- spare | live | blocked | retired
        created_at TEXT NOT NULL, state_changed_at TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE fleet_history (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, at TEXT NOT NULL,
        from_state TEXT, to_state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT ''
    );
    INSERT INTO fleet (name, origin, type, state, created_at, state_changed_at, reason)
        SELECT j.value, 'config', '', 'retired', '', '', 'retired before the fleet table'
        FROM meta, json_each(meta.value) AS j WHERE meta.key = 'retired_mirrors';
    DELETE FROM meta WHERE key = 'retired_mirrors';
    """,
    """
    CREATE TABLE welcomes_owed (  -- confirmed on the web: mail-in sends the welcome
        subscriber_id INTEGER PRIMARY KEY REFERENCES subscribers (id), owed_at TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE welcomes_due (  -- added by ops: the next digest is their welcome
        subscriber_id INTEGER PRIMARY KEY REFERENCES subscribers (id)
    );
    """,
    """
    ALTER TABLE digest_sends ADD COLUMN deferrals INTEGER NOT NULL DEFAULT 0;  -- runs deferred
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class OpenDeferral:
    """A digest's send deferred (a 4xx, or no connection) while the digest finished for
    everyone else: retried, as it was, at the next run."""

    digest_id: int
    subscriber_id: int
    deferrals: int  # runs it was deferred at so far


@dataclass(frozen=True)
class FleetRow:
    """A mirror's recorded state (times as ISO strings, as stored)."""

    name: str
    origin: str  # config | pool:NAME
    type: str
    public_url: str
    state: str
    created_at: str
    state_changed_at: str
    bucket: str = ""
    path: str = ""
    reason: str = ""


@dataclass(frozen=True)
class ArticleRow:
    id: int
    url: str
    guid: str | None
    state: str
    revision: int
    etag: str | None
    last_modified: str | None
    content_hash: str | None
    published_at: datetime | None


@dataclass(frozen=True)
class Revision:
    """One stored version of an article's extracted content."""

    content_hash: str
    title: str
    authors: tuple[str, ...]
    published_at: datetime | None
    updated_at: datetime | None
    lead: str
    language: str
    canonical_url: str
    body_html: str
    images: tuple[str, ...]


@dataclass(frozen=True)
class StoredImage:
    sha256: str
    mime: str
    width: int
    height: int
    size: int


@dataclass(frozen=True)
class EditionArticle:
    """An article as the build sees it: its current revision and edition path."""

    id: int
    url: str
    path: str | None
    revision_number: int
    gone: bool
    revision: Revision


def link_map(articles: Iterable[EditionArticle]) -> dict[str, str]:
    """Origin URL (fetched and canonical) -> edition path of each article that has one:
    how links to the outlet's own articles are rewritten (pages, digests)."""
    links: dict[str, str] = {}
    for article in articles:
        if article.path is not None:
            links[article.url] = article.path
            links.setdefault(article.revision.canonical_url, article.path)
    return links


def with_own_canonicals(articles: Iterable[EditionArticle]) -> list[EditionArticle]:
    """The articles, a canonical URL another article holds replaced by the article's own.

    A page may name any URL as canonical (`<link rel=canonical>`, og:url). It stands only
    when it is no other article's fetched URL and no article with a lower id claimed it
    first, so no two articles show, or are linked to as, the same original."""
    listed = list(articles)
    fetched = {article.url for article in listed}
    claimed: set[str] = set()
    own: dict[int, EditionArticle] = {}
    for article in sorted(listed, key=lambda a: a.id):
        canonical = article.revision.canonical_url
        if canonical != article.url and (canonical in fetched or canonical in claimed):
            article = replace(
                article, revision=replace(article.revision, canonical_url=article.url)
            )
        claimed.add(article.revision.canonical_url)
        own[article.id] = article
    return [own[article.id] for article in listed]


@dataclass(frozen=True)
class EditionFile:
    """A file of the local edition as last written."""

    path: str
    sha256: str
    size: int
    render_key: str | None


@dataclass(frozen=True)
class EditionRecord:
    """One signed edition version."""

    version: int
    created: datetime
    expires: datetime
    manifest_sha256: str
    epoch: int
    files: int


def sql_statements(script: str) -> list[str]:
    """A script's statements, split where SQLite says one is complete."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return [statement for statement in statements if statement.strip(" ;\n")]


def iso(moment: datetime | None) -> str | None:
    """UTC ISO 8601 text, the one time format in the store."""
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class Store:
    """The SQLite store. Use as a context manager; one connection, one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            make_private_folder(path.parent)
            make_private_file(path)  # SQLite gives its -wal and -shm files the store's mode
            for suffix in ("-wal", "-shm"):
                tighten(path.with_name(path.name + suffix))
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store {path}: {exc}") from exc
        try:  # SQLite reads the file first here: "file is not a database" comes now
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(f"cannot open the store {path}: {exc}") from exc
        except StoreError:
            self._db.close()
            raise

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all.

        Nested transactions join the outermost one, so callers can group writes.
        """
        if self._db.in_transaction:
            yield self._db
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:  # a full disk, a damaged file: nothing half-written
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StoreError(f"the store {self.path} could not be written: {exc}") from exc

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the store {self.path} has schema {version}, newer than this mirror "
                f"({SCHEMA_VERSION}); upgrade mirror"
            )
        for number in range(version, SCHEMA_VERSION):
            try:
                with self.transaction() as db:
                    for statement in sql_statements(MIGRATIONS[number]):
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {number + 1}")
            except sqlite3.Error as exc:
                raise StoreError(f"migrating {self.path} to schema {number + 1}: {exc}") from exc

    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)

    # feeds

    def feed_validators(self, url: str) -> tuple[str | None, str | None]:
        row = self._db.execute(
            "SELECT etag, last_modified FROM feeds WHERE url = ?", (url,)
        ).fetchone()
        return (row["etag"], row["last_modified"]) if row else (None, None)

    def save_feed(
        self, url: str, *, etag: str | None, last_modified: str | None, at: datetime, changed: bool
    ) -> None:
        """Record a successful feed check (changed: a 200 answer, not a 304)."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO feeds (url, etag, last_modified, checked_at, changed_at)
                   VALUES (:url, :etag, :lm, :at, :at)
                   ON CONFLICT (url) DO UPDATE SET etag = :etag, last_modified = :lm,
                   checked_at = :at, last_error = NULL,
                   changed_at = CASE WHEN :changed THEN :at ELSE changed_at END""",
                {"url": url, "etag": etag, "lm": last_modified, "at": iso(at), "changed": changed},
            )

    def save_feed_error(self, url: str, reason: str, at: datetime) -> None:
        with self.transaction() as db:
            db.execute(
                """INSERT INTO feeds (url, checked_at, last_error) VALUES (?, ?, ?)
                   ON CONFLICT (url) DO UPDATE SET checked_at = excluded.checked_at,
                   last_error = excluded.last_error""",
                (url, iso(at), reason),
            )

    # articles

    def find_article(self, url: str, guid: str | None = None) -> ArticleRow | None:
        """The article known by this URL, else by this GUID."""
        row = self._db.execute(ARTICLE_SELECT + " WHERE a.url = ?", (url,)).fetchone()
        if row is None and guid:
            row = self._db.execute(ARTICLE_SELECT + " WHERE a.guid = ?", (guid,)).fetchone()
        return _article_row(row) if row else None

    def add_article(
        self,
        url: str,
        *,
        guid: str | None,
        feed_url: str | None,
        published_at: datetime | None,
        at: datetime,
    ) -> ArticleRow:
        with self.transaction() as db:
            db.execute(
                """INSERT INTO articles (url, guid, feed_url, first_seen_at, listed_published_at)
                   VALUES (?, ?, ?, ?, ?)""",
                (url, guid, feed_url, iso(at), iso(published_at)),
            )
        found = self.find_article(url)
        assert found is not None
        return found

    def articles_to_revalidate(self, since: datetime) -> list[ArticleRow]:
        """Stored articles published (or first seen) at or after `since`, not gone."""
        rows = self._db.execute(
            ARTICLE_SELECT + " WHERE a.state IN ('ok', 'failed', 'pending')"
            " AND COALESCE(r.published_at, a.listed_published_at, a.first_seen_at) >= ?",
            (iso(since),),
        ).fetchall()
        return [_article_row(row) for row in rows]

    def articles_in_state(self, states: tuple[str, ...]) -> list[ArticleRow]:
        marks = ", ".join("?" for _ in states)
        rows = self._db.execute(ARTICLE_SELECT + f" WHERE a.state IN ({marks})", states)
        return [_article_row(row) for row in rows.fetchall()]

    def save_revision(
        self,
        article_id: int,
        revision: Revision,
        *,
        etag: str | None,
        last_modified: str | None,
        at: datetime,
    ) -> str:
        """Store freshly extracted content; returns "new", "changed" or "unchanged"."""
        with self.transaction() as db:
            current = db.execute(ARTICLE_SELECT + " WHERE a.id = ?", (article_id,)).fetchone()
            outcome = _revision_outcome(current["revision"], current["content_hash"], revision)
            number = current["revision"] + (0 if outcome == "unchanged" else 1)
            if outcome != "unchanged":
                db.execute(REVISION_INSERT, _revision_params(article_id, number, revision, at))
            db.execute(
                """UPDATE articles SET state = 'ok', revision = ?, etag = ?, last_modified = ?,
                   checked_at = ?, canonical_url = ?, gone_status = NULL, last_error = NULL
                   WHERE id = ?""",
                (number, etag, last_modified, iso(at), revision.canonical_url, article_id),
            )
        return outcome

    def save_not_modified(self, article_id: int, at: datetime) -> None:
        with self.transaction() as db:
            db.execute("UPDATE articles SET checked_at = ? WHERE id = ?", (iso(at), article_id))

    def save_gone(self, article_id: int, status: int, at: datetime) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE articles SET state = 'gone', gone_status = ?, checked_at = ? WHERE id = ?",
                (status, iso(at), article_id),
            )

    def save_article_error(self, article_id: int, reason: str, at: datetime) -> None:
        """A failed fetch; an article that was fine before keeps its state and content."""
        with self.transaction() as db:
            db.execute(
                """UPDATE articles SET last_error = ?, checked_at = ?,
                   state = CASE WHEN state = 'pending' THEN 'failed' ELSE state END
                   WHERE id = ?""",
                (reason, iso(at), article_id),
            )

    def revision(self, article_id: int, number: int | None = None) -> Revision | None:
        """One revision of an article (default: its current one)."""
        row = self._db.execute(
            """SELECT r.* FROM revisions r JOIN articles a ON a.id = r.article_id
               WHERE r.article_id = ? AND r.revision = COALESCE(?, a.revision)""",
            (article_id, number),
        ).fetchone()
        return _revision_from_row(row) if row else None

    def count_articles(self) -> dict[str, int]:
        rows = self._db.execute("SELECT state, COUNT(*) FROM articles GROUP BY state").fetchall()
        return {row[0]: row[1] for row in rows}

    # images

    def image_for_url(self, url: str) -> StoredImage | None:
        row = self._db.execute(
            """SELECT i.sha256, i.mime, i.width, i.height, i.size FROM image_urls u
               JOIN images i ON i.sha256 = u.sha256 WHERE u.url = ?""",
            (url,),
        ).fetchone()
        return StoredImage(**dict(row)) if row else None

    def save_image(self, url: str, image: StoredImage, data: bytes, at: datetime) -> None:
        """Keep an image once per content hash, and remember which URL gave it."""
        with self.transaction() as db:
            db.execute(
                """INSERT OR IGNORE INTO images (sha256, mime, width, height, size, data)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                (image.sha256, image.mime, image.width, image.height, image.size, data),
            )
            db.execute(
                """INSERT INTO image_urls (url, sha256, checked_at) VALUES (?, ?, ?)
                   ON CONFLICT (url) DO UPDATE SET sha256 = excluded.sha256,
                   checked_at = excluded.checked_at, last_error = NULL""",
                (url, image.sha256, iso(at)),
            )

    def save_image_error(self, url: str, reason: str, at: datetime) -> None:
        with self.transaction() as db:
            db.execute(
                """INSERT INTO image_urls (url, checked_at, last_error) VALUES (?, ?, ?)
                   ON CONFLICT (url) DO UPDATE SET checked_at = excluded.checked_at,
                   last_error = excluded.last_error""",
                (url, iso(at), reason),
            )

    def image_data(self, sha256: str) -> bytes | None:
        row = self._db.execute("SELECT data FROM images WHERE sha256 = ?", (sha256,)).fetchone()
        return bytes(row[0]) if row else None

    def count_images(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM images").fetchone()[0])

    # the edition

    def edition_articles(self, include_gone: bool) -> list[EditionArticle]:
        """Articles the edition shows: fetched, not hidden, gone ones only if kept."""
        rows = self._db.execute(
            """SELECT a.id, a.url, a.path, a.state, r.*
               FROM articles a JOIN revisions r
               ON r.article_id = a.id AND r.revision = a.revision
               WHERE a.hidden = 0 AND (a.state = 'ok' OR (? AND a.state = 'gone'))
               ORDER BY """  # noqa: S608 -- NEWEST_FIRST is a constant
            + NEWEST_FIRST,
            (include_gone,),
        ).fetchall()
        return [_edition_article(row) for row in rows]

    def article_paths(self) -> dict[str, str]:
        """Every assigned edition path (hidden articles too: a path is never reused)."""
        rows = self._db.execute("SELECT url, path FROM articles WHERE path IS NOT NULL")
        return {row["url"]: row["path"] for row in rows.fetchall()}

    def set_article_path(self, article_id: int, path: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE articles SET path = ? WHERE id = ? AND path IS NULL", (path, article_id)
            )

    def hide_article(self, url_or_id: str, at: datetime) -> ArticleRow | None:
        """Take an article out of the edition, by id, URL or edition path."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT id FROM articles WHERE CAST(id AS TEXT) = ? OR url = ? OR path = ?",
                (url_or_id, url_or_id, url_or_id),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE articles SET hidden = 1, hidden_at = ? WHERE id = ?", (iso(at), row["id"])
            )
        return self.find_article_by_id(row["id"])

    def list_articles(self) -> list[dict[str, Any]]:
        """Every article, newest first, for `mirror articles list`."""
        rows = self._db.execute(
            """SELECT a.id, a.url, a.state, a.hidden, a.path, a.revision, r.title,
               COALESCE(r.published_at, a.listed_published_at) AS published
               FROM articles a LEFT JOIN revisions r
               ON r.article_id = a.id AND r.revision = a.revision
               ORDER BY """  # noqa: S608 -- NEWEST_FIRST is a constant
            + NEWEST_FIRST
        ).fetchall()
        return [dict(row) | {"hidden": bool(row["hidden"])} for row in rows]

    def find_article_by_id(self, article_id: int) -> ArticleRow | None:
        row = self._db.execute(ARTICLE_SELECT + " WHERE a.id = ?", (article_id,)).fetchone()
        return _article_row(row) if row else None

    def edition_files(self) -> dict[str, EditionFile]:
        rows = self._db.execute("SELECT path, sha256, size, render_key FROM edition_files")
        return {row["path"]: EditionFile(**dict(row)) for row in rows.fetchall()}

    def save_edition_files(self, files: list[EditionFile], removed: list[str]) -> None:
        with self.transaction() as db:
            db.executemany(
                """INSERT INTO edition_files (path, sha256, size, render_key)
                   VALUES (:path, :sha256, :size, :render_key)
                   ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256,
                   size = excluded.size, render_key = excluded.render_key""",
                [vars(file) for file in files],
            )
            db.executemany("DELETE FROM edition_files WHERE path = ?", [(p,) for p in removed])

    def rendition(self, sha256: str, max_width: int, quality: int) -> tuple[str, bytes] | None:
        row = self._db.execute(
            """SELECT mime, data FROM image_renditions
               WHERE sha256 = ? AND max_width = ? AND quality = ?""",
            (sha256, max_width, quality),
        ).fetchone()
        return (row["mime"], bytes(row["data"])) if row else None

    def save_rendition(
        self, sha256: str, max_width: int, quality: int, mime: str, data: bytes
    ) -> None:
        with self.transaction() as db:
            db.execute(
                """INSERT OR REPLACE INTO image_renditions
                   (sha256, max_width, quality, mime, data) VALUES (?, ?, ?, ?, ?)""",
                (sha256, max_width, quality, mime, data),
            )

    def latest_edition(self) -> EditionRecord | None:
        row = self._db.execute("SELECT * FROM editions ORDER BY version DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return EditionRecord(
            version=row["version"],
            created=datetime.fromisoformat(row["created_at"]),
            expires=datetime.fromisoformat(row["expires_at"]),
            manifest_sha256=row["manifest_sha256"],
            epoch=row["epoch"],
            files=row["files"],
        )

    def save_edition(self, record: EditionRecord) -> None:
        with self.transaction() as db:
            db.execute(
                """INSERT INTO editions
                   (version, created_at, expires_at, manifest_sha256, epoch, files)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                (
                    record.version,
                    iso(record.created),
                    iso(record.expires),
                    record.manifest_sha256,
                    record.epoch,
                    record.files,
                ),
            )

    def mark_published(self, version: int, articles: list[tuple[int, int]]) -> None:
        """Record which article revisions edition `version` carries (for digests)."""
        with self.transaction() as db:
            db.executemany(
                """UPDATE articles SET first_version = COALESCE(first_version, :version),
                   revised_version = CASE WHEN published_revision IS NULL
                       OR published_revision != :revision THEN :version
                       ELSE revised_version END,
                   published_revision = :revision
                   WHERE id = :id""",
                [{"version": version, "id": i, "revision": r} for i, r in articles],
            )

    # subscribers and digests

    def add_subscriber(
        self, email: str, lang: str, at: datetime, *, welcome: bool = False
    ) -> tuple[int, bool]:
        """(id, created): a new subscriber, or one who had left coming back. `welcome`
        (added by ops): a new or returning one is owed the digest's welcome; without it
        (confirmed by mail or on the web, which send their own welcome) none is owed."""
        with self.transaction() as db:
            row = db.execute(
                """SELECT id, unsubscribed_at IS NULL AND disabled_at IS NULL AS active
                   FROM subscribers WHERE email = ?""",
                (email,),
            ).fetchone()
            since = self._latest_version(db)
            if row:
                db.execute(
                    """UPDATE subscribers SET lang = ?, unsubscribed_at = NULL,
                       disabled_at = NULL, disabled_reason = NULL,
                       since_version = CASE WHEN unsubscribed_at IS NULL
                       AND disabled_at IS NULL THEN since_version ELSE ? END WHERE id = ?""",
                    (lang, since, row["id"]),
                )
                self._owe_welcome(db, int(row["id"]), welcome, back=not row["active"])
                return int(row["id"]), False
            cursor = db.execute(
                """INSERT INTO subscribers (email, lang, added_at, since_version)
                   VALUES (?, ?, ?, ?)""",
                (email, lang, iso(at), since),
            )
            self._owe_welcome(db, int(cursor.lastrowid or 0), welcome, back=True)
            return int(cursor.lastrowid or 0), True

    @staticmethod
    def _owe_welcome(db: sqlite3.Connection, subscriber_id: int, welcome: bool, back: bool) -> None:
        """Added by ops (`welcome`) and new or back: the next digest is a welcome. Not by
        ops (confirmed by mail or on the web: mail-in welcomes them): none is owed."""
        if not welcome:
            db.execute("DELETE FROM welcomes_due WHERE subscriber_id = ?", (subscriber_id,))
        elif back:
            db.execute(
                "INSERT OR IGNORE INTO welcomes_due (subscriber_id) VALUES (?)", (subscriber_id,)
            )

    @staticmethod
    def _latest_version(db: sqlite3.Connection) -> int:
        """Where a new subscriber starts: what the last digest covered (they join the
        regular cycle and get the next digest in full)."""
        row = db.execute(
            "SELECT MAX(manifest_version) FROM digests WHERE finished_at IS NOT NULL"
        ).fetchone()
        return int(row[0] or 0)

    def unsubscribe(self, subscriber_id: int, at: datetime) -> bool:
        """Record an unsubscribe (kept, with its time); False if unknown or already out."""
        with self.transaction() as db:
            cursor = db.execute(
                """UPDATE subscribers SET unsubscribed_at = ?
                   WHERE id = ? AND unsubscribed_at IS NULL""",
                (iso(at), subscriber_id),
            )
        return cursor.rowcount == 1

    def is_subscribed(self, subscriber_id: int) -> bool:
        """Subscribed and not disabled: due digests."""
        row = self._db.execute(
            """SELECT 1 FROM subscribers
               WHERE id = ? AND unsubscribed_at IS NULL AND disabled_at IS NULL""",
            (subscriber_id,),
        ).fetchone()
        return row is not None

    def subscriber_id(self, email: str) -> int | None:
        row = self._db.execute("SELECT id FROM subscribers WHERE email = ?", (email,)).fetchone()
        return int(row["id"]) if row else None

    def subscribers(
        self, *, active_only: bool = True, disabled: bool = True
    ) -> list[dict[str, Any]]:
        """The subscribers (with those who left unless `active_only`; with the disabled,
        who get no digest, unless `disabled` is False)."""
        rows = self._db.execute(
            """SELECT id, email, lang, added_at, unsubscribed_at, since_version,
               disabled_at, disabled_reason,
               EXISTS (SELECT 1 FROM welcomes_due w WHERE w.subscriber_id = id) AS welcome_due
               FROM subscribers WHERE (? = 0 OR unsubscribed_at IS NULL)
               AND (? = 1 OR disabled_at IS NULL) ORDER BY id""",
            (1 if active_only else 0, 1 if disabled else 0),
        ).fetchall()
        return [dict(row) for row in rows]

    def subscriber(self, subscriber_id: int) -> dict[str, Any] | None:
        row = self._db.execute(
            """SELECT id, email, lang, added_at, unsubscribed_at, since_version,
               disabled_at, disabled_reason FROM subscribers WHERE id = ?""",
            (subscriber_id,),
        ).fetchone()
        return dict(row) if row else None

    # bounces

    def record_bounce(
        self,
        subscriber_id: int,
        *,
        permanent: bool,
        status: str,
        at: datetime,
        window_start: datetime,
        hard_limit: int,
    ) -> bool:
        """Record one bounce; True when it disables the subscriber (`hard_limit` permanent
        bounces since `window_start`). Unknown subscribers are not recorded (False)."""
        with self.transaction() as db:
            if self.subscriber(subscriber_id) is None:
                return False
            db.execute(
                "INSERT INTO bounces (subscriber_id, at, permanent, status) VALUES (?, ?, ?, ?)",
                (subscriber_id, iso(at), 1 if permanent else 0, status[:32]),
            )
            hard = self._permanent_bounces(db, subscriber_id, window_start)
            if not permanent or hard < hard_limit:
                return False
            cursor = db.execute(
                """UPDATE subscribers SET disabled_at = ?, disabled_reason = ?
                   WHERE id = ? AND disabled_at IS NULL""",
                (iso(at), f"{hard} permanent bounces (last: {status or 'unknown'})",
                 subscriber_id),
            )  # fmt: skip
            return cursor.rowcount == 1

    @staticmethod
    def _permanent_bounces(db: sqlite3.Connection, subscriber_id: int, since: datetime) -> int:
        row = db.execute(
            """SELECT COUNT(*) FROM bounces
               WHERE subscriber_id = ? AND permanent = 1 AND at >= ?""",
            (subscriber_id, iso(since)),
        ).fetchone()
        return int(row[0])

    def bounce_counts(self, since: datetime) -> dict[int, tuple[int, int]]:
        """Subscriber id -> (permanent, transient) bounces since `since`."""
        rows = self._db.execute(
            """SELECT subscriber_id, SUM(permanent), SUM(1 - permanent) FROM bounces
               WHERE at >= ? GROUP BY subscriber_id""",
            (iso(since),),
        ).fetchall()
        return {int(row[0]): (int(row[1]), int(row[2])) for row in rows}

    # mail in

    def inbound_state(self, message_key: str, sha256: str) -> dict[str, Any] | None:
        """The record of an inbound message seen before (same Message-ID or same bytes)."""
        row = self._db.execute(
            "SELECT * FROM mailin_messages WHERE message_key = ? OR sha256 = ? LIMIT 1",
            (message_key, sha256),
        ).fetchone()
        return dict(row) if row else None

    def record_inbound(
        self,
        message_key: str,
        sha256: str,
        *,
        state: str,
        outcome: str,
        at: datetime,
        reason: str = "",
        reply_message_id: str | None = None,
    ) -> None:
        """Record what became of an inbound message: "replying" (before its reply is
        sent) or "done"."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO mailin_messages (message_key, sha256, state, outcome, reason,
                   reply_message_id, handled_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (message_key) DO UPDATE SET state = excluded.state,
                   outcome = excluded.outcome, reason = excluded.reason,
                   reply_message_id = COALESCE(excluded.reply_message_id, reply_message_id),
                   handled_at = excluded.handled_at""",
                (message_key, sha256, state, outcome, reason[:200], reply_message_id, iso(at)),
            )

    def forget_inbound(self, before: datetime) -> int:
        """Forget the messages finished before `before` (a "replying" one is kept: its
        reply is still owed); how many."""
        with self.transaction() as db:
            cursor = db.execute(
                "DELETE FROM mailin_messages WHERE state = 'done' AND handled_at < ?",
                (iso(before),),
            )
        return cursor.rowcount

    def take_reply(
        self,
        sender_hash: str,
        *,
        at: datetime,
        window_start: datetime,
        per_sender: int,
        hour: str,
        per_hour: int,
    ) -> str | None:
        """Count one reply to `sender_hash` unless a limit is reached: None when counted,
        else which limit ("sender" | "global"). Counts older than `window_start` are
        forgotten (the senders' rows deleted)."""
        with self.transaction() as db:
            db.execute("DELETE FROM mailin_senders WHERE window_start < ?", (iso(window_start),))
            db.execute("DELETE FROM mailin_hours WHERE hour < ?", (hour[:10],))
            row = db.execute(
                "SELECT replies FROM mailin_senders WHERE sender_hash = ?", (sender_hash,)
            ).fetchone()
            if row is not None and row["replies"] >= per_sender:
                return "sender"
            hourly = db.execute("SELECT replies FROM mailin_hours WHERE hour = ?", (hour,))
            found = hourly.fetchone()
            if found is not None and found["replies"] >= per_hour:
                return "global"
            db.execute(
                """INSERT INTO mailin_senders (sender_hash, window_start, replies)
                   VALUES (?, ?, 1) ON CONFLICT (sender_hash)
                   DO UPDATE SET replies = replies + 1""",
                (sender_hash, iso(at)),
            )
            db.execute(
                """INSERT INTO mailin_hours (hour, replies) VALUES (?, 1)
                   ON CONFLICT (hour) DO UPDATE SET replies = replies + 1""",
                (hour,),
            )
        return None

    def owe_welcome(self, subscriber_id: int, at: datetime) -> None:
        """Record that `subscriber_id` (confirmed on the web) is owed a welcome by mail."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO welcomes_owed (subscriber_id, owed_at) VALUES (?, ?)
                   ON CONFLICT (subscriber_id) DO NOTHING""",
                (subscriber_id, iso(at)),
            )

    def owed_welcomes(self, limit: int) -> list[tuple[int, str]]:
        """Up to `limit` (subscriber id, owed_at) of welcomes owed, oldest first."""
        rows = self._db.execute(
            "SELECT subscriber_id, owed_at FROM welcomes_owed ORDER BY owed_at LIMIT ?", (limit,)
        ).fetchall()
        return [(int(row[0]), str(row[1])) for row in rows]

    def welcome_done(self, subscriber_id: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM welcomes_owed WHERE subscriber_id = ?", (subscriber_id,))

    def sender_hashes(self) -> list[str]:
        """The keyed hashes of senders counted now (tests: no address is ever kept)."""
        rows = self._db.execute("SELECT sender_hash FROM mailin_senders").fetchall()
        return [row[0] for row in rows]

    def open_digest(self, at: datetime, version: int, manifest_sha256: str) -> tuple[int, bool]:
        """The unfinished digest to resume, else a new one: (id, resumed)."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT id FROM digests WHERE finished_at IS NULL ORDER BY id LIMIT 1"
            ).fetchone()
            if row:
                return int(row["id"]), True
            cursor = db.execute(
                """INSERT INTO digests (created_at, manifest_version, manifest_sha256)
                   VALUES (?, ?, ?)""",
                (iso(at), version, manifest_sha256),
            )
            return int(cursor.lastrowid or 0), False

    def last_unfinished_digest(self) -> int | None:
        row = self._db.execute(
            "SELECT id FROM digests WHERE finished_at IS NULL ORDER BY id LIMIT 1"
        ).fetchone()
        return int(row["id"]) if row else None

    def digest(self, digest_id: int) -> dict[str, Any]:
        row = self._db.execute("SELECT * FROM digests WHERE id = ?", (digest_id,)).fetchone()
        return dict(row)

    def last_digest(self) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT * FROM digests WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return dict(row) if row else None

    def finish_digest(self, digest_id: int, at: datetime) -> None:
        with self.transaction() as db:
            db.execute("UPDATE digests SET finished_at = ? WHERE id = ?", (iso(at), digest_id))

    def send_state(self, digest_id: int) -> dict[int, str]:
        rows = self._db.execute(
            "SELECT subscriber_id, state FROM digest_sends WHERE digest_id = ?", (digest_id,)
        ).fetchall()
        return {row["subscriber_id"]: row["state"] for row in rows}

    def record_send(
        self,
        digest_id: int,
        subscriber_id: int,
        state: str,
        *,
        message_id: str,
        at: datetime,
        error: str | None = None,
    ) -> None:
        """sent | failed | deferred | skipped (see mirror.digest.run). Sent or failed,
        the subscriber's welcome (if one was due) is done, in the same transaction."""
        deferred = state == "deferred"
        with self.transaction() as db:
            if state in ("sent", "failed"):
                db.execute("DELETE FROM welcomes_due WHERE subscriber_id = ?", (subscriber_id,))
            db.execute(
                """INSERT INTO digest_sends (digest_id, subscriber_id, message_id, state,
                   attempted_at, done_at, error, deferrals) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (digest_id, subscriber_id) DO UPDATE SET
                   state = excluded.state, attempted_at = excluded.attempted_at,
                   done_at = excluded.done_at, error = excluded.error,
                   deferrals = digest_sends.deferrals + excluded.deferrals""",
                (digest_id, subscriber_id, message_id, state, iso(at),
                 None if deferred else iso(at), error, int(deferred)),
            )  # fmt: skip

    def deferrals(self, digest_id: int, subscriber_id: int) -> int:
        """How many runs this send was deferred at (0: never, or not recorded yet)."""
        row = self._db.execute(
            "SELECT deferrals FROM digest_sends WHERE digest_id = ? AND subscriber_id = ?",
            (digest_id, subscriber_id),
        ).fetchone()
        return int(row[0]) if row else 0

    def open_deferrals(self) -> list[OpenDeferral]:
        """Sends deferred in digests otherwise finished: each stays open for its subscriber
        alone and is tried again at the next run (see mirror.digest.run)."""
        rows = self._db.execute(
            """SELECT s.digest_id, s.subscriber_id, s.deferrals FROM digest_sends s
               JOIN digests d ON d.id = s.digest_id
               WHERE s.state = 'deferred' AND d.finished_at IS NOT NULL
               ORDER BY s.digest_id, s.subscriber_id"""
        ).fetchall()
        return [OpenDeferral(int(r[0]), int(r[1]), int(r[2])) for r in rows]

    def last_sent_versions(self) -> dict[int, int]:
        """Subscriber id -> the manifest version of the last digest they got."""
        rows = self._db.execute(
            """SELECT s.subscriber_id, MAX(d.manifest_version) FROM digest_sends s
               JOIN digests d ON d.id = s.digest_id WHERE s.state = 'sent'
               GROUP BY s.subscriber_id"""
        ).fetchall()
        return {int(row[0]): int(row[1]) for row in rows}

    def last_sent_version(self, subscriber_id: int) -> int:
        """The manifest version of the last digest this subscriber got (0: none)."""
        row = self._db.execute(
            """SELECT MAX(d.manifest_version) FROM digest_sends s
               JOIN digests d ON d.id = s.digest_id
               WHERE s.subscriber_id = ? AND s.state = 'sent'""",
            (subscriber_id,),
        ).fetchone()
        return int(row[0] or 0)

    def digest_articles(self, after: int, upto: int, *, revisions: bool) -> list[EditionArticle]:
        """Articles that entered editions (after, upto], newest first as the index lists
        them (NEWEST_FIRST); with `revisions`, also those whose revision changed in that span."""
        rows = self._db.execute(
            """SELECT a.id, a.url, a.path, a.state, r.*
               FROM articles a JOIN revisions r
               ON r.article_id = a.id AND r.revision = a.revision
               WHERE a.hidden = 0 AND a.path IS NOT NULL AND (
                 (a.first_version > ? AND a.first_version <= ?)
                 OR (? AND a.revised_version > ? AND a.revised_version <= ?))
               ORDER BY """  # noqa: S608 -- NEWEST_FIRST is a constant
            + NEWEST_FIRST,
            (after, upto, revisions, after, upto),
        ).fetchall()
        return [_edition_article(row) for row in rows]

    # mirrors

    def retired_mirrors(self) -> frozenset[str]:
        rows = self._db.execute("SELECT name FROM fleet WHERE state = 'retired'").fetchall()
        return frozenset(row["name"] for row in rows)

    def fleet_rows(self) -> list[FleetRow]:
        """Every mirror the store knows a state of, oldest first."""
        rows = self._db.execute("SELECT * FROM fleet ORDER BY created_at, name").fetchall()
        return [FleetRow(**dict(row)) for row in rows]

    def add_fleet_mirror(self, row: FleetRow) -> None:
        """Record a new mirror (a name is never recorded twice: IntegrityError)."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO fleet (name, origin, type, bucket, path, public_url, state,
                   created_at, state_changed_at, reason)
                   VALUES (:name, :origin, :type, :bucket, :path, :public_url, :state,
                   :created_at, :state_changed_at, :reason)""",
                asdict(row),
            )
            db.execute(
                "INSERT INTO fleet_history (name, at, from_state, to_state, reason) "
                "VALUES (?, ?, NULL, ?, ?)",
                (row.name, row.created_at, row.state, row.reason),
            )

    def set_fleet_state(self, row: FleetRow, state: str, reason: str, at: datetime) -> None:
        """Move `row`'s mirror to `state` (recording a configured one the first time)."""
        when = iso(at)
        with self.transaction() as db:
            db.execute(
                """INSERT INTO fleet (name, origin, type, bucket, path, public_url, state,
                   created_at, state_changed_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET state = excluded.state,
                   state_changed_at = excluded.state_changed_at, reason = excluded.reason""",
                (row.name, row.origin, row.type, row.bucket, row.path, row.public_url,
                 state, row.created_at or when, when, reason),
            )  # fmt: skip
            db.execute(
                "INSERT INTO fleet_history (name, at, from_state, to_state, reason) "
                "VALUES (?, ?, ?, ?, ?)",
                (row.name, when, row.state, state, reason),
            )

    def fleet_history(self, name: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT at, from_state, to_state, reason FROM fleet_history WHERE name = ? ORDER BY id",
            (name,),
        ).fetchall()
        return [dict(row) for row in rows]

    # runs

    def start_run(self, command: str, at: datetime) -> int:
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (command, started_at) VALUES (?, ?)", (command, iso(at))
            )
        return int(cursor.lastrowid or 0)

    def finish_run(
        self, run_id: int, exit_status: int, summary: dict[str, Any], at: datetime
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, exit_status = ?, summary = ? WHERE id = ?",
                (iso(at), exit_status, json.dumps(summary, sort_keys=True), run_id),
            )

    def backup(self, dest: Path) -> None:
        """A consistent copy of the store at `dest`, safe while a run writes to it."""
        dest = dest / self.path.name if dest.is_dir() else dest
        if dest.resolve() == self.path.resolve():
            raise StoreError(f"{dest} is the store itself; pick another destination")
        temp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        try:
            temp.unlink(missing_ok=True)  # a leftover of a killed backup: made afresh, 0600
            make_private_file(temp)
            target = sqlite3.connect(temp)
            try:
                self._db.backup(target)
            finally:
                target.close()
            os.replace(temp, dest)
        except (OSError, sqlite3.Error) as exc:
            temp.unlink(missing_ok=True)
            why = exc.strerror.lower() if isinstance(exc, OSError) and exc.strerror else exc
            raise StoreError(f"backup to {dest} failed: {why}") from exc


PRIVATE_FILE_MODE = 0o600  # the store holds the subscribers: the owner only, whatever the umask
PRIVATE_FOLDER_MODE = 0o700


def make_private_folder(folder: Path) -> None:
    """Create `folder` (and missing parents) 0700; an existing folder keeps its mode, since
    it may be shared (the config's own folder, say): the files in it are 0600 anyway."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    for created in missing:
        created.chmod(PRIVATE_FOLDER_MODE)


def make_private_file(path: Path) -> None:
    """Create `path` empty and 0600 if missing; an existing one of ours loses any group or
    other access."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    try:
        info = os.fstat(fd)
        if info.st_mode & 0o077 and info.st_uid == os.geteuid():
            os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)


def tighten(path: Path) -> None:
    """An existing file of ours (a store made by an older mirror) loses any group or other
    access."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_mode & 0o077 and info.st_uid == os.geteuid():
        path.chmod(PRIVATE_FILE_MODE)


# The one order of articles readers see: the index, the feeds, the digest, `articles list`.
NEWEST_FIRST = "COALESCE(r.published_at, a.first_seen_at) DESC, a.id DESC"
ARTICLE_SELECT = """SELECT a.id, a.url, a.guid, a.state, a.revision, a.etag, a.last_modified,
    r.content_hash, COALESCE(r.published_at, a.listed_published_at) AS published_at
    FROM articles a LEFT JOIN revisions r ON r.article_id = a.id AND r.revision = a.revision"""
REVISION_INSERT = """INSERT INTO revisions (article_id, revision, fetched_at, content_hash, title,
    authors, published_at, updated_at, lead, language, canonical_url, body_html, images)
    VALUES (:article_id, :revision, :fetched_at, :content_hash, :title, :authors,
    :published_at, :updated_at, :lead, :language, :canonical_url, :body_html, :images)"""


def _article_row(row: sqlite3.Row) -> ArticleRow:
    values = dict(row)
    values["published_at"] = parse_iso(values["published_at"])
    return ArticleRow(**values)


def _revision_outcome(number: int, current_hash: str | None, revision: Revision) -> str:
    if number == 0:
        return "new"
    return "unchanged" if current_hash == revision.content_hash else "changed"


def _revision_params(
    article_id: int, number: int, revision: Revision, at: datetime
) -> dict[str, Any]:
    return {
        "article_id": article_id,
        "revision": number,
        "fetched_at": iso(at),
        "content_hash": revision.content_hash,
        "title": revision.title,
        "authors": json.dumps(list(revision.authors), ensure_ascii=False),
        "published_at": iso(revision.published_at),
        "updated_at": iso(revision.updated_at),
        "lead": revision.lead,
        "language": revision.language,
        "canonical_url": revision.canonical_url,
        "body_html": revision.body_html,
        "images": json.dumps(list(revision.images)),
    }


def _edition_article(row: sqlite3.Row) -> EditionArticle:
    """An article as the edition (or a digest) shows it, from a row joining its revision."""
    return EditionArticle(
        id=row["id"],
        url=row["url"],
        path=row["path"],
        revision_number=row["revision"],
        gone=row["state"] == "gone",
        revision=_revision_from_row(row),
    )


def _revision_from_row(row: sqlite3.Row) -> Revision:
    return Revision(
        content_hash=row["content_hash"],
        title=row["title"],
        authors=tuple(json.loads(row["authors"])),
        published_at=parse_iso(row["published_at"]),
        updated_at=parse_iso(row["updated_at"]),
        lead=row["lead"],
        language=row["language"],
        canonical_url=row["canonical_url"],
        body_html=row["body_html"],
        images=tuple(json.loads(row["images"])),
    )


class RunLock:
    """An exclusive, non-blocking lock beside the store: two runs never overlap.

    The kernel drops the lock when the process dies, so a killed run never leaves a
    stale lock behind.
    """

    def __init__(self, store_path: Path) -> None:
        self.path = store_path.with_name(store_path.name + ".lock")
        self._handle: IO[str] | None = None

    def __enter__(self) -> RunLock:
        make_private_folder(self.path.parent)
        make_private_file(self.path)
        handle = self.path.open("r+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StoreLockedError(
                f"another mirror run ({holder}) holds {self.path}; try again when it ends"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
