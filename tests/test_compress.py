"""Fewer bytes on the wire: text files stored gzip-compressed (S3 with Content-Encoding:
gzip, a folder with NAME.gz beside NAME for nginx's gzip_static), the manifest and the
signatures over the plain bytes; publish, verify and status accept both forms."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from aiohttp import web

from mirror.config import MirrorConfig, PoolConfig, load_config
from mirror.storage.directory import DirectoryBackend
from mirror.storage.memory import MemoryBackend
from mirror.storage.wire import (
    GzipDecodeError,
    gunzip_bounded,
    gzip_bytes,
    is_compressible,
    wire_form,
)

from cli_configs import cli, mirror_table, with_store, write_config
from moto_server import REGION, create_bucket
from servers import serve

PAGE = b"<!doctype html><p>" + b"words and more words " * 200 + b"</p>"
EXAMPLE = Path(__file__).parent.parent / "config" / "mirror.example.toml"


# ---------------------------------------------------------------- the pure part


def test_wire_form_compresses_text_deterministically_and_skips_what_does_not_pay() -> None:
    packed = wire_form("articles/2026/11/a.html", PAGE)
    assert packed is not None and len(packed) < len(PAGE) // 5
    assert packed == wire_form("index.html", PAGE)  # no name, mtime 0: same bytes
    assert gzip.decompress(packed) == PAGE
    assert packed[4:8] == b"\0\0\0\0"  # mtime
    assert wire_form("a.webp", PAGE) is None  # not text
    assert wire_form("a.html.minisig", PAGE) is None  # signatures stay plain
    assert wire_form("current", PAGE) is None  # so do the pointers
    assert wire_form("a.html", b"<p>tiny</p>") is None  # too small to pay
    noise = hashlib.sha512(b"seed").digest() * 1
    noise = b"".join(hashlib.sha512(noise + bytes([i])).digest() for i in range(16))
    assert wire_form("a.json", noise) is None  # gzip not smaller
    assert is_compressible("feed.xml") and is_compressible("mirrors.json")


def test_gunzip_bounded_stops_a_bomb_and_refuses_damage() -> None:
    bomb = gzip_bytes(b"\0" * 10_000_000)
    assert gunzip_bounded(bomb, 1000) is None
    assert gunzip_bounded(gzip_bytes(PAGE), len(PAGE)) == PAGE
    with pytest.raises(GzipDecodeError):
        gunzip_bounded(gzip_bytes(PAGE)[:-10], len(PAGE))
    with pytest.raises(GzipDecodeError):
        gunzip_bounded(gzip_bytes(PAGE) + b"junk", len(PAGE))
    with pytest.raises(GzipDecodeError):
        gunzip_bounded(PAGE, len(PAGE))


# ---------------------------------------------------------------- backends


async def test_memory_backend_stores_gzip_and_gives_back_the_plain_bytes() -> None:
    backend = MemoryBackend(compress=True)
    await backend.put("index.html", PAGE, content_type="text/html", cache_control="")
    stored = backend.objects["index.html"]
    assert stored.content_encoding == "gzip" and gzip.decompress(stored.data) == PAGE
    found = await backend.get("index.html", max_bytes=len(PAGE))
    assert found is not None and found.data == PAGE
    plain = MemoryBackend()
    await plain.put("index.html", PAGE, content_type="text/html", cache_control="")
    assert (
        plain.objects["index.html"].data == PAGE
        and not plain.objects["index.html"].content_encoding
    )


def _folder_mirror(path: Path, *, compress: bool = True) -> MirrorConfig:
    return MirrorConfig("dir", "directory", "https://d.example/", path=path, compress=compress)


async def test_directory_backend_keeps_a_gz_beside_and_removes_it_with_the_file(
    tmp_path: Path,
) -> None:
    async with DirectoryBackend(_folder_mirror(tmp_path)) as backend:
        await backend.put("articles/a.html", PAGE, content_type="", cache_control="")
        await backend.put("a.html.minisig", PAGE, content_type="", cache_control="")
        assert gzip.decompress((tmp_path / "articles" / "a.html.gz").read_bytes()) == PAGE
        assert not (tmp_path / "a.html.minisig.gz").exists()
        assert await backend.list() == ["a.html.minisig", "articles/a.html"]  # gc keeps it
        found = await backend.get("articles/a.html", max_bytes=len(PAGE))
        assert found is not None and found.data == PAGE

        (tmp_path / "stray.html.gz").write_bytes(b"x")  # its file is gone: --gc removes it
        assert "stray.html.gz" in await backend.list()

        await backend.put("articles/a.html", b"<p>now tiny</p>", content_type="", cache_control="")
        assert not (tmp_path / "articles" / "a.html.gz").exists()  # never stale
        await backend.put("articles/a.html", PAGE, content_type="", cache_control="")
        await backend.delete(["articles/a.html"])
        assert not (tmp_path / "articles").exists()


async def test_directory_backend_without_compress_writes_no_gz_and_drops_old_ones(
    tmp_path: Path,
) -> None:
    async with DirectoryBackend(_folder_mirror(tmp_path)) as backend:
        await backend.put("index.html", PAGE, content_type="", cache_control="")
    async with DirectoryBackend(_folder_mirror(tmp_path, compress=False)) as backend:
        await backend.put("index.html", PAGE + b" ", content_type="", cache_control="")
    assert [name for name in os.listdir(tmp_path) if not name.startswith(".")] == ["index.html"]


# ---------------------------------------------------------------- config


def test_compress_is_a_documented_per_mirror_and_per_pool_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.count("\ncompress = true") == 2  # [[mirrors]] and [[pools]]
    config = load_config(EXAMPLE)
    assert all(mirror.compress for mirror in config.mirrors)
    pool = PoolConfig("p", "directory", "n-{random8}", "https://p/{bucket}/", compress=False)
    assert pool.mirror("n-abc").compress is False


# ---------------------------------------------------------------- end to end


def gzip_static(root: Path) -> web.Application:
    """A static server like nginx with `gzip_static on`: NAME.gz with Content-Encoding:
    gzip when the client accepts gzip and it exists, else NAME."""

    async def handle(request: web.Request) -> web.StreamResponse:
        target = root / request.match_info["path"]
        packed = target.with_name(target.name + ".gz")
        if "gzip" in request.headers.get("Accept-Encoding", "") and packed.is_file():
            headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
            return web.Response(body=packed.read_bytes(), headers=headers)
        if not target.is_file():
            raise web.HTTPNotFound()
        return web.Response(body=target.read_bytes())

    app = web.Application()
    app.router.add_get("/{path:.+}", handle)
    return app


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """`tmp_path / "www"` served gzip_static-style over HTTP on 127.0.0.1 (a thread: the
    CLI runs its own loop)."""
    import threading

    root = tmp_path / "www"
    root.mkdir()
    loop = asyncio.new_event_loop()
    ports: list[int] = []
    started, stop = threading.Event(), asyncio.Event()

    async def run() -> None:
        async with serve(gzip_static(root)) as port:
            ports.append(port)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert started.wait(30)
    yield f"http://127.0.0.1:{ports[0]}/"
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


@pytest.mark.usefixtures("aws_env")
@pytest.mark.slow
def test_gzip_mirrors_publish_verify_and_republish_nothing(
    tmp_path: Path,
    fetched_store: Path,
    served: str,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "www"
    bucket, plain_bucket = create_bucket(moto_endpoint), create_bucket(moto_endpoint)
    s3 = {"type": "s3", "endpoint_url": moto_endpoint, "region": REGION}
    tables = (
        mirror_table("dir", type="directory", path=str(root / "d"), public_url=served + "d/")
        + mirror_table("s3", bucket=bucket, public_url=f"{moto_endpoint}/{bucket}/", **s3)
        + mirror_table(
            "s3-plain", bucket=plain_bucket, public_url=f"{moto_endpoint}/{plain_bucket}/", **s3
        )
        + mirror_table(
            "dir-plain", type="directory", path=str(root / "p"), public_url=served + "p/"
        )
    ).replace('name = "s3-plain"\n', 'name = "s3-plain"\ncompress = false\n')
    tables = tables.replace('name = "dir-plain"\n', 'name = "dir-plain"\ncompress = false\n')
    config = str(with_store(write_config(tmp_path, "http://127.0.0.1:9/", tables), fetched_store))
    key = str(tmp_path / "keys" / "mirror.pub")
    assert cli(capsys, "-c", config, "build")[0] == 0
    status, report, _ = cli(capsys, "-c", config, "publish", "--json")
    assert status == 0, report

    edition = tmp_path / "edition"
    page = next(edition.glob("articles/*/*/*.html")).relative_to(edition).as_posix()
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    stored = client.get_object(Bucket=bucket, Key=page)
    assert stored["ContentEncoding"] == "gzip"
    assert gzip.decompress(stored["Body"].read()) == (edition / page).read_bytes()
    signature = client.get_object(Bucket=bucket, Key=page + ".minisig")
    assert "ContentEncoding" not in signature  # tiny: plain
    assert "ContentEncoding" not in client.get_object(Bucket=plain_bucket, Key=page)
    assert (
        gzip.decompress((root / "d" / (page + ".gz")).read_bytes()) == (edition / page).read_bytes()
    )
    assert not list((root / "p").rglob("*.gz"))

    status, again, _ = cli(capsys, "-c", config, "publish", "--json")
    assert status == 0 and [m["uploaded"] for m in again["mirrors"]] == [0, 0, 0, 0]

    for name in ("s3", "s3-plain"):
        assert cli(capsys, "-c", config, "mirrors", "setup", name, "--provider", "minio")[0] == 0
    for url in (f"{moto_endpoint}/{bucket}/", served + "d/", str(root / "d"), str(root / "p")):
        status, verified, _ = cli(capsys, "verify", url, "--key", key, "--json")
        assert status == 0 and verified["ok"], (url, verified)
    status, states, _ = cli(capsys, "-c", config, "status", "--full", "--json")
    assert status == 0, states
    assert all(m["tampered"] == [] and m["version"] == 1 for m in states["mirrors"])

    forged = gzip_bytes(b"<!doctype html><p>forged</p>" * 20)
    client.put_object(Bucket=bucket, Key="index.html", Body=forged, ContentEncoding="gzip")
    status, verified, _ = cli(
        capsys, "verify", f"{moto_endpoint}/{bucket}/", "--key", key, "--json"
    )
    assert status == 3 and verified["tampered"] == ["index.html"]
    status, repaired, _ = cli(
        capsys, "-c", config, "publish", "--repair", "--mirror", "s3", "--json"
    )
    assert status == 0 and repaired["mirrors"][0]["uploaded"] == 1  # the read-back decodes
    status, verified, _ = cli(
        capsys, "verify", f"{moto_endpoint}/{bucket}/", "--key", key, "--json"
    )
    assert status == 0 and verified["ok"]


def test_a_tampered_gz_sibling_is_reported_by_verify_and_status(
    tmp_path: Path,
    fetched_store: Path,
    served: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "www"
    tables = mirror_table("dir", type="directory", path=str(root / "d"), public_url=served + "d/")
    config = str(with_store(write_config(tmp_path, "http://127.0.0.1:9/", tables), fetched_store))
    key = str(tmp_path / "keys" / "mirror.pub")
    assert cli(capsys, "-c", config, "build")[0] == 0
    assert cli(capsys, "-c", config, "publish")[0] == 0
    (root / "d" / "index.html.gz").write_bytes(gzip_bytes(b"<p>forged</p>"))
    (root / "d" / "feed.xml.gz").write_bytes(b"not gzip at all")

    status, verified, _ = cli(capsys, "verify", str(root / "d"), "--key", key, "--json")
    assert status == 3 and verified["tampered"] == ["feed.xml.gz", "index.html.gz"]
    assert verified["extra"] == []
    (root / "d" / "feed.xml.gz").unlink()  # over HTTP, undecodable gzip is a read error
    status, states, _ = cli(capsys, "-c", config, "status", "--full", "--json")
    assert status == 1 and "index.html" in states["mirrors"][0]["tampered"], states


def test_repair_rewrites_a_tampered_or_stale_gz_sibling_and_gc_drops_an_orphan(
    tmp_path: Path, fetched_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "www"
    tables = mirror_table("dir", type="directory", path=str(folder), public_url="https://d/")
    config = str(with_store(write_config(tmp_path, "http://127.0.0.1:9/", tables), fetched_store))
    key = str(tmp_path / "keys" / "mirror.pub")
    edition = tmp_path / "edition"
    assert cli(capsys, "-c", config, "build")[0] == 0
    assert cli(capsys, "-c", config, "publish")[0] == 0
    page = next(edition.glob("articles/*/*/*.html")).relative_to(edition).as_posix()
    forged = {
        "index.html.gz": gzip_bytes(b"<p>forged</p>"),  # tampered
        "feed.xml.gz": b"not gzip at all",
        page + ".gz": gzip_bytes((edition / page).read_bytes() + b"<p>old</p>"),  # stale
        page + ".minisig.gz": gzip_bytes(b"x" * 20),  # beside a file compress leaves plain
    }
    for name, data in forged.items():
        (folder / name).write_bytes(data)
    (folder / "articles" / "gone.html.gz").write_bytes(gzip_bytes(b"<p>orphan</p>"))
    status, verified, _ = cli(capsys, "verify", str(folder), "--key", key, "--json")
    assert status == 3 and verified["tampered"] == sorted(forged), verified

    status, repaired, _ = cli(capsys, "-c", config, "publish", "--repair", "--gc", "--json")
    assert status == 0 and repaired["mirrors"][0]["uploaded"] == len(forged), repaired
    status, verified, _ = cli(capsys, "verify", str(folder), "--key", key, "--json")
    assert status == 0 and verified["ok"], verified
    for name in ("index.html", "feed.xml", page):
        packed = (folder / (name + ".gz")).read_bytes()
        assert gzip.decompress(packed) == (edition / name).read_bytes()
    assert not (folder / (page + ".minisig.gz")).exists()  # its put writes no gzip
    assert not (folder / "articles" / "gone.html.gz").exists()  # --gc: nothing references it
    status, again, _ = cli(capsys, "-c", config, "publish", "--repair", "--json")
    assert status == 0 and again["mirrors"][0]["uploaded"] == 0, again
