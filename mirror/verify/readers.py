"""Readers of one copy of the edition, file by file: a local folder or a mirror's URL.

The I/O seam is `EditionReader` (`read_into` one file, optionally `list_files`), with a
folder and an HTTP implementation; aiohttp's exceptions become TargetError in one place,
`map_http_errors` (after mirror.http_errors, as the origin client); retries follow
mirror.retry. The HTTP reader follows a redirect only when the target, normalised
as a server would (escapes of unreserved characters decoded, dot segments resolved),
stays under the mirror's base URL, and holds each body to a minimum rate (TooSlowError).
It asks for gzip, as a browser does, and checks the decoded bytes: a mirror storing
gzip (S3 with Content-Encoding: gzip, nginx's gzip_static) is checked in the form its
readers get, a plain one as it is; `max_bytes` bounds the decoded bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import os
import re
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp

from mirror.config import mirror_key
from mirror.errors import (
    TargetError,
    TooSlowError,
    VerifyError,
)
from mirror.fetch.urls import UNRESERVED, remove_dot_segments, with_slash
from mirror.http_errors import TimeLimits, translate_error
from mirror.http_session import OneSession
from mirror.retry import Clock, RetryPolicy, Sleep, with_retries

CHUNK_BYTES = 1024 * 1024  # bytes read from a file at a time
HTTP_CHUNK_BYTES = 64 * 1024  # bytes read from a response at a time
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
HIDDEN_SEPARATORS = frozenset({"2F", "5C", "00"})  # "/", "\\" and NUL, escaped in a path
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
ABSENT_STATUSES = frozenset({404, 410})
FORBIDDEN_STATUS = 403  # S3's answer for a missing object of a public bucket, and a private one's
T = TypeVar("T")


class ReadOutcome(enum.Enum):
    """How reading one file ended."""

    READ = "read"  # every byte went to the sink
    ABSENT = "absent"  # no such file (404/410, ENOENT, not a regular file)
    FORBIDDEN = "forbidden"  # 403: absent for a reader (status tells a private bucket by it)
    TOO_LARGE = "too large"  # more than max_bytes: reading stopped there

    @property
    def absent(self) -> bool:
        """Whether the file is not there for a reader (403 counts as absent)."""
        return self in (ReadOutcome.ABSENT, ReadOutcome.FORBIDDEN)


Sink = Callable[[bytes], None]


@dataclass(frozen=True)
class Listing:
    """What a folder holds, as relative "/"-separated paths."""

    files: list[str]  # everything but folders and symbolic links
    symlinks: list[str]  # symbolic links (to files or folders), never followed


class EditionReader(Protocol):
    """One copy of the edition, read file by file."""

    concurrency: int  # files read at once

    async def retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()` (which reads), tried again as this reader's retry policy says."""
        ...

    async def read_into(self, path: str, sink: Sink, *, max_bytes: int) -> ReadOutcome:
        """Stream the file at `path` (a checked edition path) into `sink`, chunk by chunk.

        Never passes more than `max_bytes` to `sink`. The sink may be called from a
        worker thread. Raises TargetError when the copy cannot be read (retryable set
        when trying again may help).
        """
        ...

    async def list_files(self) -> Listing | None:
        """Every file and symbolic link, or None when it cannot list."""
        ...


class FolderReader:
    """An edition in a local folder."""

    concurrency = 8

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise TargetError(f"{root}: no such folder")
        self._root = root

    async def retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()` once: a local folder that fails will fail again."""
        return await attempt()

    async def read_into(self, path: str, sink: Sink, *, max_bytes: int) -> ReadOutcome:
        """Read the file in a worker thread (hashing there too, off the event loop)."""
        return await asyncio.to_thread(_read_file, self._root / path, sink, max_bytes)

    async def list_files(self) -> Listing:
        """Every file and symbolic link under the folder (links never followed)."""
        return await asyncio.to_thread(_walk, self._root)


def _read_file(path: Path, sink: Sink, max_bytes: int) -> ReadOutcome:
    """Stream one local file into `sink`; never blocks on a FIFO, never reads past the cap."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError):
        return ReadOutcome.ABSENT
    except OSError as exc:
        raise TargetError(f"{path}: cannot open: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return ReadOutcome.ABSENT
        if info.st_size > max_bytes:
            return ReadOutcome.TOO_LARGE
        return _pump(fd, sink, max_bytes)
    except OSError as exc:
        raise TargetError(f"{path}: cannot read: {exc.strerror}") from exc
    finally:
        os.close(fd)


def _pump(fd: int, sink: Sink, max_bytes: int) -> ReadOutcome:
    """Chunks of an open file into `sink` until its end, or past `max_bytes`."""
    total = 0
    while chunk := os.read(fd, min(CHUNK_BYTES, max_bytes - total + 1)):
        total += len(chunk)
        if total > max_bytes:
            return ReadOutcome.TOO_LARGE
        sink(chunk)
    return ReadOutcome.READ


def _walk(root: Path) -> Listing:
    """The files and symbolic links under `root`; TargetError when a folder is unreadable."""
    files: list[str] = []
    links: list[str] = []
    folders = [""]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(root / folder) as found:
                for entry in found:
                    path = folder + entry.name
                    if entry.is_symlink():
                        links.append(path)
                    elif entry.is_dir(follow_symlinks=False):
                        folders.append(path + "/")
                    else:
                        files.append(path)
        except OSError as exc:
            raise TargetError(f"{root / folder}: cannot list: {exc.strerror}") from exc
    return Listing(sorted(files), sorted(links))


@dataclass(frozen=True)
class HttpSettings:
    """Limits of the HTTP reader."""

    timeout_s: float = 120.0  # one request, from connecting to the last byte
    connect_timeout_s: float = 15.0
    read_timeout_s: float = 30.0  # between two reads
    concurrency: int = 8  # requests at once
    max_redirects: int = 3  # and each one must stay under the mirror's base URL
    retries: int = 2  # after a timeout, a refused connection, 429 or 5xx
    backoff_s: float = 0.25  # doubled each retry
    user_agent: str = "mirror-verify"
    # A body slower than this, averaged over each window once the grace (counted from
    # the answer's headers) is over, is TooSlowError; 0: no floor.
    min_bytes_per_s: float = 100.0
    rate_window_s: float = 30.0
    rate_grace_s: float = 10.0
    # what a timeout's message names: a setting (`mirrors[eu-1].timeout_s`) or, without a
    # config (`mirror verify URL`), the reader's own limit
    timeout_key: str = "the reader's request limit"
    connect_key: str = "the reader's connect limit"
    read_key: str = "the reader's read limit"

    def time_limits(self) -> TimeLimits:
        return TimeLimits(
            self.timeout_s, self.connect_timeout_s, self.read_timeout_s,
            self.timeout_key, self.connect_key, self.read_key,
        )  # fmt: skip

    def for_mirror(self, name: str, timeout_s: float) -> HttpSettings:
        """These settings with a configured mirror's `timeout_s` bounding connecting and
        each read (as it bounds the publisher's requests), named in a timeout's message."""
        key = mirror_key(name, "timeout_s")
        return replace(
            self, connect_timeout_s=timeout_s,
            read_timeout_s=timeout_s, connect_key=key, read_key=key,
        )  # fmt: skip


class HttpReader(OneSession):
    """An edition served at a base URL ("https://host/bucket/"); `async with` it."""

    def __init__(
        self,
        base_url: str,
        settings: HttpSettings | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        """`sleep` and `clock`: what waits between retries (tests pass fakes)."""
        self._base = normalised_url(checked_base_url(base_url))
        self._settings = settings or HttpSettings()
        self._limits = self._settings.time_limits()
        self.concurrency = self._settings.concurrency
        self._retry = RetryPolicy(self._settings.retries, self._settings.backoff_s)
        self._sleep = sleep
        self._clock = clock

    async def retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()`, tried again (mirror.retry) while its error is retryable."""
        return await with_retries(attempt, self._retry, sleep=self._sleep, clock=self._clock)

    async def read_into(self, path: str, sink: Sink, *, max_bytes: int) -> ReadOutcome:
        """GET base + path, following redirects only while they stay under the base URL."""
        url = self._base + path
        for _hop in range(self._settings.max_redirects + 1):
            session = self._open_session()
            async with (
                map_http_errors(url, self._limits),
                session.get(url, allow_redirects=False) as answer,
            ):
                if answer.status not in REDIRECT_STATUSES:
                    return await _read_answer(url, answer, sink, max_bytes, self._settings)
                url = self._redirect_target(url, answer.headers.get("Location", ""))
        raise TargetError(f"{url}: more than {self._settings.max_redirects} redirects")

    async def list_files(self) -> None:
        """A reader cannot list a bucket."""
        return None

    def _redirect_target(self, url: str, location: str) -> str:
        """Where a redirect leads, normalised; TargetError when that leaves the mirror's
        base URL, or is no URL at all."""
        if not location:
            raise TargetError(f"{url} redirects nowhere (no Location)")
        try:
            target = normalised_url(urljoin(url, location))
        except (TargetError, ValueError) as exc:
            raise TargetError(f"{url} redirects to {location[:200]!r}, not a URL: {exc}") from exc
        if not target.startswith(self._base):
            raise TargetError(f"{url} redirects to {target[:200]!r}, away from {self._base}")
        return target

    def _new_session(self) -> aiohttp.ClientSession:
        """One session: connection limit, time limits, gzip decoded (aiohttp's
        auto_decompress), no proxy from env."""
        settings = self._settings
        timeout = aiohttp.ClientTimeout(
            total=settings.timeout_s,
            sock_connect=settings.connect_timeout_s,
            sock_read=settings.read_timeout_s,
        )
        headers = {"User-Agent": settings.user_agent, "Accept-Encoding": "gzip"}
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=settings.concurrency),
            timeout=timeout,
            headers=headers,
            trust_env=False,
            auto_decompress=True,
        )


def checked_base_url(url: str) -> str:
    """A mirror's base URL: http(s), a host, no query or fragment, ending in "/"."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise TargetError(f"{url[:200]!r} is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"{url[:200]!r} is not an http(s) URL with a host")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise TargetError(f"{url[:200]!r}: a mirror's URL has no query, fragment or user")
    return with_slash(url)


def normalised_url(url: str) -> str:
    """`url` as a server resolves it, to compare with a base URL: scheme and host in lower
    case, no default port, escapes of unreserved characters decoded (others upper-cased),
    dot segments resolved (RFC 3986, 6.2.2), no fragment.

    TargetError for what is not an http(s) URL with a host, has user info, or hides a
    "/", "\\" or NUL in an escape (or a raw backslash) in its path.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"{url[:200]!r} is not a URL: {exc}") from exc
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in DEFAULT_PORTS or not host or "@" in parts.netloc:
        raise TargetError(f"{url[:200]!r} is not an http(s) URL with a host and no user")
    host = f"[{host}]" if ":" in host else host
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = remove_dot_segments(_decode_unreserved(parts.path or "/", url))
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def _decode_unreserved(path: str, url: str) -> str:
    """`path` with escaped unreserved characters decoded and other escapes upper-cased."""
    if "\\" in path:
        raise TargetError(f"{url[:200]!r}: a backslash in the path")

    def decoded(match: re.Match[str]) -> str:
        code = match[1].upper()
        if code in HIDDEN_SEPARATORS:
            raise TargetError(f"{url[:200]!r}: an escaped separator (%{code}) in the path")
        character = chr(int(code, 16))
        return character if character in UNRESERVED else "%" + code

    return _ESCAPE.sub(decoded, path)


async def _read_answer(
    url: str, answer: aiohttp.ClientResponse, sink: Sink, max_bytes: int, settings: HttpSettings
) -> ReadOutcome:
    """A final (non-redirect) answer's body into `sink`, capped at `max_bytes`."""
    if answer.status in ABSENT_STATUSES:
        return ReadOutcome.ABSENT
    if answer.status == FORBIDDEN_STATUS:
        return ReadOutcome.FORBIDDEN
    if answer.status != 200:
        error = TargetError(f"{url}: HTTP {answer.status}")
        error.retryable = answer.status == 429 or answer.status >= 500
        raise error
    declared = None if answer.headers.get("Content-Encoding") else answer.content_length
    if declared is not None and declared > max_bytes:
        answer.close()
        return ReadOutcome.TOO_LARGE
    floor = RateFloor(url, settings, asyncio.get_running_loop().time())
    total = 0
    try:
        while chunk := await floor.next_chunk(answer.content):
            total += len(chunk)
            if total > max_bytes:
                answer.close()  # drop the connection: the rest is never downloaded
                return ReadOutcome.TOO_LARGE
            sink(chunk)
    except TooSlowError:
        answer.close()
        raise
    return ReadOutcome.READ


class RateFloor:
    """The minimum rate of one body: the bytes of each window (the first one starting
    when the grace period ends) must average `min_bytes_per_s`, else TooSlowError."""

    def __init__(self, url: str, settings: HttpSettings, started_s: float) -> None:
        self._url = url
        self._settings = settings
        self._window_bytes = 0
        first_end_s = started_s + settings.rate_grace_s + settings.rate_window_s
        self.window_end_s = first_end_s if settings.min_bytes_per_s > 0 else math.inf

    async def next_chunk(self, content: aiohttp.StreamReader) -> bytes:
        """The next chunk of the body (b"" at its end), judging each window as it ends."""
        loop = asyncio.get_running_loop()
        while True:
            timer = asyncio.timeout_at(None if math.isinf(self.window_end_s) else self.window_end_s)
            try:
                async with timer:
                    chunk = await content.read(HTTP_CHUNK_BYTES)
            except TimeoutError:
                if not timer.expired():
                    raise  # aiohttp's own read timeout
                self.judge(loop.time())
                continue
            now_s = loop.time()
            self.judge(now_s)
            if now_s >= self.window_end_s - self._settings.rate_window_s:  # not in the grace
                self._window_bytes += len(chunk)
            return chunk

    def judge(self, now_s: float) -> None:
        """Close every window that ended by `now_s`; TooSlowError for one under the floor."""
        settings = self._settings
        while now_s >= self.window_end_s:
            if self._window_bytes < settings.min_bytes_per_s * settings.rate_window_s:
                raise TooSlowError(
                    f"{self._url}: {self._window_bytes} bytes in {settings.rate_window_s:g} s, "
                    f"under the floor of {settings.min_bytes_per_s:g} bytes/s"
                )
            self._window_bytes = 0
            self.window_end_s += settings.rate_window_s


@contextlib.asynccontextmanager
async def map_http_errors(url: str, limits: TimeLimits | None = None) -> AsyncIterator[None]:
    """aiohttp's, ssl's and asyncio's exceptions as TargetError, `from` the original, and
    retryable or not as mirror.http_errors decides (a refused certificate is not)."""
    try:
        yield
    except TargetError:
        raise
    except Exception as exc:
        failure = translate_error(exc, url, limits)
        if failure is None:
            raise
        error = TargetError(f"{url}: {failure.reason}")
        error.retryable = failure.retryable
        raise error from exc


@contextlib.asynccontextmanager
async def open_reader(
    target: str, settings: HttpSettings | None = None
) -> AsyncIterator[EditionReader]:
    """The reader for TARGET: an http(s) URL, else a local folder."""
    if target.startswith(("http://", "https://")):
        async with HttpReader(target, settings) as reader:
            yield reader
    elif "://" in target:
        raise TargetError(f"{target[:200]!r}: only http(s) URLs and folders can be verified")
    else:
        yield FolderReader(Path(target))


async def read_bytes(
    reader: EditionReader, path: str, *, max_bytes: int
) -> tuple[ReadOutcome, bytes]:
    """How reading a small file ended, and its bytes (b"" unless READ), retried as the
    reader says."""
    chunks: list[bytes] = []

    async def attempt() -> ReadOutcome:
        chunks.clear()
        return await reader.read_into(path, chunks.append, max_bytes=max_bytes)

    outcome = await reader.retrying(attempt)
    return outcome, b"".join(chunks) if outcome is ReadOutcome.READ else b""


async def read_small(
    reader: EditionReader, path: str, *, max_bytes: int, error: type[VerifyError]
) -> bytes | None:
    """A small file's bytes (None when absent); `error` when over `max_bytes`."""
    outcome, data = await read_bytes(reader, path, max_bytes=max_bytes)
    if outcome is ReadOutcome.TOO_LARGE:
        raise error(f"{path} is over the {max_bytes}-byte limit")
    return None if outcome.absent else data


async def read_required(
    reader: EditionReader, path: str, *, max_bytes: int, error: type[VerifyError]
) -> bytes:
    """As `read_small`, with `error` when the file is absent."""
    data = await read_small(reader, path, max_bytes=max_bytes, error=error)
    if data is None:
        raise error(f"{path} is missing")
    return data
