from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from mirror.cli import run
from mirror.digest import subscribers
from mirror.errors import SubscriberError
from mirror.store import Store

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WATCH = ("mail.ru", "yandex.ru")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Reader@Example.ORG", "reader@example.org"),
        ("  anna@пример.рф ", "anna@xn--e1afmkfd.xn--p1ai"),
        ("ivan@mail.ru", "ivan@mail.ru"),
    ],
)
def test_addresses_are_normalised(given: str, stored: str) -> None:
    assert subscribers.normalise_address(given) == stored


@pytest.mark.parametrize(
    "bad", ["", "plain", "a@", "@b.org", "a b@c.org", "a@b..org", "x" * 300 + "@b.org", "a@-b.org"]
)
def test_bad_addresses_are_refused(bad: str) -> None:
    with pytest.raises(SubscriberError):
        subscribers.normalise_address(bad)


def test_watched_providers() -> None:
    assert subscribers.watched("a@mail.ru", WATCH)
    assert subscribers.watched("a@sub.yandex.ru", WATCH)
    assert not subscribers.watched("a@notmail.ru", WATCH)


def test_add_remove_and_come_back(tmp_path: Path) -> None:
    with Store(tmp_path / "m.db") as store:
        first = subscribers.add(store, "a@example.org", "ru", at=NOW, watch=WATCH)
        assert first.created and not first.watched
        assert subscribers.add(store, "A@EXAMPLE.org", "en", at=NOW, watch=WATCH).created is False
        subscribers.remove(store, "a@example.org", at=NOW)
        assert store.subscribers() == []
        left = store.subscribers(active_only=False)[0]
        assert left["unsubscribed_at"] is not None  # recorded, not deleted
        back = subscribers.add(store, "a@example.org", "any", at=NOW, watch=WATCH)
        assert back.id == first.id and store.subscribers()[0]["lang"] == "any"
        with pytest.raises(SubscriberError):
            subscribers.remove(store, "nobody@example.org", at=NOW)


def test_import_reports_bad_rows_by_number_and_keeps_the_good(tmp_path: Path) -> None:
    data = "email,lang\na@example.org,ru\nnot-an-address\nb@mail.ru,en\nc@example.org,xx\n\n"
    with Store(tmp_path / "m.db") as store:
        report = subscribers.import_csv(store, data.encode(), at=NOW, watch=WATCH)
        assert (report.added, report.watched) == (2, 1)
        assert [bad["row"] for bad in report.bad] == [3, 5]
        assert all("not-an-address" not in bad["reason"] for bad in report.bad)
        assert len(store.subscribers()) == 2


def test_import_refuses_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    rows = "".join(f"r{i}@example.org\n" for i in range(50)).encode() + b"\xff\xfe broken"
    with Store(tmp_path / "m.db") as store:
        with pytest.raises(SubscriberError, match="not UTF-8"):
            subscribers.import_csv(store, rows, at=NOW, watch=WATCH)
        assert store.subscribers() == []


class Crash(Exception):
    """A failure nobody catches, in the middle of an import."""


@dataclass
class CrashAt:
    """Patched in as `Store.add_subscriber`: the real one, until call `number` raises
    `error` (after noting how many subscriber rows the store then holds)."""

    number: int
    error: BaseException
    calls: list[str] = field(default_factory=list)
    rows_at_crash: int | None = None

    def __call__(
        self, store: Store, email: str, lang: str, at: datetime, *, welcome: bool = False
    ) -> tuple[int, bool]:
        self.calls.append(email)
        if len(self.calls) == self.number:
            self.rows_at_crash = store.execute("SELECT COUNT(*) FROM subscribers").fetchone()[0]
            raise self.error
        return REAL_ADD_SUBSCRIBER(store, email, lang, at, welcome=welcome)


REAL_ADD_SUBSCRIBER = Store.add_subscriber


def test_import_is_all_or_nothing_when_it_crashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash at row 30, after rows went in and an existing subscriber was updated
    inside the import's transaction, leaves the list exactly as it was."""
    path = tmp_path / "m.db"
    with Store(path) as store:
        subscribers.add(store, "kept@example.org", "ru", at=NOW, watch=WATCH)
        subscribers.add(store, "r0@example.org", "en", at=NOW, watch=WATCH)
        before = store.subscribers(active_only=False)
        crash = CrashAt(30, Crash("disk gone"))
        monkeypatch.setattr(store, "add_subscriber", partial(crash, store))
        data = "".join(f"r{i}@example.org,any\n" for i in range(50)).encode()
        with pytest.raises(Crash):
            subscribers.import_csv(store, data, at=NOW, watch=WATCH)
        assert len(crash.calls) == 30 and crash.calls[-1] == "r29@example.org"
        assert crash.rows_at_crash == 2 + 28  # r1..r28 were in (r0 updated) at the crash
        assert store.subscribers(active_only=False) == before  # r0 is back to "en"
        monkeypatch.undo()
        again = subscribers.import_csv(store, b"late@example.org\n", at=NOW, watch=WATCH)
        assert again.added == 1  # no transaction left open: the store takes writes
    with Store(path) as fresh:
        emails = [row["email"] for row in fresh.subscribers(active_only=False)]
    assert emails == ["kept@example.org", "r0@example.org", "late@example.org"]


def test_cli_import_interrupted_mid_way_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mirror.toml"
    config.write_text("[digest]\n", encoding="utf-8")
    assert run(["-c", str(config), "subscribers", "add", "kept@example.org"]) == 0
    csv_file = tmp_path / "list.csv"
    csv_file.write_text(
        "email,lang\n" + "".join(f"reader{i}@example.org,en\n" for i in range(50)),
        encoding="utf-8",
    )
    crash = CrashAt(30, KeyboardInterrupt())
    monkeypatch.setattr(
        Store, "add_subscriber", lambda store, *args, **kw: crash(store, *args, **kw)
    )
    capsys.readouterr()
    assert run(["-c", str(config), "subscribers", "import", str(csv_file), "--json"]) == 130
    out = capsys.readouterr()
    assert len(crash.calls) == 30 and crash.rows_at_crash == 1 + 29
    assert "interrupted" in out.err
    assert out.out == ""  # no report: nothing was imported
    assert "reader" not in out.err
    db = sqlite3.connect(tmp_path / "state" / "mirror.db")
    assert [row[0] for row in db.execute("SELECT email FROM subscribers")] == ["kept@example.org"]


def test_cli_never_logs_addresses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mirror.toml"
    config.write_text('[digest]\nwatched_domains = ["mail.ru"]\n', encoding="utf-8")
    assert run(["-c", str(config), "subscribers", "add", "secret.reader@mail.ru"]) == 0
    out = capsys.readouterr()
    assert "secret.reader" not in out.err and "censor" in out.err
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("x@example.org\nbroken\n", encoding="utf-8")
    assert run(["-c", str(config), "subscribers", "import", str(csv_file), "--json"]) == 1
    out = capsys.readouterr()
    assert json.loads(out.out)["bad"] == [
        {"row": 2, "reason": json.loads(out.out)["bad"][0]["reason"]}
    ]
    assert "x@example.org" not in out.err and "broken" not in out.err
    assert run(["-c", str(config), "subscribers", "remove", "1"]) == 0
    assert "secret.reader" not in capsys.readouterr().err
    assert run(["-c", str(config), "subscribers", "list", "--json", "--all"]) == 0
    listed = json.loads(capsys.readouterr().out)["subscribers"]
    assert [row["id"] for row in listed] == [1, 2] and all("email" not in r for r in listed)
    assert run(["-c", str(config), "subscribers", "list", "--json", "--all", "--addresses"]) == 0
    listed = json.loads(capsys.readouterr().out)["subscribers"]
    assert {row["email"] for row in listed} == {"secret.reader@mail.ru", "x@example.org"}
    db = sqlite3.connect(tmp_path / "state" / "mirror.db")
    assert db.execute("SELECT COUNT(*) FROM subscribers").fetchone()[0] == 2


def test_cli_import_warns_about_watched_providers_without_naming_anyone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mirror.toml"
    config.write_text(
        '[digest]\nwatched_domains = ["mail.ru", "watched.example"]\n', encoding="utf-8"
    )
    csv_file = tmp_path / "list.csv"
    csv_file.write_text(
        "ivan.secret@mail.ru,ru\nolga.secret@post.watched.example\nanna.secret@example.org,en\n",
        encoding="utf-8",
    )
    assert run(["-c", str(config), "subscribers", "import", str(csv_file), "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["watched"] == 2
    warnings = [line for line in out.err.splitlines() if "censor's jurisdiction" in line]
    assert len(warnings) == 1 and "2 of these addresses" in warnings[0]
    assert "secret" not in out.err and "mail.ru" not in out.err and "example" not in out.err

    csv_file.write_text("boris@example.org\nyandex.user@yandex.ru\n", encoding="utf-8")
    assert run(["-c", str(config), "subscribers", "import", str(csv_file)]) == 0
    assert "censor" not in capsys.readouterr().err  # yandex.ru is not watched in this config
