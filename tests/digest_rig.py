"""Helpers for tests that send the digest through the CLI to a real aiosmtpd: the
config's SMTP and unsubscribe lines, subscribers, one `digest send --json` and the
received message parsed (shared by test_digest_run, test_daily and test_digest_attach)."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import pytest

from mirror.cli import run
from mirror.store import Store


def with_smtp(config: Path, port: int, **digest: str) -> None:
    """Point the config's digest at aiosmtpd on `port`, with both ways to unsubscribe."""
    extra = "".join(f'{key} = "{value}"\n' for key, value in digest.items())
    text = config.read_text(encoding="utf-8")
    text = text.replace(
        "[digest]\n",
        f'[digest]\nsmtp_url = "smtp+insecure://127.0.0.1:{port}"\n'
        'unsubscribe_url = "https://news.example.org/unsubscribe"\n'
        'unsubscribe_mailto = "leave@news.example.org"\n' + extra,
    )
    config.write_text(text, encoding="utf-8")


def with_unsubscribe(config: Path) -> None:
    text = config.read_text(encoding="utf-8").replace(
        "[digest]\n", '[digest]\nunsubscribe_url = "https://news.example.org/unsubscribe"\n'
    )
    config.write_text(text, encoding="utf-8")


def subscribe(config: Path, *people: tuple[str, str]) -> None:
    for address, lang in people:
        assert run(["-c", str(config), "subscribers", "add", address, "--lang", lang]) == 0


def welcomed(config: Path) -> None:
    """Mark every subscriber as welcomed already (as one who confirmed by mail is): the
    next digest is a plain one, not the welcome `subscribers add` makes them owed."""
    with Store(config.parent / "state" / "mirror.db") as store, store.transaction() as db:
        db.execute("DELETE FROM welcomes_due")


def send(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    status = run(["-c", str(config), "digest", "send", "--json", *extra])
    out = capsys.readouterr()
    return status, json.loads(out.out)


def parse(content: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message
