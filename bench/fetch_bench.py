"""Fetch benchmark (issue 2): `python bench/fetch_bench.py [--quick]`.

Runs the sample newsroom in its own process (bench/counted_newsroom.py counts every
request it is asked) and the real CLI, `mirror -c CONFIG fetch --json`, as another:

1. cold fetch of --articles articles (one image each, --latency-ms on every answer,
   every article in the feed): wall time against the network ideal, requests × latency
   / concurrency, the requests counted at the server;
2. a second fetch with nothing changed: time, and article/image requests (must be 0);
3. extraction rate through ParserPool(--workers), automatic and with selectors;
4. peak RSS (main process, and main + workers) of a cold fetch of --big-articles.

Every figure is printed with its target and PASS/FAIL; exit status 1 if any failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchkit import (
    MB,
    Results,
    TreeSampler,
    mirror_launcher,
    newsroom,
    note_launcher,
    print_machine,
)

from mirror.fetch.stage import extract_in_worker
from mirror.newsroom.pages import STYLE_SELECTORS
from mirror.newsroom.state import Newsroom, NewsroomOptions
from mirror.workers import ParserPool

COLD_RATIO_TARGET = 1.5
NOOP_SECONDS_TARGET = 2.0
EXTRACT_RATE_TARGET = 50.0  # pages/s
PEAK_RSS_TARGET = 300 * MB


# ---- mirror's config and CLI


def selectors() -> tuple[str, tuple[str, ...]]:
    """Every page style's body selector as one group, and all their drop selectors."""
    body = ", ".join(s.article_selector for s in STYLE_SELECTORS.values())
    drop = tuple(d for s in STYLE_SELECTORS.values() for d in s.drop_selectors)
    return body, drop


def write_fetch_config(folder: Path, base_url: str, articles: int, concurrency: int) -> Path:
    """A config reading the newsroom's RSS feed with every page style's selectors."""
    body, drop = selectors()
    text = f"""
[publication]
name = "Bench Times"
language = "en"
home_url = "{base_url}"

[source]
feeds = ["{base_url}rss.xml"]
allowed_hosts = ["127.0.0.1"]
article_selector = {json.dumps(body)}
drop_selectors = {json.dumps(list(drop))}
concurrency = {concurrency}
per_host_concurrency = {concurrency}
max_feed_items = {max(articles, 1)}
max_feed_bytes = 100_000_000
timeout_s = 120
read_timeout_s = 60

[state]
path = "state/mirror.db"
"""
    path = folder / "mirror.toml"
    path.write_text(text)
    return path


def mirror_command(config: Path) -> list[str]:
    return [*mirror_launcher(), "-c", str(config), "fetch", "--json"]


@dataclass(frozen=True)
class FetchRun:
    wall_s: float
    status: int
    report: dict[str, Any]
    stderr: str
    launched: float  # time.time() at launch, to compare with the server's clock
    exited: float
    peak: Any = None  # benchkit.Peak when sampled


Measured = tuple[FetchRun, dict[str, Any]]  # a run and what the server saw


def run_fetch(config: Path, *, sample_memory: bool = False) -> FetchRun:
    """`mirror -c CONFIG fetch --json` in a subprocess, timed from start to exit."""
    launched = time.time()
    started = time.perf_counter()
    process = subprocess.Popen(
        mirror_command(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if sample_memory:
        with TreeSampler(process.pid) as sampler:
            stdout, stderr = process.communicate()
        peak = sampler.peak
    else:
        stdout, stderr = process.communicate()
        peak = None
    wall = time.perf_counter() - started
    exited = time.time()
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"mirror fetch exited {process.returncode}: {stderr[-2000:]}") from None
    return FetchRun(wall, process.returncode, report, stderr, launched, exited, peak)


def describe(run: FetchRun) -> str:
    r = run.report
    return (
        f"exit {run.status}: {r['new']} new, {r['changed']} changed, {r['unchanged']} "
        f"unchanged, {r['not_modified']} not modified, {r['images']} images, "
        f"{len(r['failed'])} failed"
    )


def show_failures(run: FetchRun, limit: int = 5) -> None:
    for failure in run.report["failed"][:limit]:
        print(f"        failed: {failure['url']}: {failure['reason']}")


def server_window(stats: dict[str, Any]) -> float:
    """Seconds from the first request the server saw to its last response."""
    if stats["first"] is None or stats["last"] is None:
        return 0.0
    return float(stats["last"] - stats["first"])


def split(run: FetchRun, stats: dict[str, Any]) -> str:
    """Where a fetch's wall time went, by the server's clock."""
    if stats["first"] is None:
        return "no request seen"
    first_other = stats["first_other"] or stats["last"]
    return (
        f"{stats['first'] - run.launched:.2f} s launch to first request, "
        f"{first_other - stats['first']:.2f} s feed to first article request, "
        f"{stats['last'] - first_other:.2f} s articles and images, "
        f"{run.exited - stats['last']:.2f} s last answer to exit"
    )


def kinds(stats: dict[str, Any]) -> str:
    k = stats["kinds"]
    return (
        f"{stats['total']} requests ({k.get('feed', 0)} feed, {k.get('page', 0)} page, "
        f"{k.get('image', 0)} image; statuses {stats['statuses']})"
    )


# ---- 1 and 2: cold fetch, then a fetch with nothing changed


def bench_cold_and_noop(args: argparse.Namespace, results: Results) -> None:
    print(
        f"\n[cold + no-change fetch] {args.articles} articles, {args.latency_ms:g} ms latency, "
        f"concurrency {args.concurrency}, {args.repeat} cold run(s), each on a fresh newsroom"
    )
    colds: list[Measured] = []
    noop: Measured | None = None
    for number in range(args.repeat):
        measured, noop = cold_then_noop(args, with_noop=number == args.repeat - 1)
        colds.append(measured)
        print(f"    cold run {number + 1}: {measured[0].wall_s:.2f} s")
    colds.sort(key=lambda pair: pair[0].wall_s)
    cold, stats = colds[len(colds) // 2]
    if args.repeat > 1:
        walls = ", ".join(f"{run.wall_s:.2f}" for run, _ in colds)
        print(f"    figures below are from the median cold run (all: {walls} s)")
    report_cold(args, results, cold, stats)
    assert noop is not None
    report_noop(results, *noop)


def cold_then_noop(
    args: argparse.Namespace, *, with_noop: bool
) -> tuple[Measured, Measured | None]:
    """A cold fetch on a fresh newsroom and store, then (if asked) one with nothing changed."""
    with (
        newsroom(args.articles, latency_ms=args.latency_ms) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        config = write_fetch_config(Path(tmp), server.base_url, args.articles, args.concurrency)
        cold = run_fetch(config)
        cold_stats = server.stats()
        if not with_noop:
            return (cold, cold_stats), None
        server.reset()
        again = run_fetch(config)
        return (cold, cold_stats), (again, server.stats())


def report_cold(
    args: argparse.Namespace, results: Results, run: FetchRun, stats: dict[str, Any]
) -> None:
    ideal = stats["total"] * args.latency_ms / 1000 / args.concurrency
    ratio = run.wall_s / ideal if ideal else float("inf")
    print(f"    {describe(run)}")
    show_failures(run)
    print(f"    server saw {kinds(stats)}")
    results.add("cold fetch wall time", f"{run.wall_s:.2f} s")
    results.add("cold fetch requests (counted at the server)", str(stats["total"]))
    results.add(
        "cold fetch network ideal",
        f"{ideal:.2f} s = {stats['total']} × {args.latency_ms:g} ms / {args.concurrency}",
    )
    results.add("cold fetch split", split(run, stats))
    complete = run.report["new"] == args.articles and not run.report["failed"]
    results.add(
        "cold fetch stored every article",
        f"{run.report['new']} of {args.articles}",
        "all, none failed",
        complete,
    )
    window = server_window(stats)
    mean_ms = stats["service_s"] / max(stats["total"], 1) * 1000
    busy = stats["service_s"] / window if window else 0.0
    results.add(
        "cold fetch concurrency seen by the server",
        f"mean {busy:.1f} requests in flight (max {stats['most_in_flight']}), "
        f"mean answer time {mean_ms:.0f} ms",
    )
    ok = ratio <= COLD_RATIO_TARGET
    results.add("cold fetch / ideal", f"{ratio:.2f}×", f"<= {COLD_RATIO_TARGET}×", ok)


def report_noop(results: Results, run: FetchRun, stats: dict[str, Any]) -> None:
    print(f"    second fetch: {describe(run)}")
    show_failures(run)
    print(f"    server saw {kinds(stats)}")
    seen = stats["kinds"].get("page", 0) + stats["kinds"].get("image", 0)
    results.add("no-change fetch wall time", f"{run.wall_s:.2f} s", "< 2 s", run.wall_s < 2.0)
    results.add("no-change fetch article/image requests", str(seen), "0", seen == 0)


# ---- 3: extraction rate


@dataclass(frozen=True)
class Page:
    body: bytes
    charset: str | None
    url: str


def render_pages(count: int) -> list[Page]:
    """`count` newsroom article pages, as its server would send them (no socket)."""
    room = Newsroom(NewsroomOptions(articles=count))
    base = "http://127.0.0.1:8080/"
    room.base_url = base
    pages = []
    for article in room.articles:
        resource = room.resource(article.path, base)
        assert resource is not None
        charset = resource.content_type.partition("charset=")[2] or None
        pages.append(Page(resource.body, charset, room.url_of(article)))
    return pages


async def extract_all(
    pool: ParserPool, pages: list[Page], selector: str, drop: tuple[str, ...]
) -> tuple[float, dict[str, int]]:
    """Seconds to extract every page through the pool, and which extractor found each."""
    started = time.perf_counter()
    done = await asyncio.gather(
        *(
            pool.run(extract_in_worker, p.body, p.charset, p.url, selector, drop, "en")
            for p in pages
        )
    )
    elapsed = time.perf_counter() - started
    found: dict[str, int] = {}
    for article in done:
        found[article.extractor] = found.get(article.extractor, 0) + 1
    return elapsed, found


async def extraction_rates(pages: list[Page], workers: int) -> dict[str, tuple[float, Any]]:
    body, drop = selectors()
    rates: dict[str, tuple[float, Any]] = {}
    with ParserPool(workers) as pool:
        await extract_all(pool, pages[: 4 * workers], "", ())  # imports, caches: not timed
        await extract_all(pool, pages[: 4 * workers], body, drop)
        for label, selector, dropped in (("automatic", "", ()), ("selectors", body, drop)):
            elapsed, found = await extract_all(pool, pages, selector, dropped)
            rates[label] = (len(pages) / elapsed, found)
    return rates


def bench_extraction(args: argparse.Namespace, results: Results) -> None:
    print(f"\n[extraction] {args.extract_pages} pages through ParserPool({args.workers})")
    pages = render_pages(args.extract_pages)
    mean = sum(len(p.body) for p in pages) / len(pages)
    print(f"    mean page size {mean / 1000:.1f} kB")
    rates = asyncio.run(extraction_rates(pages, args.workers))
    rate, found = rates["automatic"]
    results.add(
        f"automatic extraction (no selectors), {args.workers} workers",
        f"{rate:.0f} pages/s {found}",
        f">= {EXTRACT_RATE_TARGET:g} pages/s",
        rate >= EXTRACT_RATE_TARGET,
    )
    rate, found = rates["selectors"]
    results.add(f"extraction with selectors, {args.workers} workers", f"{rate:.0f} pages/s {found}")


# ---- 4: peak memory


def bench_memory(args: argparse.Namespace, results: Results) -> None:
    print(
        f"\n[memory] cold fetch of {args.big_articles} articles, "
        f"{args.big_latency_ms:g} ms latency, RSS polled every 50 ms"
    )
    with (
        newsroom(args.big_articles, latency_ms=args.big_latency_ms) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        config = write_fetch_config(Path(tmp), server.base_url, args.big_articles, args.concurrency)
        run = run_fetch(config, sample_memory=True)
        stats = server.stats()
        db = Path(tmp) / "state" / "mirror.db"
        store_mb = db.stat().st_size / MB if db.exists() else 0.0
    print(f"    {describe(run)}")
    show_failures(run)
    print(f"    server saw {kinds(stats)}; store {store_mb:.0f} MB")
    peak = run.peak
    results.add("big cold fetch wall time", f"{run.wall_s:.1f} s")
    results.add(
        "big cold fetch stored every article",
        f"{run.report['new']} of {args.big_articles}",
        "all, none failed",
        run.report["new"] == args.big_articles and not run.report["failed"],
    )
    results.add("peak RSS, main process alone", f"{peak.main_bytes / MB:.0f} MB")
    results.add(
        f"peak RSS, main + workers (sum, up to {peak.most_processes} processes, "
        f"{peak.samples} samples)",
        f"{peak.tree_bytes / MB:.0f} MB",
        f"< {PEAK_RSS_TARGET // MB} MB",
        peak.tree_bytes < PEAK_RSS_TARGET,
    )


# ---- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--articles", type=int, default=1000, help="cold/no-change fetch size")
    add("--latency-ms", type=float, default=100.0, help="added to every newsroom answer")
    add("--concurrency", type=int, default=32, help="concurrency = per_host_concurrency")
    add("--extract-pages", type=int, default=400)
    add("--workers", type=int, default=2, help="extraction processes")
    add("--big-articles", type=int, default=10_000, help="memory run size")
    add("--big-latency-ms", type=float, default=0.0)
    add("--repeat", type=int, default=3, help="cold runs; the median is reported")
    add("--quick", action="store_true", help="smoke run: 100 / 100 / 1000, one cold run")
    add("--skip", action="append", default=[], choices=["fetch", "extract", "memory"])
    args = parser.parse_args(argv)
    if args.quick:
        args.articles, args.extract_pages, args.big_articles = 100, 100, 1000
        args.repeat = 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    note_launcher()
    print_machine()
    results = Results()
    if "fetch" not in args.skip:
        bench_cold_and_noop(args, results)
    if "extract" not in args.skip:
        bench_extraction(args, results)
    if "memory" not in args.skip:
        bench_memory(args, results)
    return results.exit_status()


if __name__ == "__main__":
    sys.exit(main())
