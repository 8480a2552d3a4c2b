"""`mirror verify`: check one copy of the edition, a local folder or a mirror's URL.

`verify_edition(target, key, now=..., is_root=...)` reads the `current` pointer (and
`pending`, mid-publish), then, in this order (`verify_target` is the same for the
command line, telling a root key from a signing key by keys.json's signature):

1. with a root key (`is_root`): keys.json, certified by the root, names the signing keys;
   else `key` is the signing key itself;
2. each manifest's signature, its trusted comment against the manifest, the version
   against its pointer, the epoch against keys.json, the expiry against `now`;
3. freshness (with a root key): keys.json's serial is not below `--min-serial` nor, for
   a mirror's URL, below what the other mirrors listed in the signed mirrors.json serve
   (mirror.verify.freshness); then rollback: the version (and keys.json's serial) is not older
   than the newest seen for this key, remembered in `<state_dir>/seen.json`;
4. each sub-manifest against its hash;
5. every listed file's size and SHA-256, streamed (bounded memory, capped at the listed
   size + 1 bytes); while `pending` exists a file may match either manifest;
6. each article page's detached signature against the page (its trusted comment names
   the page's path);
7. for folders, files no manifest lists (`extra`: only manifest and part names may be in
   `manifests/`, a directory mirror's lock and temp files only at the top) and symbolic
   links, which are never followed (`symlinks`: a web server might follow them out).

Steps 1-4, and a copy that cannot be read, raise a VerifyError subclass (errors.py);
per-file problems land in the `VerifyReport` (ok=False). The whole check of one copy has
a deadline (DeadlineError), and over HTTP each body a minimum rate (TooSlowError), so a
trickling mirror cannot hold a run.

The I/O seam is `EditionReader` (`read_into` one file, optionally `list_files`), with a
folder and an HTTP implementation; aiohttp's exceptions become TargetError in one place,
`map_http_errors`. The HTTP reader follows a redirect only when the target, normalised
as a server would (escapes of unreserved characters decoded, dot segments resolved),
stays under the mirror's base URL. Everything else here is checking.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import json
import math
import os
import re
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
import platformdirs

from mirror.atomic import write_atomic
from mirror.bounded import map_bounded
from mirror.errors import (
    DeadlineError,
    ExpiredError,
    KeyCertificateError,
    ManifestError,
    RollbackError,
    SignatureError,
    TargetError,
    TooSlowError,
    VerifyError,
)
from mirror.fetch.urls import UNRESERVED, remove_dot_segments
from mirror.trust import certificate, minisign
from mirror.trust.manifest import (
    MAX_MANIFEST_BYTES,
    MAX_PART_BYTES,
    MAX_POINTER_BYTES,
    UNCOVERED_FILES,
    FileEntry,
    Manifest,
    PartRef,
    SubManifest,
    check_manifest_comment,
    check_part,
    format_time,
    is_article_page,
    is_housekeeping,
    is_manifest_file,
    manifest_entries,
    manifest_path,
    parse_manifest,
    parse_page_comment,
    parse_pointer,
    signature_path,
)
from mirror.verify.freshness import (
    MAX_MIRRORS_JSON_BYTES,
    PEER_DEADLINE_S,
    PeerKeys,
    check_serial,
    peer_urls,
)

MAX_SIGNATURE_BYTES = minisign.MAX_SIGNATURE_FILE_BYTES  # bytes, one .minisig
MAX_KEYS_BYTES = certificate.MAX_CERTIFICATE_BYTES  # bytes, keys.json
MAX_SEEN_BYTES = 1_000_000  # bytes, the rollback memory
CHUNK_BYTES = 1024 * 1024  # bytes read from a file at a time
HTTP_CHUNK_BYTES = 64 * 1024  # bytes read from a response at a time
SEEN_FILE = "seen.json"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_DEADLINE_S = 300.0  # seconds, checking one copy (a folder or a mirror) end to end
DEFAULT_PORTS = {"http": 80, "https": 443}
HIDDEN_SEPARATORS = frozenset({"2F", "5C", "00"})  # "/", "\\" and NUL, escaped in a path
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
ABSENT_STATUSES = frozenset({403, 404, 410})  # S3 answers 403 for a missing public object

T = TypeVar("T")


# ---------------------------------------------------------------- the report


@dataclass(frozen=True)
class VerifyReport:
    """What a verification found; `ok` only when every file matched and nothing is extra."""

    ok: bool
    version: int  # the current manifest's
    expires: datetime
    missing: list[str]  # listed, but absent
    tampered: list[str]  # present, matching no manifest (size or hash)
    extra: list[str]  # folders only: present, listed by no manifest
    errors: list[str]  # other per-file problems: article page signatures
    pending: int | None = None  # the pending manifest's version, mid-publish
    keys_serial: int | None = None  # keys.json's, when checked with the root key
    keys_expires: datetime | None = None
    peers: list[PeerKeys] = field(default_factory=list)  # other mirrors' keys.json
    symlinks: list[str] = field(default_factory=list)  # folders only: links, never followed

    def to_json(self) -> dict[str, Any]:
        """The `--json` document."""
        return {
            "ok": self.ok,
            "version": self.version,
            "expires": format_time(self.expires),
            "pending": self.pending,
            "missing": self.missing,
            "tampered": self.tampered,
            "extra": self.extra,
            "symlinks": self.symlinks,
            "errors": self.errors,
            "keys_serial": self.keys_serial,
            "keys_expires": format_time(self.keys_expires) if self.keys_expires else None,
            "peers": [peer.to_json() for peer in self.peers],
        }

    def keys_summary(self) -> str:
        """One line for people: keys.json's serial and expiry, and the other mirrors'."""
        expires = format_time(self.keys_expires) if self.keys_expires else "?"
        agreed = sum(1 for peer in self.peers if peer.serial is not None)
        others = f"; {agreed} of {len(self.peers)} other mirrors confirm it is the newest"
        return f"keys.json serial {self.keys_serial} (expires {expires}){others}"

    def summary(self) -> str:
        """One line for people: the version, its expiry, and what was found."""
        head = f"version {self.version} (expires {format_time(self.expires)})"
        if self.pending is not None:
            head += f", publishing {self.pending}"
        if self.ok:
            return f"{head}: OK, every file matches"
        counts = (
            f"{len(self.missing)} missing, {len(self.tampered)} tampered, "
            f"{len(self.extra)} extra, {len(self.errors)} other problems"
        )
        links = f", {len(self.symlinks)} symbolic links" if self.symlinks else ""
        return f"{head}: FAILED, {counts}{links}"


# ---------------------------------------------------------------- the reader seam


class ReadOutcome(enum.Enum):
    """How reading one file ended."""

    READ = "read"  # every byte went to the sink
    ABSENT = "absent"  # no such file (404/403/410, ENOENT, not a regular file)
    TOO_LARGE = "too large"  # more than max_bytes: reading stopped there


Sink = Callable[[bytes], None]


@dataclass(frozen=True)
class Listing:
    """What a folder holds, as relative "/"-separated paths."""

    files: list[str]  # everything but folders and symbolic links
    symlinks: list[str]  # symbolic links (to files or folders), never followed


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how soon, a read that failed with a retryable error is tried again."""

    retries: int = 0
    backoff_s: float = 0.0  # doubled each retry


class EditionReader(Protocol):
    """One copy of the edition, read file by file."""

    concurrency: int  # files read at once
    retry: RetryPolicy

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
    retry = RetryPolicy()

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise TargetError(f"{root}: no such folder")
        self._root = root

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


class HttpReader:
    """An edition served at a base URL ("https://host/bucket/"); `async with` it."""

    def __init__(self, base_url: str, settings: HttpSettings | None = None) -> None:
        self._base = normalised_url(checked_base_url(base_url))
        self._settings = settings or HttpSettings()
        self.concurrency = self._settings.concurrency
        self.retry = RetryPolicy(self._settings.retries, self._settings.backoff_s)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        """Open the session (once)."""
        if self._closed or self._session is not None:
            raise RuntimeError("an HttpReader can be opened only once")
        self._session = self._new_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the session; the reader cannot be used again."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def read_into(self, path: str, sink: Sink, *, max_bytes: int) -> ReadOutcome:
        """GET base + path, following redirects only while they stay under the base URL."""
        url = self._base + path
        for _hop in range(self._settings.max_redirects + 1):
            session = self._open()
            async with map_http_errors(url), session.get(url, allow_redirects=False) as answer:
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
        """One session: connection limit, time limits, no compression, no proxy from env."""
        settings = self._settings
        timeout = aiohttp.ClientTimeout(
            total=settings.timeout_s,
            sock_connect=settings.connect_timeout_s,
            sock_read=settings.read_timeout_s,
        )
        headers = {"User-Agent": settings.user_agent, "Accept-Encoding": "identity"}
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=settings.concurrency),
            timeout=timeout,
            headers=headers,
            trust_env=False,
        )

    def _open(self) -> aiohttp.ClientSession:
        """The session, or RuntimeError when the reader is not open."""
        if self._session is None:
            raise RuntimeError("HttpReader is not open (use `async with`)")
        return self._session


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
    return url if url.endswith("/") else url + "/"


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
    if answer.status != 200:
        error = TargetError(f"{url}: HTTP {answer.status}")
        error.retryable = answer.status == 429 or answer.status >= 500
        raise error
    declared = answer.content_length
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
async def map_http_errors(url: str) -> AsyncIterator[None]:
    """aiohttp's and the socket's exceptions as TargetError (retryable), `from` the original."""
    try:
        yield
    except TargetError:
        raise
    except TimeoutError as exc:
        raise _retryable(TargetError(f"{url}: time limit passed")) from exc
    except aiohttp.ClientConnectorError as exc:
        raise _retryable(TargetError(f"{url}: unreachable: {exc.strerror or exc}")) from exc
    except (aiohttp.ClientError, OSError) as exc:
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        raise _retryable(TargetError(f"{url}: cannot read: {reason}")) from exc


def _retryable(error: TargetError) -> TargetError:
    """`error`, marked as worth another try."""
    error.retryable = True
    return error


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


# ---------------------------------------------------------------- reading helpers


async def with_retries(attempt: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """`attempt()`, tried again after a backoff while its TargetError is retryable."""
    for number in range(policy.retries):
        try:
            return await attempt()
        except TargetError as error:
            if not error.retryable:
                raise
        await asyncio.sleep(policy.backoff_s * 2**number)
    return await attempt()


async def read_small(
    reader: EditionReader, path: str, *, max_bytes: int, error: type[VerifyError]
) -> bytes | None:
    """A small file's bytes (None when absent); `error` when over `max_bytes`."""
    chunks: list[bytes] = []

    async def attempt() -> ReadOutcome:
        chunks.clear()
        return await reader.read_into(path, chunks.append, max_bytes=max_bytes)

    outcome = await with_retries(attempt, reader.retry)
    if outcome is ReadOutcome.TOO_LARGE:
        raise error(f"{path} is over the {max_bytes}-byte limit")
    return None if outcome is ReadOutcome.ABSENT else b"".join(chunks)


async def read_required(
    reader: EditionReader, path: str, *, max_bytes: int, error: type[VerifyError]
) -> bytes:
    """As `read_small`, with `error` when the file is absent."""
    data = await read_small(reader, path, max_bytes=max_bytes, error=error)
    if data is None:
        raise error(f"{path} is missing")
    return data


# ---------------------------------------------------------------- keys and rollback


@dataclass(frozen=True)
class Trust:
    """Which keys may sign: the signing key itself, or those the root certifies."""

    anchor: minisign.PublicKey  # the key verify was given
    certificate: certificate.KeyCertificate | None = None  # when the anchor is a root

    def signer(self, key_id: bytes, now: datetime) -> minisign.PublicKey:
        """The key that must have made a signature by `key_id` (KeyCertificateError)."""
        if self.certificate is None:
            return self.anchor  # sign.verify names a signature by another key
        return self.certificate.signing_key_for(key_id, now)


async def load_trust(
    reader: EditionReader, key: minisign.PublicKey, *, is_root: bool, now: datetime
) -> Trust:
    """The trust to verify with: `key`, or keys.json checked against the root `key`."""
    if not is_root:
        return Trust(key)
    data, signature = await read_keys_files(reader)
    return Trust(key, certificate.check_certificate(key, data, signature, now=now))


async def read_keys_files(reader: EditionReader) -> tuple[bytes, bytes]:
    """keys.json and its signature, bounded (KeyCertificateError when either is absent)."""
    data = await read_required(
        reader, certificate.KEYS_FILE, max_bytes=MAX_KEYS_BYTES, error=KeyCertificateError
    )
    signature = await read_required(
        reader,
        certificate.KEYS_SIGNATURE_FILE,
        max_bytes=MAX_SIGNATURE_BYTES,
        error=KeyCertificateError,
    )
    return data, signature


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


# ---------------------------------------------------------------- manifests


def check_signed_manifest(
    manifest: Manifest,
    *,
    pointer: int,
    comment: str,
    signer_id: bytes,
    epoch: int | None,
    now: datetime,
) -> None:
    """A signed manifest's fields against its pointer, signature, keys.json and the clock."""
    if manifest.version != pointer:
        raise ManifestError(f"{manifest_path(pointer)} holds version {manifest.version}")
    if manifest.key_id != signer_id:
        raise SignatureError(
            f"manifest {pointer} names key {minisign.key_id_hex(manifest.key_id)} but was "
            f"signed by {minisign.key_id_hex(signer_id)}"
        )
    check_manifest_comment(manifest, comment)
    if epoch is not None and manifest.epoch < epoch:
        raise RollbackError(f"manifest {pointer} is of epoch {manifest.epoch}, before {epoch}")
    if epoch is not None and manifest.epoch > epoch:
        raise KeyCertificateError(f"manifest {pointer}: epoch {manifest.epoch} not granted")
    if now >= manifest.expires:
        raise ExpiredError(
            f"manifest {pointer} expired at {format_time(manifest.expires)} "
            f"(now {format_time(now)}): this copy may be frozen"
        )


async def load_manifest(
    reader: EditionReader, pointer: int, trust: Trust, now: datetime
) -> Manifest:
    """Manifest `pointer`, its signature and fields checked."""
    path = manifest_path(pointer)
    data = await read_required(reader, path, max_bytes=MAX_MANIFEST_BYTES, error=ManifestError)
    signature = await read_required(
        reader, signature_path(path), max_bytes=MAX_SIGNATURE_BYTES, error=SignatureError
    )
    signer_id = minisign.parse_signature(signature).key_id
    comment = minisign.verify(trust.signer(signer_id, now), data, signature)
    manifest = parse_manifest(data)
    epoch = trust.certificate.epoch if trust.certificate else None
    check_signed_manifest(
        manifest, pointer=pointer, comment=comment, signer_id=signer_id, epoch=epoch, now=now
    )
    return manifest


async def load_pointer(reader: EditionReader, name: str) -> int | None:
    """The version `current` or `pending` names, None when the file is absent."""
    data = await read_small(reader, name, max_bytes=MAX_POINTER_BYTES, error=ManifestError)
    return None if data is None else parse_pointer(data)


async def load_entries(
    reader: EditionReader, manifests: Iterable[Manifest]
) -> list[dict[str, FileEntry]]:
    """Each manifest's entries by path, from its parts (each read once, hash checked)."""
    manifests = list(manifests)
    refs = list({ref.sha256: ref for m in manifests for ref in m.parts}.values())

    async def load(ref: PartRef) -> SubManifest:
        data = await read_required(reader, ref.path, max_bytes=MAX_PART_BYTES, error=ManifestError)
        return check_part(ref, data)

    loaded = await map_bounded(load, refs, limit=reader.concurrency)
    parts = {ref.sha256: part for ref, part in zip(refs, loaded, strict=True)}
    return [manifest_entries(parts[ref.sha256] for ref in m.parts) for m in manifests]


def expected_files(entries: Iterable[Mapping[str, FileEntry]]) -> dict[str, tuple[FileEntry, ...]]:
    """Every listed path and the entries it may match (one per manifest listing it)."""
    expected: dict[str, tuple[FileEntry, ...]] = {}
    for listing in entries:
        for path, entry in listing.items():
            known = expected.get(path, ())
            expected[path] = known if entry in known else (*known, entry)
    return expected


# ---------------------------------------------------------------- files


class FileDigest:
    """A file's size, SHA-256 and (when asked) BLAKE2b-512 and bytes, as it streams past."""

    def __init__(self, *, blake2b: bool, keep_bytes: int) -> None:
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._blake2b = minisign.new_hasher() if blake2b else None
        self._keep_bytes = keep_bytes  # keep the content of files up to this size
        self._kept: list[bytes] = []

    def update(self, chunk: bytes) -> None:
        """Take the next chunk."""
        self.size += len(chunk)
        self._sha256.update(chunk)
        if self._blake2b is not None:
            self._blake2b.update(chunk)
        if self.size <= self._keep_bytes:
            self._kept.append(chunk)

    def matches(self, entry: FileEntry) -> bool:
        """Whether what streamed past is the file `entry` lists."""
        return self.size == entry.size and self._sha256.hexdigest() == entry.sha256

    @property
    def blake2b(self) -> bytes | None:
        """The BLAKE2b-512 digest minisign signs, when it was asked for."""
        return self._blake2b.digest() if self._blake2b is not None else None

    @property
    def content(self) -> bytes | None:
        """The file's bytes, when it was small enough to keep."""
        return b"".join(self._kept) if self.size <= self._keep_bytes else None


class FileStatus(enum.Enum):
    """What one listed file turned out to be."""

    OK = "ok"
    MISSING = "missing"
    TAMPERED = "tampered"


@dataclass(frozen=True)
class FileResult:
    """One listed file, checked."""

    path: str
    status: FileStatus
    digest: FileDigest | None = field(default=None, compare=False)


async def check_file(
    reader: EditionReader, path: str, candidates: tuple[FileEntry, ...]
) -> FileResult:
    """Stream one file and compare it with the entries it may match."""
    is_signature = path.endswith(".minisig")
    holder: list[FileDigest] = []

    async def attempt() -> ReadOutcome:
        holder[:] = [
            FileDigest(
                blake2b=is_article_page(path),
                keep_bytes=MAX_SIGNATURE_BYTES if is_signature else 0,
            )
        ]
        limit = max(entry.size for entry in candidates)
        return await reader.read_into(path, holder[0].update, max_bytes=limit)

    outcome = await with_retries(attempt, reader.retry)
    digest = holder[0]
    if outcome is ReadOutcome.ABSENT:
        return FileResult(path, FileStatus.MISSING)
    if outcome is ReadOutcome.READ and any(digest.matches(entry) for entry in candidates):
        return FileResult(path, FileStatus.OK, digest)
    return FileResult(path, FileStatus.TAMPERED)


def page_signature_errors(
    results: Mapping[str, FileResult],
    trust: Trust,
    now: datetime,
    listings: Sequence[Mapping[str, FileEntry]] = (),
) -> list[str]:
    """Problems with article pages' detached signatures (of pages that matched).

    Mid-publish a page and its signature may each match a different manifest (current
    and pending): both are then vouched for by a signed manifest, and the pair is not
    checked against each other until they belong to the same one.
    """
    errors: list[str] = []
    for path, result in sorted(results.items()):
        if not is_article_page(path) or result.status is not FileStatus.OK:
            continue
        signature = results.get(signature_path(path))
        if signature is None:
            errors.append(f"{path}: no signature listed next to the page")
        elif signature.status is FileStatus.OK and same_listing(result, signature, listings):
            problem = page_signature_error(path, result, signature, trust, now)
            errors.extend([problem] if problem else [])
    return errors


def same_listing(
    page: FileResult, signature: FileResult, listings: Sequence[Mapping[str, FileEntry]]
) -> bool:
    """Some manifest lists both the page and its signature as they are now."""
    if not listings:
        return True
    assert page.digest is not None and signature.digest is not None
    for listing in listings:
        page_entry, signature_entry = listing.get(page.path), listing.get(signature.path)
        if page_entry and signature_entry:
            matched = page.digest.matches(page_entry), signature.digest.matches(signature_entry)
            if all(matched):
                return True
    return False


def page_signature_error(
    path: str, page: FileResult, signature: FileResult, trust: Trust, now: datetime
) -> str | None:
    """Why a page's signature does not vouch for it, or None when it does."""
    assert page.digest is not None and signature.digest is not None
    content, digest = signature.digest.content, page.digest.blake2b
    if content is None or digest is None:
        return f"{signature.path}: over {MAX_SIGNATURE_BYTES} bytes"
    try:
        signer = trust.signer(minisign.parse_signature(content).key_id, now)
        comment = parse_page_comment(minisign.verify_digest(signer, digest, content))
    except VerifyError as exc:
        return f"{signature.path}: {exc}"
    if comment.path != path:
        return f"{signature.path}: signs {comment.path}, not {path}"
    return None


def extra_files(found: Iterable[str], expected: Mapping[str, object]) -> list[str]:
    """Files present that no manifest lists, other than the pointers, manifest and part
    names under `manifests/`, and a directory mirror's own lock and temp files at the top."""
    return sorted(path for path in found if path not in expected and not is_unlisted_own(path))


def is_unlisted_own(path: str) -> bool:
    """Whether `path` is one of an edition folder's files that no manifest lists."""
    return path in UNCOVERED_FILES or is_manifest_file(path) or is_housekeeping(path)


# ---------------------------------------------------------------- the whole check


async def verify_edition(
    target: str,
    key: minisign.PublicKey,
    *,
    now: datetime,
    state_dir: Path | None = None,
    is_root: bool,
    http: HttpSettings | None = None,
    freshness: Freshness | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
) -> VerifyReport:
    """Check the copy of the edition at `target` (a folder or an http(s) URL).

    `key` is the root key when `is_root` (keys.json names the signing keys), else the
    signing key. `now` must be timezone-aware. Raises a VerifyError subclass when the
    copy cannot be trusted at all (DeadlineError past `deadline_s`); reports per-file
    problems.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    seen_path = (state_dir or default_state_dir()) / SEEN_FILE
    async with within_deadline(target, deadline_s), open_reader(target, http) as reader:
        return await _verify(
            reader, key, now=now, seen_path=seen_path, is_root=is_root,
            freshness=freshness or Freshness(),
        )  # fmt: skip


async def verify_target(
    target: str,
    key: str | minisign.PublicKey,
    *,
    now: datetime,
    state_dir: Path | None = None,
    http: HttpSettings | None = None,
    min_serial: int = 0,
    ask_peers: bool = True,
    deadline_s: float = DEFAULT_DEADLINE_S,
) -> VerifyReport:
    """As `verify_edition`, for the command line: the root or the signing key, told apart.

    `key` may be a .pub file, an "RW..." line or a PublicKey. It is taken as the root when
    it signed the copy's keys.json, else as the signing key (failing closed: a root key
    taken for a signing key matches no manifest signature). keys.json's serial must be
    `min_serial` or more and, for a mirror's URL (when `ask_peers`), no older than the
    other mirrors' (see mirror.verify.freshness).
    """
    public = key if isinstance(key, minisign.PublicKey) else minisign.read_public_key(key)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    seen_path = (state_dir or default_state_dir()) / SEEN_FILE
    is_url = target.startswith(("http://", "https://"))
    freshness = Freshness(min_serial, target if is_url and ask_peers else "")
    async with within_deadline(target, deadline_s), open_reader(target, http) as reader:
        is_root = await signed_keys_json(reader, public)
        return await _verify(
            reader, public, now=now, seen_path=seen_path, is_root=is_root, freshness=freshness
        )


@contextlib.asynccontextmanager
async def within_deadline(target: str, deadline_s: float) -> AsyncIterator[None]:
    """Run the body with a deadline of `deadline_s`; DeadlineError when it passes."""
    if not 0 < deadline_s < math.inf:
        raise ValueError(f"deadline_s must be positive and finite, not {deadline_s!r}")
    timer = asyncio.timeout(deadline_s)
    try:
        async with timer:
            yield
    except TimeoutError as exc:
        if not timer.expired():
            raise
        raise DeadlineError(
            f"{target[:200]}: not checked within the {deadline_s:g}-second deadline"
        ) from exc


async def signed_keys_json(reader: EditionReader, key: minisign.PublicKey) -> bool:
    """Whether the copy's keys.json signature names `key` (so `key` is the root)."""
    signature = await read_small(
        reader,
        certificate.KEYS_SIGNATURE_FILE,
        max_bytes=MAX_SIGNATURE_BYTES,
        error=KeyCertificateError,
    )
    if signature is None:
        return False
    try:
        return minisign.parse_signature(signature).key_id == key.key_id
    except SignatureError:
        return False


async def _verify(
    reader: EditionReader,
    key: minisign.PublicKey,
    *,
    now: datetime,
    seen_path: Path,
    is_root: bool,
    freshness: Freshness,
) -> VerifyReport:
    """The steps of `verify_edition` on an open reader."""
    current_version = await load_pointer(reader, "current")
    if current_version is None:
        raise TargetError("no `current` file: not an edition, or not published yet")
    pending_version = await load_pointer(reader, "pending")
    trust = await load_trust(reader, key, is_root=is_root, now=now)
    manifests = await _load_manifests(reader, trust, now, current_version, pending_version)
    listings = await load_entries(reader, manifests)
    peers = await check_freshness(reader, trust, listings, freshness, now)
    _check_and_remember(seen_path, trust, manifests[0])
    expected = expected_files(listings)
    paths = sorted(expected)
    checked = await map_bounded(
        lambda path: check_file(reader, path, expected[path]), paths, limit=reader.concurrency
    )
    results = {result.path: result for result in checked}
    found = await reader.list_files()
    errors = page_signature_errors(results, trust, now, listings)
    return _with_keys(_report(manifests, results, errors, found), trust, peers)


async def _load_manifests(
    reader: EditionReader, trust: Trust, now: datetime, current: int, pending: int | None
) -> list[Manifest]:
    """The current manifest, then the pending one when it is newer."""
    manifests = [await load_manifest(reader, current, trust, now)]
    if pending is not None and pending < current:
        raise RollbackError(f"`pending` names version {pending}, older than current {current}")
    if pending is not None and pending != current:
        manifests.append(await load_manifest(reader, pending, trust, now))
    return manifests


def _check_and_remember(path: Path, trust: Trust, current: Manifest) -> None:
    """Refuse a rollback against the memory, then remember the current state."""
    anchor = trust.anchor.key_id_hex
    serial = trust.certificate.serial if trust.certificate else 0
    now_seen = Seen(current.epoch, current.version, serial)
    check_rollback(load_seen(path).get(anchor, Seen()), now_seen)
    remember(path, anchor, now_seen)


def _report(
    manifests: Sequence[Manifest],
    results: Mapping[str, FileResult],
    errors: list[str],
    found: Listing | None,
) -> VerifyReport:
    """The report of a verification whose manifests held."""

    def having(status: FileStatus) -> list[str]:
        return sorted(path for path, result in results.items() if result.status is status)

    missing, tampered = having(FileStatus.MISSING), having(FileStatus.TAMPERED)
    extra = extra_files(found.files, results) if found is not None else []
    symlinks = list(found.symlinks) if found is not None else []
    return VerifyReport(
        ok=not (missing or tampered or extra or errors or symlinks),
        version=manifests[0].version,
        expires=manifests[0].expires,
        missing=missing,
        tampered=tampered,
        extra=extra,
        errors=errors,
        pending=manifests[1].version if len(manifests) > 1 else None,
        symlinks=symlinks,
    )


# ---------------------------------------------------------------- keys.json's freshness

MIRRORS_JSON = "mirrors.json"
PEER_HTTP = HttpSettings(
    timeout_s=15.0, connect_timeout_s=5.0, read_timeout_s=10.0, concurrency=2, retries=0
)  # reading another mirror's keys.json: short, one try


@dataclass(frozen=True)
class Freshness:
    """What keys.json's serial is checked against, beyond the rollback memory."""

    min_serial: int = 0  # the reader was told this serial (the digest prints it)
    own_url: str = ""  # the copy's mirror URL: ask the other mirrors it lists ("" no)
    http: HttpSettings = PEER_HTTP


async def check_freshness(
    reader: EditionReader,
    trust: Trust,
    listings: Sequence[Mapping[str, FileEntry]],
    freshness: Freshness,
    now: datetime,
) -> list[PeerKeys]:
    """The other mirrors' keys.json, read; StaleKeysError when this copy's is older than
    one of theirs or than `min_serial`. Nothing to compare without a root key."""
    if trust.certificate is None:
        if freshness.min_serial:
            raise KeyCertificateError(
                "--min-serial needs the root key: the key given did not sign this copy's "
                f"{certificate.KEYS_FILE}"
            )
        return []
    peers: list[PeerKeys] = []
    if freshness.own_url:
        listed = await read_listed(reader, MIRRORS_JSON, listings)
        urls = peer_urls(listed, freshness.own_url) if listed else []
        peers = await read_peers(urls, trust.anchor, now, freshness.http)
    check_serial(trust.certificate.serial, peers, min_serial=freshness.min_serial)
    return peers


async def read_listed(
    reader: EditionReader, path: str, listings: Sequence[Mapping[str, FileEntry]]
) -> bytes | None:
    """A small file's bytes when they are what a manifest lists, else None (a tampered
    file is reported by the file check)."""
    candidates = [listing[path] for listing in listings if path in listing]
    if not candidates or max(entry.size for entry in candidates) > MAX_MIRRORS_JSON_BYTES:
        return None
    size = max(entry.size for entry in candidates)
    try:
        data = await read_small(reader, path, max_bytes=size, error=ManifestError)
    except ManifestError:
        return None
    digest = FileDigest(blake2b=False, keep_bytes=0)
    digest.update(data or b"")
    matched = data is not None and any(digest.matches(entry) for entry in candidates)
    return data if matched else None


async def read_peers(
    urls: Sequence[str], root: minisign.PublicKey, now: datetime, http: HttpSettings
) -> list[PeerKeys]:
    """Each URL's keys.json, at once."""
    return list(await asyncio.gather(*(read_peer(url, root, now, http) for url in urls)))


async def read_peer(
    url: str, root: minisign.PublicKey, now: datetime, http: HttpSettings
) -> PeerKeys:
    """One other mirror's keys.json: its serial when the root signed it (even expired:
    the serial is still the root's word that a newer certificate exists)."""
    try:
        async with asyncio.timeout(PEER_DEADLINE_S), HttpReader(url, http) as peer:
            data, signature = await read_keys_files(peer)
        root_certificate = certificate.read_signed_certificate(root, data, signature)
    except TimeoutError:
        return PeerKeys(url, error=f"no answer within {PEER_DEADLINE_S:g} s")
    except VerifyError as exc:
        return PeerKeys(url, error=str(exc)[:300])
    expires = certificate.format_time(root_certificate.expires)
    note = (
        f"its {certificate.KEYS_FILE} expired at {expires}"
        if now >= root_certificate.expires
        else ""
    )
    return PeerKeys(url, root_certificate.serial, expires, note)


def _with_keys(report: VerifyReport, trust: Trust, peers: list[PeerKeys]) -> VerifyReport:
    """The report with keys.json's serial and expiry, and what the other mirrors serve."""
    if trust.certificate is None:
        return report
    certificate = trust.certificate
    return replace(
        report, keys_serial=certificate.serial, keys_expires=certificate.expires, peers=peers
    )
