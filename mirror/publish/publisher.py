"""`mirror publish`: bring every mirror to the local edition, consistent at every instant.

Per mirror (`publish_mirror`), in the order of DESIGN.md "Publishing order":

0. read the live state with a few GETs (no listing, no per-object HEAD): `current` (and
   its ETag), `pending`, and the manifests they name, each signature checked with the
   signing key. A live manifest that is unreadable or wrongly signed is reported (a
   warning) and taken as empty. A live sub-manifest is fetched only when the local
   edition has no part of the same hash. A mirror already serving the edition costs
   three requests (current, pending, manifest) and nothing more;
1. refuse to replace a live version with a lower one (or with another build of the same);
2. the shrink guard: stop, before any write, when too many live files would go;
3. upload the files the mirror lacks under a new path (pages, parts, manifest N and its
   signature), concurrently: while the pointers name older manifests they are only extra;
4. write `pending` = N;
5. overwrite the files a live manifest lists with other bytes (index, archive months,
   feed, mirror list, revised articles): each now matches the pending manifest;
6. write `current` = N, conditionally on the ETag read in step 0 (ConflictError: another
   publish got there first);
7. delete what a live manifest lists and N does not (old pages, manifests and parts);
   after a crashed publish (a `pending` was found) and with a readable live manifest,
   list the mirror once and delete whatever N does not reference;
8. delete `pending`, last: a crash in step 7 leaves the marker, so the next publish
   finishes the cleanup.

At every instant each file N or the live manifests list matches `current` or `pending`,
so `mirror verify` of the mirror's URL passes; a folder may show files of steps 3 and 7
as `extra` for a while. What steps 3, 5 and 7 do is a `PublishPlan` computed by the pure
`plan_publish`. Every backend call is counted.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mirror.bounded import map_bounded, time_limit
from mirror.errors import (
    BuildError,
    ConflictError,
    ManifestError,
    MirrorDeadlineError,
    MirrorUnreachableError,
    ObjectTooLargeError,
    PublishError,
    ShrinkGuardError,
    VerifyError,
)
from mirror.progress import counted
from mirror.storage import Backend, Capabilities, Stored
from mirror.storage.wire import GZIP_SUFFIX, sibling_decodes_to
from mirror.trust import minisign
from mirror.trust.manifest import (
    MAX_MANIFEST_BYTES,
    MAX_PART_BYTES,
    MAX_POINTER_BYTES,
    FileEntry,
    PartRef,
    SubManifest,
    check_part,
    check_signed_manifest,
    is_listed,
    manifest_entries,
    manifest_path,
    parse_pointer,
    pointer_bytes,
    sha256_hex,
    signature_path,
)

T = TypeVar("T")
log = logging.getLogger("mirror.publish")
detail = logging.getLogger("mirror.detail.publish")  # -v: plans, pointers; -vv: each path

CURRENT = "current"
PENDING = "pending"
POINTERS = frozenset({CURRENT, PENDING})
DEFAULT_SHRINK_LIMIT = 0.10  # share of the live files a publish may delete unasked
DEFAULT_CONCURRENCY = 16  # requests at once, per mirror
# Edition files this small are read on the event loop: a thread hop costs more than the read.
INLINE_READ_BYTES = 64 * 1024
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
SHORT_CACHE = "public, max-age=300"
POINTER_CACHE = "no-cache"
TEXT = "text/plain; charset=utf-8"
OCTETS = "application/octet-stream"
_IMMUTABLE_PATH = re.compile(r"manifests/(?:[0-9]+\.json|parts/[^/]+)")
_CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "xml": "application/xml; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "txt": TEXT,
    "minisig": TEXT,
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
    "ico": "image/vnd.microsoft.icon",
    "woff2": "font/woff2",
    "epub": "application/epub+zip",  # the daily EPUB: e-readers open it by its type
}
_FEED = re.compile(r"feed(?:-[a-z]{2,3}(?:-[a-z0-9]{2,8})*)?\.xml")


# ---------------------------------------------------------------- object headers


def content_type_for(path: str) -> str:
    """The Content-Type a mirror serves `path` with (text types carry charset=utf-8)."""
    name = path.rsplit("/", 1)[-1]
    if name in POINTERS:
        return TEXT
    if _FEED.fullmatch(name):  # feed.xml and every language's feed-<lang>.xml
        return "application/atom+xml; charset=utf-8"
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _CONTENT_TYPES.get(suffix, OCTETS)


def cache_control_for(path: str) -> str:
    """The Cache-Control of `path`: manifests and parts are immutable, pointers are
    revalidated every time, everything else (pages, signatures) lives five minutes."""
    if path in POINTERS:
        return POINTER_CACHE
    if _IMMUTABLE_PATH.fullmatch(path):
        return IMMUTABLE_CACHE
    return SHORT_CACHE


# ---------------------------------------------------------------- results and options


@dataclass(frozen=True)
class MirrorResult:
    """What publishing to one mirror did; `ok=False` carries the reason in `error`."""

    name: str
    ok: bool
    uploaded: int = 0  # edition files put (pointers not counted)
    deleted: int = 0  # edition files removed (pointers not counted)
    version: int = 0  # the version the mirror serves now, as far as known
    error: str | None = None
    pointer_writes: int = 0  # puts and deletes of `current` and `pending`
    pointers_written: int = 0  # puts of `current` and `pending` (never in `uploaded`)
    requests: int = 0  # every backend call
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()  # e.g. a live manifest taken as empty

    def to_json(self) -> dict[str, Any]:
        """The publish `--json` document's entry for this mirror (and sync's): the counts
        in the build document's words, then the deprecated keys kept one release."""
        return {
            "name": self.name,
            "ok": self.ok,
            "files_uploaded": self.uploaded,
            "files_deleted": self.deleted,
            "pointers_written": self.pointers_written,
            "version": self.version,
            "error": self.error,
            "warnings": list(self.warnings),
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            **self.deprecated_json(),
        }

    def deprecated_json(self) -> dict[str, int]:
        """Keys scripts may still read, kept one release: `uploaded`/`deleted` are
        `files_uploaded`/`files_deleted`; `pointer_writes` counts the pointers' removals
        too."""
        return {
            "uploaded": self.uploaded,
            "deleted": self.deleted,
            "pointer_writes": self.pointer_writes,
        }

    def summary(self) -> str:
        """One line whose counts say what they count: edition files uploaded and deleted,
        then the `current`/`pending` pointers written (never counted as uploads)."""
        counts = (
            f"{counted(self.uploaded, 'file')} uploaded, {counted(self.deleted, 'file')} "
            f"deleted, {counted(self.pointers_written, 'pointer')} written"
        )
        if not self.ok:
            return f"publish {self.name}: FAILED: {self.error} (so far: {counts})"
        return f"publish {self.name}: version {self.version}: {counts}"


@dataclass(frozen=True)
class PublishOptions:
    """How to publish (the `mirror publish` and `sync` flags)."""

    allow_shrink: bool = False
    shrink_limit: float = DEFAULT_SHRINK_LIMIT  # share of the live files
    repair: bool = False  # GET every file and re-upload what is missing or wrong
    concurrency: int = DEFAULT_CONCURRENCY  # requests at once
    gc: bool = False  # then list each mirror once and delete what nothing references

    def __post_init__(self) -> None:
        if self.concurrency < 1 or not 0 <= self.shrink_limit <= 1:
            raise ValueError("concurrency must be >= 1 and shrink_limit within 0..1")


@dataclass
class _Tally:
    """Counts kept while one mirror publishes (they survive a failure half-way)."""

    uploaded: int = 0
    deleted: int = 0
    pointer_writes: int = 0
    pointers_written: int = 0
    version: int = 0
    warnings: list[str] = field(default_factory=list)


class CountingBackend:
    """A backend that counts the calls made through it."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.capabilities: Capabilities = inner.capabilities
        self.requests = 0

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
        """As `Backend.put`, counted (and logged: -v a pointer, -vv every path)."""
        self.requests += 1
        if path in POINTERS:
            detail.info(
                "%s: pointer %s -> %s", self.name, path, data.decode(errors="replace").strip()
            )
        else:
            detail.debug("%s: upload %s (%d bytes)", self.name, path, len(data))
        return await self.inner.put(
            path,
            data,
            content_type=content_type,
            cache_control=cache_control,
            if_match=if_match,
            if_none_match=if_none_match,
        )

    async def get(self, path: str, *, max_bytes: int) -> Stored | None:
        """As `Backend.get`, counted."""
        self.requests += 1
        return await self.inner.get(path, max_bytes=max_bytes)

    async def delete(self, paths: Sequence[str]) -> None:
        """As `Backend.delete`, counted once per call (logged: -vv every path)."""
        self.requests += 1
        for path in paths:
            detail.debug("%s: delete %s", self.name, path)
        await self.inner.delete(paths)

    async def list(self) -> list[str]:
        """As `Backend.list`, counted."""
        self.requests += 1
        return await self.inner.list()

    async def close(self) -> None:
        """Close the backend underneath."""
        await self.inner.close()


# ---------------------------------------------------------------- the local edition


@dataclass(frozen=True)
class LocalEdition:
    """The built edition to publish: its version and every file a mirror must hold."""

    folder: Path
    version: int
    manifest: bytes  # manifests/<N>.json
    files: Mapping[str, FileEntry]  # listed files, manifest, its signature and the parts
    parts: Mapping[str, SubManifest]  # by sha256

    @property
    def hashes(self) -> dict[str, str]:
        """Every file's sha256 by path."""
        return {path: entry.sha256 for path, entry in self.files.items()}


def load_edition(folder: Path, key: minisign.PublicKey) -> LocalEdition:
    """The edition in `folder`, its manifest signed by `key` and its parts checked
    (BuildError when there is none, or it is damaged: build again)."""
    try:
        return _load_edition(folder, key)
    except (OSError, VerifyError) as exc:
        raise BuildError(f"no usable edition in {folder} ({exc}): run `mirror build`") from exc


def _load_edition(folder: Path, key: minisign.PublicKey) -> LocalEdition:
    """`load_edition`, letting OSError and VerifyError through."""
    version = parse_pointer(_read_bounded(folder / CURRENT, MAX_POINTER_BYTES))
    path = manifest_path(version)
    data = _read_bounded(folder / path, MAX_MANIFEST_BYTES)
    signature = _read_bounded(folder / signature_path(path), minisign.MAX_SIGNATURE_FILE_BYTES)
    document = check_signed_manifest(data, signature, version, key)
    part_data = {
        ref.path: _read_bounded(folder / ref.path, MAX_PART_BYTES) for ref in document.parts
    }
    parts = {ref.sha256: check_part(ref, part_data[ref.path]) for ref in document.parts}
    files = dict(manifest_entries(parts.values()))
    own = {path: data, signature_path(path): signature, **part_data}
    files.update({name: _entry(name, content) for name, content in own.items()})
    return LocalEdition(folder, version, data, files, parts)


def _read_bounded(path: Path, max_bytes: int) -> bytes:
    """A small local file's bytes; BuildError when over `max_bytes`."""
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise BuildError(f"{path} is over {max_bytes} bytes")
    return data


def _entry(path: str, data: bytes) -> FileEntry:
    """The entry of a file not listed in the manifest (the manifest itself, its parts)."""
    return FileEntry(path, len(data), sha256_hex(data))


def read_edition_file(edition: LocalEdition, path: str) -> bytes:
    """A file of the edition, checked against its entry (BuildError when it changed)."""
    entry = edition.files[path]
    try:
        data = _read_bounded(edition.folder / path, entry.size)
    except (OSError, BuildError) as exc:
        raise BuildError(f"cannot read {path} of the edition: {exc}") from exc
    if len(data) != entry.size or sha256_hex(data) != entry.sha256:
        raise BuildError(f"{path} no longer matches the edition's manifest: build again")
    return data


# ---------------------------------------------------------------- the live state


@dataclass(frozen=True)
class LiveManifest:
    """A live manifest whose signature held, and every file it references."""

    version: int
    data: bytes
    files: Mapping[str, str]  # path -> sha256: listed files, manifest, signature, parts


@dataclass(frozen=True)
class LiveState:
    """What a mirror serves, as read in step 0."""

    current_pointer: int | None  # as `current` says (None: absent or garbled)
    current_etag: str | None  # None: no `current` object at all
    pending_pointer: int | None
    has_pending: bool  # a `pending` object exists: a publish runs or crashed
    current: LiveManifest | None  # None: no current, or taken as empty
    pending: LiveManifest | None  # the pending manifest, when newer than current
    warnings: tuple[str, ...] = ()

    @property
    def version(self) -> int:
        """The newest version the mirror holds with a good signature (0: none)."""
        return max((m.version for m in (self.current, self.pending) if m), default=0)

    def serves(self, edition: LocalEdition) -> bool:
        """Whether the mirror already serves `edition`, with no publish in flight."""
        return (
            not self.has_pending
            and self.current is not None
            and self.current.version == edition.version
            and self.current.data == edition.manifest
        )


async def read_live(backend: Backend, edition: LocalEdition, key: minisign.PublicKey) -> LiveState:
    """The mirror's live state: pointers, then the manifests they name."""
    current = await backend.get(CURRENT, max_bytes=MAX_POINTER_BYTES)
    pending = await backend.get(PENDING, max_bytes=MAX_POINTER_BYTES)
    warnings: list[str] = []
    current_pointer = _pointer(current, CURRENT, warnings)
    pending_pointer = _pointer(pending, PENDING, warnings)
    live_current = await _live_manifest(backend, current_pointer, edition, key, warnings)
    live_pending = await _pending_manifest(
        backend, pending_pointer, live_current, edition, key, warnings
    )
    return LiveState(
        current_pointer=current_pointer,
        current_etag=current.etag if current else None,
        pending_pointer=pending_pointer,
        has_pending=pending is not None,
        current=live_current,
        pending=live_pending,
        warnings=tuple(warnings),
    )


def _pointer(stored: Stored | None, name: str, warnings: list[str]) -> int | None:
    """The version a live pointer names; a garbled one is reported and taken as absent."""
    if stored is None:
        return None
    try:
        return parse_pointer(stored.data)
    except ManifestError as exc:
        warnings.append(f"live `{name}` ignored: {exc}")
        return None


async def _pending_manifest(
    backend: Backend,
    pointer: int | None,
    current: LiveManifest | None,
    edition: LocalEdition,
    key: minisign.PublicKey,
    warnings: list[str],
) -> LiveManifest | None:
    """The manifest `pending` names, when it is another than the current one."""
    if pointer is None or (current is not None and pointer == current.version):
        return None
    if current is not None and pointer < current.version:
        warnings.append(f"live `pending` ({pointer}) is older than `current`: ignored")
        return None
    return await _live_manifest(backend, pointer, edition, key, warnings)


async def _live_manifest(
    backend: Backend,
    version: int | None,
    edition: LocalEdition,
    key: minisign.PublicKey,
    warnings: list[str],
) -> LiveManifest | None:
    """Live manifest `version`, or None (reported) when it is unreadable or badly signed."""
    if version is None:
        return None
    try:
        return await _fetch_live_manifest(backend, version, edition, key)
    except VerifyError as exc:
        warnings.append(f"live manifest {version} taken as empty: {exc}")
        return None


async def _fetch_live_manifest(
    backend: Backend, version: int, edition: LocalEdition, key: minisign.PublicKey
) -> LiveManifest:
    """Live manifest `version` and its files; the edition's own when the bytes are equal."""
    path = manifest_path(version)
    data = await _get_required(backend, path, MAX_MANIFEST_BYTES)
    if version == edition.version and data == edition.manifest:
        return LiveManifest(version, data, edition.hashes)
    signature = await _get_required(
        backend, signature_path(path), minisign.MAX_SIGNATURE_FILE_BYTES
    )
    manifest = check_signed_manifest(data, signature, version, key)
    parts = await _live_parts(backend, manifest.parts, edition)
    files = {p: entry.sha256 for p, entry in manifest_entries(parts).items()}
    files.update({ref.path: ref.sha256 for ref in manifest.parts})
    files.update({path: sha256_hex(data), signature_path(path): sha256_hex(signature)})
    return LiveManifest(version, data, files)


async def _live_parts(
    backend: Backend, refs: Sequence[PartRef], edition: LocalEdition
) -> list[SubManifest]:
    """The parts `refs` name: the local ones of the same hash, else fetched and checked."""

    async def load(ref: PartRef) -> SubManifest:
        known = edition.parts.get(ref.sha256)
        if known is not None:
            return known
        return check_part(ref, await _get_required(backend, ref.path, MAX_PART_BYTES))

    return await map_bounded(load, refs, limit=DEFAULT_CONCURRENCY)


async def _get_required(backend: Backend, path: str, max_bytes: int) -> bytes:
    """A live file's bytes; ManifestError when it is missing or larger than any we write
    (unreadable, like a bad signature: not the mirror failing)."""
    try:
        stored = await backend.get(path, max_bytes=max_bytes)
    except ObjectTooLargeError as exc:
        raise ManifestError(f"{path} is over {max_bytes} bytes") from exc
    if stored is None:
        raise ManifestError(f"{path} is missing")
    return stored.data


# ---------------------------------------------------------------- the plan (pure)


@dataclass(frozen=True)
class PublishPlan:
    """What one publish uploads and deletes, step by step."""

    version: int
    uploads_immutable: tuple[str, ...]  # step 3: new paths, or bytes a live manifest lists
    uploads_mutable: tuple[str, ...]  # step 5: live paths whose bytes change
    deletions: tuple[str, ...]  # step 7: referenced live, not by the edition
    live_files: int  # listed files the live manifests reference (the shrink guard's base)

    @property
    def listed_deletions(self) -> int:
        """How many listed files (pages, feeds, ...; not manifests) would go."""
        return sum(1 for path in self.deletions if is_listed(path))


def plan_publish(
    version: int,
    local: Mapping[str, str],
    current: Mapping[str, str],
    pending: Mapping[str, str] | None = None,
    actual: Mapping[str, str | None] | None = None,
) -> PublishPlan:
    """The plan to bring a mirror to edition `version`.

    `local`, `current` and `pending` map each path to its sha256: the edition's files, and
    those the live manifests reference (`pending` only when a crashed publish left one).
    A file a live manifest lists may be in any of the states they give (absent, when only
    `pending` lists it); `actual` (from `--repair`) gives the state seen, None: absent.
    """
    pending = pending or {}
    actual = actual or {}
    immutable: list[str] = []
    mutable: list[str] = []
    for path, target in sorted(local.items()):
        states = {actual[path]} if path in actual else _possible_states(path, current, pending)
        if states == {target}:
            continue
        live = {known[path] for known in (current, pending) if path in known}
        (immutable if not live or target in live else mutable).append(path)
    referenced = current.keys() | pending.keys()
    return PublishPlan(
        version=version,
        uploads_immutable=tuple(immutable),
        uploads_mutable=tuple(mutable),
        deletions=tuple(sorted(referenced - local.keys())),
        live_files=sum(1 for path in referenced if is_listed(path)),
    )


def _possible_states(
    path: str, current: Mapping[str, str], pending: Mapping[str, str]
) -> set[str | None]:
    """The hashes `path` may have on the mirror (None: absent)."""
    states: set[str | None] = {current.get(path)}
    if path in pending:
        states.add(pending[path])
    return states


def check_shrink(plan: PublishPlan, mirror: str, options: PublishOptions) -> None:
    """ShrinkGuardError when the plan deletes more than the allowed share of live files."""
    deleting = plan.listed_deletions
    if options.allow_shrink or deleting <= options.shrink_limit * plan.live_files:
        return
    raise ShrinkGuardError(
        mirror,
        f"the publish would delete {deleting} of the {plan.live_files} live files "
        f"(more than {options.shrink_limit:.0%}): nothing written; use --allow-shrink "
        "if that is meant",
    )


def check_versions(live: LiveState, edition: LocalEdition, mirror: str) -> None:
    """PublishError when the mirror holds a newer version, or another build of this one."""
    if live.version > edition.version:
        raise PublishError(
            mirror,
            f"live version {live.version} is newer than the edition {edition.version}: "
            "build first (sync does)",
        )
    for manifest in (live.current, live.pending):
        if manifest and manifest.version == edition.version and manifest.data != edition.manifest:
            raise PublishError(
                mirror,
                f"live version {manifest.version} is another build than the edition's: "
                "build a new version",
            )


# ---------------------------------------------------------------- one mirror


async def publish_mirror(
    backend: Backend,
    edition: Path,
    key: minisign.PublicKey,
    options: PublishOptions | None = None,
) -> MirrorResult:
    """Bring one mirror to the edition in `edition` (manifest signed by `key`), as
    `options` say (`options.gc` is the caller's, as for `publish_all`: `gc_mirror`).

    A mirror-side failure (any PublishError) comes back as `ok=False` with its reason;
    a local problem (no edition, a damaged one) raises BuildError.
    """
    local = await asyncio.to_thread(load_edition, edition, key)
    return await publish_loaded(backend, local, key, options or PublishOptions())


async def publish_loaded(
    backend: Backend,
    edition: LocalEdition,
    key: minisign.PublicKey,
    options: PublishOptions,
    deadline: Deadline | None = None,
) -> MirrorResult:
    """As `publish_mirror`, for an edition already loaded; past its `deadline` the
    publish is abandoned where it is (MirrorDeadlineError as the reason)."""
    counted = CountingBackend(backend)
    tally = _Tally()
    started = time.monotonic()
    error: str | None = None
    try:
        await within_deadline(
            _publish(counted, edition, key, options, tally), backend.name, deadline
        )
    except PublishError as exc:
        error = exc.reason
    return MirrorResult(
        name=backend.name,
        ok=error is None,
        uploaded=tally.uploaded,
        deleted=tally.deleted,
        version=tally.version,
        error=error,
        pointer_writes=tally.pointer_writes,
        pointers_written=tally.pointers_written,
        requests=counted.requests,
        seconds=time.monotonic() - started,
        warnings=tuple(tally.warnings),
    )


async def _publish(
    backend: CountingBackend,
    edition: LocalEdition,
    key: minisign.PublicKey,
    options: PublishOptions,
    tally: _Tally,
) -> None:
    """Steps 0 to 8 (see the module's docstring)."""
    live = await read_live(backend, edition, key)
    tally.warnings.extend(live.warnings)
    tally.version = live.version
    if live.serves(edition) and not options.repair:
        detail.info("%s: serves version %d already: nothing to do", backend.name, live.version)
        return
    check_versions(live, edition, backend.name)
    actual = await probe(backend, edition, options.concurrency) if options.repair else None
    plan = plan_publish(
        edition.version,
        edition.hashes,
        live.current.files if live.current else {},
        live.pending.files if live.pending else None,
        actual,
    )
    detail.info(
        "%s: version %s -> %d: %d uploads, %d replaced, %d deletions",
        backend.name,
        live.current.version if live.current else "none",
        edition.version,
        len(plan.uploads_immutable),
        len(plan.uploads_mutable),
        len(plan.deletions),
    )
    check_shrink(plan, backend.name, options)
    await _upload(backend, edition, plan.uploads_immutable, options.concurrency, tally)
    switching = live.current is None or live.current.version != edition.version
    await _switch(backend, edition, live, plan, options, tally, switching=switching)
    await _delete(backend, plan.deletions, tally)
    if live.has_pending and live.current is not None:
        await _sweep(backend, edition, tally)
    if switching or live.has_pending:
        await backend.delete([PENDING])
        tally.pointer_writes += 1
    tally.version = edition.version


@dataclass(frozen=True)
class Deadline:
    """A mirror's `deadline_s`, less what earlier steps of the run used of it (in a sync:
    reading its live version before the build)."""

    seconds: float
    spent_s: float = 0.0

    @property
    def left_s(self) -> float:
        return max(0.0, self.seconds - self.spent_s)

    def spending(self, seconds: float) -> Deadline:
        """This deadline, `seconds` more of it used."""
        return Deadline(self.seconds, self.spent_s + seconds)


async def within_deadline(work: Awaitable[T], mirror: str, deadline: Deadline | None) -> T:
    """`work`, cancelled with MirrorDeadlineError once what is left of `deadline` has
    passed (None: no deadline). What it had written stays: the publishing order keeps
    the mirror verifying at every step."""
    if deadline is None:
        return await work
    reason = f"not done within its deadline of {deadline.seconds:g} s (deadline_s): abandoned"
    async with time_limit(deadline.left_s, lambda: MirrorDeadlineError(mirror, reason)):
        return await work


async def _switch(
    backend: CountingBackend,
    edition: LocalEdition,
    live: LiveState,
    plan: PublishPlan,
    options: PublishOptions,
    tally: _Tally,
    *,
    switching: bool,
) -> None:
    """Steps 4 to 6: `pending`, the changed files, `current` (when the version changes)."""
    if switching and live.pending_pointer != edition.version:
        await _put_pointer(backend, PENDING, edition.version, tally)
    await _upload(backend, edition, plan.uploads_mutable, options.concurrency, tally)
    if switching:
        await _write_current(backend, live, edition.version, tally)


async def _write_current(
    backend: CountingBackend, live: LiveState, version: int, tally: _Tally
) -> None:
    """`current` = version, only if it is still what step 0 read (ConflictError)."""
    if not backend.capabilities.conditional_put:
        seen = await backend.get(CURRENT, max_bytes=MAX_POINTER_BYTES)
        if (seen.etag if seen else None) != live.current_etag:
            raise ConflictError(backend.name, "`current` changed: another publish ran meanwhile")
    await _put_pointer(
        backend,
        CURRENT,
        version,
        tally,
        if_match=live.current_etag,
        if_none_match=live.current_etag is None,
    )


async def _put_pointer(
    backend: Backend,
    name: str,
    version: int,
    tally: _Tally,
    *,
    if_match: str | None = None,
    if_none_match: bool = False,
) -> None:
    """Write a pointer (`current` or `pending`) naming `version`."""
    await backend.put(
        name,
        pointer_bytes(version),
        content_type=content_type_for(name),
        cache_control=cache_control_for(name),
        if_match=if_match,
        if_none_match=if_none_match,
    )
    tally.pointer_writes += 1
    tally.pointers_written += 1


async def _upload(
    backend: Backend, edition: LocalEdition, paths: Sequence[str], concurrency: int, tally: _Tally
) -> None:
    """Put these edition files, `concurrency` at a time (the first failure stops the rest)."""

    async def upload(path: str) -> None:
        if edition.files[path].size <= INLINE_READ_BYTES:
            data = read_edition_file(edition, path)
        else:
            data = await asyncio.to_thread(read_edition_file, edition, path)
        await backend.put(
            path, data, content_type=content_type_for(path), cache_control=cache_control_for(path)
        )
        tally.uploaded += 1

    await map_bounded(upload, paths, limit=concurrency)


async def _delete(backend: Backend, paths: Sequence[str], tally: _Tally) -> None:
    """Delete these edition files in one call (none: no call)."""
    if paths:
        await backend.delete(paths)
        tally.deleted += len(paths)


async def _sweep(backend: Backend, edition: LocalEdition, tally: _Tally) -> None:
    """After a crashed publish: list once, delete what the edition does not reference."""
    found = await backend.list()
    await _delete(backend, strays(found, edition.files.keys()), tally)


def strays(found: Iterable[str], keep: Iterable[str]) -> list[str]:
    """The paths found that are neither kept nor a pointer."""
    kept = set(keep) | POINTERS
    return sorted(path for path in found if path not in kept)


async def probe(backend: Backend, edition: LocalEdition, concurrency: int) -> dict[str, str | None]:
    """Each edition file's sha256 as the mirror serves it (None: absent; "" unreadable,
    or, on a folder, its `NAME.gz` does not decode to the edition's bytes: the upload
    rewrites or removes it)."""
    paths = sorted(edition.files)
    siblings = backend.capabilities.gzip_siblings

    async def state(path: str) -> str | None:
        entry = edition.files[path]
        try:
            stored = await backend.get(path, max_bytes=entry.size)
        except MirrorUnreachableError:
            return ""  # over its size, or unreadable: the upload decides
        if stored is None:
            return None
        digest = sha256_hex(stored.data)
        if siblings and digest == entry.sha256 and not await sibling_sound(backend, entry):
            return ""
        return digest

    states = await map_bounded(state, paths, limit=concurrency)
    return dict(zip(paths, states, strict=True))


async def sibling_sound(backend: Backend, entry: FileEntry) -> bool:
    """Whether the folder's `NAME.gz` beside `entry` is absent or decodes to its bytes
    (as verify's check_siblings judges it; never inflating past the file's size)."""
    try:
        stored = await backend.get(entry.path + GZIP_SUFFIX, max_bytes=entry.size)
    except MirrorUnreachableError:
        return False  # larger than its file, or unreadable: rewrite it
    return stored is None or sibling_decodes_to(stored.data, {entry.sha256}, entry.size)


# ---------------------------------------------------------------- every mirror


async def publish_all(
    backends: Sequence[Backend],
    edition: Path,
    key: minisign.PublicKey,
    options: PublishOptions | None = None,
    *,
    deadlines: Mapping[str, Deadline] | None = None,
    on_result: Callable[[MirrorResult], None] | None = None,
) -> list[MirrorResult]:
    """Publish the edition to every mirror at once; one in order per backend.

    A mirror that fails or hangs (until its deadline in `deadlines`, by name, or its
    backend's time limits) neither delays nor stops the others; `on_result` hears of
    each mirror as it ends. A local problem raises BuildError, after every mirror has
    finished. `options.gc` is the caller's (`gc_mirror`, once a mirror is published).
    """
    options = options or PublishOptions()
    local = await asyncio.to_thread(load_edition, edition, key)
    by_name = deadlines or {}

    async def one(backend: Backend) -> MirrorResult:
        deadline = by_name.get(backend.name)
        result = await _publish_guarded(backend, local, key, options, deadline)
        if on_result is not None:
            on_result(result)
        return result

    outcomes = await asyncio.gather(*(one(backend) for backend in backends), return_exceptions=True)
    results: list[MirrorResult] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        results.append(outcome)
    return results


async def _publish_guarded(
    backend: Backend,
    edition: LocalEdition,
    key: minisign.PublicKey,
    options: PublishOptions,
    deadline: Deadline | None,
) -> MirrorResult:
    """`publish_loaded`, with an unexpected error from the backend as a failed result
    (its traceback logged: it is a bug somewhere)."""
    try:
        return await publish_loaded(backend, edition, key, options, deadline)
    except BuildError:
        raise
    except Exception as exc:
        log.exception("mirror %s: unexpected error while publishing", backend.name)
        reason = f"unexpected {type(exc).__name__}: {str(exc)[:300]}"
        return MirrorResult(name=backend.name, ok=False, error=reason)


# ---------------------------------------------------------------- maintenance


async def live_version(backend: Backend, key: minisign.PublicKey) -> int:
    """The newest version the mirror holds with a good signature by `key` (0: none, or
    the mirror cannot be read), so that a build goes above every live version."""
    try:
        return await read_live_version(backend, key)
    except PublishError:
        return 0


async def read_live_version(backend: Backend, key: minisign.PublicKey) -> int:
    """As `live_version`, but a mirror that cannot be read raises its PublishError."""
    return max([await _signed_version(backend, name, key) for name in (CURRENT, PENDING)])


async def _signed_version(backend: Backend, pointer: str, key: minisign.PublicKey) -> int:
    """The version `pointer` names if its manifest's signature holds, else 0."""
    stored = await backend.get(pointer, max_bytes=MAX_POINTER_BYTES)
    try:
        version = parse_pointer(stored.data) if stored else 0
        if not version:
            return 0
        path = manifest_path(version)
        data = await _get_required(backend, path, MAX_MANIFEST_BYTES)
        signature = await _get_required(
            backend, signature_path(path), minisign.MAX_SIGNATURE_FILE_BYTES
        )
        return check_signed_manifest(data, signature, version, key).version
    except VerifyError:
        return 0


async def gc_mirror(backend: Backend, edition: Path, key: minisign.PublicKey) -> int:
    """Delete the mirror's files that neither a live manifest nor the edition references
    (one listing); returns how many. PublishError when a live manifest cannot be read,
    since then what is live is unknown."""
    local = await asyncio.to_thread(load_edition, edition, key)
    live = await read_live(backend, local, key)
    if live.warnings:
        raise PublishError(backend.name, "gc refused: " + "; ".join(live.warnings))
    keep = set(local.files)
    for manifest in (live.current, live.pending):
        keep.update(manifest.files if manifest else ())
    doomed = strays(await backend.list(), keep)
    if doomed:
        await backend.delete(doomed)
    return len(doomed)


async def retire_mirror(backend: Backend) -> int:
    """Empty the mirror (pointers first, so it stops claiming an edition); returns how
    many objects went."""
    found = await backend.list()
    pointers = [path for path in found if path in POINTERS]
    for batch in (sorted(pointers, key=lambda name: name != CURRENT), strays(found, ())):
        if batch:
            await backend.delete(batch)
    return len(found)
