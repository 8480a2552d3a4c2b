"""Publish benchmark (issue 4): `python bench/publish_bench.py [--quick]`.

Untimed setup: three moto S3 servers, each its own process on 127.0.0.1 (as the tests
start them), each behind its own bench/latency_proxy.py adding --latency-ms to every
request and counting requests by method, operation and key; the sample newsroom
(bench/counted_newsroom.py, --articles articles, one --image-size JPEG each) fetched and
built into an edition of about 2 × articles files (pages and their signatures) by the
real CLI, with a config naming the three mirrors (endpoint_url = their proxies).

Then, timed, every request counted at the proxies, medians of --repeat runs:

1. cold publish to one mirror, `mirror -c CONFIG publish --mirror bench-1 --json`, against
   `aws s3 sync EDITION s3://BUCKET/ --endpoint-url PROXY` of the same folder to the same
   kind of server (each run on a fresh bucket: moto reset, bucket created);
2. a publish with nothing changed, right after each cold run (and `aws s3 sync`'s);
3. three mirrors at once, cold (`mirror publish --json`, every mirror);
4. one new article (the newsroom publishes it, untimed fetch and build), then one publish
   to the three mirrors: objects PUT per mirror, pointers apart from edition files.

Every figure is printed with its target and PASS/FAIL; exit status 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from benchkit import (
    MB,
    MOTO_REGION,
    CountedNewsroom,
    Results,
    Run,
    build_run,
    fetch,
    helper,
    keygen,
    mirror_launcher,
    moto_server,
    newsroom,
    post,
    print_load,
    print_machine,
    process_cpu,
    run_timed,
    write_config,
)

from mirror.publish.publisher import DEFAULT_CONCURRENCY

COLD_RATIO_TARGET = 1.0
NOOP_REQUESTS_TARGET = 3
NOOP_SECONDS_TARGET = 1.0
NEW_ARTICLE_UPLOADS_TARGET = 12
THREE_RATIO_TARGET = 1.5
POINTERS = frozenset({"current", "pending"})
AWS_CONCURRENCY = 10  # aws-cli's default s3 max_concurrent_requests


# ---- one mirror's server: moto behind the latency proxy


@dataclass(frozen=True)
class Server:
    name: str  # the mirror's name in the config
    bucket: str
    moto_url: str
    proxy_url: str
    stats_url: str
    moto_pid: int
    proxy_pid: int

    def stats(self, *, keys: bool = False) -> dict[str, Any]:
        url = self.stats_url + "stats" + ("?keys=1" if keys else "")
        with urllib.request.urlopen(url, timeout=30) as answer:
            result: dict[str, Any] = json.load(answer)
            return result

    def reset_counts(self) -> None:
        post(self.stats_url + "reset")

    def fresh_bucket(self) -> None:
        """Empty the moto server (every bucket gone) and create the bucket again."""
        post(self.moto_url + "/moto-api/reset")
        client = moto_client(self.moto_url)
        client.create_bucket(Bucket=self.bucket)
        client.close()

    def object_count(self) -> int:
        """Objects in the bucket, asked of moto directly (not counted at the proxy)."""
        client = moto_client(self.moto_url)
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        count = sum(int(page.get("KeyCount", 0)) for page in pages)
        client.close()
        return count

    def cpu(self) -> tuple[float, float]:
        """CPU seconds so far of the moto server and of the proxy."""
        return process_cpu(self.moto_pid), process_cpu(self.proxy_pid)


def moto_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=MOTO_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def proxy(upstream: str, latency_ms: float) -> AbstractContextManager[tuple[str, str, int]]:
    """bench/latency_proxy.py in front of `upstream`: its URL, its stats URL, its pid."""
    return helper("latency_proxy.py", "--upstream", upstream, "--latency-ms", str(latency_ms))


@contextmanager
def servers(count: int, latency_ms: float, folder: Path) -> Iterator[list[Server]]:
    """`count` moto servers, each behind its own proxy, each with an empty bucket."""
    with ExitStack() as stack:
        found = []
        for number in range(1, count + 1):
            moto_url, moto_pid = stack.enter_context(moto_server(folder / f"moto-{number}.log"))
            url, stats_url, proxy_pid = stack.enter_context(proxy(moto_url, latency_ms))
            name = f"bench-{number}"
            server = Server(name, name, moto_url, url, stats_url, moto_pid, proxy_pid)
            server.fresh_bucket()
            found.append(server)
        yield found


# ---- the clients: mirror's CLI and aws-cli


def client_env(folder: Path) -> dict[str, str]:
    """This environment without the host's AWS settings, with fake credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=MOTO_REGION,
        AWS_CONFIG_FILE=str(folder / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(folder / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def mirrors_toml(servers_: list[Server]) -> str:
    tables = []
    for server in servers_:
        tables.append(
            f"""
[[mirrors]]
name = "{server.name}"
type = "s3"
bucket = "{server.bucket}"
endpoint_url = "{server.proxy_url}"
region = "{MOTO_REGION}"
addressing_style = "path"
checksums = "when_required"
public_url = "{server.proxy_url}/{server.bucket}/"
"""
        )
    return "".join(tables)


def aws_command() -> list[str]:
    script = Path(sys.executable).parent / "aws"
    return [str(script) if script.exists() else "aws"]


@dataclass(frozen=True)
class Bench:
    config: Path
    edition: Path
    env: dict[str, str]
    servers: list[Server]
    newsroom: CountedNewsroom

    def publish(self, names: list[str]) -> tuple[Run, dict[str, Any]]:
        """`mirror -c CONFIG publish [--mirror NAME]… --json`."""
        chosen = [arg for name in names for arg in ("--mirror", name)]
        command = [*mirror_launcher(), "-c", str(self.config), "publish", *chosen, "--json"]
        run = run_timed(command, self.env)
        return run, run.report()

    def aws_sync(self, server: Server) -> Run:
        """`aws s3 sync EDITION s3://BUCKET/ --endpoint-url PROXY`, its defaults otherwise."""
        command = [
            *aws_command(), "s3", "sync", str(self.edition), f"s3://{server.bucket}/",
            "--endpoint-url", server.proxy_url, "--only-show-errors",
        ]  # fmt: skip
        run = run_timed(command, self.env)
        if run.status != 0:
            raise RuntimeError(f"aws s3 sync exited {run.status}: {run.stderr[-2000:]}")
        return run


# ---- one measured publish


@dataclass(frozen=True)
class Sample:
    """One publish (mirror's or aws-cli's) and what the proxies and servers saw."""

    run: Run
    stats: list[dict[str, Any]]  # per server, as its proxy counted
    moto_cpu_s: float  # summed over the servers
    proxy_cpu_s: float
    report: dict[str, Any] | None = None  # mirror's JSON

    @property
    def wall_s(self) -> float:
        return self.run.wall_s

    @property
    def cpu_s(self) -> float:
        """Client, servers and proxies together."""
        return self.run.cpu_s + self.moto_cpu_s + self.proxy_cpu_s

    def requests(self, index: int = 0) -> int:
        return int(self.stats[index]["total"])

    def line(self) -> str:
        ops = ", ".join(f"{k} {v}" for k, v in sorted(self.stats[0]["operations"].items()))
        more = f" (+{len(self.stats) - 1} more mirrors alike)" if len(self.stats) > 1 else ""
        return (
            f"{self.wall_s:.2f} s; CPU client {self.run.cpu_s:.1f} s, moto {self.moto_cpu_s:.1f}"
            f" s, proxy {self.proxy_cpu_s:.1f} s; requests {ops}{more}"
        )


def measure(
    servers_: list[Server], action: Callable[[], tuple[Run, dict[str, Any] | None]]
) -> Sample:
    """Run `action` with the proxies' counts reset; the counts and server CPU after."""
    for server in servers_:
        server.reset_counts()
    before = [server.cpu() for server in servers_]
    run, report = action()
    after = [server.cpu() for server in servers_]
    moto_cpu = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
    proxy_cpu = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
    stats = [server.stats(keys=True) for server in servers_]
    return Sample(run, stats, moto_cpu, proxy_cpu, report)


def mirror_publish(bench: Bench, servers_: list[Server], names: list[str]) -> Sample:
    def action() -> tuple[Run, dict[str, Any] | None]:
        return bench.publish(names)

    sample = measure(servers_, action)
    assert sample.report is not None
    for result in sample.report["mirrors"]:
        if not result["ok"]:
            raise RuntimeError(f"mirror publish to {result['name']} failed: {result['error']}")
    return sample


def aws_sync(bench: Bench, server: Server) -> Sample:
    return measure([server], lambda: (bench.aws_sync(server), None))


def median_sample(samples: list[Sample]) -> Sample:
    ordered = sorted(samples, key=lambda s: s.wall_s)
    return ordered[len(ordered) // 2]


def walls(samples: list[Sample]) -> str:
    return ", ".join(f"{s.wall_s:.2f}" for s in samples)


# ---- setup


def set_up(
    args: argparse.Namespace, room_url: str, servers_: list[Server], folder: Path
) -> tuple[Path, Path]:
    """A store holding every article, keys, and a built edition (untimed)."""
    config = write_config(folder, room_url, args.articles)
    config.write_text(config.read_text() + mirrors_toml(servers_))
    started = time.perf_counter()
    report = fetch(config)
    if report["new"] != args.articles or report["failed"]:
        raise RuntimeError(f"setup fetch stored {report['new']} of {args.articles} articles")
    keygen(config)
    run, built = build_run(config)
    if run.status != 0:
        raise RuntimeError("setup build failed")
    edition = folder / "edition"
    files = [p for p in edition.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    print(
        f"    build: {run.wall_s:.1f} s, version {built['version']}, {built['files']} listed "
        f"files; the folder holds {len(files)} files, {size / MB:.1f} MB "
        f"(setup {time.perf_counter() - started:.0f} s)"
    )
    return config, edition


# ---- 1 and 2: cold publish to one mirror against aws s3 sync, then nothing changed


@dataclass
class OneMirror:
    mirror_cold: list[Sample]
    mirror_noop: list[Sample]
    aws_cold: list[Sample]
    aws_noop: list[Sample]


def one_mirror_rounds(bench: Bench, repeat: int) -> OneMirror:
    server = bench.servers[0]
    found = OneMirror([], [], [], [])
    for number in range(repeat):
        order = ("mirror", "aws") if number % 2 == 0 else ("aws", "mirror")
        for who in order:
            server.fresh_bucket()
            if who == "mirror":
                cold = mirror_publish(bench, [server], [server.name])
                noop = mirror_publish(bench, [server], [server.name])
                found.mirror_cold.append(cold)
                found.mirror_noop.append(noop)
            else:
                cold = aws_sync(bench, server)
                noop = aws_sync(bench, server)
                found.aws_cold.append(cold)
                found.aws_noop.append(noop)
            objects = server.object_count()
            print(
                f"    run {number + 1} {who:<6} cold: {cold.line()}; "
                f"{objects} objects in the bucket"
            )
            print(f"    run {number + 1} {who:<6} noop: {noop.line()}")
    return found


def report_cold(found: OneMirror, latency_ms: float, results: Results) -> Sample:
    mirror = median_sample(found.mirror_cold)
    aws = median_sample(found.aws_cold)
    results.add(
        "cold publish, mirror (median)", f"{mirror.wall_s:.2f} s (runs: {walls(found.mirror_cold)})"
    )
    results.add(
        "cold publish, aws s3 sync (median)", f"{aws.wall_s:.2f} s (runs: {walls(found.aws_cold)})"
    )
    results.add("cold publish requests, mirror (median run)", describe_requests(mirror.stats[0]))
    results.add("cold publish requests, aws s3 sync (median run)", describe_requests(aws.stats[0]))
    for label, sample, concurrency in (
        ("mirror", mirror, DEFAULT_CONCURRENCY),
        ("aws s3 sync", aws, AWS_CONCURRENCY),
    ):
        results.add(
            f"cold publish bounds, {label} (median run)", bounds(sample, concurrency, latency_ms)
        )
    ratio = mirror.wall_s / aws.wall_s
    results.add(
        "cold publish, mirror / aws s3 sync",
        f"{ratio:.2f}",
        f"<= {COLD_RATIO_TARGET:g}",
        ratio <= COLD_RATIO_TARGET,
    )
    return mirror


def bounds(sample: Sample, concurrency: int, latency_ms: float) -> str:
    """The network ideal (requests × latency / concurrency, per mirror) and the CPU floor
    (client + moto + proxy CPU over the cores they share)."""
    ideal = max(s["total"] for s in sample.stats) * latency_ms / 1000 / concurrency
    cores = os.cpu_count() or 1
    return (
        f"network ideal {ideal:.1f} s (concurrency {concurrency}); CPU {sample.cpu_s:.1f} s "
        f"(client {sample.run.cpu_s:.1f}, moto {sample.moto_cpu_s:.1f}, proxy "
        f"{sample.proxy_cpu_s:.1f}) = floor {sample.cpu_s / cores:.1f} s on {cores} cores"
    )


def describe_requests(stats: dict[str, Any]) -> str:
    ops = ", ".join(f"{k} {v}" for k, v in sorted(stats["operations"].items()))
    return (
        f"{stats['total']} ({ops}); statuses {stats['statuses']}, "
        f"most in flight {stats['most_in_flight']}, Expect: 100-continue {stats['expect_continue']}"
    )


def report_noop(found: OneMirror, results: Results) -> None:
    mirror = median_sample(found.mirror_noop)
    most = max(s.requests() for s in found.mirror_noop)
    inner = [r["seconds"] for s in found.mirror_noop for r in (s.report or {})["mirrors"]]
    results.add(
        "no-change publish, mirror: requests per mirror (most of all runs)",
        f"{most} ({describe_requests(mirror.stats[0])})",
        f"<= {NOOP_REQUESTS_TARGET}",
        most <= NOOP_REQUESTS_TARGET,
    )
    results.add(
        "no-change publish, mirror: wall time of the CLI (median)",
        f"{mirror.wall_s:.2f} s (runs: {walls(found.mirror_noop)}; publish itself, JSON "
        f"`seconds`: {statistics.median(inner):.3f} s)",
        f"< {NOOP_SECONDS_TARGET:g} s",
        mirror.wall_s < NOOP_SECONDS_TARGET,
    )
    aws = median_sample(found.aws_noop)
    results.add(
        "no-change aws s3 sync (median)",
        f"{aws.wall_s:.2f} s, requests {describe_requests(aws.stats[0])}",
    )


# ---- 3: three mirrors at once


def three_mirror_runs(bench: Bench, repeat: int) -> list[Sample]:
    samples = []
    for number in range(repeat):
        for server in bench.servers:
            server.fresh_bucket()
        sample = mirror_publish(bench, bench.servers, [])
        counts = [server.object_count() for server in bench.servers]
        print(f"    run {number + 1}: {sample.line()}; objects per bucket {counts}")
        samples.append(sample)
    return samples


def report_three(samples: list[Sample], one: Sample, latency_ms: float, results: Results) -> None:
    three = median_sample(samples)
    results.add(
        f"cold publish to {len(three.stats)} mirrors (median)",
        f"{three.wall_s:.2f} s (runs: {walls(samples)}); requests per mirror "
        f"{[s['total'] for s in three.stats]}",
    )
    results.add(
        "cold publish bounds, 3 mirrors (median run)",
        bounds(three, DEFAULT_CONCURRENCY, latency_ms),
    )
    ratio = three.wall_s / one.wall_s
    results.add(
        f"{len(three.stats)} mirrors / one mirror (cold, medians)",
        f"{ratio:.2f}× ({three.wall_s:.2f} s / {one.wall_s:.2f} s)",
        f"<= {THREE_RATIO_TARGET:g}×",
        ratio <= THREE_RATIO_TARGET,
    )


# ---- 4: one new article


def add_article(bench: Bench) -> None:
    """The newsroom publishes an article; mirror fetches it and builds (untimed)."""
    added = bench.newsroom.add_article()
    print(f"    the newsroom published article {added['id']} at {added['path']}")
    fetch(bench.config)
    run, built = build_run(bench.config)
    print(
        f"    build: {run.wall_s:.2f} s, version {built['version']}, "
        f"{built['written']} files written"
    )


def bench_new_article(bench: Bench, results: Results) -> None:
    add_article(bench)
    sample = mirror_publish(bench, bench.servers, [])
    assert sample.report is not None
    reports = {r["name"]: r for r in sample.report["mirrors"]}
    print(f"    publish: {sample.line()}")
    worst = 0
    for server, stats in zip(bench.servers, sample.stats, strict=True):
        keys = stats["put_keys"]
        pointers = sorted(k for k in keys if k in POINTERS)
        files = sorted(k for k in keys if k not in POINTERS)
        worst = max(worst, len(files))
        report = reports[server.name]
        print(
            f"    {server.name}: {len(keys)} PUTs = {len(files)} edition files + "
            f"{len(pointers)} pointer writes {pointers}; JSON uploaded {report['uploaded']}, "
            f"deleted {report['deleted']}, pointer_writes {report['pointer_writes']}, "
            f"requests {report['requests']}; proxy counted {describe_requests(stats)}"
        )
    for key in sorted(k for k in sample.stats[0]["put_keys"] if k not in POINTERS):
        print(f"        uploaded: {key}")
    results.add("after one new article: publish wall time (3 mirrors)", f"{sample.wall_s:.2f} s")
    results.add(
        "after one new article: edition files PUT per mirror (most; pointers apart)",
        str(worst),
        f"<= {NEW_ARTICLE_UPLOADS_TARGET}",
        worst <= NEW_ARTICLE_UPLOADS_TARGET,
    )
    noop = mirror_publish(bench, bench.servers, [])
    results.add(
        "then nothing changed, 3 mirrors: requests per mirror",
        f"{[s['total'] for s in noop.stats]} in {noop.wall_s:.2f} s",
    )


# ---- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--articles", type=int, default=2500, help="edition of about twice as many files")
    add("--image-size", default="400x300", help="WIDTHxHEIGHT of every article's JPEG")
    add("--latency-ms", type=float, default=30.0, help="added by the proxy to every request")
    add("--repeat", type=int, default=5, help="runs of each timed publish; medians reported")
    add("--quick", action="store_true", help="smoke run: 100 articles, 1 run each")
    args = parser.parse_args(argv)
    if args.quick:
        args.articles, args.repeat = 100, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print_machine()
    results = Results()
    print(
        f"\n[setup, untimed] 3 moto servers behind proxies adding {args.latency_ms:g} ms; "
        f"newsroom of {args.articles} articles, {args.image_size} JPEGs; fetch, keygen, build"
    )
    with (
        tempfile.TemporaryDirectory(prefix="publish-bench-") as tmp,
        servers(3, args.latency_ms, Path(tmp)) as found,
        newsroom(args.articles, image_size=args.image_size) as room,
    ):
        config, edition = set_up(args, room.base_url, found, Path(tmp))
        bench = Bench(config, edition, client_env(Path(tmp)), found, room)
        print(
            f"\n[cold and no-change publish to one mirror, {args.repeat} rounds] fresh bucket each"
        )
        print_load("before the runs")
        one = one_mirror_rounds(bench, args.repeat)
        one_cold = report_cold(one, args.latency_ms, results)
        report_noop(one, results)
        print(f"\n[cold publish to three mirrors, {args.repeat} runs] fresh buckets each")
        print_load("before the runs")
        samples = three_mirror_runs(bench, args.repeat)
        report_three(samples, one_cold, args.latency_ms, results)
        print("\n[one new article, then publish to the three mirrors]")
        bench_new_article(bench, results)
    print_load("at the end")
    return results.exit_status()


if __name__ == "__main__":
    sys.exit(main())
