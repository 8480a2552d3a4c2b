"""One conformance suite for every storage backend, then what only S3 can get wrong.

The s3 backend talks to moto's S3 server, a separate process on 127.0.0.1 (see
moto_server.py); the directory backend writes under tmp_path; the memory backend (the
one publish tests use) keeps its objects in a dict.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp import web
from botocore import exceptions as boto_errors

from mirror.config import MirrorConfig
from mirror.errors import (
    ConfigError,
    ConflictError,
    MirrorAccessError,
    MirrorUnreachableError,
    ObjectTooLargeError,
    PublishError,
)
from mirror.publish.publisher import gc_mirror, publish_mirror
from mirror.storage import Backend, open_backend
from mirror.storage import directory as directory_module
from mirror.storage import s3 as s3_module
from mirror.storage.directory import DirectoryBackend
from mirror.storage.memory import MemoryBackend
from mirror.storage.s3 import S3Backend, S3Limits
from mirror.trust import minisign

from editions import SITE, make_edition, verify
from moto_server import REGION, create_bucket, s3_mirror
from servers import closed_port, serve

HTML = "text/html; charset=utf-8"
SHORT = "public, max-age=300"
IMMUTABLE = "public, max-age=31536000, immutable"
FAST_FAIL = S3Limits(connect_timeout_s=1.0, read_timeout_s=2.0, max_attempts=1)


@dataclasses.dataclass
class Case:
    """A backend under test, the config it was opened from, and how to peek behind it."""

    kind: str
    mirror: MirrorConfig
    backend: Backend
    endpoint: str = ""

    def raw_client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION)

    def open_sibling(self, prefix: str) -> Backend:
        """Another backend on the same store under `prefix` (a memory store has no
        prefixes: another memory backend)."""
        if isinstance(self.backend, MemoryBackend):
            return MemoryBackend(self.mirror.name)
        return open_backend(dataclasses.replace(self.mirror, prefix=prefix))


def directory_mirror(root: Path, **overrides: Any) -> MirrorConfig:
    values: dict[str, Any] = {
        "name": "dir-test",
        "type": "directory",
        "public_url": "http://127.0.0.1/",
        "path": root,
        **overrides,
    }
    return MirrorConfig(**values)


@pytest.fixture(params=["directory", "s3", "memory"])
async def case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Case]:
    """Each backend in turn, empty, its objects under the prefix "edition/"."""
    endpoint = ""
    if request.param == "directory":
        mirror = directory_mirror(tmp_path / "public", prefix="edition")
    elif request.param == "s3":
        request.getfixturevalue("aws_env")
        endpoint = request.getfixturevalue("moto_endpoint")
        mirror = s3_mirror(endpoint, create_bucket(endpoint), prefix="edition")
    else:
        mirror = MirrorConfig(name="memory-test", type="memory", public_url="http://127.0.0.1/")
    backend: Backend = (
        MemoryBackend(mirror.name)
        if mirror.type == "memory"
        else open_backend(mirror, max_workers=8)
    )
    yield Case(request.param, mirror, backend, endpoint)
    await backend.close()


# -- the contract, on every backend ------------------------------------------------------


async def test_round_trip_keeps_bytes_type_and_cache_control(case: Case) -> None:
    data = "<p>Привет</p>".encode()
    etag = await case.backend.put(
        "articles/2026/11/x.html", data, content_type=HTML, cache_control=SHORT
    )
    stored = await case.backend.get("articles/2026/11/x.html", max_bytes=1000)
    assert stored is not None
    assert stored.data == data
    assert stored.etag == etag
    if case.kind == "s3":
        head = case.raw_client().head_object(
            Bucket=case.mirror.bucket, Key="edition/articles/2026/11/x.html"
        )
        assert head["ContentType"] == HTML
        assert head["CacheControl"] == SHORT
    elif isinstance(case.backend, MemoryBackend):
        found = case.backend.objects["articles/2026/11/x.html"]
        assert (found.content_type, found.cache_control) == (HTML, SHORT)
    else:
        assert (case.mirror.path / "edition/articles/2026/11/x.html").read_bytes() == data


async def test_put_replaces_and_changes_the_etag(case: Case) -> None:
    first = await case.backend.put("index.html", b"one", content_type=HTML, cache_control=SHORT)
    second = await case.backend.put("index.html", b"two", content_type=HTML, cache_control=SHORT)
    assert first != second
    stored = await case.backend.get("index.html", max_bytes=100)
    assert stored is not None
    assert (stored.data, stored.etag) == (b"two", second)


async def test_empty_object_round_trips(case: Case) -> None:
    await case.backend.put("pending", b"", content_type="text/plain", cache_control=SHORT)
    stored = await case.backend.get("pending", max_bytes=0)
    assert stored is not None
    assert stored.data == b""


async def test_get_absent_is_none(case: Case) -> None:
    assert await case.backend.get("index.html", max_bytes=100) is None
    assert await case.backend.get("no/such/folder/x.html", max_bytes=100) is None


async def test_get_over_max_bytes_is_refused(case: Case) -> None:
    await case.backend.put(
        "feed.xml", b"x" * 101, content_type="application/atom+xml", cache_control=SHORT
    )
    with pytest.raises(MirrorUnreachableError, match="larger than 100 bytes") as info:
        await case.backend.get("feed.xml", max_bytes=100)
    assert info.value.mirror == case.mirror.name
    stored = await case.backend.get("feed.xml", max_bytes=101)
    assert stored is not None


async def test_object_too_large_is_not_retryable(case: Case) -> None:
    await case.backend.put("current", b"9" * 30, content_type="text/plain", cache_control=SHORT)
    with pytest.raises(ObjectTooLargeError) as info:
        await case.backend.get("current", max_bytes=20)
    assert not info.value.retryable  # the same bytes would come back
    assert MirrorUnreachableError.retryable


async def test_delete_removes_and_ignores_missing(case: Case) -> None:
    for path in ("a/b/one.html", "a/b/two.html", "top.html"):
        await case.backend.put(path, b"x", content_type=HTML, cache_control=SHORT)
    await case.backend.delete(["a/b/one.html", "a/b/two.html", "never/was.html"])
    await case.backend.delete([])
    assert await case.backend.get("a/b/one.html", max_bytes=10) is None
    assert await case.backend.list() == ["top.html"]
    if case.kind == "directory":
        assert not (case.mirror.path / "edition/a").exists()


async def test_delete_more_than_a_thousand(case: Case) -> None:
    paths = [f"articles/x{i:04}.html" for i in range(2345)]
    for path in paths[:5] + paths[-5:]:
        await case.backend.put(path, b"x", content_type=HTML, cache_control=SHORT)
    batches: list[int] = []
    if isinstance(case.backend, S3Backend):

        def count(params: dict[str, Any], **_: Any) -> None:
            batches.append(len(params["Delete"]["Objects"]))

        case.backend._client.meta.events.register("provide-client-params.s3.DeleteObjects", count)
    await case.backend.delete(paths)
    assert await case.backend.list() == []
    if case.kind == "s3":
        assert sorted(batches) == [345, 1000, 1000]


async def test_list_sees_only_its_prefix(case: Case) -> None:
    other = case.open_sibling("other/")
    try:
        await other.put("index.html", b"o", content_type=HTML, cache_control=SHORT)
        for path in ("index.html", "articles/2026/11/a.html", "manifests/3.json", "current"):
            await case.backend.put(path, b"x", content_type=HTML, cache_control=SHORT)
        assert await case.backend.list() == sorted(
            ["index.html", "articles/2026/11/a.html", "manifests/3.json", "current"]
        )
        assert await other.list() == ["index.html"]
    finally:
        await other.close()


async def test_list_of_an_empty_mirror(case: Case) -> None:
    assert await case.backend.list() == []


async def test_conditional_put(case: Case) -> None:
    if not case.backend.capabilities.conditional_put:
        pytest.skip(f"{case.kind} does not enforce conditional puts")
    put = case.backend.put
    etag = await put(
        "current", b"3", content_type="text/plain", cache_control=SHORT, if_none_match=True
    )
    with pytest.raises(ConflictError) as info:
        await put(
            "current", b"4", content_type="text/plain", cache_control=SHORT, if_none_match=True
        )
    assert info.value.mirror == case.mirror.name
    newer = await put(
        "current", b"4", content_type="text/plain", cache_control=SHORT, if_match=etag
    )
    with pytest.raises(ConflictError):
        await put("current", b"5", content_type="text/plain", cache_control=SHORT, if_match=etag)
    stored = await case.backend.get("current", max_bytes=10)
    assert stored is not None
    assert (stored.data, stored.etag) == (b"4", newer)


async def test_conditional_put_on_an_absent_object(case: Case) -> None:
    if not case.backend.capabilities.conditional_put:
        pytest.skip(f"{case.kind} does not enforce conditional puts")
    other = await case.backend.put("x.html", b"x", content_type=HTML, cache_control=SHORT)
    with pytest.raises(ConflictError):
        await case.backend.put(
            "current", b"1", content_type="text/plain", cache_control=SHORT, if_match=other
        )
    assert await case.backend.get("current", max_bytes=10) is None


@pytest.mark.parametrize(
    "path", ["../escape.html", "/etc/passwd", "a\\b.html", "a//b.html", "", "a/./b.html", "a/"]
)
async def test_bad_paths_are_refused(case: Case, path: str) -> None:
    with pytest.raises(PublishError, match="refused path") as info:
        await case.backend.put(path, b"x", content_type=HTML, cache_control=SHORT)
    assert info.value.mirror == case.mirror.name
    with pytest.raises(PublishError, match="refused path"):
        await case.backend.get(path, max_bytes=10)
    with pytest.raises(PublishError, match="refused path"):
        await case.backend.delete(["ok.html", path])


async def test_use_after_close_is_refused(case: Case) -> None:
    await case.backend.close()
    await case.backend.close()  # twice is fine
    with pytest.raises(RuntimeError, match="after close"):
        await case.backend.put("a.html", b"x", content_type=HTML, cache_control=SHORT)
    with pytest.raises(RuntimeError, match="after close"):
        await case.backend.get("a.html", max_bytes=10)
    with pytest.raises(RuntimeError, match="after close"):
        await case.backend.delete(["a.html"])
    with pytest.raises(RuntimeError, match="after close"):
        await case.backend.list()


async def test_concurrent_puts_do_not_mix(case: Case) -> None:
    if case.kind == "s3":
        pytest.skip("moto 5.2 answers 500 to concurrent PUTs of one key (a race in moto)")
    bodies = [bytes([65 + i]) * 50_000 for i in range(8)]
    await asyncio.gather(
        *(
            case.backend.put("index.html", body, content_type=HTML, cache_control=SHORT)
            for body in bodies
        )
    )
    stored = await case.backend.get("index.html", max_bytes=100_000)
    assert stored is not None
    assert stored.data in bodies


@pytest.mark.parametrize(("prefix", "normalised"), [("", ""), ("ed", "ed/"), ("a/b/", "a/b/")])
def test_prefix_is_normalised(tmp_path: Path, prefix: str, normalised: str) -> None:
    backend = DirectoryBackend(directory_mirror(tmp_path, prefix=prefix))
    assert backend.root == tmp_path / normalised
    s3 = S3Backend(s3_mirror("http://127.0.0.1:1", "bucket", prefix=prefix))
    assert s3.prefix == normalised


@pytest.mark.parametrize("prefix", ["/abs", "a/../b", "..", "a//b", "a\\b", "./a", "a b/"])
def test_bad_prefixes_are_refused_at_open(tmp_path: Path, prefix: str) -> None:
    for mirror in (
        directory_mirror(tmp_path, prefix=prefix),
        s3_mirror("http://127.0.0.1:1", "bucket", prefix=prefix),
    ):
        with pytest.raises(ConfigError) as info:
            open_backend(mirror)
        assert info.value.key == f"mirrors[{mirror.name}].prefix"


# -- the directory backend ---------------------------------------------------------------


async def test_directory_skips_folders_fifos_and_temp_files(tmp_path: Path) -> None:
    async with DirectoryBackend(directory_mirror(tmp_path)) as backend:
        (tmp_path / "folder.html").mkdir()
        os.mkfifo(tmp_path / "pipe.html")
        (tmp_path / ".mirror-tmp-abc").write_bytes(b"half")
        await backend.put("index.html", b"x", content_type=HTML, cache_control=SHORT)
        assert await backend.get("folder.html", max_bytes=10) is None
        assert await asyncio.wait_for(backend.get("pipe.html", max_bytes=10), 5) is None
        assert await backend.list() == ["index.html"]


async def test_directory_temp_files_are_written_at_the_top_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renamed: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def recording(source: Any, target: Any) -> None:
        renamed.append((Path(source), Path(target)))
        real_replace(source, target)

    monkeypatch.setattr(directory_module.os, "replace", recording)
    root = tmp_path / "public"
    async with DirectoryBackend(directory_mirror(root)) as backend:
        await backend.put("articles/2026/11/x.html", b"x", content_type=HTML, cache_control=SHORT)
        await backend.put("index.html", b"i", content_type=HTML, cache_control=SHORT)
    assert [(s.parent, s.name[:12], t) for s, t in renamed] == [
        (root, ".mirror-tmp-", root / "articles/2026/11/x.html"),
        (root, ".mirror-tmp-", root / "index.html"),
    ]
    assert (root / "articles/2026/11/x.html").read_bytes() == b"x"


async def test_directory_lists_stray_housekeeping_names_and_symlinks_for_gc(
    tmp_path: Path,
) -> None:
    root, outside = tmp_path / "public", tmp_path / "etc"
    outside.mkdir()
    (outside / "passwd").write_bytes(b"root:x:0:0")
    async with DirectoryBackend(directory_mirror(root)) as backend:
        await backend.put("articles/2026/11/x.html", b"x", content_type=HTML, cache_control=SHORT)
        for name in (
            ".mirror.lock",
            ".mirror-tmp-abc",
            ".mirror.evil.html",
            "articles/.mirror.lock",
            "articles/2026/11/.mirror-tmp-abc",
        ):
            (root / name).write_bytes(b"stray")  # fmt: skip
        (root / "etc").symlink_to(outside, target_is_directory=True)
        (root / "articles/2026/passwd").symlink_to(outside / "passwd")
        listed = await backend.list()
        assert listed == [
            ".mirror.evil.html",
            "articles/.mirror.lock",
            "articles/2026/11/.mirror-tmp-abc",
            "articles/2026/11/x.html",
            "articles/2026/passwd",
            "etc",
        ]
        await backend.delete([path for path in listed if not path.endswith("x.html")])
        assert await backend.list() == ["articles/2026/11/x.html"]
    assert (outside / "passwd").read_bytes() == b"root:x:0:0"  # links go, not their targets
    assert sorted(path.name for path in root.iterdir()) == [".mirror-tmp-abc", ".mirror.lock",
                                                            "articles"]  # fmt: skip


async def test_directory_gc_removes_what_verify_calls_extra_or_a_link(tmp_path: Path) -> None:
    key = minisign.generate_key()
    edition, root, outside = tmp_path / "edition", tmp_path / "public", tmp_path / "etc"
    make_edition(edition, key, 1, SITE)
    outside.mkdir()
    (outside / "shadow").write_bytes(b"secret")
    async with DirectoryBackend(directory_mirror(root)) as backend:
        assert (await publish_mirror(backend, edition, key.public)).ok
        for name in (
            "manifests/evil.html",
            "manifests/parts/x.json",
            ".mirror.evil.html",
            "articles/2026/11/.mirror-tmp-abc",
        ):
            (root / name).write_bytes(b"stray")  # fmt: skip
        (root / "articles" / "etc").symlink_to(outside, target_is_directory=True)
        report = await verify(root, key.public, tmp_path / "state")
        assert not report.ok and len(report.extra) == 4 and report.symlinks == ["articles/etc"]
        assert await gc_mirror(backend, edition, key.public) == 5
    report = await verify(root, key.public, tmp_path / "state")
    assert report.ok, report
    assert (outside / "shadow").read_bytes() == b"secret"


async def test_directory_never_writes_reads_or_deletes_through_a_link(tmp_path: Path) -> None:
    """A link planted in the mirror's folder sends none of our files elsewhere and serves
    nobody else's: writes and deletes below it are named errors, reads find nothing."""
    root, outside = tmp_path / "public", tmp_path / "etc"
    outside.mkdir()
    (outside / "shadow").write_bytes(b"secret")
    async with DirectoryBackend(directory_mirror(root)) as backend:
        await backend.put("index.html", b"i", content_type=HTML, cache_control=SHORT)
        (root / "articles").symlink_to(outside, target_is_directory=True)
        (root / "current").symlink_to(outside / "shadow")
        with pytest.raises(PublishError, match="articles is a symbolic link"):
            await backend.put("articles/x.html", b"x", content_type=HTML, cache_control=SHORT)
        with pytest.raises(PublishError, match="articles is a symbolic link"):
            await backend.delete(["articles/shadow"])
        assert await backend.get("articles/shadow", max_bytes=100) is None
        assert await backend.get("current", max_bytes=100) is None
        await backend.put("current", b"1", content_type=HTML, cache_control=SHORT)
    assert sorted(p.name for p in outside.iterdir()) == ["shadow"]
    assert (outside / "shadow").read_bytes() == b"secret"
    assert (root / "current").read_bytes() == b"1" and not (root / "current").is_symlink()


async def test_directory_files_are_world_readable_and_etag_is_sha256(tmp_path: Path) -> None:
    async with DirectoryBackend(directory_mirror(tmp_path)) as backend:
        etag = await backend.put("a/b.html", b"hello", content_type=HTML, cache_control=SHORT)
    mode = stat.S_IMODE((tmp_path / "a/b.html").stat().st_mode)
    assert mode == 0o644
    assert etag == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


async def test_directory_conditional_puts_race_to_one_winner(tmp_path: Path) -> None:
    async with DirectoryBackend(directory_mirror(tmp_path), max_workers=16) as backend:
        results = await asyncio.gather(
            *(
                backend.put(
                    "current",
                    str(i).encode(),
                    content_type="text/plain",
                    cache_control=SHORT,
                    if_none_match=True,
                )
                for i in range(16)
            ),
            return_exceptions=True,
        )
    assert sum(isinstance(r, str) for r in results) == 1
    assert sum(isinstance(r, ConflictError) for r in results) == 15


UNWRITABLE_CHECK = """
import asyncio, sys
from pathlib import Path
from mirror.config import MirrorConfig
from mirror.errors import MirrorAccessError
from mirror.storage.directory import DirectoryBackend

async def main():
    mirror = MirrorConfig("dir-test", "directory", "http://127.0.0.1/", path=Path(sys.argv[1]))
    async with DirectoryBackend(mirror) as backend:
        try:
            await backend.put("a.html", b"x", content_type="text/html", cache_control="no-cache")
        except MirrorAccessError as exc:
            print("access error:", exc)

asyncio.run(main())
"""


def test_directory_unwritable_folder_is_an_access_error(tmp_path: Path) -> None:
    """Run in a process of our own user without capabilities (root writes anywhere, and
    another user could not import this checkout when it lives under a 0700 folder)."""
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    folder.chmod(0o555)
    command = [sys.executable, "-c", UNWRITABLE_CHECK, str(folder)]
    if os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--", *command]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    finally:
        folder.chmod(0o755)
    assert "access error:" in result.stdout, result.stderr
    assert "dir-test" in result.stdout
    assert not (folder / "a.html").exists()


async def test_directory_file_in_the_way_is_a_publish_error(tmp_path: Path) -> None:
    (tmp_path / "articles").write_bytes(b"not a folder")
    async with DirectoryBackend(directory_mirror(tmp_path)) as backend:
        with pytest.raises(PublishError, match="collide") as info:
            await backend.put("articles/a.html", b"x", content_type=HTML, cache_control=SHORT)
        assert info.value.mirror == "dir-test"
        assert await backend.get("articles/a.html", max_bytes=10) is None


# -- what only S3 can get wrong ----------------------------------------------------------


@pytest.mark.usefixtures("aws_env")
async def test_no_such_bucket_is_an_access_error(moto_endpoint: str) -> None:
    async with S3Backend(s3_mirror(moto_endpoint, "never-created-bucket")) as backend:
        with pytest.raises(MirrorAccessError, match="NoSuchBucket") as info:
            await backend.put("a.html", b"x", content_type=HTML, cache_control=SHORT)
        assert info.value.mirror == "moto-test"
        with pytest.raises(MirrorAccessError):
            await backend.get("a.html", max_bytes=10)
        with pytest.raises(MirrorAccessError):
            await backend.list()
        with pytest.raises(MirrorAccessError):
            await backend.delete(["a.html"])


@pytest.mark.usefixtures("aws_env")
async def test_missing_credentials_name_the_mirror(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    mirror = s3_mirror(moto_endpoint, create_bucket(moto_endpoint), name="frankfurt")
    async with S3Backend(mirror) as backend:
        with pytest.raises(MirrorAccessError) as info:
            await backend.put("a.html", b"x", content_type=HTML, cache_control=SHORT)
    message = str(info.value)
    assert message.startswith("frankfurt: no S3 credentials found")
    assert "AWS_ACCESS_KEY_ID" in message
    assert "profile" in message


@pytest.mark.usefixtures("aws_env")
async def test_partial_credentials_say_what_is_missing_never_the_secret(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAVERYSECRETKEYID99")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    mirror = s3_mirror(moto_endpoint, "some-bucket", name="frankfurt")
    with pytest.raises(MirrorAccessError) as info:
        async with S3Backend(mirror) as backend:
            await backend.get("a.html", max_bytes=10)
    message = str(info.value)
    assert "frankfurt" in message
    assert "secret_key" in message or "AWS_SECRET_ACCESS_KEY" in message
    assert "AKIAVERYSECRETKEYID99" not in message


@pytest.mark.usefixtures("aws_env")
def test_missing_profile_is_an_access_error_at_open(moto_endpoint: str) -> None:
    mirror = s3_mirror(moto_endpoint, "some-bucket", name="frankfurt", profile="nope")
    with pytest.raises(MirrorAccessError, match=r"frankfurt: AWS profile not found.*nope"):
        open_backend(mirror)


@pytest.mark.usefixtures("aws_env")
async def test_connection_refused_is_unreachable_and_quick() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    sent: list[str] = []
    async with S3Backend(s3_mirror(endpoint, "bucket"), limits=FAST_FAIL) as backend:
        events = backend._client.meta.events  # botocore's hooks: each attempt goes out once
        events.register("before-send.s3.*", lambda request, **_: sent.append(request.method))
        with pytest.raises(MirrorUnreachableError, match="cannot connect") as info:
            await backend.get("index.html", max_bytes=10)
    assert info.value.retryable
    assert sent == ["GET"] * FAST_FAIL.max_attempts  # quick: no attempt past max_attempts


def html_app(status: int, hits: list[str]) -> web.Application:
    """Every request answered with an HTML page (a captive portal, a wrong endpoint)."""

    async def page(request: web.Request) -> web.Response:
        await request.read()
        hits.append(request.method)
        return web.Response(
            status=status, text="<html><body>Log in</body></html>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    return app


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize(("status", "attempts"), [(200, 1), (403, 1), (503, 2)])
async def test_html_pages_are_unreachable(status: int, attempts: int) -> None:
    hits: list[str] = []
    async with serve(html_app(status, hits)) as port:
        mirror = s3_mirror(f"http://127.0.0.1:{port}", "bucket")
        limits = dataclasses.replace(FAST_FAIL, max_attempts=2)
        async with S3Backend(mirror, limits=limits) as backend:
            calls = [
                backend.put("a.html", b"x", content_type=HTML, cache_control=SHORT),
                backend.get("a.html", max_bytes=1000),
                backend.list(),
                backend.delete(["a.html"]),
            ]
            for call in calls:
                with pytest.raises(MirrorUnreachableError, match="HTML page") as info:
                    await call
                assert info.value.mirror == "moto-test"
    assert len(hits) == 4 * attempts  # a 5xx page is retried, a 200 or 403 page is not


@pytest.mark.usefixtures("aws_env")
async def test_slow_down_is_unreachable_and_retryable() -> None:
    body = "<?xml version='1.0'?><Error><Code>SlowDown</Code><Message>Reduce</Message></Error>"

    async def slow_down(request: web.Request) -> web.Response:
        return web.Response(status=503, text=body, content_type="application/xml")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", slow_down)
    async with serve(app) as port:
        mirror = s3_mirror(f"http://127.0.0.1:{port}", "bucket")
        async with S3Backend(mirror, limits=FAST_FAIL) as backend:
            with pytest.raises(MirrorUnreachableError, match="SlowDown") as info:
                await backend.put("a.html", b"x", content_type=HTML, cache_control=SHORT)
    assert info.value.retryable


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize(
    ("checksums", "header"),
    [("when_required", "Content-MD5"), ("when_supported", "x-amz-checksum-sha256")],
)
async def test_puts_carry_an_integrity_checksum(
    moto_endpoint: str, checksums: str, header: str
) -> None:
    mirror = s3_mirror(moto_endpoint, create_bucket(moto_endpoint), checksums=checksums)
    sent: list[dict[str, str]] = []

    def record(request: Any, **_: Any) -> None:
        sent.append(dict(request.headers))

    async with S3Backend(mirror) as backend:
        assert backend.capabilities.server_checksums
        backend._client.meta.events.register("before-send.s3.PutObject", record)
        await backend.put("a.html", b"x", content_type=HTML, cache_control=SHORT)
    assert header in sent[0]
    assert "Expect" not in sent[0]  # no wait for "100 Continue" before each body


@pytest.mark.parametrize(
    "bucket",
    [
        "ab",
        "Upper-case",
        "under_score",
        "192.168.1.10",
        "a..b",
        "-lead",
        "trail-",
        "a" * 64,
        "xn--punycode",
        "dot.-hyphen",
        "bucket-s3alias",
        "",
        "with space",
    ],
)
def test_bad_bucket_names_are_refused_at_open(bucket: str) -> None:
    mirror = s3_mirror("http://127.0.0.1:1", bucket, name="frankfurt")
    with pytest.raises(ConfigError) as info:
        open_backend(mirror)
    assert info.value.key == "mirrors[frankfurt].bucket"


@pytest.mark.parametrize("bucket", ["abc", "my.mirror-1", "a" * 63, "1bucket"])
def test_good_bucket_names_are_accepted(bucket: str) -> None:
    assert S3Backend(s3_mirror("http://127.0.0.1:1", bucket)).bucket == bucket


@pytest.mark.parametrize(
    ("endpoint", "conditional"),
    [
        ("", True),
        ("https://abc.r2.cloudflarestorage.com", True),
        ("https://s3.us-west-004.backblazeb2.com", False),
        ("http://127.0.0.1:9000", True),
    ],
)
def test_conditional_put_capability_by_provider(endpoint: str, conditional: bool) -> None:
    backend = S3Backend(s3_mirror(endpoint, "bucket", region="us-east-1"))
    assert backend.capabilities.conditional_put is conditional


# Classes botocore raises only from APIs this backend never calls (waiters, stubs,
# service models, other services); everything else must map to a PublishError.
NEVER_RAISED = {
    "ApiVersionNotFoundError",
    "DataNotFoundError",
    "UnknownServiceError",
    "UnknownServiceStyle",
    "OperationNotPageableError",
    "StubAssertionError",
    "StubResponseError",
    "UnStubbedResponseError",
    "WaiterConfigError",
    "WaiterError",
    "UnknownClientMethodError",
    "InvalidExpressionError",
    "MissingParametersError",
    "InvalidRetryConfigurationError",
    "InvalidMaxRetryAttemptsError",
    "InvalidRetryModeError",
    "InvalidDefaultsMode",
    "InvalidProxiesConfigError",
    "InvalidHostLabelError",
    "InvalidIMDSEndpointError",
    "InvalidIMDSEndpointModeError",
    "InvalidEndpointDiscoveryConfigurationError",
    "InvalidS3UsEast1RegionalEndpointConfigError",
    "InvalidSTSRegionalEndpointsConfigError",
    "UnsupportedOutpostResourceError",
    "UnsupportedS3AccesspointConfigurationError",
    "UnsupportedS3ArnError",
    "UnsupportedS3ControlArnError",
    "UnsupportedS3ControlConfigurationError",
    "UnsupportedServiceProtocolsError",
    "UnsupportedSignatureVersionError",
    "UnknownSignatureVersionError",
    "UnknownTokenProviderError",
    "UnknownRegionError",
    "ServiceNotInRegionError",
    "MissingDependencyException",
    "BotoCoreError",
}


def test_every_botocore_error_is_mapped() -> None:
    unmapped = [
        name
        for name, cls in inspect.getmembers(boto_errors, inspect.isclass)
        if issubclass(cls, boto_errors.BotoCoreError)
        and name not in NEVER_RAISED
        and s3_module.error_kind(cls) is None
    ]
    assert unmapped == []


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (boto_errors.NoCredentialsError(), MirrorAccessError, "no S3 credentials"),
        (
            boto_errors.PartialCredentialsError(provider="env", cred_var="secret_key"),
            MirrorAccessError,
            "missing: secret_key",
        ),
        (boto_errors.ProfileNotFound(profile="ops"), MirrorAccessError, "(ops)"),
        (
            boto_errors.EndpointConnectionError(endpoint_url="http://x"),
            MirrorUnreachableError,
            "cannot connect",
        ),
        (
            boto_errors.ConnectTimeoutError(endpoint_url="http://x"),
            MirrorUnreachableError,
            "timed out connecting",
        ),
        (
            boto_errors.ReadTimeoutError(endpoint_url="http://x"),
            MirrorUnreachableError,
            "timed out waiting",
        ),
        (
            boto_errors.ConnectionClosedError(endpoint_url="http://x"),
            MirrorUnreachableError,
            "closed",
        ),
        (boto_errors.NoRegionError(), PublishError, "region"),
    ],
)
def test_translate_error(exc: Exception, kind: type[PublishError], words: str) -> None:
    error = s3_module.translate_error("m1", exc)
    assert type(error) is kind
    assert error.mirror == "m1"
    assert words in str(error)


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("NoSuchBucket", 404, MirrorAccessError),
        ("AccessDenied", 403, MirrorAccessError),
        ("InvalidAccessKeyId", 403, MirrorAccessError),
        ("SignatureDoesNotMatch", 403, MirrorAccessError),
        ("ExpiredToken", 400, MirrorAccessError),
        ("403", 403, MirrorAccessError),
        ("PreconditionFailed", 412, ConflictError),
        ("412", 412, ConflictError),
        ("ConditionalRequestConflict", 409, ConflictError),
        ("SlowDown", 503, MirrorUnreachableError),
        ("InternalError", 500, MirrorUnreachableError),
        ("502", 502, MirrorUnreachableError),
        ("OperationAborted", 409, MirrorUnreachableError),
        ("Throttling", 400, MirrorUnreachableError),
        ("InvalidArgument", 400, PublishError),
    ],
)
def test_client_error_codes(code: str, status: int, kind: type[PublishError]) -> None:
    exc = boto_errors.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )
    error = s3_module.translate_error("m1", exc)
    assert type(error) is kind
    assert code in str(error)
