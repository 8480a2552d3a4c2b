"""An in-memory storage backend: a real `Backend`, not a mock (rclone's backend/memory).

It keeps each object's bytes, ETag, Content-Type and Cache-Control, enforces conditional
puts when told it can, refuses use after close, and records every call. `hook` runs
before each call with (operation, path): a test makes a call fail or hang there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mirror.errors import ConflictError, ObjectTooLargeError
from mirror.storage import Capabilities, Stored, check_object_path

Hook = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    etag: str
    content_type: str
    cache_control: str


class MemoryBackend:
    """A mirror held in a dict."""

    def __init__(
        self, name: str = "memory", *, conditional_put: bool = True, hook: Hook | None = None
    ) -> None:
        self.name = name
        self.capabilities = Capabilities(conditional_put=conditional_put, server_checksums=False)
        self.objects: dict[str, StoredObject] = {}
        self.calls: list[tuple[str, str]] = []
        self.hook = hook
        self._generation = 0
        self._closed = False

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
        await self._enter("put", path)
        if self.capabilities.conditional_put:
            self._check_condition(path, if_match, if_none_match)
        self._generation += 1
        etag = f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}-{self._generation}"'
        self.objects[path] = StoredObject(bytes(data), etag, content_type, cache_control)
        return etag

    async def get(self, path: str, *, max_bytes: int) -> Stored | None:
        await self._enter("get", path)
        found = self.objects.get(path)
        if found is None:
            return None
        if len(found.data) > max_bytes:
            raise ObjectTooLargeError(self.name, f"{path} is larger than {max_bytes} bytes")
        return Stored(found.data, found.etag)

    async def delete(self, paths: Sequence[str]) -> None:
        await self._enter("delete", ",".join(paths))
        for path in paths:
            check_object_path(self.name, path)
            self.objects.pop(path, None)

    async def list(self) -> list[str]:
        await self._enter("list", "")
        return sorted(self.objects)

    async def close(self) -> None:
        self._closed = True

    # -- test conveniences -------------------------------------------------------------

    def data(self) -> dict[str, bytes]:
        """Every object's bytes by path."""
        return {path: found.data for path, found in self.objects.items()}

    def load(self, files: dict[str, bytes]) -> None:
        """Store these objects directly (no call recorded)."""
        for path, data in files.items():
            self.objects[path] = StoredObject(data, f'"{path}-loaded"', "", "")

    def write_to(self, folder: Path) -> Path:
        """Copy the mirror into `folder` (for `mirror verify`); returns the folder."""
        for path, data in self.data().items():
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return folder

    def count(self, operation: str) -> int:
        return sum(1 for done, _ in self.calls if done == operation)

    async def _enter(self, operation: str, path: str) -> None:
        if self._closed:
            raise RuntimeError(f"mirror {self.name}: backend used after close")
        if operation != "delete" and operation != "list":
            check_object_path(self.name, path)
        self.calls.append((operation, path))
        if self.hook is not None:
            await self.hook(operation, path)

    def _check_condition(self, path: str, if_match: str | None, if_none_match: bool) -> None:
        found = self.objects.get(path)
        if if_none_match and found is not None:
            raise ConflictError(self.name, f"{path} already exists")
        if if_match is not None and (found is None or found.etag != if_match):
            raise ConflictError(self.name, f"{path} changed (ETag differs)")
