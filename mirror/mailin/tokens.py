"""The signed tokens mail-in reads and hands out, and the senders' keyed hash. Pure.

    verp_address, verp_subscriber     a digest's envelope sender (bounces+TOKEN@domain) and
                                      the subscriber a bounce to it names
    confirmation_token, confirmation  double opt-in: address, language and expiry, sealed
                                      (AES-GCM: the /confirm URL, and so a proxy's log,
                                      shows no address)
    sender_hash                       who wrote, as an HMAC: what rate limits and logs keep
    message_key                       a reader's Message-ID, as an HMAC: what the store keeps

The VERP token is signed and the confirmation token sealed with the digest's secret (the one of the
unsubscribe links: `serve-unsubscribe` checks confirmations too); the sender hash with
mail-in's own secret. All go through `mirror.digest.tokens.mac`, each with its own purpose
string, so no token of one kind passes for another.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mirror.digest.tokens import check_secret, mac

CONFIRM_DAYS = 7  # a confirmation token expires this long after it was made
CONFIRM_TOKEN_MAX_CHARS = 512  # an address is at most 254 characters
VERP_TOKEN_MAX_CHARS = 48
LANGUAGES = ("en", "ru", "any")
_VERP_MAC_BYTES = 10  # 16 base32 characters: a local part is case-insensitive in practice
_NONCE_BYTES = 12  # AES-GCM's
_CONFIRM_AAD = b"mirror mail-in confirmation v2"
_VERP = re.compile(r"([1-9][0-9]{0,17})-([a-z2-7]{16})")
# nonce + tag (28 bytes) + the fields (from 17 bytes): 60 base64 characters and more
_CONFIRM = re.compile(r"[A-Za-z0-9_-]{50,512}")
_SEPARATOR = "\x1f"


# --- VERP --------------------------------------------------------------------------------


def verp_token(secret: bytes, subscriber_id: int) -> str:
    """ "<id>-<mac>": lower-case, fit for a local part."""
    check_secret(secret)
    digest = mac(secret, "verp", subscriber_id)[:_VERP_MAC_BYTES]
    return f"{subscriber_id}-{base64.b32encode(digest).decode('ascii').lower()}"


def verp_address(return_path: str, secret: bytes, subscriber_id: int) -> str:
    """bounces@example.org -> bounces+<token>@example.org for this subscriber."""
    local, _, domain = return_path.rpartition("@")
    return f"{local}+{verp_token(secret, subscriber_id)}@{domain}"


def verp_subscriber(secret: bytes, token: str) -> int | None:
    """The subscriber a VERP token names; None for a bad, forged or overlong one."""
    if len(token) > VERP_TOKEN_MAX_CHARS:
        return None
    found = _VERP.fullmatch(token.lower())
    if found is None:
        return None
    subscriber_id = int(found[1])
    return (
        subscriber_id if hmac.compare_digest(verp_token(secret, subscriber_id), found[0]) else None
    )


def verp_token_in(return_path: str, address: str) -> str | None:
    """The token of `address` when it is `return_path` with "+token" (case ignored)."""
    local, _, domain = return_path.lower().rpartition("@")
    found_local, _, found_domain = address.lower().rpartition("@")
    prefix = local + "+"
    if found_domain != domain or not found_local.startswith(prefix):
        return None
    return found_local[len(prefix) :][: VERP_TOKEN_MAX_CHARS + 1]


# --- double opt-in ------------------------------------------------------------------------


@dataclass(frozen=True)
class Confirmation:
    """What a confirmation token carries."""

    address: str  # lower-cased
    language: str  # "en" | "ru" | "any"
    expires: datetime  # UTC


def confirmation_token(
    secret: bytes, address: str, language: str, *, now: datetime, days: int = CONFIRM_DAYS
) -> str:
    """A URL-safe, opaque token sealing address, language and expiry (AES-256-GCM under a
    key derived from `secret`). The nonce is derived from the sealed text, so the same
    request makes the same token (pure), and a nonce repeats only with its text."""
    check_secret(secret)
    expires = int((now.astimezone(UTC) + timedelta(days=days)).timestamp())
    fields = _SEPARATOR.join((language, str(expires), address.lower())).encode("utf-8")
    nonce = mac(secret, "confirm-nonce", fields.hex())[:_NONCE_BYTES]
    sealed = AESGCM(_confirm_key(secret)).encrypt(nonce, fields, _CONFIRM_AAD)
    return _b64(nonce + sealed)


def confirmation(secret: bytes, token: str, *, now: datetime) -> Confirmation | None:
    """The confirmation a token carries; None when bad, forged, overlong or expired."""
    if len(token) > CONFIRM_TOKEN_MAX_CHARS or len(secret) < 16:
        return None
    if _CONFIRM.fullmatch(token) is None:
        return None
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        fields = AESGCM(_confirm_key(secret)).decrypt(
            data[:_NONCE_BYTES], data[_NONCE_BYTES:], _CONFIRM_AAD
        )
    except (binascii.Error, ValueError, InvalidTag):
        return None
    carried = _fields(fields)
    if carried is None or carried.expires <= now:
        return None
    return carried


def _confirm_key(secret: bytes) -> bytes:
    return mac(secret, "confirm-key")  # 32 bytes: AES-256


def _fields(fields: bytes) -> Confirmation | None:
    try:
        language, expires, address = fields.decode("utf-8").split(_SEPARATOR)
        moment = datetime.fromtimestamp(int(expires), UTC)
    except (UnicodeDecodeError, ValueError, OverflowError):
        return None
    if language not in LANGUAGES or "@" not in address:
        return None
    return Confirmation(address, language, moment)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


# --- senders --------------------------------------------------------------------------------


def sender_hash(secret: bytes, address: str) -> str:
    """The keyed hash of a sender (lower-cased): what rate limits and logs keep."""
    check_secret(secret)
    return mac(secret, "sender", address.strip().lower())[:16].hex()


def message_key(secret: bytes, message_id: str) -> str:
    """The keyed hash of an inbound Message-ID: how the store knows a message again
    without keeping the reader's id (which often names their host) in clear."""
    check_secret(secret)
    return "mid:" + mac(secret, "inbound-message-id", message_id.strip())[:16].hex()
