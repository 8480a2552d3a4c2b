"""Bytes on the wire: what a reader downloads for one article page.

Builds the sample newsroom's edition (the demo's 24 articles, 1200x800 photos), publishes
it to four mirrors: two folders (`compress` on: NAME.gz beside each text file; off) served
over HTTP on 127.0.0.1 by a handler that does what nginx's `gzip_static on` does, and two
buckets on moto's S3 server (on: Content-Encoding gzip; off). Then fetches every article
page from each mirror with `Accept-Encoding: gzip`, as a browser does, and reports the
body bytes on the wire: median, p90 and max, and the share of pages that arrive whole
within 16 KB (connections to foreign hosting are reported to freeze around there).
Also: what share of a page (plain) is inline images.

    .venv/bin/python bench/wire_bench.py [--articles 24]

Targets: median article page on the wire <= 14 KB with compression.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

import aiohttp
from aiohttp import web
from benchkit import (
    Results,
    build_run,
    fetch,
    keygen,
    moto_server,
    newsroom,
    print_machine,
    run_mirror,
    write_config,
)

TARGET_MEDIAN_BYTES = 14_000
FREEZE_BYTES = 16_000  # bytes: where filtered connections to foreign hosts are said to stall
DATA_URI = re.compile(rb"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+")


def gzip_static(root: Path) -> web.Application:
    """nginx's `gzip_static on`: NAME.gz with Content-Encoding gzip when the client takes
    gzip and it exists, else NAME."""

    async def handle(request: web.Request) -> web.StreamResponse:
        target = root / request.match_info["path"]
        packed = target.with_name(target.name + ".gz")
        if "gzip" in request.headers.get("Accept-Encoding", "") and packed.is_file():
            return web.Response(body=packed.read_bytes(), headers={"Content-Encoding": "gzip"})
        if not target.is_file():
            raise web.HTTPNotFound()
        return web.Response(body=target.read_bytes())

    app = web.Application()
    app.router.add_get("/{path:.+}", handle)
    return app


def mirrors_toml(served: str, root: Path, moto: str, buckets: tuple[str, str]) -> str:
    """Four [[mirrors]]: folders and buckets, compress on and off."""
    tables = []
    for name, compress in (("on", "true"), ("off", "false")):
        tables.append(
            f'\n[[mirrors]]\nname = "dir-{name}"\ntype = "directory"\npath = "{root / name}"\n'
            f'public_url = "{served}{name}/"\ncompress = {compress}\n'
        )
    for bucket, compress in zip(buckets, ("true", "false"), strict=True):
        tables.append(
            f'\n[[mirrors]]\nname = "{bucket}"\ntype = "s3"\nbucket = "{bucket}"\n'
            f'endpoint_url = "{moto}"\nregion = "us-east-1"\npublic_url = "{moto}/{bucket}/"\n'
            f"compress = {compress}\n"
        )
    return "".join(tables)


async def wire_sizes(base: str, pages: list[str]) -> list[int]:
    """Each page's body bytes as sent (gzip accepted, nothing decoded)."""
    headers = {"Accept-Encoding": "gzip"}
    async with aiohttp.ClientSession(auto_decompress=False, headers=headers) as session:

        async def one(page: str) -> int:
            async with session.get(base + page) as answer:
                answer.raise_for_status()
                return len(await answer.read())

        return list(await asyncio.gather(*(one(page) for page in pages)))


def p90(values: list[int]) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def describe(sizes: list[int]) -> str:
    within = sum(1 for size in sizes if size <= FREEZE_BYTES) / len(sizes)
    return (
        f"median {statistics.median(sizes) / 1000:.1f} KB, p90 {p90(sizes) / 1000:.1f} KB, "
        f"max {max(sizes) / 1000:.1f} KB, {within:.0%} within 16 KB"
    )


def image_share(edition: Path, pages: list[str]) -> str:
    """How much of the plain article pages is inline images."""
    total = images = 0
    for page in pages:
        data = (edition / page).read_bytes()
        total += len(data)
        images += sum(len(m) for m in DATA_URI.findall(data))
    return f"{images / total:.0%} of {total / len(pages) / 1000:.1f} KB per page (plain)"


async def measure(
    served: str, moto: str, buckets: tuple[str, str], pages: list[str]
) -> dict[str, list[int]]:
    bases = {
        "folder, compress off": served + "off/",
        "folder, compress on": served + "on/",
        "S3, compress off": f"{moto}/{buckets[1]}/",
        "S3, compress on": f"{moto}/{buckets[0]}/",
    }
    return {label: await wire_sizes(base, pages) for label, base in bases.items()}


async def serve_and_measure(
    root: Path, moto: str, buckets: tuple[str, str], pages: list[str], config: Path
) -> dict[str, list[int]]:
    runner = web.AppRunner(gzip_static(root), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    served = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    try:
        text = await asyncio.to_thread(config.read_text)
        await asyncio.to_thread(config.write_text, text + mirrors_toml(served, root, moto, buckets))
        for step in (
            ["publish", "--json"],
            *(["mirrors", "setup", b, "--provider", "minio"] for b in buckets),
        ):
            run = await asyncio.to_thread(run_mirror, ["-c", str(config), *step])
            if run.status != 0:
                raise RuntimeError(
                    f"mirror {' '.join(step)} exited {run.status}: {run.stderr[-2000:]}"
                )
        return await measure(served, moto, buckets, pages)
    finally:
        await runner.cleanup()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=24, help="articles (the demo's 24)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ):
        os.environ[name] = value  # moto's: the mirror subprocesses inherit them
    print_machine()
    results = Results()
    with tempfile.TemporaryDirectory(prefix="wire-bench-") as temp:
        folder = Path(temp)
        with newsroom(args.articles) as room, moto_server(folder / "moto.log") as (moto, _):
            config = write_config(folder, room.base_url, args.articles)
            fetch(config)
            keygen(config)
            build, _ = build_run(config)
            if build.status != 0:
                raise RuntimeError("mirror build failed")
            edition = folder / "edition"
            pages = sorted(
                p.relative_to(edition).as_posix() for p in edition.glob("articles/*/*/*.html")
            )
            results.add("article pages", str(len(pages)))
            results.add("images in an article page", image_share(edition, pages))
            import boto3

            client = boto3.client(
                "s3",
                endpoint_url=moto,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
            )
            buckets = ("wire-on", "wire-off")
            for bucket in buckets:
                client.create_bucket(Bucket=bucket)
            sizes = asyncio.run(serve_and_measure(folder / "www", moto, buckets, pages, config))
        for label, found in sizes.items():
            on = "compress on" in label
            ok = statistics.median(found) <= TARGET_MEDIAN_BYTES if on else None
            target = f"median <= {TARGET_MEDIAN_BYTES / 1000:g} KB" if on else ""
            results.add(f"on the wire, {label}", describe(found), target, ok)
    return results.exit_status()


if __name__ == "__main__":
    sys.exit(main())
