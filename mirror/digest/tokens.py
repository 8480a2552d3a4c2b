"""Unsubscribe tokens and the keyed hashes the digest is made of.

A token is "<subscriber id>.<mac>": URL-safe, it never expires, and it proves the
subscriber id without a table of tokens. `mac` (HMAC-SHA256 over the `secret`) also
makes the Message-IDs and the mirror choice, so they cannot be guessed without it.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from mirror.errors import DigestError, SubscriberError

TOKEN_MAX_CHARS = 64
MIN_SECRET_BYTES = 16
_TOKEN = re.compile(r"([1-9][0-9]{0,17})\.([A-Za-z0-9_-]{22})")
_TOKEN_MAC_BYTES = 16


def unsubscribe_token(secret: bytes, subscriber_id: int) -> str:
    """The subscriber's unsubscribe token "<id>.<mac>": URL-safe, never expires."""
    check_secret(secret)
    if subscriber_id < 1:
        raise SubscriberError(f"not a subscriber id: {subscriber_id}")
    return f"{subscriber_id}.{_token_mac(secret, subscriber_id)}"


def token_subscriber(secret: bytes, token: str, *, previous: Sequence[bytes] = ()) -> int | None:
    """The subscriber id a token was made for, with `secret` or one of the `previous`
    secrets (links in mail sent before a rotation keep working); None for a bad,
    forged or overlong one."""
    if len(token) > TOKEN_MAX_CHARS:
        return None
    found = _TOKEN.fullmatch(token)
    if found is None:
        return None
    subscriber_id = int(found[1])
    for key in (secret, *previous):
        if len(key) >= MIN_SECRET_BYTES and hmac.compare_digest(
            _token_mac(key, subscriber_id), found[2]
        ):
            return subscriber_id
    return None


def digest_message_id(secret: bytes, digest_id: int, recipient_id: int, domain: str) -> str:
    """The Message-ID of digest `digest_id` for one recipient: the same on every resend,
    and no one without the secret can tell whose it is."""
    digest = mac(secret, "message-id", digest_id, recipient_id)[:16]
    return f"<{digest.hex()}.{digest_id}@{domain}>"


def mac(secret: bytes, *parts: object) -> bytes:
    """HMAC-SHA256 of `parts` (joined by a unit separator) under `secret`."""
    message = "\x1f".join(str(part) for part in parts).encode("utf-8")
    return hmac.digest(secret, message, "sha256")  # OpenSSL's one-shot: no HMAC object


def _token_mac(secret: bytes, subscriber_id: int) -> str:
    digest = mac(secret, "unsubscribe", subscriber_id)[:_TOKEN_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise DigestError(f"the unsubscribe secret must be at least {MIN_SECRET_BYTES} bytes")


def unsubscribe_link(unsubscribe_url: str, token: str) -> str:
    """The https unsubscribe URL carrying `token`."""
    joiner = "&" if urlsplit(unsubscribe_url).query else "?"
    return f"{unsubscribe_url}{joiner}token={token}"
