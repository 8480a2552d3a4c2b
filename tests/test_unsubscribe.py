"""serve-unsubscribe against a real server on 127.0.0.1 and a real store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mirror.digest.tokens import unsubscribe_token
from mirror.digest.unsubscribe import CONTENT_SECURITY_POLICY, MAX_BODY_BYTES, make_app
from mirror.errors import ConfigError, StoreError
from mirror.store import Store

from servers import serve

SECRET = b"unsubscribe-test-secret-0123456789"
WHEN = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "state" / "mirror.db"
    with Store(path) as store:
        store.add_subscriber("reader@example.com", "en", WHEN)
        store.add_subscriber("other@example.com", "ru", WHEN)
    return path


def unsubscribed(path: Path) -> dict[str, str | None]:
    with Store(path) as store:
        rows = store.execute("SELECT email, unsubscribed_at FROM subscribers").fetchall()
    return {row["email"]: row["unsubscribed_at"] for row in rows}


class Clock:
    def __init__(self) -> None:
        self.now = LATER

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def base(store_path: Path) -> AsyncIterator[str]:
    app = make_app(store_path, SECRET, publication="The <Example> Times", now=Clock())
    async with serve(app) as port:
        yield f"http://127.0.0.1:{port}/unsubscribe"


@dataclass(frozen=True)
class Answer:
    status: int
    text: str
    headers: Mapping[str, str]


async def fetch(method: str, url: str, **options: Any) -> Answer:
    """One request in a fresh session (no cookie jar carried over)."""
    async with aiohttp.ClientSession() as session, session.request(method, url, **options) as r:
        return Answer(r.status, await r.text(), dict(r.headers))


async def test_get_shows_a_button_and_changes_nothing(base: str, store_path: Path) -> None:
    token = unsubscribe_token(SECRET, 1)
    answer = await fetch("GET", base, params={"token": token})
    assert answer.status == 200
    assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert "Set-Cookie" not in answer.headers
    assert '<form method="post">' in answer.text
    assert f'name="token" value="{token}"' in answer.text
    assert "The &lt;Example&gt; Times" in answer.text  # escaped
    assert "<script" not in answer.text
    assert unsubscribed(store_path) == {"reader@example.com": None, "other@example.com": None}


async def test_one_click_post_unsubscribes(base: str, store_path: Path) -> None:
    """RFC 8058: POST to the List-Unsubscribe URI, body List-Unsubscribe=One-Click."""
    token = unsubscribe_token(SECRET, 1)
    url = f"{base}?token={token}"
    answer = await fetch("POST", url, data={"List-Unsubscribe": "One-Click"})
    assert answer.status == 200
    assert "unsubscribed" in answer.text
    assert unsubscribed(store_path) == {
        "reader@example.com": LATER.isoformat(),
        "other@example.com": None,
    }


async def test_one_click_post_as_multipart(base: str, store_path: Path) -> None:
    token = unsubscribe_token(SECRET, 2)
    form = aiohttp.FormData()
    form.add_field("List-Unsubscribe", "One-Click")
    form._is_multipart = True  # multipart/form-data, as in the RFC's example
    answer = await fetch("POST", f"{base}?token={token}", data=form)
    assert answer.status == 200
    assert unsubscribed(store_path)["other@example.com"] == LATER.isoformat()


async def test_confirmation_form_post_unsubscribes(base: str, store_path: Path) -> None:
    answer = await fetch("POST", base, data={"token": unsubscribe_token(SECRET, 2)})
    assert answer.status == 200
    assert unsubscribed(store_path)["other@example.com"] == LATER.isoformat()
    assert unsubscribed(store_path)["reader@example.com"] is None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "1",
        "1.AAAAAAAAAAAAAAAAAAAAAA",
        "2." + unsubscribe_token(SECRET, 1).split(".")[1],  # another subscriber's mac
        unsubscribe_token(b"another-secret-0123456789abcdef", 1),
        unsubscribe_token(SECRET, 1) + "x",
        "9" * 5000,
    ],
)
async def test_bad_token_changes_nothing(base: str, store_path: Path, token: str) -> None:
    answer = await fetch("GET", base, params={"token": token})
    assert answer.status == 400
    assert answer.headers["Content-Type"].startswith("text/plain")
    answer = await fetch("POST", base, data={"token": token})
    assert answer.status in (400, 413)  # 413: a body over MAX_BODY_BYTES
    answer = await fetch("POST", base, params={"token": token})
    assert answer.status == 400
    assert unsubscribed(store_path) == {"reader@example.com": None, "other@example.com": None}


async def test_missing_token_is_400(base: str) -> None:
    assert (await fetch("POST", base, data={"List-Unsubscribe": "One-Click"})).status == 400
    assert (await fetch("GET", base)).status == 400


async def test_replay_is_idempotent(store_path: Path) -> None:
    clock = Clock()
    app = make_app(store_path, SECRET, publication="The Example Times", now=clock)
    token = unsubscribe_token(SECRET, 1)
    async with serve(app) as port:
        url = f"http://127.0.0.1:{port}/unsubscribe?token={token}"
        assert (await fetch("POST", url, data={"List-Unsubscribe": "One-Click"})).status == 200
        clock.now = datetime(2026, 12, 1, tzinfo=UTC)
        assert (await fetch("POST", url, data={"List-Unsubscribe": "One-Click"})).status == 200
    assert unsubscribed(store_path)["reader@example.com"] == LATER.isoformat()  # the first


async def test_valid_token_for_unknown_subscriber_changes_nothing(
    base: str, store_path: Path
) -> None:
    answer = await fetch("POST", base, data={"token": unsubscribe_token(SECRET, 99)})
    assert answer.status == 200  # says nothing about who is subscribed
    assert unsubscribed(store_path) == {"reader@example.com": None, "other@example.com": None}


async def test_large_body_is_refused(base: str, store_path: Path) -> None:
    data = {"token": unsubscribe_token(SECRET, 1), "padding": "x" * (MAX_BODY_BYTES * 2)}
    assert (await fetch("POST", base, data=data)).status == 413
    assert unsubscribed(store_path)["reader@example.com"] is None


async def test_nothing_identifying_is_logged(base: str, caplog: pytest.LogCaptureFixture) -> None:
    token = unsubscribe_token(SECRET, 1)
    caplog.set_level("DEBUG")
    assert (await fetch("GET", base, params={"token": token})).status == 200
    assert (await fetch("POST", base, data={"token": token})).status == 200
    assert token not in caplog.text
    assert "reader@example.com" not in caplog.text


def test_missing_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        make_app(tmp_path / "nothing.db", SECRET, publication="x")


async def test_links_made_before_a_rotation_still_work_when_their_secret_is_listed(
    store_path: Path,
) -> None:
    old, older, new = b"old-secret-0123456789ab", b"older-secret-0123456789", SECRET
    app = make_app(store_path, new, publication="x", previous=(old,), now=Clock())
    async with serve(app) as port:
        url = f"http://127.0.0.1:{port}/unsubscribe"
        forgotten = await fetch("POST", url, data={"token": unsubscribe_token(older, 2)})
        assert forgotten.status == 400  # a secret dropped from the list: its links are dead
        assert (await fetch("POST", url, data={"token": unsubscribe_token(old, 1)})).status == 200
    assert unsubscribed(store_path) == {"reader@example.com": LATER.isoformat(),
                                        "other@example.com": None}  # fmt: skip


def test_previous_secrets_come_from_their_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mirror.config import load_config
    from mirror.digest.run import previous_secrets

    (tmp_path / "mirror.toml").write_text("[digest]\n", encoding="utf-8")
    config = load_config(tmp_path / "mirror.toml")
    monkeypatch.delenv("MIRROR_UNSUBSCRIBE_PREVIOUS_SECRETS", raising=False)
    assert previous_secrets(config) == ()
    monkeypatch.setenv(
        "MIRROR_UNSUBSCRIBE_PREVIOUS_SECRETS", " first-secret-0123456 second-secret-012345 "
    )
    assert previous_secrets(config) == (b"first-secret-0123456", b"second-secret-012345")
    monkeypatch.setenv("MIRROR_UNSUBSCRIBE_PREVIOUS_SECRETS", "tiny-k3y")
    with pytest.raises(ConfigError, match="shorter than 16") as caught:
        previous_secrets(config)
    assert "tiny-k3y" not in str(caught.value)  # never the secret itself
