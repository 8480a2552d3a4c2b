from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mirror import subscribers
from mirror.cli import run
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


def test_import_is_all_or_nothing_when_it_crashes(tmp_path: Path) -> None:
    rows = "".join(f"r{i}@example.org\n" for i in range(50)).encode() + b"\xff\xfe broken"
    with Store(tmp_path / "m.db") as store:
        with pytest.raises(SubscriberError, match="not UTF-8"):
            subscribers.import_csv(store, rows, at=NOW, watch=WATCH)
        assert store.subscribers() == []


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
    assert {row["email"] for row in listed} == {"secret.reader@mail.ru", "x@example.org"}
    db = sqlite3.connect(tmp_path / "state" / "mirror.db")
    assert db.execute("SELECT COUNT(*) FROM subscribers").fetchone()[0] == 2
