"""An in-memory storage backend: a real `Backend`, not a mock (rclone's backend/memory).

It keeps each object's bytes, ETag, Content-Type, Cache-Control and Content-Encoding (with
`compress`, text files are stored as gzip, as the S3 backend does), enforces conditional
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
from mirror.storage.wire import GZIP, gunzip_bounded, wire_form

Hook = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    etag: str
    content_type: str
    cache_control: str
    content_encoding: str = ""  # "gzip": `data` is the gzip of the file

    @property
    def plain(self) -> bytes:
        """The file's bytes, decoded."""
        if self.content_encoding != GZIP:
            return self.data
        plain = gunzip_bounded(self.data, 1 << 40)
        assert plain is not None
        return plain


class MemoryBackend:
    """A mirror held in a dict."""

    def __init__(
        self,
        name: str = "memory",
        *,
        conditional_put: bool = True,
        hook: Hook | None = None,
        compress: bool = False,
    ) -> None:
        self.name = name
        self.compress = compress
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
        packed = wire_form(path, data) if self.compress else None
        body, encoding = (bytes(data), "") if packed is None else (packed, GZIP)
        etag = f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}-{self._generation}"'
        self.objects[path] = StoredObject(body, etag, content_type, cache_control, encoding)
        return etag

    async def get(self, path: str, *, max_bytes: int) -> Stored | None:
        await self._enter("get", path)
        found = self.objects.get(path)
        if found is None:
            return None
        plain = found.plain
        if len(found.data) > max_bytes or len(plain) > max_bytes:
            raise ObjectTooLargeError(self.name, f"{path} is larger than {max_bytes} bytes")
        return Stored(plain, found.etag)

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
        """Every object's bytes (decoded) by path."""
        return {path: found.plain for path, found in self.objects.items()}

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
