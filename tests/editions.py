"""Signed editions made by hand for tests: the files of a small site, signed with a test
key, written to a folder; and `verify`, verify_edition with quick HTTP settings."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mirror.trust import minisign
from mirror.trust.manifest import (
    FileEntry,
    ManifestBuild,
    is_article_page,
    is_listed,
    make_manifest,
    manifest_comment,
    page_comment,
    pointer_bytes,
    signature_path,
)
from mirror.verify.readers import HttpSettings
from mirror.verify.run import VerifyReport, verify_edition

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
CREATED = NOW - timedelta(hours=1)
EXPIRES = NOW + timedelta(days=7)
SITE = {
    "index.html": b"<html>index v1</html>",
    "feed.xml": b"<feed/>",
    "mirrors.json": b"[]",
    "archive/2026-11.html": b"<html>november</html>",
    "articles/2026/11/first.html": b"<html>first article</html>",
    "articles/2026/10/second.html": b"<html>second article</html>" * 100,
    "articles/undated/third.html": b"<html>third</html>",
}
FAST = HttpSettings(retries=0, timeout_s=10)


# ---------------------------------------------------------------- editions by hand


def with_page_signatures(key: minisign.SecretKey, files: Mapping[str, bytes]) -> dict[str, bytes]:
    """`files` plus a detached signature next to every article page."""
    signed = dict(files)
    for path, data in files.items():
        if is_article_page(path):
            comment = page_comment(path, 1, f"https://www.example.org/{path}")
            signed[signature_path(path)] = minisign.sign(key, data, comment)
    return signed


def entries(files: Mapping[str, bytes]) -> list[FileEntry]:
    return [
        FileEntry(path, len(data), hashlib.sha256(data).hexdigest())
        for path, data in files.items()
        if is_listed(path)
    ]


def write_files(folder: Path, files: Mapping[str, bytes]) -> None:
    for path, data in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def write_manifest(
    folder: Path,
    key: minisign.SecretKey,
    files: Mapping[str, bytes],
    version: int,
    *,
    pointer: str | None = "current",
    created: datetime = CREATED,
    expires: datetime = EXPIRES,
    epoch: int = 0,
) -> ManifestBuild:
    """Manifest `version` of `files` (parts, manifest, signature), and the pointer."""
    built = make_manifest(
        entries(files),
        version=version,
        epoch=epoch,
        created=created,
        expires=expires,
        key_id=key.key_id,
    )
    comment = manifest_comment(version, built.document.expires, epoch)
    write_files(
        folder,
        {
            **built.parts,
            built.path: built.manifest,
            built.path + ".minisig": minisign.sign(key, built.manifest, comment),
        },
    )
    if pointer:
        (folder / pointer).write_bytes(pointer_bytes(version))
    return built


def make_edition(
    folder: Path,
    key: minisign.SecretKey,
    version: int = 1,
    files: Mapping[str, bytes] = SITE,
    **options: object,
) -> dict[str, bytes]:
    """A whole, consistent edition in `folder`; returns its files."""
    signed = with_page_signatures(key, files)
    write_files(folder, signed)
    write_manifest(folder, key, signed, version, **options)  # type: ignore[arg-type]
    return signed


async def verify(
    target: str | Path,
    key: minisign.PublicKey,
    state: Path,
    *,
    now: datetime = NOW,
    is_root: bool = False,
) -> VerifyReport:
    return await verify_edition(
        str(target), key, now=now, state_dir=state, is_root=is_root, http=FAST
    )
