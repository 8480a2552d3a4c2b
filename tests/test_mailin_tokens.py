"""Mail-in's tokens: VERP, confirmation, sender hash; forged, overlong and mixed-up ones."""

from __future__ import annotations

import base64
import string
from datetime import UTC, datetime, timedelta

from mirror.digest.tokens import unsubscribe_token
from mirror.mailin.tokens import (
    CONFIRM_TOKEN_MAX_CHARS,
    confirmation,
    confirmation_token,
    sender_hash,
    verp_address,
    verp_subscriber,
    verp_token,
    verp_token_in,
)

SECRET = b"token-test-secret-0123456789"
OTHER = b"another-secret-0123456789abc"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
URL_SAFE = set(string.ascii_letters + string.digits + "-_")


def test_verp_round_trip_and_forgeries() -> None:
    address = verp_address("bounces@example.org", SECRET, 42)
    assert address.startswith("bounces+42-") and address.endswith("@example.org")
    token = verp_token_in("bounces@example.org", address.upper())
    assert token is not None and verp_subscriber(SECRET, token) == 42
    assert verp_subscriber(OTHER, token) is None
    assert verp_subscriber(SECRET, token.replace("42-", "43-")) is None
    assert verp_subscriber(SECRET, unsubscribe_token(SECRET, 42)) is None  # another kind
    assert verp_subscriber(SECRET, "1-" + "a" * 500) is None
    assert verp_token_in("bounces@example.org", "bounces+x@elsewhere.org") is None
    assert verp_token_in("bounces@example.org", "news@example.org") is None
    assert verp_token(SECRET, 42) == verp_token(SECRET, 42)


def test_confirmation_round_trip_expiry_and_forgeries() -> None:
    token = confirmation_token(SECRET, "Reader@Example.com", "ru", now=NOW)
    assert len(token) < CONFIRM_TOKEN_MAX_CHARS and token.isascii() and " " not in token
    carried = confirmation(SECRET, token, now=NOW + timedelta(days=6))
    assert carried is not None and carried.address == "reader@example.com"
    assert carried.language == "ru"
    assert confirmation(SECRET, token, now=NOW + timedelta(days=7, seconds=1)) is None
    assert confirmation(OTHER, token, now=NOW) is None
    for at in (0, 20, len(token) - 1):  # any character changed: the seal breaks
        changed = token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]
        assert confirmation(SECRET, changed, now=NOW) is None
    assert confirmation(SECRET, token[:-4], now=NOW) is None
    assert confirmation(SECRET, "x" * 1000, now=NOW) is None
    assert confirmation(SECRET, unsubscribe_token(SECRET, 3), now=NOW) is None


def test_sender_hash_is_keyed_and_case_blind() -> None:
    assert sender_hash(SECRET, "Reader@Example.com") == sender_hash(SECRET, "reader@example.com")
    assert sender_hash(SECRET, "reader@example.com") != sender_hash(OTHER, "reader@example.com")
    assert "reader" not in sender_hash(SECRET, "reader@example.com")


def test_confirmation_token_is_opaque() -> None:
    """It travels in the /confirm URL, and so in a reverse proxy's log: no address."""
    token = confirmation_token(SECRET, "reader.name@example.com", "en", now=NOW)
    decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert b"reader" not in decoded and b"example" not in decoded
    assert "reader" not in token and "ZXhhbXBsZ" not in token  # "example" in base64
    longest = confirmation_token(SECRET, "a" * 64 + "@" + "b" * 185 + ".com", "any", now=NOW)
    assert len(longest) <= CONFIRM_TOKEN_MAX_CHARS and set(longest) <= URL_SAFE
    carried = confirmation(SECRET, longest, now=NOW)
    assert carried is not None and carried.language == "any"
