"""The rollback memory: the newest state seen for each key, in `<state_dir>/seen.json`.

A copy older than what was seen before for its key (manifest epoch and version, or
keys.json's serial) is refused (RollbackError); after a check the memory keeps the newer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from mirror.atomic import write_atomic
from mirror.errors import (
    RollbackError,
)

MAX_SEEN_BYTES = 1_000_000  # bytes, the rollback memory
SEEN_FILE = "seen.json"


@dataclass(frozen=True)
class Seen:
    """The newest state seen for one key: manifest (epoch, version) and keys.json serial."""

    epoch: int = 0
    version: int = 0
    keys_serial: int = 0

    def newer(self, other: Seen) -> Seen:
        """The newest of both, field by field (the epoch and version as a pair)."""
        epoch, version = max((self.epoch, self.version), (other.epoch, other.version))
        return Seen(epoch, version, max(self.keys_serial, other.keys_serial))


def check_rollback(seen: Seen, now_seen: Seen) -> None:
    """RollbackError when what the copy shows is older than what was seen before."""
    if (now_seen.epoch, now_seen.version) < (seen.epoch, seen.version):
        raise RollbackError(
            f"manifest version {now_seen.version} (epoch {now_seen.epoch}) is older than "
            f"version {seen.version} (epoch {seen.epoch}) seen before for this key"
        )
    if now_seen.keys_serial < seen.keys_serial:
        raise RollbackError(
            f"keys.json serial {now_seen.keys_serial} is older than serial "
            f"{seen.keys_serial} seen before for this root"
        )


def default_state_dir() -> Path:
    """The user's cache folder for mirror."""
    return Path(platformdirs.user_cache_dir("mirror"))


def load_seen(path: Path) -> dict[str, Seen]:
    """The rollback memory: newest state per key id (empty when there is none yet)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SEEN_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise RollbackError(f"cannot read the rollback memory {path}: {exc.strerror}") from exc
    try:
        if len(data) > MAX_SEEN_BYTES:
            raise ValueError(f"over {MAX_SEEN_BYTES} bytes")
        return {key: _seen_from(value) for key, value in json.loads(data).items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise RollbackError(
            f"the rollback memory {path} is garbled ({exc}); delete it to start afresh"
        ) from exc


def _seen_from(value: Any) -> Seen:
    """One remembered state from its JSON form (ValueError when malformed)."""
    seen = Seen(**value)
    numbers = (seen.epoch, seen.version, seen.keys_serial)
    if not all(type(number) is int and number >= 0 for number in numbers):
        raise ValueError("a remembered number is not a non-negative integer")
    return seen


def remember(path: Path, key_id: str, seen: Seen) -> None:
    """Record `seen` for `key_id` (keeping anything newer), written atomically."""
    memory = load_seen(path)
    memory[key_id] = memory.get(key_id, Seen()).newer(seen)
    document = {key: vars(value) for key, value in sorted(memory.items())}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(document, indent=1).encode("ascii") + b"\n")
    except OSError as exc:
        raise RollbackError(f"cannot write the rollback memory {path}: {exc}") from exc
