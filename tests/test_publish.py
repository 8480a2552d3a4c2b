from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path

import pytest

from mirror.config import MirrorConfig
from mirror.errors import BuildError, MirrorUnreachableError
from mirror.publish.publisher import (
    MirrorResult,
    PublishOptions,
    PublishPlan,
    cache_control_for,
    content_type_for,
    gc_mirror,
    live_version,
    plan_publish,
    publish_all,
    publish_mirror,
    retire_mirror,
)
from mirror.storage.directory import DirectoryBackend
from mirror.storage.memory import MemoryBackend
from mirror.storage.s3 import S3Backend
from mirror.trust import minisign
from mirror.trust.manifest import MAX_MANIFEST_BYTES, manifest_path
from mirror.verify.run import VerifyReport

from editions import make_edition, verify

# ---------------------------------------------------------------- editions by hand


def site(articles: int, tag: str = "v1") -> dict[str, bytes]:
    """A small site: index, feed, mirror list, an archive page and `articles` pages."""
    files = {
        "index.html": f"<html>index {tag} {articles}</html>".encode(),
        "feed.xml": f"<feed>{tag} {articles}</feed>".encode(),
        "mirrors.json": b"[]",
        "archive/2026-11.html": f"<html>november {articles}</html>".encode(),
    }
    for number in range(articles):
        month = 10 + number % 2
        files[f"articles/2026/{month}/a{number}.html"] = f"<html>article {number}</html>".encode()
    return files


def edition_of(
    folder: Path, key: minisign.SecretKey, version: int, files: Mapping[str, bytes]
) -> Path:
    make_edition(folder, key, version, files)
    return folder


@pytest.fixture
def key() -> minisign.SecretKey:
    return minisign.generate_key()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def v1(tmp_path: Path, key: minisign.SecretKey) -> Path:
    return edition_of(tmp_path / "v1", key, 1, site(20))


@pytest.fixture
def v2(tmp_path: Path, key: minisign.SecretKey) -> Path:
    """v1 plus one article: a new page and signature, index, feed, archive month."""
    return edition_of(tmp_path / "v2", key, 2, site(21))


async def verify_memory(
    backend: MemoryBackend, tmp_path: Path, key: minisign.SecretKey, state: Path
) -> VerifyReport:
    folder = tmp_path / f"copy-{len(backend.calls)}"
    return await verify(backend.write_to(folder), key.public, state)


def directory_backend(folder: Path, name: str = "folder") -> DirectoryBackend:
    return DirectoryBackend(MirrorConfig(name=name, type="directory", public_url="", path=folder))


# ---------------------------------------------------------------- the plan (pure)


def test_an_empty_mirror_gets_everything_as_new_files() -> None:
    plan = plan_publish(2, {"a": "1", "b": "2"}, {})
    assert plan == PublishPlan(2, ("a", "b"), (), (), 0)


def test_unchanged_files_are_skipped_changed_ones_wait_for_pending() -> None:
    plan = plan_publish(2, {"a": "1", "b": "new", "c": "3"}, {"a": "1", "b": "old", "d": "4"})
    assert plan.uploads_immutable == ("c",)
    assert plan.uploads_mutable == ("b",)
    assert plan.deletions == ("d",)
    assert (plan.live_files, plan.listed_deletions) == (3, 1)


def test_with_a_pending_manifest_every_possible_state_counts() -> None:
    local = {"same": "1", "done": "2", "half": "3", "only-pending": "4", "changed": "9"}
    current = {"same": "1", "done": "0", "half": "0", "gone": "5", "changed": "0"}
    pending = {"same": "1", "done": "2", "half": "3", "only-pending": "4", "changed": "8", "x": "6"}
    plan = plan_publish(3, local, current, pending)
    # "done" and "half" may still hold current's bytes: uploaded again, before `pending`
    # (their bytes match the pending manifest); "only-pending" may be absent.
    assert plan.uploads_immutable == ("done", "half", "only-pending")
    assert plan.uploads_mutable == ("changed",)
    assert plan.deletions == ("gone", "x")


def test_manifest_files_never_count_for_the_shrink_guard() -> None:
    plan = plan_publish(2, {"a": "1"}, {"a": "1", "manifests/1.json": "m"})
    assert plan.deletions == ("manifests/1.json",)
    assert (plan.live_files, plan.listed_deletions) == (1, 0)


def test_seen_states_override_the_manifests() -> None:
    plan = plan_publish(1, {"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "2", "c": "3"},
                        actual={"a": "1", "b": None, "c": "garbage"})  # fmt: skip
    assert plan.uploads_immutable == ("b", "c")
    assert plan.uploads_mutable == ()


def test_headers() -> None:
    assert content_type_for("index.html") == "text/html; charset=utf-8"
    assert content_type_for("feed.xml") == "application/atom+xml; charset=utf-8"
    assert content_type_for("mirrors.json") == "application/json; charset=utf-8"
    assert content_type_for("articles/2026/11/a.html.minisig").startswith("text/plain")
    assert content_type_for("current") == "text/plain; charset=utf-8"
    assert content_type_for("images/x.webp") == "image/webp"
    assert content_type_for("odd") == "application/octet-stream"
    assert content_type_for("editions/2026-11-29-ru.epub") == "application/epub+zip"
    for feed in ("feed-ru.xml", "feed-en.xml", "feed-pt-br.xml"):
        assert content_type_for(feed) == "application/atom+xml; charset=utf-8"
    assert content_type_for("sitemap.xml") == "application/xml; charset=utf-8"
    assert "immutable" in cache_control_for("manifests/3.json")
    assert "immutable" in cache_control_for("manifests/parts/" + "a" * 64 + ".json")
    assert "max-age=300" in cache_control_for("manifests/3.json.minisig")
    assert "max-age=300" in cache_control_for("index.html")
    assert cache_control_for("current") == cache_control_for("pending") == "no-cache"


# ---------------------------------------------------------------- one mirror


async def test_an_empty_mirror_gets_everything_and_verifies(
    v1: Path, key: minisign.SecretKey, tmp_path: Path, state: Path
) -> None:
    backend = MemoryBackend()
    result = await publish_mirror(backend, v1, key.public)
    assert result.ok, result.error
    assert (result.version, result.uploaded, result.deleted) == (1, 44 + 2 + 3, 0)
    assert result.pointer_writes == 3  # pending, current, pending removed
    assert "current" in backend.objects and "pending" not in backend.objects
    index = backend.objects["index.html"]
    assert index.content_type == "text/html; charset=utf-8"
    assert backend.objects[manifest_path(1)].cache_control.endswith("immutable")
    report = await verify_memory(backend, tmp_path, key, state)
    assert report.ok and report.version == 1, report
    assert result.to_json()["ok"] is True
    assert set(result.to_json()) >= {"name", "ok", "uploaded", "deleted", "version", "error"}


async def test_nothing_changed_costs_three_requests(v1: Path, key: minisign.SecretKey) -> None:
    backend = MemoryBackend()
    await publish_mirror(backend, v1, key.public)
    result = await publish_mirror(backend, v1, key.public)
    assert result.ok and result.version == 1
    assert (result.requests, result.uploaded, result.pointer_writes) == (3, 0, 0)


async def test_one_new_article_uploads_only_what_changed(
    v1: Path, v2: Path, key: minisign.SecretKey, tmp_path: Path, state: Path
) -> None:
    backend = MemoryBackend()
    await publish_mirror(backend, v1, key.public)
    result = await publish_mirror(backend, v2, key.public)
    assert result.ok, result.error
    # page + signature, index, feed, archive month, 2 parts, manifest + signature
    assert result.uploaded == 9
    assert result.deleted == 4  # manifest 1 + signature, its two changed parts
    # reads: current, pending, manifest 1 + signature, its 2 parts that changed;
    # writes: 9 files, pending, current, one delete call, pending removed
    assert result.requests == 6 + 9 + 4
    assert manifest_path(1) not in backend.objects
    report = await verify_memory(backend, tmp_path, key, state)
    assert report.ok and report.version == 2, report


async def test_a_lower_version_is_refused(v1: Path, v2: Path, key: minisign.SecretKey) -> None:
    backend = MemoryBackend()
    await publish_mirror(backend, v2, key.public)
    result = await publish_mirror(backend, v1, key.public)
    assert not result.ok and result.version == 2
    assert "live version 2 is newer than the edition 1: build first" in (result.error or "")
    assert result.uploaded == 0 and result.requests <= 6
    assert all(op == "get" for op, _ in backend.calls[-result.requests :])


async def test_the_shrink_guard_stops_before_any_write(
    v1: Path, key: minisign.SecretKey, tmp_path: Path, state: Path
) -> None:
    smaller = edition_of(tmp_path / "small", key, 2, site(15))  # 10 of 44 listed files go
    backend = MemoryBackend()
    await publish_mirror(backend, v1, key.public)
    writes = backend.count("put") + backend.count("delete")
    stopped = await publish_mirror(backend, smaller, key.public)
    assert not stopped.ok and "would delete 10 of the 44 live files" in (stopped.error or "")
    assert backend.count("put") + backend.count("delete") == writes
    allowed = await publish_mirror(backend, smaller, key.public, PublishOptions(allow_shrink=True))
    assert allowed.ok and allowed.deleted >= 10
    report = await verify_memory(backend, tmp_path, key, state)
    assert report.ok and report.version == 2


async def test_a_wrongly_signed_live_manifest_is_reported_and_taken_as_empty(
    v1: Path, v2: Path, key: minisign.SecretKey, tmp_path: Path, state: Path
) -> None:
    forged = edition_of(tmp_path / "forged", minisign.generate_key(), 1, site(3, "forged"))
    backend = MemoryBackend()
    backend.load(
        {p.relative_to(forged).as_posix(): p.read_bytes() for p in forged.rglob("*") if p.is_file()}
    )
    result = await publish_mirror(backend, v2, key.public)
    assert result.ok, result.error
    assert any("live manifest 1 taken as empty" in warning for warning in result.warnings)
    assert result.uploaded == 46 + 2 + 3  # everything
    report = await verify_memory(backend, tmp_path, key, state)
    assert report.version == 2 and not report.missing and not report.tampered


async def test_an_oversized_live_manifest_is_reported_and_taken_as_empty(
    v1: Path, v2: Path, key: minisign.SecretKey, tmp_path: Path, state: Path
) -> None:
    """Larger than any manifest we write: unreadable, like a bad signature, so the mirror
    gets everything again instead of failing."""
    backend = MemoryBackend()
    await publish_mirror(backend, v1, key.public)
    await backend.put(
        manifest_path(1), b" " * (MAX_MANIFEST_BYTES + 1), content_type="", cache_control=""
    )
    result = await publish_mirror(backend, v2, key.public)
    assert result.ok, result.error
    assert any("live manifest 1 taken as empty" in w and "over" in w for w in result.warnings), (
        result.warnings
    )
    report = await verify_memory(backend, tmp_path, key, state)
    assert report.version == 2 and not report.missing and not report.tampered


async def test_a_lost_conditional_write_is_reported(
    v1: Path, v2: Path, key: minisign.SecretKey
) -> None:
    backend = MemoryBackend()
    await publish_mirror(backend, v1, key.public)

    async def race(operation: str, path: str) -> None:
        if (operation, path) == ("put", "current"):
            backend.hook = None
            await backend.put("current", b"1\n", content_type="", cache_control="")

    backend.hook = race
    result = await publish_mirror(backend, v2, key.public)
    assert not result.ok and "ETag differs" in (result.error or "")
    assert backend.objects["pending"].data == b"2\n"  # left for the next publish to finish


async def test_a_store_without_conditional_puts_is_checked_by_reading(
    v1: Path, v2: Path, key: minisign.SecretKey
) -> None:
    backend = MemoryBackend(conditional_put=False)
    await publish_mirror(backend, v1, key.public)

    async def race(operation: str, path: str) -> None:
        if (operation, path) == ("put", "pending"):
            backend.hook = None
            await backend.put("current", b"1\n", content_type="", cache_control="")

    backend.hook = race
    result = await publish_mirror(backend, v2, key.public)
    assert not result.ok and "another publish ran meanwhile" in (result.error or "")


async def test_the_next_publish_finishes_a_crashed_one(
    v1: Path, v2: Path, key: minisign.SecretKey, tmp_path: Path, state: Path
) -> None:
    backend = MemoryBackend()
    await publish_mirror(backend, v1, key.public)

    async def crash(operation: str, path: str) -> None:
        if operation == "delete" and "manifests" in path:
            raise MirrorUnreachableError(backend.name, "connection reset")

    backend.hook = crash
    crashed = await publish_mirror(backend, v2, key.public)
    assert not crashed.ok and crashed.error == "connection reset"
    report = await verify_memory(backend, tmp_path, key, state)
    assert report.ok and report.version == 2, report
    assert "pending" in backend.objects and manifest_path(1) in backend.objects
    backend.hook = None
    finished = await publish_mirror(backend, v2, key.public)
    assert finished.ok and finished.uploaded == 0 and finished.deleted == 4
    assert backend.count("list") == 1 and "pending" not in backend.objects
    report = await verify_memory(backend, tmp_path, key, state)
    assert report.ok and report.version == 2 and not report.extra


async def test_repair_re_uploads_what_the_mirror_serves_wrongly(
    v1: Path, key: minisign.SecretKey, tmp_path: Path, state: Path
) -> None:
    backend = MemoryBackend()
    await publish_mirror(backend, v1, key.public)
    backend.load({"index.html": b"<html>defaced</html>", "articles/2026/10/a0.html": b"x" * 9999})
    del backend.objects["feed.xml"]
    plain = await publish_mirror(backend, v1, key.public)
    assert plain.ok and plain.uploaded == 0  # three GETs cannot see it
    repaired = await publish_mirror(backend, v1, key.public, PublishOptions(repair=True))
    assert repaired.ok and repaired.uploaded == 3 and repaired.pointer_writes == 0
    report = await verify_memory(backend, tmp_path, key, state)
    assert report.ok, report


async def test_gc_removes_strays_and_keeps_live_files(
    v1: Path, key: minisign.SecretKey, tmp_path: Path, state: Path
) -> None:
    backend = MemoryBackend()
    await publish_mirror(backend, v1, key.public)
    backend.load({"articles/2020/01/old.html": b"old", "manifests/0.json": b"{}", "x.txt": b""})
    before = backend.count("list")
    assert await gc_mirror(backend, v1, key.public) == 3
    assert backend.count("list") == before + 1
    report = await verify_memory(backend, tmp_path, key, state)
    assert report.ok and not report.extra


async def test_gc_refuses_when_the_live_manifest_is_unreadable(
    v1: Path, key: minisign.SecretKey
) -> None:
    backend = MemoryBackend()
    await publish_mirror(backend, v1, key.public)
    backend.load({manifest_path(1): b"garbage"})
    with pytest.raises(Exception, match="gc refused"):
        await gc_mirror(backend, v1, key.public)


async def test_retire_empties_the_mirror(v1: Path, key: minisign.SecretKey) -> None:
    backend = MemoryBackend()
    await publish_mirror(backend, v1, key.public)
    count = len(backend.objects)
    assert await retire_mirror(backend) == count
    assert backend.objects == {}
    assert backend.calls[-2] == ("delete", "current")


async def test_live_version(v1: Path, v2: Path, key: minisign.SecretKey) -> None:
    backend = MemoryBackend()
    assert await live_version(backend, key.public) == 0
    await publish_mirror(backend, v1, key.public)
    assert await live_version(backend, key.public) == 1
    backend.load({"pending": b"7\n"})  # names no signed manifest
    assert await live_version(backend, key.public) == 1
    assert await live_version(backend, minisign.generate_key().public) == 0


async def test_no_edition_is_a_local_error(tmp_path: Path, key: minisign.SecretKey) -> None:
    with pytest.raises(BuildError, match="mirror build"):
        await publish_mirror(MemoryBackend(), tmp_path, key.public)
    with pytest.raises(BuildError):
        await publish_all([MemoryBackend()], tmp_path, key.public)


async def test_an_edition_changed_under_the_publish_is_a_local_error(
    v1: Path, key: minisign.SecretKey
) -> None:
    (v1 / "index.html").write_bytes(b"edited by hand")
    with pytest.raises(BuildError, match="no longer matches"):
        await publish_mirror(MemoryBackend(), v1, key.public)


# ---------------------------------------------------------------- every mirror


async def test_a_failing_or_hanging_mirror_neither_stops_nor_delays_the_others(
    v1: Path, key: minisign.SecretKey, tmp_path: Path, state: Path
) -> None:
    async def refuse(operation: str, path: str) -> None:
        if operation == "put":
            raise MirrorUnreachableError("down", "connection refused")

    ended: list[str] = []
    others_ended = asyncio.Event()

    def heard(result: MirrorResult) -> None:
        ended.append(result.name)
        if len(ended) == 3:
            others_ended.set()

    async def hang(operation: str, path: str) -> None:
        # until the three others have ended (bounded, should they wait for this one)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(others_ended.wait(), 10)
        raise MirrorUnreachableError("slow", "timed out after 1 s")

    class Broken(MemoryBackend):
        async def get(self, path: str, *, max_bytes: int) -> None:
            raise KeyError(path)

    good = MemoryBackend("good")
    mirrors = [MemoryBackend("down", hook=refuse), good, MemoryBackend("slow", hook=hang),
               Broken("buggy")]  # fmt: skip
    results = await publish_all(mirrors, v1, key.public, on_result=heard)
    by_name = {result.name: result for result in results}
    assert [result.name for result in results] == ["down", "good", "slow", "buggy"]
    assert ended[-1] == "slow"  # the others ended while it hung: nothing waited for it
    assert by_name["good"].ok
    assert by_name["down"].error == "connection refused"
    assert by_name["slow"].error == "timed out after 1 s"
    assert not by_name["buggy"].ok and "unexpected KeyError" in (by_name["buggy"].error or "")
    assert await verify_memory(good, tmp_path, key, state)


async def test_an_unexpected_error_is_logged_with_its_traceback(
    v1: Path, key: minisign.SecretKey, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(MemoryBackend):
        async def get(self, path: str, *, max_bytes: int) -> None:
            raise KeyError(path)

    with caplog.at_level(logging.ERROR, logger="mirror.publish"):
        results = await publish_all([Broken("buggy"), MemoryBackend("good")], v1, key.public)
    assert [(result.name, result.ok) for result in results] == [("buggy", False), ("good", True)]
    assert "unexpected KeyError" in (results[0].error or "")
    [record] = caplog.records
    assert "buggy" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    assert "Traceback" in caplog.text and "raise KeyError(path)" in caplog.text


async def test_a_directory_mirror_verifies_as_a_folder(
    v1: Path, v2: Path, key: minisign.SecretKey, tmp_path: Path, state: Path
) -> None:
    folder = tmp_path / "public"
    backend = directory_backend(folder)
    try:
        first = await publish_mirror(backend, v1, key.public)
        second = await publish_mirror(backend, v2, key.public)
        again = await publish_mirror(backend, v2, key.public)
    finally:
        await backend.close()
    assert first.ok and second.ok and again.ok, (first, second, again)
    assert (second.uploaded, again.requests) == (9, 3)
    report = await verify(folder, key.public, state)
    assert report.version == 2 and not (report.missing or report.tampered), report
    assert report.ok and report.extra == [], report.extra  # the lock file is not "extra"


def test_results_as_json() -> None:
    result = MirrorResult("m", False, error="boom")
    assert result.to_json()["error"] == "boom" and result.to_json()["version"] == 0


# ---------------------------------------------------------------- against moto's S3


async def test_an_s3_mirror_on_moto(
    moto_endpoint: str,
    aws_env: None,
    v1: Path,
    v2: Path,
    key: minisign.SecretKey,
    state: Path,
) -> None:
    import boto3

    from mirror.storage.provision import setup_mirror

    from moto_server import create_bucket, s3_mirror

    bucket = create_bucket(moto_endpoint)
    mirror = s3_mirror(moto_endpoint, bucket)
    await asyncio.to_thread(setup_mirror, mirror, "aws")  # publicly readable, as readers see it
    async with S3Backend(mirror) as backend:
        first = await publish_mirror(backend, v1, key.public)
        unchanged = await publish_mirror(backend, v1, key.public)
        second = await publish_mirror(backend, v2, key.public)
    assert first.ok and unchanged.ok and second.ok, (first, unchanged, second)
    assert (unchanged.requests, unchanged.uploaded) == (3, 0)
    assert second.uploaded == 9
    report = await verify(mirror.public_url, key.public, state)
    assert report.ok and report.version == 2, report
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    head = client.head_object(Bucket=bucket, Key="index.html")
    assert head["ContentType"] == "text/html; charset=utf-8"
    assert head["CacheControl"] == "public, max-age=300"
    part = next(p for p in (v2 / "manifests" / "parts").iterdir())
    head = client.head_object(Bucket=bucket, Key=f"manifests/parts/{part.name}")
    assert head["CacheControl"].endswith("immutable")
    client.close()
