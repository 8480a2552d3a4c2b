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
   links, which are never followed (`symlinks`: a web server might follow them out);
   a `NAME.gz` beside a listed `NAME` (what nginx's gzip_static serves in its place)
   must decode to bytes a manifest lists for `NAME`, else it is `tampered`.

Steps 1-4, and a copy that cannot be read, raise a VerifyError subclass (errors.py);
per-file problems land in the `VerifyReport` (ok=False). The whole check of one copy has
a deadline (DeadlineError), and over HTTP each body a minimum rate (TooSlowError), so a
trickling mirror cannot hold a run.

The readers (folder, HTTP) are in `mirror.verify.readers`, the checks over bytes in
`mirror.verify.checks`, the rollback memory in `mirror.verify.memory`; this module reads
through the one and judges with the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from mirror.bounded import map_bounded
from mirror.errors import (
    DeadlineError,
    KeyCertificateError,
    ManifestError,
    RollbackError,
    SignatureError,
    TargetError,
    VerifyError,
)
from mirror.storage.wire import GZIP_SUFFIX, sibling_decodes_to
from mirror.trust import certificate, minisign
from mirror.trust.manifest import (
    MAX_MANIFEST_BYTES,
    MAX_PART_BYTES,
    MAX_POINTER_BYTES,
    FileEntry,
    Manifest,
    PartRef,
    SubManifest,
    check_part,
    check_signed_manifest,
    format_time,
    is_signed_page,
    manifest_entries,
    manifest_path,
    parse_pointer,
    sha256_hex,
    signature_path,
)
from mirror.verify.checks import (
    MAX_KEYS_BYTES,
    MAX_SIGNATURE_BYTES,
    FileDigest,
    FileResult,
    FileStatus,
    Trust,
    expected_files,
    extra_files,
    page_signature_errors,
)
from mirror.verify.freshness import (
    MAX_MIRRORS_JSON_BYTES,
    PEER_DEADLINE_S,
    PeerKeys,
    check_serial,
    peer_urls,
)
from mirror.verify.memory import (
    SEEN_FILE,
    Seen,
    check_rollback,
    default_state_dir,
    load_seen,
    remember,
)
from mirror.verify.readers import (
    EditionReader,
    HttpReader,
    HttpSettings,
    Listing,
    ReadOutcome,
    open_reader,
    read_bytes,
    read_required,
    read_small,
)

DEFAULT_DEADLINE_S = 300.0  # seconds, checking one copy (a folder or a mirror) end to end


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


# ---------------------------------------------------------------- keys and rollback


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


# ---------------------------------------------------------------- manifests


async def load_manifest(
    reader: EditionReader, pointer: int, trust: Trust, now: datetime
) -> Manifest:
    """Manifest `pointer`, its signature and fields checked."""
    path = manifest_path(pointer)
    data = await read_required(reader, path, max_bytes=MAX_MANIFEST_BYTES, error=ManifestError)
    signature = await read_required(
        reader, signature_path(path), max_bytes=MAX_SIGNATURE_BYTES, error=SignatureError
    )
    signer = trust.signer(minisign.parse_signature(signature).key_id, now)
    epoch = trust.certificate.epoch if trust.certificate else None
    return check_signed_manifest(data, signature, pointer, signer, epoch=epoch, now=now)


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


# ---------------------------------------------------------------- files


async def check_file(
    reader: EditionReader, path: str, candidates: tuple[FileEntry, ...]
) -> FileResult:
    """Stream one file and compare it with the entries it may match."""
    is_signature = path.endswith(".minisig")
    holder: list[FileDigest] = []

    async def attempt() -> ReadOutcome:
        holder[:] = [
            FileDigest(
                blake2b=is_signed_page(path),
                keep_bytes=MAX_SIGNATURE_BYTES if is_signature else 0,
            )
        ]
        limit = max(entry.size for entry in candidates)
        return await reader.read_into(path, holder[0].update, max_bytes=limit)

    outcome = await reader.retrying(attempt)
    digest = holder[0]
    if outcome.absent:
        return FileResult(path, FileStatus.MISSING)
    if outcome is ReadOutcome.READ and any(digest.matches(entry) for entry in candidates):
        return FileResult(path, FileStatus.OK, digest)
    return FileResult(path, FileStatus.TAMPERED)


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
    found, bad_siblings = await check_siblings(reader, await reader.list_files(), expected)
    errors = page_signature_errors(results, trust, now, listings)
    report = _report(manifests, results, errors, found, bad_siblings)
    return _with_keys(report, trust, peers)


async def check_siblings(
    reader: EditionReader, found: Listing | None, expected: Mapping[str, Sequence[FileEntry]]
) -> tuple[Listing | None, list[str]]:
    """A folder's `NAME.gz` siblings (what nginx's gzip_static serves in NAME's place):
    the listing without them, and those that do not decode to NAME's bytes (tampered):
    those a manifest lists for a listed NAME, else the folder's own (a manifest, a part,
    a page of another version mid-publish: NAME itself is then reported as it is)."""
    if found is None:
        return None, []
    present = set(found.files)
    siblings = [
        path
        for path in found.files
        if path.endswith(GZIP_SUFFIX)
        and _has_base(path.removesuffix(GZIP_SUFFIX), present, expected)
    ]

    async def bad(path: str) -> bool:
        base = path.removesuffix(GZIP_SUFFIX)
        entries = expected.get(base) or await _own_entry(reader, base)
        return not await sibling_matches(reader, path, entries)

    verdicts = await map_bounded(bad, siblings, limit=reader.concurrency)
    rest = sorted(present - set(siblings))
    tampered = [path for path, wrong in zip(siblings, verdicts, strict=True) if wrong]
    return replace(found, files=rest), tampered


def _has_base(base: str, present: set[str], expected: Mapping[str, object]) -> bool:
    """Whether `base` is a listed file, or a file the folder holds."""
    return base in expected or base in present


async def _own_entry(reader: EditionReader, path: str) -> tuple[FileEntry, ...]:
    """The entry of an unlisted file as the folder holds it (none past MAX_PART_BYTES)."""
    outcome, data = await read_bytes(reader, path, max_bytes=MAX_PART_BYTES)
    if outcome is not ReadOutcome.READ:
        return ()
    return (FileEntry(path, len(data), sha256_hex(data)),)


async def sibling_matches(reader: EditionReader, path: str, entries: Sequence[FileEntry]) -> bool:
    """Whether the gzip file at `path` decodes to one of `entries` (never inflating past
    the largest; the gzip we write is smaller than its file)."""
    if not entries:
        return False
    max_bytes = max(entry.size for entry in entries)
    outcome, packed = await read_bytes(reader, path, max_bytes=max_bytes)
    if outcome.absent:
        return True  # gone since the listing: nothing served in its place
    if outcome is ReadOutcome.TOO_LARGE:
        return False
    return sibling_decodes_to(packed, {entry.sha256 for entry in entries}, max_bytes)


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
    bad_siblings: Sequence[str] = (),
) -> VerifyReport:
    """The report of a verification whose manifests held."""

    def having(status: FileStatus) -> list[str]:
        return sorted(path for path, result in results.items() if result.status is status)

    missing = having(FileStatus.MISSING)
    tampered = sorted([*having(FileStatus.TAMPERED), *bad_siblings])
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
