"""The checks of `mirror verify` over bytes already read: no I/O, no clock (`now` is given).

Which keys may sign (`Trust`), each file's size and hashes as it streams past
(`FileDigest`), article pages' detached signatures, and files no manifest lists; a
signed manifest is judged by mirror.trust.manifest.check_signed_manifest, which publish
uses too. python-tuf's TrustedMetadataSet is the model: readers fetch, this judges.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mirror.errors import (
    VerifyError,
)
from mirror.trust import certificate, minisign
from mirror.trust.manifest import (
    UNCOVERED_FILES,
    FileEntry,
    is_housekeeping,
    is_manifest_file,
    is_signed_page,
    signature_path,
    signed_path,
)

MAX_SIGNATURE_BYTES = minisign.MAX_SIGNATURE_FILE_BYTES  # bytes, one .minisig
MAX_KEYS_BYTES = certificate.MAX_CERTIFICATE_BYTES  # bytes, keys.json


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


def expected_files(entries: Iterable[Mapping[str, FileEntry]]) -> dict[str, tuple[FileEntry, ...]]:
    """Every listed path and the entries it may match (one per manifest listing it)."""
    expected: dict[str, tuple[FileEntry, ...]] = {}
    for listing in entries:
        for path, entry in listing.items():
            known = expected.get(path, ())
            expected[path] = known if entry in known else (*known, entry)
    return expected


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
        if not is_signed_page(path) or result.status is not FileStatus.OK:
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
        signed = signed_path(minisign.verify_digest(signer, digest, content))
    except VerifyError as exc:
        return f"{signature.path}: {exc}"
    if signed != path:
        return f"{signature.path}: signs {signed}, not {path}"
    return None


def extra_files(found: Iterable[str], expected: Mapping[str, object]) -> list[str]:
    """Files present that no manifest lists, other than the pointers, manifest and part
    names under `manifests/`, and a directory mirror's own lock and temp files at the top."""
    return sorted(path for path in found if path not in expected and not is_unlisted_own(path))


def is_unlisted_own(path: str) -> bool:
    """Whether `path` is one of an edition folder's files that no manifest lists."""
    return path in UNCOVERED_FILES or is_manifest_file(path) or is_housekeeping(path)
