"""A mirror that is a folder on this host, served by nginx or any static file server.

Writes are atomic (a temp file at the mirror's top, fsync, `os.replace`), so a reader sees
the old bytes or the new, never a mix. An object's ETag is the sha256 of its bytes.
Conditional puts and deletes take an exclusive `flock` on a lock file at the top of
the folder, so they hold across threads and across processes on this host. The lock and
the temp files (the backend's housekeeping) live only at the top: anywhere else such a
name, like a symbolic link, is a stray that `list` shows so that --gc removes it. No
operation goes through a symbolic link: a write or delete below a linked folder is a
`PublishError` naming it, and a read of a link (or below a linked folder) finds nothing,
so a link planted in the folder can neither send our files elsewhere nor serve another's.

With the mirror's `compress`, a text file `NAME` gets `NAME.gz` beside it (for nginx's
`gzip_static on`; mirror.storage.wire says which files), written and removed with it;
a put that writes no `.gz` removes a stale one, so a sibling never outlives its file's
bytes. `list` shows a `.gz` only when its file is gone (a stray for --gc).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from mirror.config import MirrorConfig, mirror_key
from mirror.errors import (
    ConfigError,
    ConflictError,
    MirrorAccessError,
    MirrorUnreachableError,
    ObjectTooLargeError,
    PublishError,
)
from mirror.storage import (
    Capabilities,
    Stored,
    ThreadedBackend,
    check_object_path,
    check_prefix,
)
from mirror.storage.wire import GZIP_SUFFIX, wire_form
from mirror.trust.manifest import LOCK_NAME, TEMP_PREFIX, is_housekeeping

FILE_MODE = 0o644  # readable by the web server
CHUNK_BYTES = 1 << 16

T = TypeVar("T")


class DirectoryBackend(ThreadedBackend):
    """The `Backend` of a `type = "directory"` mirror: files under `path` (+ `prefix`)."""

    capabilities = Capabilities(conditional_put=True, server_checksums=False, gzip_siblings=True)

    def __init__(self, mirror: MirrorConfig, *, max_workers: int = 16) -> None:
        if mirror.path is None:
            raise ConfigError("a directory mirror needs 'path'", key=mirror_key(mirror.name))
        super().__init__(
            mirror.name,
            max_workers=max_workers,
            thread_prefix=f"dir-{mirror.name}",
            call_timeout_s=mirror.timeout_s,
        )
        self.root = Path(mirror.path) / check_prefix(mirror)
        self.compress = mirror.compress

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
        """See `Backend.put`; content type and cache control are the web server's business."""
        target = self._file(path)
        return await self._run(self._put_sync, target, data, if_match, if_none_match)

    async def get(self, path: str, *, max_bytes: int) -> Stored | None:
        """See `Backend.get`; a folder, FIFO or other non-regular file counts as absent."""
        return await self._run(self._get_sync, self._file(path), max_bytes)

    async def delete(self, paths: Sequence[str]) -> None:
        """See `Backend.delete`; folders left empty are removed too."""
        targets = [self._file(path) for path in paths]
        await self._run(self._delete_sync, targets)

    async def list(self) -> list[str]:
        """See `Backend.list`; the lock and temp files at the top, folders, FIFOs and the
        like, and names that are not clean edition paths are left out. Symbolic links (to
        files or folders, never followed) and housekeeping names below the top are in, so
        that --gc removes them (deleting a link removes the link, not what it points to)."""
        return await self._run(self._list_sync, timed=False)  # a walk: as long as it takes

    # -- on the executor's threads ------------------------------------------------------

    def _put_sync(self, target: Path, data: bytes, if_match: str | None, if_none: bool) -> str:
        packed = wire_form(target.name, data) if self.compress else None
        temps = [self._write_temp(data)]
        if packed is not None:
            temps.append(self._write_temp(packed))
        try:
            with self._locked():
                self._refuse_linked_folders(target)
                if if_match is not None or if_none:
                    self._check_condition(target, if_match, if_none)
                target.parent.mkdir(parents=True, exist_ok=True)  # under the lock: no prune
                os.replace(temps[0], target)
                self._place_sibling(_sibling(target), temps[1] if packed is not None else None)
        except BaseException:
            for temp in temps:
                temp.unlink(missing_ok=True)
            raise
        return hashlib.sha256(data).hexdigest()

    @staticmethod
    def _place_sibling(sibling: Path, temp: Path | None) -> None:
        """Move the gzip `temp` to `sibling`; None: remove a stale sibling."""
        if temp is not None:
            os.replace(temp, sibling)
            return
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            sibling.unlink()

    def _write_temp(self, data: bytes) -> Path:
        """A fsynced temp file holding `data`, at the top of the mirror's folder (the only
        place housekeeping names may be; a rename within one file system)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=self.root)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fchmod(handle.fileno(), FILE_MODE)
                os.fsync(handle.fileno())
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)

    def _check_condition(self, target: Path, if_match: str | None, if_none: bool) -> None:
        """ConflictError unless the object at `target` is as the condition requires."""
        current = _file_sha256(target)
        if if_none and current is not None:
            raise ConflictError(self.name, f"{self._shown(target)} already exists")
        if if_match is not None and current != if_match:
            raise ConflictError(self.name, f"{self._shown(target)} changed (ETag differs)")

    def _get_sync(self, target: Path, max_bytes: int) -> Stored | None:
        fd = None if self._linked_folder(target) else _open_regular(target)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as handle:
            if os.fstat(fd).st_size > max_bytes:
                raise self._too_large(target, max_bytes)
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise self._too_large(target, max_bytes)
        return Stored(data=data, etag=hashlib.sha256(data).hexdigest())

    def _delete_sync(self, targets: Sequence[Path]) -> None:
        with self._locked():
            for target in targets:
                self._refuse_linked_folders(target)
                for doomed in (_sibling(target), target):  # never a .gz without its file
                    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                        doomed.unlink()
                self._prune(target.parent)

    def _prune(self, folder: Path) -> None:
        """Remove `folder` and its parents up to the mirror's top while they are empty."""
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _list_sync(self) -> builtins.list[str]:
        found: builtins.list[str] = []
        if not self.root.is_dir():
            return found
        for dirpath, dirnames, filenames in os.walk(self.root, onerror=_raise):
            base = Path(dirpath).relative_to(self.root)
            for name in (*dirnames, *filenames):
                relative = (base / name).as_posix()
                if is_housekeeping(relative) or not _is_listable(Path(dirpath) / name):
                    continue
                with contextlib.suppress(PublishError):
                    found.append(check_object_path(self.name, relative))
        return sorted(self._without_siblings(found))

    def _without_siblings(self, found: builtins.list[str]) -> builtins.list[str]:
        """`found` less each regular `NAME.gz` whose `NAME` is there too (it goes with it)."""
        present = set(found)
        return [
            path
            for path in found
            if not (
                path.endswith(GZIP_SUFFIX)
                and path.removesuffix(GZIP_SUFFIX) in present
                and not (self.root / path).is_symlink()
            )
        ]

    def _linked_folder(self, target: Path) -> str | None:
        """The first folder between the mirror's top and `target` that is a symbolic link."""
        folder = self.root
        for part in target.relative_to(self.root).parts[:-1]:
            folder = folder / part
            try:
                if stat.S_ISLNK(folder.lstat().st_mode):
                    return self._shown(folder)
            except FileNotFoundError:
                return None
        return None

    def _refuse_linked_folders(self, target: Path) -> None:
        linked = self._linked_folder(target)
        if linked is not None:
            raise PublishError(
                self.name,
                f"{linked} is a symbolic link: mirror never writes through one "
                "(remove it, or run publish --gc)",
            )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the folder's exclusive lock (threads and processes alike)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    # -- plumbing ------------------------------------------------------------------------

    async def _run(self, func: Callable[..., T], *args: object, timed: bool = True) -> T:
        """Run a blocking call on the pool; OSError becomes a PublishError."""
        try:
            return await self._in_thread(func, *args, timed=timed)
        except OSError as exc:
            raise self._translate(exc) from exc

    def _file(self, path: str) -> Path:
        self._check_open()
        return self.root / check_object_path(self.name, path)

    def _shown(self, target: Path) -> str:
        return target.relative_to(self.root).as_posix()

    def _too_large(self, target: Path, max_bytes: int) -> ObjectTooLargeError:
        return ObjectTooLargeError(
            self.name, f"{self._shown(target)} is larger than {max_bytes} bytes"
        )

    def _translate(self, exc: OSError) -> PublishError:
        """The PublishError for a failed file operation in the mirror's folder."""
        reason = f"{exc.strerror or exc} ({exc.filename or self.root})"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return MirrorAccessError(self.name, reason)
        if exc.errno in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST):
            return PublishError(self.name, f"a file and a folder collide: {reason}")
        return MirrorUnreachableError(self.name, reason)


def _sibling(target: Path) -> Path:
    """Where the gzip of `target` lives (nginx's gzip_static looks there)."""
    return target.with_name(target.name + GZIP_SUFFIX)


def _raise(exc: OSError) -> None:
    raise exc


def _is_listable(target: Path) -> bool:
    """A regular file or a symbolic link (to anything); not a folder, FIFO, socket, ..."""
    try:
        mode = target.lstat().st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) or stat.S_ISLNK(mode)


def _open_regular(target: Path) -> int | None:
    """A read descriptor on `target` if it is a regular file; None if absent or not a
    file (O_NONBLOCK: opening a FIFO must not wait for a writer)."""
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symbolic link: never followed
            return None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def _file_sha256(target: Path) -> str | None:
    """The sha256 hex of the regular file at `target`, or None when there is none."""
    fd = _open_regular(target)
    if fd is None:
        return None
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
