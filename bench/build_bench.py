"""Build benchmark (issue 3): `python bench/build_bench.py [--quick]`.

Untimed setup: the sample newsroom in its own process (bench/counted_newsroom.py, with
--articles articles, one --image-size JPEG each, every article in the feed), a store
filled by `mirror -c CONFIG fetch`, keys from `mirror -c CONFIG keygen`. Then, timed:

1. cold build, `mirror -c CONFIG build --json` as a subprocess (render, images, hash, sign);
2. the edition's median article page (articles/**/*.html);
3. SHA-256 throughput: Python's streaming hash (as verify reads files) against
   `sha256sum` over the same files, both with a warm page cache;
4. `mirror verify EDITION --key PUBKEY --json` of the whole folder (fresh cache folder);
5. rebuild after one new article (the newsroom publishes it, an untimed fetch stores it),
   with the files it wrote.

Every figure is printed with its target and PASS/FAIL; exit status 1 if any failed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchkit import (
    MB,
    CountedNewsroom,
    Results,
    Run,
    build_run,
    fetch,
    keygen,
    newsroom,
    print_load,
    print_machine,
    run_mirror,
    write_config,
)

from mirror.build import builder, pictures
from mirror.verify.readers import CHUNK_BYTES

KB = 1000
COLD_TARGET_S = 40.0
REBUILD_TARGET_S = 3.0
HASH_RATIO_TARGET = 0.80
MEDIAN_PAGE_TARGET = 150 * KB
VERIFY_TARGET_S = 5.0


# ---- the machine and the encoder


def print_settings() -> None:
    print_machine()
    print(
        f"Encoder: pictures.WEBP_METHOD = {pictures.WEBP_METHOD}, "
        f"builder.IMAGE_STEPS = {builder.IMAGE_STEPS} (width divisor, quality), "
        f"builder.RENDITION_FORMAT = {builder.RENDITION_FORMAT!r}"
    )


# ---- mirror's CLI


def describe(run: Run, report: dict[str, Any]) -> str:
    return (
        f"exit {run.status}, version {report['version']}, {report['articles']} articles, "
        f"{report['files']} files, {report['bytes'] / MB:.1f} MB, {report['written']} written, "
        f"{report['images_dropped']} images dropped, {len(report['over_budget'])} over budget; "
        f"CPU {run.cpu_s:.1f} s (mirror and its workers) in {run.wall_s:.1f} s wall"
    )


# ---- setup


@dataclass(frozen=True)
class Setup:
    config: Path
    edition: Path
    public_key: Path
    folder: Path


def set_up(server: CountedNewsroom, folder: Path, articles: int) -> Setup:
    """A store holding every article and image, and the signing key pair (untimed)."""
    config = write_config(folder, server.base_url, articles)
    started = time.perf_counter()
    report = fetch(config)
    if report["new"] != articles or report["failed"]:
        raise RuntimeError(f"setup fetch stored {report['new']} of {articles} articles")
    keygen(config)
    store = folder / "state" / "mirror.db"
    print(
        f"    setup done in {time.perf_counter() - started:.1f} s; "
        f"store {store.stat().st_size / MB:.0f} MB"
    )
    return Setup(config, folder / "edition", folder / "keys" / "mirror.pub", folder)


# ---- 1: cold build


def bench_cold(setup: Setup, articles: int, results: Results) -> None:
    print(f"\n[cold build] {articles} articles, empty edition folder, no cached renditions")
    print_load("before the build")
    run, report = build_run(setup.config)
    print(f"    {describe(run, report)}")
    results.add(
        "cold build wall time",
        f"{run.wall_s:.2f} s ({articles / run.wall_s:.0f} articles/s)",
        f"< {COLD_TARGET_S:g} s",
        run.status == 0 and run.wall_s < COLD_TARGET_S,
    )
    results.add(
        "cold build CPU (mirror + workers, user + system)",
        f"{run.cpu_s:.1f} s = {run.cpu_s / run.wall_s:.2f} cores busy on average",
    )
    complete = report["articles"] == articles and not report["over_budget"]
    results.add(
        "cold build rendered every article",
        f"{report['articles']} of {articles}, {len(report['over_budget'])} over budget",
        "all, none over budget",
        complete,
    )


def bench_noop(setup: Setup, results: Results) -> None:
    print("\n[build with nothing new]")
    run, report = build_run(setup.config)
    print(f"    {describe(run, report)}")
    results.add(
        "build with nothing new",
        f"{run.wall_s:.2f} s, new version: {report['new_version']}, {report['written']} written",
    )


# ---- 2: page sizes


def article_pages(edition: Path) -> list[Path]:
    return sorted(p for p in (edition / "articles").rglob("*.html") if p.is_file())


def bench_pages(setup: Setup, results: Results) -> None:
    print("\n[article pages] articles/**/*.html")
    sizes = sorted(p.stat().st_size for p in article_pages(setup.edition))
    if not sizes:
        results.add("median article page", "no article pages", "", False)
        return
    median = statistics.median(sizes)
    print(
        f"    {len(sizes)} pages: smallest {sizes[0] / KB:.1f} kB, largest {sizes[-1] / KB:.1f} kB,"
        f" mean {statistics.fmean(sizes) / KB:.1f} kB"
    )
    results.add(
        "median article page",
        f"{median / KB:.1f} kB",
        f"< {MEDIAN_PAGE_TARGET // KB} kB",
        median < MEDIAN_PAGE_TARGET,
    )


# ---- 3: hashing


def edition_files(edition: Path) -> list[Path]:
    return sorted(p for p in edition.rglob("*") if p.is_file())


def stream_sha256(path: Path) -> str:
    """A file's SHA-256 read in CHUNK_BYTES chunks, as `mirror verify` reads a folder."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        while chunk := os.read(fd, CHUNK_BYTES):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()


def whole_sha256(path: Path) -> str:
    """A file's SHA-256 over its bytes in memory, as `mirror build` hashes what it writes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def python_seconds(files: list[Path], hasher: Any) -> float:
    started = time.perf_counter()
    for path in files:
        hasher(path)
    return time.perf_counter() - started


def sha256sum_seconds(edition: Path) -> float:
    command = f"find {edition} -type f -print0 | xargs -0 sha256sum > /dev/null"
    started = time.perf_counter()
    subprocess.run(["sh", "-c", command], check=True)
    return time.perf_counter() - started


def best_of(repeat: int, measure: Callable[[], float]) -> float:
    measure()  # warm: page cache, imports
    return min(measure() for _ in range(repeat))


def bench_hashing(setup: Setup, repeat: int, results: Results) -> None:
    files = edition_files(setup.edition)
    total = sum(p.stat().st_size for p in files)
    print(f"\n[hashing] {len(files)} files, {total / MB:.1f} MB, page cache warm, best of {repeat}")
    tool = best_of(repeat, lambda: sha256sum_seconds(setup.edition))
    stream = best_of(repeat, lambda: python_seconds(files, stream_sha256))
    whole = best_of(repeat, lambda: python_seconds(files, whole_sha256))
    for label, seconds in (
        ("sha256sum (find | xargs -0 sha256sum)", tool),
        (f"Python streaming, {CHUNK_BYTES // 1024} KiB reads (verify)", stream),
        ("Python whole file in memory (build)", whole),
    ):
        results.add(f"SHA-256, {label}", f"{total / MB / seconds:.0f} MB/s ({seconds:.3f} s)")
    ratio = tool / stream
    results.add(
        "Python streaming SHA-256 / sha256sum throughput",
        f"{ratio:.0%}",
        f">= {HASH_RATIO_TARGET:.0%}",
        ratio >= HASH_RATIO_TARGET,
    )


# ---- 4: verify


def bench_verify(setup: Setup, results: Results) -> None:
    print("\n[verify] the whole edition as a folder, fresh cache folder (no rollback memory)")
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=setup.folder))
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    command = ["verify", str(setup.edition), "--key", str(setup.public_key), "--json"]
    run = run_mirror(command, env=env)
    try:
        report = run.report()
    except RuntimeError as exc:
        results.add("verify of the whole edition", str(exc)[:300], "exit 0", False)
        return
    summary = {k: v for k, v in report.items() if not isinstance(v, list | dict)}
    problems = {k: len(v) for k, v in report.items() if isinstance(v, list) and v}
    print(f"    exit {run.status}: {summary}; non-empty lists: {problems or 'none'}")
    print(f"    CPU {run.cpu_s:.1f} s in {run.wall_s:.2f} s wall")
    results.add(
        "verify of the whole edition (folder)",
        f"{run.wall_s:.2f} s, exit {run.status}",
        f"< {VERIFY_TARGET_S:g} s, exit 0",
        run.status == 0 and run.wall_s < VERIFY_TARGET_S,
    )


# ---- 5: rebuild after one new article

Snapshot = dict[str, tuple[int, int, int]]  # path -> (inode, mtime ns, size)


def snapshot(edition: Path) -> Snapshot:
    found: Snapshot = {}
    for path in edition_files(edition):
        info = path.stat()
        found[path.relative_to(edition).as_posix()] = (info.st_ino, info.st_mtime_ns, info.st_size)
    return found


def changed(before: Snapshot, after: Snapshot) -> tuple[list[str], list[str]]:
    """Files new or rewritten (write_atomic replaces: a new inode), and files gone."""
    written = sorted(path for path, info in after.items() if before.get(path) != info)
    gone = sorted(set(before) - set(after))
    return written, gone


def bench_rebuild(server: CountedNewsroom, setup: Setup, results: Results) -> None:
    print("\n[rebuild after one new article]")
    added = server.add_article()
    report = fetch(setup.config)
    print(f"    the newsroom published article {added['id']} at {added['path']}")
    if report["new"] != 1:
        results.add("rebuild: fetch stored the new article", f"{report['new']} new", "1", False)
    before = snapshot(setup.edition)
    run, built = build_run(setup.config)
    written, gone = changed(before, snapshot(setup.edition))
    print(f"    {describe(run, built)}")
    results.add(
        "rebuild after one new article",
        f"{run.wall_s:.2f} s",
        f"< {REBUILD_TARGET_S:g} s",
        run.status == 0 and run.wall_s < REBUILD_TARGET_S,
    )
    results.add("rebuild: files written (JSON `written`)", str(built["written"]))
    for path in written:
        print(f"        written: {path}")
    for path in gone:
        print(f"        removed: {path}")


# ---- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--articles", type=int, default=2000)
    add("--image-size", default="1600x1067", help="WIDTHxHEIGHT of every article's JPEG")
    add("--hash-repeat", type=int, default=3, help="hash timings: best of this many")
    add("--quick", action="store_true", help="smoke run: 100 articles")
    args = parser.parse_args(argv)
    if args.quick:
        args.articles = 100
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print_settings()
    results = Results()
    print(f"\n[setup, untimed] newsroom of {args.articles} articles, {args.image_size} JPEGs")
    with (
        newsroom(args.articles, image_size=args.image_size) as server,
        tempfile.TemporaryDirectory(prefix="build-bench-") as tmp,
    ):
        setup = set_up(server, Path(tmp), args.articles)
        bench_cold(setup, args.articles, results)
        bench_pages(setup, results)
        bench_hashing(setup, args.hash_repeat, results)
        bench_verify(setup, results)
        bench_noop(setup, results)
        bench_rebuild(server, setup, results)
    return results.exit_status()


if __name__ == "__main__":
    sys.exit(main())
