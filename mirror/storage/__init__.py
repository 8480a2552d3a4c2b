"""Where mirrors live: one small async interface, one module per kind of store.

Every backend implements `Backend`; what some can do and others can't is a flag in
`Capabilities`, never a special case in callers. `open_backend(mirror_config)` makes the
right one. One conformance suite (tests/test_storage.py) runs against every backend.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self, TypeVar

from mirror.config import MirrorConfig, mirror_key
from mirror.errors import ConfigError, ManifestError, MirrorUnreachableError, PublishError
from mirror.trust.manifest import check_path

BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
IP_LIKE = re.compile(r"\d+\.\d+\.\d+\.\d+")  # S3 refuses bucket names formatted as an IPv4 address


@dataclass(frozen=True)
class Capabilities:
    conditional_put: bool  # put(if_match=/if_none_match=) is enforced by the store itself
    server_checksums: bool  # the store verifies an integrity checksum sent with each put
    # NAME.gz beside NAME may be served in its place (a folder, for nginx's gzip_static):
    # `publish --repair` checks each one, as verify does
    gzip_siblings: bool = False


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


T = TypeVar("T")


class ThreadedBackend:
    """What backends built on blocking calls share: a pool of `max_workers` threads,
    `async with`, a time limit on each call, a close that does not wait, and refusal
    after close.

    A blocking call cannot be stopped from outside its thread: a call past
    `call_timeout_s` (or cancelled: a deadline, Ctrl-C) is abandoned, its thread left to
    end at the call's own socket timeout, and nothing waits for it. The publishing order
    keeps the mirror consistent whether such a write lands or not."""

    def __init__(
        self, name: str, *, max_workers: int, thread_prefix: str, call_timeout_s: float | None
    ) -> None:
        self.name = name
        self.call_timeout_s = call_timeout_s
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix=thread_prefix)
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """See `Backend.close`; calls still queued are dropped, calls in flight abandoned."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._release()

    def _release(self) -> None:
        """What a backend frees at close (its client)."""

    async def _in_thread(self, func: Callable[..., T], *args: object, timed: bool = True) -> T:
        """`func(*args)` on the pool: a blocking call never holds up the event loop.
        `timed`: MirrorUnreachableError once `call_timeout_s` has passed."""
        self._check_open()
        call = asyncio.get_running_loop().run_in_executor(self._executor, func, *args)
        if not timed or self.call_timeout_s is None:
            return await call
        scope = asyncio.timeout(self.call_timeout_s)
        try:
            async with scope:
                return await call
        except TimeoutError:
            if not scope.expired():
                raise  # the call's own (an OSError), not ours
            reason = f"no answer within {self.call_timeout_s:g} s (timeout_s)"
            raise MirrorUnreachableError(self.name, reason) from None

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"mirror {self.name}: storage backend used after close")


def open_backend(mirror: MirrorConfig, *, max_workers: int = 16) -> Backend:
    """The backend for one mirror of the config, with at most `max_workers` blocking calls
    at once. Checks the bucket name and prefix (as the config loader does: a MirrorConfig
    may be made without it) and raises ConfigError naming the key; opens no connection."""
    if mirror.type == "directory":
        from mirror.storage.directory import DirectoryBackend

        return DirectoryBackend(mirror, max_workers=max_workers)
    if mirror.type == "s3":
        from mirror.storage.s3 import S3Backend

        return S3Backend(mirror, max_workers=max_workers)
    raise ConfigError(f"unknown mirror type {mirror.type!r}", key=mirror_key(mirror.name, "type"))


def check_prefix(mirror: MirrorConfig) -> str:
    """The mirror's prefix, normalised to "" or "a/b/" (see `normalised_prefix`)."""
    return normalised_prefix(mirror.prefix, key=mirror_key(mirror.name, "prefix"))


def normalised_prefix(prefix: str, *, key: str, path: str = "") -> str:
    """`prefix` normalised to "" or "a/b/"; ConfigError naming `key` (and the config file
    `path`) if it is absolute, has empty, '.' or '..' segments, or characters an edition
    path may not have. The one prefix rule: the config loader and every backend use it."""
    if not prefix:
        return ""
    if prefix.startswith("/") or "\\" in prefix:
        raise ConfigError(
            f"{prefix!r:.80} is not a valid prefix: it must be relative (no leading '/', no '\\')",
            path=path,
            key=key,
        )
    try:
        check_path(prefix.removesuffix("/"))
    except ManifestError as exc:
        raise ConfigError(
            f"{prefix!r:.80} is not a valid prefix: {exc}", path=path, key=key
        ) from exc
    return prefix.removesuffix("/") + "/"


def check_bucket(mirror: MirrorConfig) -> str:
    """The mirror's bucket name if S3 accepts it (see `valid_bucket_name`)."""
    return valid_bucket_name(mirror.bucket, key=mirror_key(mirror.name, "bucket"))


def valid_bucket_name(bucket: str, *, key: str, path: str = "") -> str:
    """`bucket` if S3 accepts it as a bucket name; else ConfigError naming `key` (and the
    config file `path`). The one bucket rule: the config loader and the s3 backend use it."""
    problem = _bucket_name_problem(bucket)
    if problem is not None:
        raise ConfigError(
            f"{bucket!r:.80} is not a valid bucket name: {problem}", path=path, key=key
        )
    return bucket


def _bucket_name_problem(bucket: str) -> str | None:
    """What S3 refuses in this bucket name (None: nothing)."""
    if not BUCKET_NAME.fullmatch(bucket):
        return (
            "3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit"
        )
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        return "it has '..', '.-' or '-.'"
    if IP_LIKE.fullmatch(bucket):
        return "it looks like an IP address"
    if bucket.startswith(("xn--", "sthree-")) or bucket.endswith(("-s3alias", "--ol-s3")):
        return "it uses a prefix or suffix S3 reserves"
    return None


def check_object_path(mirror_name: str, path: str) -> str:
    """`path` if it is a clean edition path (see mirror.trust.manifest.check_path); else a
    PublishError naming the mirror (nothing is sent for such a path)."""
    try:
        return check_path(path)
    except ManifestError as exc:
        raise PublishError(mirror_name, f"refused path: {exc}") from exc
