"""The edition's manifest: which bytes a signed version holds. Pure: bytes in, bytes out.

Every document here is CANONICAL JSON, as keys.json is: keys sorted, no spaces (`,` and
`:` separators), ASCII only (anything else `\\u`-escaped, so the bytes are also UTF-8),
lists in a fixed order, NO trailing newline. The same input always gives the same bytes.

`manifests/<N>.json`, signed by `manifests/<N>.json.minisig`::

    {"created": "2026-11-24T06:00:00Z", "epoch": 0, "expires": "2026-12-01T06:00:00Z",
     "key_id": "<the signing key's id as minisign prints it: 16 upper-case hex>",
     "parts": [{"bytes": <total>, "files": <count>, "name": "2026-11", "sha256": "<hex>"}],
     "type": "mirror-manifest", "version": <N>}

`manifests/parts/<sha256 of the part's bytes>.json`, one per month of articles
(`articles/YYYY/MM/...` → "YYYY-MM", `articles/undated/...` → "undated") plus "site"
for everything else::

    {"files": [{"path": "articles/2026/11/x.html", "sha256": "<hex>", "size": <bytes>}],
     "name": "2026-11", "type": "mirror-part"}

Parts are sorted by name, files by path. `current` and `pending` hold "<N>\\n".

Coverage: the manifest lists every edition file except `current`, `pending` and
`manifests/**` (the manifest and its parts are checked by signature and by hash).
Paths are relative and normal: segments of RFC 3986 unreserved characters
(`A-Z a-z 0-9 . _ ~ -`), no empty, `.` or `..` segment, at most 1024 characters.

Trusted comments: `mirror-manifest version:N epoch:E expires:T` for a manifest, and
`mirror-page path:P revision:R url:U` for an article page's detached signature.

Every problem is a ManifestError; `check_signed_manifest`, the one check of a signed
manifest (publish, sync, verify and status use it), raises the other VerifyErrors too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from mirror.errors import (
    ExpiredError,
    KeyCertificateError,
    ManifestError,
    RollbackError,
    SignatureError,
)
from mirror.trust import minisign
from mirror.trust.minisign import key_id_hex

MAX_MANIFEST_BYTES = 10_000_000  # bytes, one manifests/<N>.json
MAX_PART_BYTES = 50_000_000  # bytes, one sub-manifest
MAX_POINTER_BYTES = 32  # bytes, `current` or `pending`
MAX_PATH_CHARS = 1024  # characters (ASCII), one path
MAX_SEGMENT_CHARS = 255  # characters, one path segment
MAX_FILE_BYTES = 2**40  # bytes, the largest size a manifest may state
MAX_COMMENT_CHARS = 4096  # characters, one trusted comment we write

MANIFEST_TYPE = "mirror-manifest"
PART_TYPE = "mirror-part"
SITE_PART = "site"
UNDATED_PART = "undated"
UNCOVERED_FILES = frozenset({"current", "pending"})
UNCOVERED_PREFIX = "manifests/"
SIGNATURE_SUFFIX = ".minisig"
# Housekeeping: names that may sit at the top of an edition folder or a directory
# mirror, never listed and never anywhere else.
LOCK_NAME = ".mirror.lock"  # a directory mirror's lock
TEMP_PREFIX = ".mirror-tmp-"  # + tempfile's random part: a directory mirror's writes
STAGE_PREFIX = ".mirror-build-"  # + a number: the build's staged files

_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
_MONTH_PATH = re.compile(r"articles/(?:([0-9]{4})/([0-9]{2})|undated)/")
_ARTICLE_PAGE = re.compile(r"articles/(?:[0-9]{4}/[0-9]{2}|undated)/[^/]+\.html")
_DAILY_PAGE = re.compile(
    r"editions/[0-9]{4}-[0-9]{2}-[0-9]{2}-[a-z]{2,3}(?:-[a-z0-9]{2,8})*\.(?:html|epub)"
)
_MANIFEST_FILE = re.compile(
    r"manifests/(?:(?:0|[1-9][0-9]{0,17})\.json(?:\.minisig)?|parts/[0-9a-f]{64}\.json)"
)
_HOUSEKEEPING = re.compile(
    rf"{re.escape(LOCK_NAME)}|{re.escape(TEMP_PREFIX)}[A-Za-z0-9_]+"
    rf"|{re.escape(STAGE_PREFIX)}[0-9]+|\.{re.escape(STAGE_PREFIX)}[0-9]+\.[A-Za-z0-9_]+\.tmp"
)  # the last: write_atomic's temp file of a staged file
_PART_NAME = re.compile(r"site|undated|[0-9]{4}-[0-9]{2}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9A-F]{16}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_POINTER = re.compile(rb"(0|[1-9][0-9]{0,17})\n?")
_MANIFEST_COMMENT = re.compile(r"mirror-manifest version:([0-9]+) epoch:([0-9]+) expires:(\S+)")
_PAGE_COMMENT = re.compile(r"mirror-page path:(\S+) revision:([0-9]+) url:(\S*)")
_DAILY_COMMENT = re.compile(
    r"mirror-daily path:(\S+) date:([0-9]{4}-[0-9]{2}-[0-9]{2}) language:([a-z0-9-]+)"
)
# A comment's URL keeps printable ASCII (existing %XX escapes too); spaces, control
# characters and non-ASCII are percent-encoded.
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))

T = TypeVar("T")


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class FileEntry:
    """One covered file: its path in the edition, size and SHA-256 (lower-case hex)."""

    path: str
    size: int  # bytes
    sha256: str


@dataclass(frozen=True)
class PartRef:
    """A sub-manifest as the manifest names it."""

    name: str  # "YYYY-MM" or "site"
    sha256: str  # of the part's bytes; also its file name
    files: int  # count
    bytes: int  # total size of its files

    @property
    def path(self) -> str:
        """Where the part lives in the edition."""
        return part_path(self.sha256)


@dataclass(frozen=True)
class Manifest:
    """One signed version of the edition."""

    version: int
    epoch: int  # bumped by the root when it resets versions
    created: datetime  # UTC, whole seconds
    expires: datetime  # UTC, whole seconds
    parts: tuple[PartRef, ...]
    key_id: bytes  # 8 bytes: the signing key's id as stored in .minisig/.pub files


@dataclass(frozen=True)
class SubManifest:
    """One part: the files of one month of articles, or of the rest of the site."""

    name: str
    files: tuple[FileEntry, ...]


@dataclass(frozen=True)
class ManifestBuild:
    """What `make_manifest` produces: bytes to write, and the entries they cover."""

    manifest: bytes  # to write at `path`, and to sign
    document: Manifest  # what those bytes say
    parts: Mapping[str, bytes]  # edition path ("manifests/parts/<hex>.json") -> bytes
    entries: Mapping[str, FileEntry]  # every covered path -> its entry

    @property
    def path(self) -> str:
        """Where the manifest lives in the edition: "manifests/<N>.json"."""
        return manifest_path(self.document.version)


@dataclass(frozen=True)
class ManifestComment:
    """What a manifest signature's trusted comment states."""

    version: int
    epoch: int
    expires: datetime


@dataclass(frozen=True)
class PageComment:
    """What an article page signature's trusted comment states."""

    path: str
    revision: int
    url: str  # the article's fetched origin URL, percent-encoded


@dataclass(frozen=True)
class DailyComment:
    """What a daily edition signature's trusted comment states."""

    path: str
    day: date
    language: str


# ---------------------------------------------------------------- paths


def check_path(path: str) -> str:
    """`path` itself if it is a relative, normal, ASCII-safe edition path; else ManifestError."""
    if not isinstance(path, str) or not path:
        raise ManifestError(f"path {path!r:.100} is empty or not a string")
    shown = repr(path[:100])
    if len(path) > MAX_PATH_CHARS:
        raise ManifestError(f"path {shown}... is longer than {MAX_PATH_CHARS} characters")
    if path.startswith("/") or "\\" in path:
        raise ManifestError(f"path {shown} is absolute or has a backslash")
    for segment in path.split("/"):
        _check_segment(segment, shown)
    return path


def _check_segment(segment: str, shown: str) -> None:
    """ManifestError unless `segment` is a safe, bounded, non-dot path segment."""
    if segment in ("", ".", ".."):
        raise ManifestError(f"path {shown} has an empty, '.' or '..' segment")
    if len(segment) > MAX_SEGMENT_CHARS:
        raise ManifestError(f"path {shown} has a segment over {MAX_SEGMENT_CHARS} characters")
    if not _SEGMENT.fullmatch(segment):
        raise ManifestError(f"path {shown} has characters outside A-Z a-z 0-9 . _ ~ -")


def is_listed(path: str) -> bool:
    """Whether the manifest lists `path` (all but `current`, `pending`, `manifests/**`)."""
    return path not in UNCOVERED_FILES and not path.startswith(UNCOVERED_PREFIX)


def is_manifest_file(path: str) -> bool:
    """Whether `path` may be in `manifests/`: "<N>.json", "<N>.json.minisig" or
    "parts/<sha256>.json" (nothing else belongs there)."""
    return _MANIFEST_FILE.fullmatch(path) is not None


def is_housekeeping(path: str) -> bool:
    """Whether `path` is a housekeeping name at the top (a lock, temp or staged file)."""
    return _HOUSEKEEPING.fullmatch(path) is not None


def is_article_page(path: str) -> bool:
    """Whether `path` is an article page ("articles/YYYY/MM/<slug>.html", or undated)."""
    return _ARTICLE_PAGE.fullmatch(path) is not None


def is_daily_page(path: str) -> bool:
    """Whether `path` is a daily edition ("editions/YYYY-MM-DD-<lang>.html" or `.epub`)."""
    return _DAILY_PAGE.fullmatch(path) is not None


def is_signed_page(path: str) -> bool:
    """Whether `path` has a detached signature of its own that verify checks: an article
    page or a daily edition."""
    return is_article_page(path) or is_daily_page(path)


def signature_path(path: str) -> str:
    """The detached signature next to `path`."""
    return path + SIGNATURE_SUFFIX


def part_name(path: str) -> str:
    """The part a path belongs to: "YYYY-MM" for articles/YYYY/MM/..., "undated" for
    articles/undated/..., else "site"."""
    match = _MONTH_PATH.match(path)
    if match is None:
        return SITE_PART
    return f"{match[1]}-{match[2]}" if match[1] else UNDATED_PART


def manifest_path(version: int) -> str:
    """Where manifest `version` lives in the edition."""
    return f"manifests/{version}.json"


def part_path(sha256: str) -> str:
    """Where the part whose bytes hash to `sha256` lives in the edition."""
    return f"manifests/parts/{sha256}.json"


# ---------------------------------------------------------------- times and pointers


def format_time(moment: datetime) -> str:
    """An aware datetime as the manifest writes it: UTC, whole seconds, "Z"."""
    if moment.tzinfo is None:
        raise ManifestError("a manifest time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> datetime:
    """A manifest time ("2026-12-01T00:00:00Z") as an aware UTC datetime."""
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        raise ManifestError(f"time {str(text)[:40]!r} is not YYYY-MM-DDTHH:MM:SSZ")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ManifestError(f"time {text!r} is not a real date: {exc}") from exc


def pointer_bytes(version: int) -> bytes:
    """The content of `current` or `pending` pointing at `version`."""
    return f"{version}\n".encode("ascii")


def parse_pointer(data: bytes) -> int:
    """The version a `current` or `pending` file names (decimal, optional newline)."""
    if len(data) > MAX_POINTER_BYTES or not _POINTER.fullmatch(data):
        raise ManifestError(f"pointer {data[:40]!r} is not a decimal version and a newline")
    return int(data)


# ---------------------------------------------------------------- building


def make_manifest(
    files: Iterable[FileEntry],
    *,
    version: int,
    epoch: int,
    created: datetime,
    expires: datetime,
    key_id: bytes,
) -> ManifestBuild:
    """The manifest and parts covering `files` (uncovered paths, e.g. manifests/**, skipped).

    ManifestError for a bad path, size or hash, a path given twice, or bad header values.
    """
    entries = _collect(entry for entry in files if is_listed(entry.path))
    groups: dict[str, list[FileEntry]] = {}
    for path in sorted(entries):
        groups.setdefault(part_name(path), []).append(entries[path])
    parts = {name: part_bytes(SubManifest(name, tuple(group))) for name, group in groups.items()}
    refs = tuple(_part_ref(name, parts[name], groups[name]) for name in sorted(parts))
    manifest = Manifest(version, epoch, _whole(created), _whole(expires), refs, key_id)
    _check_header(manifest)
    return ManifestBuild(
        manifest=manifest_bytes(manifest),
        document=manifest,
        parts={part_path(ref.sha256): parts[ref.name] for ref in refs},
        entries=entries,
    )


def _collect(files: Iterable[FileEntry]) -> dict[str, FileEntry]:
    """Entries by path, each checked; ManifestError on a path given twice."""
    entries: dict[str, FileEntry] = {}
    for entry in files:
        _check_entry(entry)
        if entry.path in entries:
            raise ManifestError(f"path {entry.path!r} is listed twice")
        entries[entry.path] = entry
    return entries


def _part_ref(name: str, data: bytes, files: list[FileEntry]) -> PartRef:
    """How the manifest names the part `data`."""
    return PartRef(name, sha256_hex(data), len(files), sum(entry.size for entry in files))


def _whole(moment: datetime) -> datetime:
    """`moment` in UTC, cut to whole seconds (as the manifest writes it)."""
    return parse_time(format_time(moment))


def canonical_json(document: object) -> bytes:
    """The one byte form of a JSON document: sorted keys, no spaces, ASCII, no newline."""
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return text.encode("ascii")


def sha256_hex(data: bytes) -> str:
    """SHA-256 of `data`, lower-case hex."""
    return hashlib.sha256(data).hexdigest()


def manifest_bytes(manifest: Manifest) -> bytes:
    """The canonical bytes of a manifest."""
    return canonical_json(
        {
            "type": MANIFEST_TYPE,
            "version": manifest.version,
            "epoch": manifest.epoch,
            "created": format_time(manifest.created),
            "expires": format_time(manifest.expires),
            "key_id": key_id_hex(manifest.key_id),
            "parts": [
                {"name": ref.name, "sha256": ref.sha256, "files": ref.files, "bytes": ref.bytes}
                for ref in manifest.parts
            ],
        }
    )


def part_bytes(part: SubManifest) -> bytes:
    """The canonical bytes of a part (files sorted by path)."""
    files = sorted(part.files, key=lambda entry: entry.path)
    return canonical_json(
        {
            "type": PART_TYPE,
            "name": part.name,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files],
        }
    )


# ---------------------------------------------------------------- trusted comments


def manifest_comment(version: int, expires: datetime, epoch: int) -> str:
    """The trusted comment of manifest `version`'s signature."""
    return f"mirror-manifest version:{version} epoch:{epoch} expires:{format_time(expires)}"


def parse_manifest_comment(text: str) -> ManifestComment:
    """What a manifest signature's trusted comment states (ManifestError if not ours)."""
    match = _MANIFEST_COMMENT.fullmatch(text)
    if match is None:
        raise ManifestError(f"trusted comment {text[:120]!r} is not a manifest's")
    return ManifestComment(int(match[1]), int(match[2]), parse_time(match[3]))


def check_manifest_comment(manifest: Manifest, comment: str) -> None:
    """ManifestError unless the signature's trusted comment agrees with the manifest."""
    stated = parse_manifest_comment(comment)
    if stated != ManifestComment(manifest.version, manifest.epoch, manifest.expires):
        raise ManifestError(
            f"the signature's trusted comment {comment[:120]!r} does not match manifest "
            f"{manifest.version} (epoch {manifest.epoch}, expires "
            f"{format_time(manifest.expires)})"
        )


def page_comment(path: str, revision: int, url: str) -> str:
    """The trusted comment of an article page's signature: its path, revision and the
    URL it was fetched from (its identity: never a canonical URL the page claims).

    The URL is percent-encoded where it is not printable ASCII (spaces, newlines,
    non-ASCII), so the comment is one line; ManifestError when over MAX_COMMENT_CHARS.
    """
    check_path(path)
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
        raise ManifestError(f"revision {revision!r} is not a non-negative integer")
    quoted = quote(url, safe=_URL_SAFE)
    comment = f"mirror-page path:{path} revision:{revision} url:{quoted}"
    if len(comment) > MAX_COMMENT_CHARS:
        raise ManifestError(f"page comment for {path} over {MAX_COMMENT_CHARS} characters")
    return comment


def daily_comment(path: str, day: date, language: str) -> str:
    """The trusted comment of a daily edition's signature: its path, day and language
    ("mirror-daily path:editions/2026-11-28-en.html date:2026-11-28 language:en")."""
    check_path(path)
    comment = f"mirror-daily path:{path} date:{day.isoformat()} language:{language}"
    if _DAILY_COMMENT.fullmatch(comment) is None:
        raise ManifestError(f"daily comment for {path}: bad language {language!r}")
    return comment


def parse_page_comment(text: str) -> PageComment:
    """What a page signature's trusted comment states (ManifestError if not ours)."""
    match = _PAGE_COMMENT.fullmatch(text)
    if match is None:
        raise ManifestError(f"trusted comment {text[:120]!r} is not an article page's")
    return PageComment(check_path(match[1]), int(match[2]), match[3])


def signed_path(text: str) -> str:
    """The path a page's or daily edition's trusted comment names (ManifestError if it is
    neither's)."""
    if text.startswith("mirror-daily "):
        return parse_daily_comment(text).path
    return parse_page_comment(text).path


def parse_daily_comment(text: str) -> DailyComment:
    """What a daily edition signature's trusted comment states (ManifestError if not one)."""
    match = _DAILY_COMMENT.fullmatch(text)
    if match is None:
        raise ManifestError(f"trusted comment {text[:120]!r} is not a daily edition's")
    return DailyComment(check_path(match[1]), date.fromisoformat(match[2]), match[3])


# ---------------------------------------------------------------- parsing


def parse_manifest(data: bytes, *, max_bytes: int = MAX_MANIFEST_BYTES) -> Manifest:
    """A manifest from its bytes, every field checked (ManifestError)."""
    document = _load(data, max_bytes, "manifest")
    _expect_type(document, MANIFEST_TYPE)
    refs = tuple(_parse_ref(item) for item in _field(document, "parts", list))
    key_id = _field(document, "key_id", str)
    if not _KEY_ID.fullmatch(key_id):
        raise ManifestError(f"key_id {key_id[:40]!r} is not 16 upper-case hex digits")
    manifest = Manifest(
        version=_count(document, "version"),
        epoch=_count(document, "epoch"),
        created=parse_time(document.get("created")),
        expires=parse_time(document.get("expires")),
        parts=refs,
        key_id=bytes.fromhex(key_id)[::-1],
    )
    _check_header(manifest)
    return manifest


def parse_part(data: bytes, *, max_bytes: int = MAX_PART_BYTES) -> SubManifest:
    """A sub-manifest from its bytes, every entry checked (ManifestError)."""
    document = _load(data, max_bytes, "sub-manifest")
    _expect_type(document, PART_TYPE)
    name = _part_name(_field(document, "name", str))
    entries = _collect(_parse_entry(item) for item in _field(document, "files", list))
    for path in entries:
        if part_name(path) != name:
            raise ManifestError(f"path {path!r} does not belong in part {name!r}")
    return SubManifest(name, tuple(entries.values()))


def check_part(ref: PartRef, data: bytes, *, max_bytes: int = MAX_PART_BYTES) -> SubManifest:
    """The part `ref` names, from `data`: its hash, name, count and total checked."""
    if len(data) > max_bytes:
        raise ManifestError(f"part {ref.name} is over {max_bytes} bytes")
    if sha256_hex(data) != ref.sha256:
        raise ManifestError(f"part {ref.name} does not match its hash {ref.sha256}")
    part = parse_part(data, max_bytes=max_bytes)
    total = sum(entry.size for entry in part.files)
    if (part.name, len(part.files), total) != (ref.name, ref.files, ref.bytes):
        raise ManifestError(f"part {ref.sha256} is not the {ref.name} part the manifest names")
    return part


def manifest_entries(parts: Iterable[SubManifest]) -> dict[str, FileEntry]:
    """Every entry of a manifest's parts by path; ManifestError on a path listed twice."""
    return _collect(entry for part in parts for entry in part.files)


# ---------------------------------------------------------------- signed manifests


def check_signed_manifest(
    data: bytes,
    signature: bytes,
    version: int,
    key: minisign.PublicKey,
    *,
    epoch: int | None = None,
    now: datetime | None = None,
) -> Manifest:
    """Manifest `version` (the number its pointer gives) from its bytes: signed by `key`,
    naming it, its trusted comment agreeing (SignatureError, ManifestError). With `epoch`
    (keys.json's): of that epoch (RollbackError, KeyCertificateError); with `now`: not
    expired (ExpiredError)."""
    comment = minisign.verify(key, data, signature)
    manifest = parse_manifest(data)
    if manifest.version != version:
        raise ManifestError(f"{manifest_path(version)} holds version {manifest.version}")
    if manifest.key_id != key.key_id:
        raise SignatureError(
            f"manifest {version} names key {key_id_hex(manifest.key_id)} but was "
            f"signed by {key_id_hex(key.key_id)}"
        )
    check_manifest_comment(manifest, comment)
    _check_epoch(manifest, epoch)
    if now is not None and now >= manifest.expires:
        raise ExpiredError(
            f"manifest {version} expired at {format_time(manifest.expires)} "
            f"(now {format_time(now)}): this copy may be frozen"
        )
    return manifest


def _check_epoch(manifest: Manifest, epoch: int | None) -> None:
    """A manifest of another epoch than keys.json's is refused (None: no keys.json)."""
    if epoch is not None and manifest.epoch < epoch:
        raise RollbackError(
            f"manifest {manifest.version} is of epoch {manifest.epoch}, before {epoch}"
        )
    if epoch is not None and manifest.epoch > epoch:
        raise KeyCertificateError(
            f"manifest {manifest.version}: epoch {manifest.epoch} not granted"
        )


def _check_header(manifest: Manifest) -> None:
    """ManifestError unless the manifest's own fields are sound."""
    for label, number in (("version", manifest.version), ("epoch", manifest.epoch)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ManifestError(f"{label} {number!r} is not a non-negative integer")
    if manifest.expires <= manifest.created:
        raise ManifestError("the manifest expires before it was created")
    if len(manifest.key_id) != 8:
        raise ManifestError("key_id is not 8 bytes")
    names = [ref.name for ref in manifest.parts]
    if len(set(names)) != len(names):
        raise ManifestError("a part is named twice")


def _check_entry(entry: FileEntry) -> None:
    """ManifestError unless the entry's path, size and hash are sound."""
    check_path(entry.path)
    if not is_listed(entry.path):
        raise ManifestError(f"path {entry.path!r} is never listed in a manifest")
    size = entry.size
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_FILE_BYTES:
        raise ManifestError(f"size {size!r} of {entry.path!r} is not 0..{MAX_FILE_BYTES}")
    if not isinstance(entry.sha256, str) or not _SHA256.fullmatch(entry.sha256):
        raise ManifestError(f"sha256 of {entry.path!r} is not 64 lower-case hex digits")


def _parse_entry(item: object) -> FileEntry:
    """One file entry of a part (checked by `_collect`)."""
    entry = _object(item, "file entry")
    return FileEntry(
        path=_field(entry, "path", str),
        size=_count(entry, "size"),
        sha256=_field(entry, "sha256", str),
    )


def _parse_ref(item: object) -> PartRef:
    """One part as the manifest names it."""
    ref = _object(item, "part")
    sha256 = _field(ref, "sha256", str)
    if not _SHA256.fullmatch(sha256):
        raise ManifestError(f"part hash {sha256[:80]!r} is not 64 lower-case hex digits")
    name = _part_name(_field(ref, "name", str))
    return PartRef(name, sha256, _count(ref, "files"), _count(ref, "bytes"))


def _part_name(name: str) -> str:
    """`name` if it is a part's name ("YYYY-MM" or "site")."""
    if not _PART_NAME.fullmatch(name):
        raise ManifestError(f"part name {name[:40]!r} is not YYYY-MM, undated or site")
    return name


def _load(data: bytes, max_bytes: int, what: str) -> dict[str, Any]:
    """A JSON object from `data`: bounded, strict (no duplicate keys, NaN or Infinity)."""
    if len(data) > max_bytes:
        raise ManifestError(f"{what} is over {max_bytes} bytes")
    try:
        document = json.loads(
            data.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ManifestError(f"{what} is not JSON: {str(exc)[:200]}") from exc
    return _object(document, what)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (a second reading of the same bytes)."""
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return document


def _no_constant(name: str) -> None:
    """Refuse NaN and Infinity, which are not JSON."""
    raise ValueError(f"{name} is not JSON")


def _expect_type(document: Mapping[str, Any], wanted: str) -> None:
    """ManifestError unless the document's "type" is `wanted`."""
    found = document.get("type")
    if found != wanted:
        raise ManifestError(f"type {str(found)[:40]!r} is not {wanted!r}")


def _object(value: object, what: str) -> dict[str, Any]:
    """`value` if it is a JSON object."""
    if not isinstance(value, dict):
        raise ManifestError(f"{what} is not a JSON object")
    return value


def _field(document: Mapping[str, Any], key: str, kind: type[T]) -> T:
    """`document[key]`, which must be of `kind` (bool never passes for int)."""
    value = document.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise ManifestError(f"{key!r} is missing or not a {kind.__name__}")
    return value


def _count(document: Mapping[str, Any], key: str) -> int:
    """`document[key]`, a non-negative integer within MAX_FILE_BYTES."""
    value = _field(document, key, int)
    if not 0 <= value <= MAX_FILE_BYTES:
        raise ManifestError(f"{key!r} {value} is not in 0..{MAX_FILE_BYTES}")
    return value
