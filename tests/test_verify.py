from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import posixpath
import shutil
import subprocess
import threading
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from aiohttp import web

from mirror.cli import run
from mirror.config import MirrorConfig
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
from mirror.publish.status import mirrors_status
from mirror.trust import certificate, minisign
from mirror.trust.manifest import (
    canonical_json,
    manifest_comment,
    page_comment,
    pointer_bytes,
)
from mirror.verify import readers
from mirror.verify.memory import Seen, check_rollback, load_seen, remember
from mirror.verify.readers import HttpSettings, normalised_url
from mirror.verify.run import verify_edition, verify_target

from cli_configs import cli, mirror_table, write_config
from editions import (
    EXPIRES,
    FAST,
    NOW,
    SITE,
    make_edition,
    verify,
    with_page_signatures,
    write_files,
    write_manifest,
)
from servers import closed_port, serve
from stock_minisign import minisign_binary


@pytest.fixture
def key() -> minisign.SecretKey:
    return minisign.generate_key()


@pytest.fixture
def edition(tmp_path: Path, key: minisign.SecretKey) -> Path:
    folder = tmp_path / "edition"
    make_edition(folder, key)
    return folder


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


# ---------------------------------------------------------------- folders


async def test_a_whole_edition_verifies(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    report = await verify(edition, key.public, state)
    assert report.ok, report
    assert (report.version, report.expires, report.pending) == (1, EXPIRES, None)
    document = report.to_json()
    assert {"ok", "version", "expires", "missing", "tampered", "extra"} <= set(document)
    assert document["expires"] == "2026-12-01T06:00:00Z"
    assert json.loads(json.dumps(document)) == document
    assert load_seen(state / "seen.json")[key.public.key_id_hex] == Seen(0, 1, 0)


async def test_a_changed_byte_is_tampered(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    page = edition / "articles/2026/10/second.html"
    data = bytearray(page.read_bytes())
    data[1000] ^= 1
    page.write_bytes(bytes(data))
    (edition / "feed.xml").write_bytes(b"<feed/><!-- and more -->")
    report = await verify(edition, key.public, state)
    assert not report.ok
    assert report.tampered == ["articles/2026/10/second.html", "feed.xml"]
    assert report.missing == [] and report.extra == []


async def test_a_deleted_file_is_missing(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    (edition / "articles/2026/11/first.html.minisig").unlink()
    shutil.rmtree(edition / "archive")
    (edition / "mirrors.json").unlink()
    (edition / "mirrors.json").mkdir()  # a folder where a file should be
    report = await verify(edition, key.public, state)
    assert not report.ok
    assert report.missing == [
        "archive/2026-11.html",
        "articles/2026/11/first.html.minisig",
        "mirrors.json",
    ]


async def test_an_added_file_is_extra(edition: Path, key: minisign.SecretKey, state: Path) -> None:
    write_files(
        edition,
        {
            "articles/2026/11/fake.html": b"<html>not ours</html>",
            "login.html": b"<form>",
            "manifests/99.json": b"ignored",
        },
    )
    report = await verify(edition, key.public, state)
    assert not report.ok
    assert report.extra == ["articles/2026/11/fake.html", "login.html"]
    assert report.missing == [] and report.tampered == []


async def test_only_manifest_names_and_top_level_housekeeping_are_unlisted(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    allowed = {
        "manifests/7.json": b"{}",
        "manifests/7.json.minisig": b"sig",
        f"manifests/parts/{'ab' * 32}.json": b"{}",
        ".mirror.lock": b"",
        ".mirror-tmp-k3x_9q": b"half",
        ".mirror-build-3": b"staged by a build",
        "..mirror-build-3.k2_x.tmp": b"half staged",
    }
    strays = {
        "manifests/evil.html": b"<script>",
        "manifests/1.json.bak": b"{}",
        "manifests/parts/x.json": b"{}",
        "manifests/parts/deep/" + "ab" * 32 + ".json": b"{}",
        ".mirror.evil.html": b"<form>",
        ".mirror-tmp-x.html": b"<form>",
        "archive/.mirror.lock": b"",
        "articles/2026/11/.mirror-tmp-abc": b"<form>",
        "articles/.mirror-build-1": b"<form>",
        ".mirror-build-x.html": b"<form>",
        "articles/current": b"1\n",
    }
    write_files(edition, {**allowed, **strays})
    report = await verify(edition, key.public, state)
    assert not report.ok
    assert report.extra == sorted(strays)
    assert report.missing == [] and report.tampered == [] and report.symlinks == []


async def test_symbolic_links_are_reported_and_never_followed(
    edition: Path, key: minisign.SecretKey, state: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "etc"
    write_files(outside, {"passwd": b"root:x:0:0", "feed.xml": (edition / "feed.xml").read_bytes()})
    (edition / "etc").symlink_to(outside, target_is_directory=True)
    (edition / "articles" / "old").symlink_to(outside, target_is_directory=True)
    (edition / "feed.xml").unlink()
    (edition / "feed.xml").symlink_to(outside / "feed.xml")  # same bytes, served from elsewhere
    (edition / "gone.html").symlink_to(tmp_path / "nothing")
    report = await verify(edition, key.public, state)
    assert not report.ok
    assert report.symlinks == ["articles/old", "etc", "feed.xml", "gone.html"]
    assert report.to_json()["symlinks"] == report.symlinks
    assert report.extra == [] and report.missing == [] and report.tampered == []
    assert report.summary().endswith(", 4 symbolic links")


async def test_mid_publish_a_file_may_match_the_pending_manifest(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    new = with_page_signatures(
        key,
        {
            **SITE,
            "index.html": b"<html>index v2</html>",
            "articles/2026/11/fourth.html": b"<html>fourth</html>",
        },
    )
    # 1. the new immutable files and manifest 2; 2. pending = 2; 3. the mutable files
    write_files(edition, {p: d for p, d in new.items() if p.startswith("articles/2026/11/f")})
    write_manifest(edition, key, new, 2, pointer="pending")
    report = await verify(edition, key.public, state)
    assert report.ok, report
    assert (report.version, report.pending) == (1, 2)
    write_files(edition, {"index.html": new["index.html"]})
    assert (await verify(edition, key.public, state)).ok
    (edition / "index.html").write_bytes(b"<html>index v3?</html>")
    assert (await verify(edition, key.public, state)).tampered == ["index.html"]
    # 4. current = 2, pending removed: index v1 no longer passes
    (edition / "index.html").write_bytes(SITE["index.html"])
    (edition / "current").write_bytes(b"2\n")
    (edition / "pending").unlink()
    report = await verify(edition, key.public, state)
    assert (report.version, report.pending, report.tampered) == (2, None, ["index.html"])


async def test_pending_equal_to_current_is_harmless(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    (edition / "pending").write_bytes(b"1\n")
    report = await verify(edition, key.public, state)
    assert report.ok and report.pending is None


async def test_pending_older_than_current_is_a_rollback(
    tmp_path: Path, key: minisign.SecretKey, state: Path
) -> None:
    folder = tmp_path / "edition"
    make_edition(folder, key, version=2)
    write_manifest(folder, key, with_page_signatures(key, SITE), 1, pointer="pending")
    with pytest.raises(RollbackError, match="pending"):
        await verify(folder, key.public, state)


async def test_an_expired_manifest_is_refused(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    with pytest.raises(ExpiredError, match="expired"):
        await verify(edition, key.public, state, now=EXPIRES)
    assert (await verify(edition, key.public, state, now=EXPIRES - timedelta(seconds=1))).ok


async def test_an_older_version_than_seen_is_a_rollback(
    tmp_path: Path, key: minisign.SecretKey, state: Path
) -> None:
    make_edition(tmp_path / "v5", key, version=5)
    make_edition(tmp_path / "v4", key, version=4)
    assert (await verify(tmp_path / "v5", key.public, state)).ok
    with pytest.raises(RollbackError, match="version 4"):
        await verify(tmp_path / "v4", key.public, state)
    assert (await verify(tmp_path / "v5", key.public, state)).ok
    assert (await verify(tmp_path / "v4", key.public, tmp_path / "elsewhere")).ok


async def test_a_new_epoch_may_start_versions_again(
    tmp_path: Path, key: minisign.SecretKey, state: Path
) -> None:
    make_edition(tmp_path / "old", key, version=9)
    make_edition(tmp_path / "new", key, version=1, epoch=1)
    assert (await verify(tmp_path / "old", key.public, state)).ok
    assert (await verify(tmp_path / "new", key.public, state)).ok
    with pytest.raises(RollbackError):
        await verify(tmp_path / "old", key.public, state)


def test_rollback_memory_keeps_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "seen.json"
    remember(path, "AA", Seen(0, 5, 2))
    remember(path, "AA", Seen(0, 4, 3))
    remember(path, "BB", Seen(1, 1, 0))
    assert load_seen(path) == {"AA": Seen(0, 5, 3), "BB": Seen(1, 1, 0)}
    assert [p.name for p in path.parent.iterdir()] == ["seen.json"]  # no temporary left
    check_rollback(Seen(0, 5, 3), Seen(1, 1, 3))
    with pytest.raises(RollbackError, match="serial"):
        check_rollback(Seen(0, 5, 3), Seen(0, 6, 2))


@pytest.mark.parametrize("garbage", [b"{", b"[]", b'{"AA": {"version": "5"}}', b'{"AA": 3}'])
async def test_garbled_rollback_memory_is_named(
    edition: Path, key: minisign.SecretKey, state: Path, garbage: bytes
) -> None:
    write_files(state, {"seen.json": garbage})
    with pytest.raises(RollbackError, match="delete it"):
        await verify(edition, key.public, state)


async def test_a_wrong_key_is_refused(edition: Path, state: Path) -> None:
    with pytest.raises(SignatureError, match="not by the expected key"):
        await verify(edition, minisign.generate_key().public, state)


async def test_a_garbled_signature_is_refused(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    signature = edition / "manifests/1.json.minisig"
    lines = signature.read_bytes().split(b"\n")
    lines[1] = lines[1][:20] + b"!" + lines[1][21:]
    signature.write_bytes(b"\n".join(lines))
    with pytest.raises(SignatureError, match="garbled"):
        await verify(edition, key.public, state)


async def test_a_truncated_signature_is_refused(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    signature = edition / "manifests/1.json.minisig"
    signature.write_bytes(signature.read_bytes()[:150])
    with pytest.raises(SignatureError, match=r"truncated|garbled"):
        await verify(edition, key.public, state)


async def test_a_missing_signature_is_refused(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    (edition / "manifests/1.json.minisig").unlink()
    with pytest.raises(SignatureError, match="missing"):
        await verify(edition, key.public, state)


async def test_an_edited_manifest_fails_its_signature(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    manifest = edition / "manifests/1.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"version":1', b'"version":2'))
    with pytest.raises(SignatureError, match="does not match"):
        await verify(edition, key.public, state)


async def test_a_trusted_comment_disagreeing_with_the_manifest_is_refused(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    data = (edition / "manifests/1.json").read_bytes()
    later = manifest_comment(1, EXPIRES + timedelta(days=30), 0)
    (edition / "manifests/1.json.minisig").write_bytes(minisign.sign(key, data, later))
    with pytest.raises(ManifestError, match="trusted comment"):
        await verify(edition, key.public, state)


async def test_a_tampered_sub_manifest_is_refused(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    part = next((edition / "manifests/parts").iterdir())
    part.write_bytes(part.read_bytes().replace(b'"size":', b'"size": '))
    with pytest.raises(ManifestError, match="hash"):
        await verify(edition, key.public, state)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("current", "no `current`"),
        ("pointer", "pointer"),
        ("manifest", "missing"),
        ("version", "holds version"),
    ],
)
async def test_broken_pointers_are_named(
    edition: Path, key: minisign.SecretKey, state: Path, content: str, problem: str
) -> None:
    if content == "current":
        (edition / "current").unlink()
    elif content == "pointer":
        (edition / "current").write_bytes(b"../1\n")
    elif content == "manifest":
        (edition / "current").write_bytes(b"7\n")
    else:
        shutil.copy(edition / "manifests/1.json", edition / "manifests/7.json")
        shutil.copy(edition / "manifests/1.json.minisig", edition / "manifests/7.json.minisig")
        (edition / "current").write_bytes(b"7\n")
    with pytest.raises(VerifyError, match=problem):
        await verify(edition, key.public, state)


def write_signed_raw(
    folder: Path, key: minisign.SecretKey, files: list[dict[str, object]], version: int = 1
) -> None:
    """A signed manifest whose one part lists `files` as given (make_manifest would refuse)."""
    part = canonical_json({"type": "mirror-part", "name": "site", "files": files})
    digest = hashlib.sha256(part).hexdigest()
    document = {
        "type": "mirror-manifest",
        "version": version,
        "epoch": 0,
        "created": "2026-11-24T05:00:00Z",
        "expires": "2026-12-01T06:00:00Z",
        "key_id": key.public.key_id_hex,
        "parts": [{"name": "site", "sha256": digest, "files": len(files), "bytes": 2}],
    }
    data = canonical_json(document)
    write_files(
        folder,
        {
            f"manifests/parts/{digest}.json": part,
            f"manifests/{version}.json": data,
            f"manifests/{version}.json.minisig": minisign.sign(
                key, data, manifest_comment(version, EXPIRES, 0)
            ),
            "current": pointer_bytes(version),
        },
    )


@pytest.mark.parametrize(
    ("paths", "problem"),
    [
        (["../outside.html", "a"], "'\\.\\.'"),
        (["a/../../outside.html", "a"], "'\\.\\.'"),
        (["/etc/passwd", "a"], "absolute"),
        (["a\\b.html", "a"], "backslash"),
        (["a.html", "a.html"], "twice"),
    ],
)
async def test_bad_paths_in_a_signed_manifest_are_refused(
    tmp_path: Path, key: minisign.SecretKey, state: Path, paths: list[str], problem: str
) -> None:
    one = hashlib.sha256(b"x").hexdigest()
    files = [{"path": path, "size": 1, "sha256": one} for path in paths]
    write_signed_raw(tmp_path, key, files)
    with pytest.raises(ManifestError, match=problem):
        await verify(tmp_path, key.public, state)


@pytest.fixture
def read_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the local files the folder reader goes on to read, as it reads them."""
    sizes: list[int] = []
    pump = readers._pump

    def recorded(fd: int, sink: readers.Sink, max_bytes: int) -> readers.ReadOutcome:
        sizes.append(os.fstat(fd).st_size)
        return pump(fd, sink, max_bytes)

    monkeypatch.setattr(readers, "_pump", recorded)
    return sizes


async def test_a_100_mb_manifest_is_refused_unread(
    edition: Path, key: minisign.SecretKey, state: Path, read_sizes: list[int]
) -> None:
    with (edition / "manifests/1.json").open("r+b") as handle:
        handle.truncate(100_000_000)  # sparse: nothing is written
    with pytest.raises(ManifestError, match="limit"):
        await verify(edition, key.public, state)
    assert read_sizes and max(read_sizes) < 100_000_000  # other files read, not that one


async def test_a_huge_file_is_tampered_without_reading_it(
    edition: Path, key: minisign.SecretKey, state: Path, read_sizes: list[int]
) -> None:
    with (edition / "feed.xml").open("r+b") as handle:
        handle.truncate(10_000_000_000)  # sparse
    report = await verify(edition, key.public, state)
    assert report.tampered == ["feed.xml"]
    assert read_sizes and max(read_sizes) < 10_000_000_000  # the others read, not that one


async def test_a_fifo_does_not_hang(edition: Path, key: minisign.SecretKey, state: Path) -> None:
    (edition / "feed.xml").unlink()
    os.mkfifo(edition / "feed.xml")
    report = await asyncio.wait_for(verify(edition, key.public, state), 5)
    assert report.missing == ["feed.xml"]


async def test_memory_stays_bounded_while_hashing(
    tmp_path: Path, key: minisign.SecretKey, state: Path
) -> None:
    big = {**SITE, "big.bin": os.urandom(40_000_000)}
    make_edition(tmp_path / "e", key, files=big)
    del big
    tracemalloc.start()
    try:
        report = await verify(tmp_path / "e", key.public, state)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok
    assert peak < 16_000_000


async def test_no_such_folder(tmp_path: Path, key: minisign.SecretKey, state: Path) -> None:
    with pytest.raises(TargetError, match="no such folder"):
        await verify(tmp_path / "nowhere", key.public, state)
    with pytest.raises(TargetError, match="http"):
        await verify("ftp://example.org/", key.public, state)


# ---------------------------------------------------------------- article page signatures


async def test_a_page_signature_naming_another_page_is_reported(
    tmp_path: Path, key: minisign.SecretKey, state: Path
) -> None:
    files = with_page_signatures(key, SITE)
    page = "articles/2026/11/first.html"
    comment = page_comment("articles/2026/10/second.html", 1, "https://www.example.org/")
    files[page + ".minisig"] = minisign.sign(key, files[page], comment)
    write_files(tmp_path, files)
    write_manifest(tmp_path, key, files, 1)
    report = await verify(tmp_path, key.public, state)
    assert not report.ok and report.tampered == []
    assert report.errors == [f"{page}.minisig: signs articles/2026/10/second.html, not {page}"]


async def test_a_page_signature_over_other_bytes_is_reported(
    tmp_path: Path, key: minisign.SecretKey, state: Path
) -> None:
    files = with_page_signatures(key, SITE)
    page = "articles/2026/11/first.html"
    files[page + ".minisig"] = minisign.sign(key, b"other", page_comment(page, 1, ""))
    write_files(tmp_path, files)
    write_manifest(tmp_path, key, files, 1)
    report = await verify(tmp_path, key.public, state)
    assert not report.ok
    assert report.errors == [f"{page}.minisig: signature does not match the data"]


async def test_a_page_without_a_signature_is_reported(
    tmp_path: Path, key: minisign.SecretKey, state: Path
) -> None:
    files = with_page_signatures(key, SITE)
    del files["articles/undated/third.html.minisig"]
    write_files(tmp_path, files)
    write_manifest(tmp_path, key, files, 1)
    report = await verify(tmp_path, key.public, state)
    assert report.errors == ["articles/undated/third.html: no signature listed next to the page"]


# ---------------------------------------------------------------- root key and keys.json


def certified(
    root: minisign.SecretKey,
    signing: minisign.SecretKey,
    *,
    at: datetime = NOW - timedelta(days=1),
    days: int = 30,
    **options: object,
) -> dict[str, bytes]:
    data, signature = certificate.certify(root, signing.public, now=at, days=days, **options)  # type: ignore[arg-type]
    return {"keys.json": data, "keys.json.minisig": signature}


async def test_the_root_key_follows_keys_json(tmp_path: Path, state: Path) -> None:
    root, signing = minisign.generate_key(), minisign.generate_key()
    make_edition(tmp_path / "e", signing, files={**SITE, **certified(root, signing)})
    report = await verify(tmp_path / "e", root.public, state, is_root=True)
    assert report.ok, report
    assert load_seen(state / "seen.json")[root.public.key_id_hex] == Seen(0, 1, 1)
    with pytest.raises(KeyCertificateError, match="not signed by the root"):
        await verify(tmp_path / "e", signing.public, state, is_root=True)


async def test_a_revoked_online_key_is_refused(tmp_path: Path, state: Path) -> None:
    root, stolen, fresh = minisign.generate_key(), minisign.generate_key(), minisign.generate_key()
    first = certified(root, stolen)
    previous = certificate.check_certificate(
        root.public, first["keys.json"], first["keys.json.minisig"], now=NOW
    )
    revoking = certified(root, fresh, previous=previous, revoke=(stolen.public,))
    make_edition(tmp_path / "e", stolen, files={**SITE, **revoking})
    with pytest.raises(KeyCertificateError, match="revoked"):
        await verify(tmp_path / "e", root.public, state, is_root=True)


async def test_an_expired_online_key_is_refused(tmp_path: Path, state: Path) -> None:
    root, signing = minisign.generate_key(), minisign.generate_key()
    old = certified(root, signing, at=NOW - timedelta(days=3), days=2)
    make_edition(tmp_path / "e", signing, files={**SITE, **old})
    with pytest.raises(KeyCertificateError, match=r"expired|no signing key valid"):
        await verify(tmp_path / "e", root.public, state, is_root=True)


async def test_a_missing_keys_json_is_refused(tmp_path: Path, state: Path) -> None:
    root, signing = minisign.generate_key(), minisign.generate_key()
    make_edition(tmp_path / "e", signing)
    with pytest.raises(KeyCertificateError, match=r"keys\.json is missing"):
        await verify(tmp_path / "e", root.public, state, is_root=True)


async def test_a_manifest_epoch_the_root_did_not_grant_is_refused(
    tmp_path: Path, state: Path
) -> None:
    root, signing = minisign.generate_key(), minisign.generate_key()
    make_edition(tmp_path / "e", signing, files={**SITE, **certified(root, signing)}, epoch=1)
    with pytest.raises(KeyCertificateError, match="epoch"):
        await verify(tmp_path / "e", root.public, state, is_root=True)


async def test_the_command_line_tells_root_from_signing_key(tmp_path: Path, state: Path) -> None:
    root, signing = minisign.generate_key(), minisign.generate_key()
    make_edition(tmp_path / "e", signing, files={**SITE, **certified(root, signing)})
    (tmp_path / "root.pub").write_text(root.public.file_text())
    target = str(tmp_path / "e")
    for key in (str(tmp_path / "root.pub"), root.public.line(), signing.public.line()):
        report = await verify_target(target, key, now=NOW, state_dir=state)
        assert report.ok, report
        assert (
            report.summary() == "version 1 (expires 2026-12-01T06:00:00Z): OK, every file matches"
        )
    seen = load_seen(state / "seen.json")
    assert set(seen) == {root.public.key_id_hex, signing.public.key_id_hex}
    with pytest.raises(SignatureError):
        await verify_target(target, minisign.generate_key().public, now=NOW, state_dir=state)


async def test_the_summary_counts_problems(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    (edition / "feed.xml").unlink()
    (edition / "new.html").write_bytes(b"?")
    report = await verify_target(str(edition), key.public, now=NOW, state_dir=state)
    assert report.summary() == (
        "version 1 (expires 2026-12-01T06:00:00Z): FAILED, "
        "1 missing, 0 tampered, 1 extra, 0 other problems"
    )


# ---------------------------------------------------------------- over HTTP


def mirror_app(folder: Path) -> web.Application:
    app = web.Application()
    app.router.add_static("/bucket/", folder)

    async def moved(request: web.Request) -> web.StreamResponse:
        port = request.url.port
        raise web.HTTPFound(f"http://localhost:{port}/bucket/{request.match_info['tail']}")

    async def hop(request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        if not tail.startswith("real/"):
            raise web.HTTPMovedPermanently(f"/hop/real/{tail}")
        path = folder / tail.removeprefix("real/")
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    app.router.add_get("/moved/{tail:.*}", moved)
    app.router.add_get("/hop/{tail:.*}", hop)
    return app


async def test_a_mirror_over_http_verifies(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    async with serve(mirror_app(edition)) as port:
        report = await verify(f"http://127.0.0.1:{port}/bucket", key.public, state)
        assert report.ok, report
        assert report.extra == []  # a reader cannot list a bucket
        (edition / "extra.html").write_bytes(b"unseen")
        report = await verify(f"http://127.0.0.1:{port}/hop/", key.public, state)
        assert report.ok, report


async def test_a_tampered_mirror_over_http(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    (edition / "index.html").write_bytes(b"<html>defaced</html>")
    (edition / "mirrors.json").write_bytes(b"[]" * 10_000)
    (edition / "articles/2026/10/second.html").unlink()
    async with serve(mirror_app(edition)) as port:
        report = await verify(f"http://127.0.0.1:{port}/bucket/", key.public, state)
    assert not report.ok
    assert report.tampered == ["index.html", "mirrors.json"]
    assert report.missing == ["articles/2026/10/second.html"]


async def test_an_unreachable_mirror_is_named(key: minisign.SecretKey, state: Path) -> None:
    port = closed_port()
    with pytest.raises(
        TargetError, match=f"cannot connect to 127.0.0.1:{port}: connection refused"
    ):
        await verify(f"http://127.0.0.1:{port}/bucket/", key.public, state)


async def test_a_redirect_to_another_host_is_refused(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    async with serve(mirror_app(edition)) as port:
        with pytest.raises(TargetError, match="redirects to"):
            await verify(f"http://127.0.0.1:{port}/moved/", key.public, state)


async def test_a_100_mb_manifest_over_http_is_refused_unread(
    key: minisign.SecretKey, state: Path
) -> None:
    sent: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.match_info["tail"] == "current":
            return web.Response(body=b"1\n")
        declared = request.match_info["how"] == "declared"
        response = web.StreamResponse()
        if declared:
            response.content_length = 100_000_000
        await response.prepare(request)
        chunk = b" " * 1_000_000
        try:
            for _ in range(100):
                await response.write(chunk)
                sent.append(len(chunk))
        except (ConnectionResetError, ConnectionError):
            pass
        return response

    app = web.Application()
    app.router.add_get("/{how}/{tail:.*}", handler)
    async with serve(app) as port:
        for how in ("declared", "chunked"):
            sent.clear()
            with pytest.raises(ManifestError, match="limit"):
                await verify(f"http://127.0.0.1:{port}/{how}/", key.public, state)
            await asyncio.sleep(0.1)  # the server's write fails once the client has hung up
            assert sum(sent) < 40_000_000


async def test_a_server_error_is_named(key: minisign.SecretKey, state: Path) -> None:
    async def broken(request: web.Request) -> web.StreamResponse:
        raise web.HTTPServiceUnavailable()

    app = web.Application()
    app.router.add_get("/{tail:.*}", broken)
    async with serve(app) as port:
        with pytest.raises(TargetError, match="HTTP 503"):
            await verify(f"http://127.0.0.1:{port}/", key.public, state)


# ---------------------------------------------------------------- redirects, normalised


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("http://h/base/%2e%2e/other/x", "http://h/other/x"),
        ("HTTP://H:80/base/./a/../b", "http://h/base/b"),
        ("https://h:443/base/%2E%2E/%2e./x", "https://h/x"),
        ("http://h:8080/base/%7euser/%41%3f", "http://h:8080/base/~user/A%3F"),
        ("http://h/base/..", "http://h/"),
        ("http://h/../../x?a=%2e#frag", "http://h/x?a=%2e"),
        ("http://[::1]:81/a//b/", "http://[::1]:81/a//b/"),
    ],
)
def test_urls_are_normalised_as_a_server_resolves_them(url: str, normal: str) -> None:
    assert normalised_url(url) == normal


@pytest.mark.parametrize(
    "url",
    ["http://[::1/x", "http://h/base/..%2fother/", "http://h/a%5c..%5cb", "http://h/a\\b",
     "http://h/x%00", "http://user@h/", "ftp://h/", "http:///x", "http://h:99999/"],
)  # fmt: skip
def test_urls_that_hide_something_are_refused(url: str) -> None:
    with pytest.raises(TargetError):
        normalised_url(url)


def escaping_app(base: Path, other: Path, location: str) -> web.Application:
    """/base/* redirects to `location` + the rest; paths are resolved as nginx does
    (escapes decoded, dot segments removed), then served from `base` or `other`."""

    async def handler(request: web.Request) -> web.StreamResponse:
        path = posixpath.normpath(unquote(request.rel_url.raw_path))
        for prefix, folder in (("/base/", base), ("/other/", other)):
            if path.startswith(prefix) and prefix == "/base/":  # Location as is (no yarl)
                return web.Response(status=302, headers={"Location": location + path[6:]})
            if path.startswith(prefix) and (folder / path.removeprefix(prefix)).is_file():
                return web.FileResponse(folder / path.removeprefix(prefix))
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    return app


@pytest.mark.parametrize(
    "location", ["/base/%2e%2e/other/", "/base/%2E./other/", "/base/.%2e/other/", "../other/"]
)
async def test_a_redirect_leaving_the_base_after_normalisation_is_refused(
    tmp_path: Path, key: minisign.SecretKey, state: Path, location: str
) -> None:
    other = tmp_path / "other"
    make_edition(other, key, files={**SITE, "index.html": b"<html>someone else's</html>"})
    async with serve(escaping_app(tmp_path / "base", other, location)) as port:
        with pytest.raises(TargetError, match="away from"):
            await verify(f"http://127.0.0.1:{port}/base/", key.public, state)


async def test_a_redirect_staying_under_the_base_after_normalisation_is_followed(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        if not tail.startswith("real/"):  # "%72" is "r": /base/real/<tail>, spelt oddly
            return web.Response(status=302, headers={"Location": f"/base/x/../%72eal/./{tail}"})
        path = edition / tail.removeprefix("real/")
        return web.FileResponse(path) if path.is_file() else web.Response(status=404)

    app = web.Application()
    app.router.add_get("/base/{tail:.*}", handler)
    async with serve(app) as port:
        report = await verify(f"http://127.0.0.1:{port}/base/", key.public, state)
    assert report.ok, report


def malformed_redirect_app() -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": "http://[::1/x"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    return app


async def test_a_malformed_redirect_is_a_named_failure(
    key: minisign.SecretKey, state: Path
) -> None:
    async with serve(malformed_redirect_app()) as port:
        with pytest.raises(TargetError, match="not a URL"):
            await verify(f"http://127.0.0.1:{port}/base/", key.public, state)


@contextlib.contextmanager
def serve_in_thread(app: web.Application) -> Iterator[int]:
    """`app` on 127.0.0.1 from a loop of its own in a thread (the CLI runs its own loop)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)

    async def start() -> int:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return int(runner.addresses[0][1])

    try:
        yield asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = run(list(args))
    return status, capsys.readouterr().err


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's rollback memory in a temp folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.usefixtures("cache")
def test_a_malformed_redirect_exits_3_without_a_traceback(
    key: minisign.SecretKey, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve_in_thread(malformed_redirect_app()) as port:
        status, err = run_cli(
            capsys, "verify", f"http://127.0.0.1:{port}/base/", "--key", key.public.line()
        )
    assert status == 3
    assert "verification failed" in err and "not a URL" in err and "Traceback" not in err


# ---------------------------------------------------------------- slow mirrors


def trickling_app(folder: Path, slow: frozenset[str], byte_every_s: float) -> web.Application:
    """`folder` under /base/, the `slow` files one byte every `byte_every_s`."""

    async def handler(request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        path = folder / tail
        if not path.is_file():
            raise web.HTTPNotFound()
        if tail not in slow:
            return web.FileResponse(path)
        response = web.StreamResponse()
        response.content_length = path.stat().st_size
        await response.prepare(request)
        for byte in path.read_bytes():
            await response.write(bytes([byte]))
            await asyncio.sleep(byte_every_s)  # the server's pace, not the test's
        return response

    app = web.Application()
    app.router.add_get("/base/{tail:.*}", handler)
    return app


TRICKLE_FLOOR = HttpSettings(
    retries=0, timeout_s=30, min_bytes_per_s=10, rate_window_s=0.2, rate_grace_s=0.1
)


async def test_a_trickling_file_is_too_slow(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    app = trickling_app(edition, frozenset({"index.html"}), byte_every_s=0.3)
    async with serve(app) as port:
        with pytest.raises(TooSlowError, match="under the floor of 10 bytes/s"):
            await verify_edition(
                f"http://127.0.0.1:{port}/base/", key.public, now=NOW, state_dir=state,
                is_root=False, http=TRICKLE_FLOOR, deadline_s=30,
            )  # fmt: skip


async def test_a_fast_enough_file_passes_the_floor(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    slow_but_steady = HttpSettings(min_bytes_per_s=10, rate_window_s=0.3, rate_grace_s=0.0)
    app = trickling_app(edition, frozenset({"index.html"}), byte_every_s=0.02)  # 50 bytes/s
    async with serve(app) as port:
        report = await verify_edition(
            f"http://127.0.0.1:{port}/base/", key.public, now=NOW, state_dir=state,
            is_root=False, http=slow_but_steady,
        )  # fmt: skip
    assert report.ok, report


async def test_a_mirror_past_its_deadline_is_a_named_failure(
    edition: Path, key: minisign.SecretKey, state: Path
) -> None:
    app = trickling_app(edition, frozenset({"index.html"}), byte_every_s=0.1)  # above the floor
    async with serve(app) as port:
        with pytest.raises(DeadlineError, match=r"0\.5-second deadline"):
            await verify_edition(
                f"http://127.0.0.1:{port}/base/", key.public, now=NOW, state_dir=state,
                is_root=False, http=FAST, deadline_s=0.5,
            )  # fmt: skip


@pytest.mark.usefixtures("cache")
def test_verify_deadline_s_exits_3(
    edition: Path, key: minisign.SecretKey, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve_in_thread(trickling_app(edition, frozenset({"current"}), 1.0)) as port:
        status, err = run_cli(
            capsys, "verify", f"http://127.0.0.1:{port}/base/", "--key", key.public.line(),
            "--deadline-s", "0.3",
        )  # fmt: skip
    assert status == 3
    assert "0.3-second deadline" in err and "Traceback" not in err
    for bad in ("0", "-1", "inf", "nan", "soon"):
        with pytest.raises(SystemExit) as info:
            run(["verify", str(edition), "--key", "x", "--deadline-s", bad])
        assert info.value.code == 2


def slow_mirror(port: int) -> MirrorConfig:
    url = f"http://127.0.0.1:{port}/base/"
    return MirrorConfig(name="slow", type="directory", path=Path("unused"), public_url=url)


@pytest.mark.parametrize(
    ("slow", "full", "deadline_s", "reason"),
    [
        ("current", False, 0.2, "0.2-second deadline"),  # "1\n": the "\n" comes at 1 s
        ("manifests/1.json", False, 30, "under the floor of 10 bytes/s"),
        ("index.html", True, 30, "under the floor of 10 bytes/s"),
        ("index.html", True, 0.5, "0.5-second deadline"),
    ],
)
async def test_status_reports_a_slow_mirror_as_unreachable(
    edition: Path, key: minisign.SecretKey, state: Path,
    slow: str, full: bool, deadline_s: float, reason: str,
) -> None:  # fmt: skip
    floor = TRICKLE_FLOOR if deadline_s > 1 else FAST
    byte_every_s = 1.0 if slow == "current" else 0.3
    async with serve(trickling_app(edition, frozenset({slow}), byte_every_s)) as port:
        [status] = await mirrors_status(
            [slow_mirror(port)], key.public, now=NOW, local_version=1, full=full,
            state_dir=state, deadline_s=deadline_s, http=floor,
        )  # fmt: skip
    assert not status.reachable and not status.healthy
    assert reason in status.error, status.error
    assert status.summary().startswith("slow: UNREACHABLE (")
    assert status.tampered == []


def test_status_deadline_s_exits_1(
    tmp_path: Path, edition: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve_in_thread(trickling_app(edition, frozenset({"manifests/1.json"}), 0.2)) as port:
        table = mirror_table(
            "slow", type="directory", path=str(tmp_path / "unused"),
            public_url=f"http://127.0.0.1:{port}/base/",
        )  # fmt: skip
        config = str(write_config(tmp_path, "http://127.0.0.1:9/", table))
        status, report, err = cli(capsys, "-c", config, "status", "--json", "--deadline-s", "0.3")
    assert status == 1
    [mirror] = report["mirrors"]
    assert mirror["reachable"] is False and "0.3-second deadline" in mirror["error"]
    assert "slow: UNREACHABLE (" in err and "Traceback" not in err


# ---------------------------------------------------------------- the stock minisign


def test_stock_minisign_accepts_the_manifest_and_pages(
    edition: Path, key: minisign.SecretKey
) -> None:
    binary = minisign_binary()
    (edition.parent / "mirror.pub").write_text(key.public.file_text())
    for path in ("manifests/1.json", "articles/2026/11/first.html"):
        result = subprocess.run(
            [binary, "-Vm", path, "-p", "../mirror.pub"],
            cwd=edition,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "Signature and comment signature verified" in result.stdout + result.stderr
    assert (
        "mirror-manifest version:1 epoch:0 expires:2026-12-01T06:00:00Z"
        in subprocess.run(
            [binary, "-Vm", "manifests/1.json", "-p", "../mirror.pub"],
            cwd=edition,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
