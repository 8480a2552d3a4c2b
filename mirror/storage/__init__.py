"""Where mirrors live: one small async interface, one module per kind of store.

Every backend implements `Backend`; what some can do and others can't is a flag in
`Capabilities`, never a special case in callers. `open_backend(mirror_config)` makes the
right one. One conformance suite (tests/test_storage.py) runs against every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Capabilities:
    conditional_put: bool  # put(if_match=/if_none_match=) is enforced by the store itself
    server_checksums: bool  # the store verifies an integrity checksum sent with each put


@dataclass(frozen=True)
class Stored:
    """An object's bytes and its version tag (ETag, or a hash for folders)."""

    data: bytes
    etag: str


class Backend(Protocol):
    """One mirror's store. Paths are edition paths ("articles/2026/11/x.html"), relative
    to the mirror's prefix; the backend adds the prefix. Every method raises a
    `PublishError` subclass naming the mirror: MirrorUnreachableError (retry may help),
    MirrorAccessError (credentials, bucket), ConflictError (conditional write lost)."""

    name: str
    capabilities: Capabilities

    async def put(
        self,
        path: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        """Store `data` at `path`, replacing what is there; readers see the old bytes or
        the new, never a mix. `if_match`: only if the current ETag is this one;
        `if_none_match`: only if nothing is there (else ConflictError). Returns the new
        ETag."""
        ...

    async def get(self, path: str, *, max_bytes: int) -> Stored | None:
        """The object at `path`, or None when there is none. More than `max_bytes` is a
        MirrorUnreachableError (a store answering with something else than ours)."""
        ...

    async def delete(self, paths: Sequence[str]) -> None:
        """Remove these objects; a path that is already gone is not an error."""
        ...

    async def list(self) -> list[str]:
        """Every path under the prefix (one listing; only --gc and retire use it)."""
        ...

    async def close(self) -> None:
        """Release connections and threads; the backend refuses use afterwards."""
        ...
