"""Freshness of keys.json for a reader with no memory: is this copy's certificate the
newest the root has signed?

A reader who never saw a revocation cannot tell an old keys.json (that still certifies
a stolen key) from the current one by memory. Two other sources tell it:

- the other mirrors the copy lists in its signed `mirrors.json`: each one's keys.json is
  read (at most MAX_PEERS, at once, each bounded in time and bytes), checked against the
  root, and the copy is refused when any of them serves a higher serial;
- the serial the reader was told elsewhere (the digest prints it): `--min-serial N`.

Pure: `peer_urls` picks whom to ask, `check_serial` decides; the reading is done by
`mirror.verify.run` (the I/O edge). A peer that cannot be read or serves something the root
did not sign is reported (`PeerKeys.error`), never fatal: an attacker could block any
one mirror.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mirror.errors import StaleKeysError
from mirror.fetch.urls import with_slash

MAX_PEERS = 8  # other mirrors asked for their keys.json
MAX_MIRRORS_JSON_BYTES = 1_000_000  # bytes: a mirrors.json larger than this is not read
MAX_URL_CHARS = 2_000
PEER_DEADLINE_S = 20.0  # seconds for one peer: both files, redirects included


@dataclass(frozen=True)
class PeerKeys:
    """What one other mirror serves as keys.json: its serial, or why it has none."""

    url: str
    serial: int | None = None  # None: unreadable, absent, or not the root's
    expires: str = ""  # keys.json's expiry, as it spells it
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "serial": self.serial, "expires": self.expires,
                "error": self.error}  # fmt: skip


def peer_urls(mirrors_json: bytes, own_url: str) -> list[str]:
    """The http(s) mirror URLs `mirrors.json` lists, the copy's own left out, each once,
    at most MAX_PEERS (in the listed order). Garbled JSON lists none."""
    try:
        document = json.loads(mirrors_json.decode("utf-8"))
        listed = [item["url"] for item in document["mirrors"]]
    except (UnicodeDecodeError, ValueError, RecursionError, TypeError, KeyError):
        return []
    seen = {_normal(own_url)}
    chosen: list[str] = []
    for url in listed:
        if not isinstance(url, str) or len(url) > MAX_URL_CHARS or _normal(url) in seen:
            continue
        if urlsplit(url).scheme in ("http", "https"):
            seen.add(_normal(url))
            chosen.append(url)
    return chosen[:MAX_PEERS]


def _normal(url: str) -> str:
    """A URL compared loosely: scheme and host in lower case, one trailing "/"."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    path = with_slash(parts.path)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


def check_serial(serial: int, peers: Sequence[PeerKeys], *, min_serial: int = 0) -> None:
    """StaleKeysError when `serial` (the copy's keys.json) is below `min_serial` or below
    the serial any peer serves."""
    if serial < min_serial:
        raise StaleKeysError(
            f"keys.json serial {serial} is older than --min-serial {min_serial}: this copy "
            "may use a signing key the root has revoked since"
        )
    newest = max(
        (peer for peer in peers if peer.serial is not None),
        key=lambda peer: peer.serial or 0,
        default=None,
    )
    if newest is not None and newest.serial is not None and newest.serial > serial:
        raise StaleKeysError(
            f"keys.json serial {serial} is older than serial {newest.serial} served by "
            f"{newest.url}: this copy may use a signing key the root has revoked since"
        )
