"""Digest benchmark (issue 5): `python bench/digest_bench.py [--quick]`.

Untimed setup: the sample newsroom in its own process (bench/counted_newsroom.py,
--articles articles, small pictures), `mirror fetch`, `mirror keygen`, `mirror build`,
then --subscribers subscribers on distinct domains imported with
`mirror subscribers import FILE.csv` (lang any: every article). That store is kept as
a golden copy; every timed digest starts from a fresh copy of it.

Postfix's `smtp-sink -c` listens on 127.0.0.1 in its own process (bench/postfix_tools.py
finds or fetches it). In each of --repeat rounds, in alternating order:

- `smtp-source -s N -m M -l 40960 127.0.0.1:PORT` (one session per message, as the
  issue's command; N = --connections, M = --subscribers), timed as a subprocess;
- `mirror -c CONFIG digest send --json`, timed as a subprocess from launch to exit
  (composing and sending every message), `connections = N`, `rate_per_s` and
  `per_domain_rate_per_s` = the config's highest (100,000 a second: no message waits),
  with its peak RSS polled from /proc;
- (info) `smtp-source -d ...`: the same, every session reused for many messages, as
  mirror does.

The sink's own counter says how many messages each phase delivered. A probe (aiosmtpd,
untimed) catches a few messages of each sender to give the sizes actually sent.
Medians of the rounds; every figure is printed with its target and PASS/FAIL; exit
status 1 if any failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchkit import (
    MB,
    Peak,
    Results,
    TreeSampler,
    children_cpu,
    fetch,
    free_port,
    keygen,
    mirror_launcher,
    newsroom,
    note_launcher,
    print_machine,
    run_mirror,
    write_config,
)
from postfix_tools import Postfix, Sink, find_postfix, smtp_sink

from mirror.config import RANGES

KB = 1000
RATIO_TARGET = 0.50
PEAK_RSS_TARGET = 300 * MB
SOURCE_PAYLOAD = 40_960  # smtp-source -l: payload bytes, headers not included
SECRET = "digest-bench-unsubscribe-secret-0123456789"
PROBE_SUBSCRIBERS = 20
# The config's highest rate (config.RANGES; inf is refused): a slot every 10 µs, far
# below a message's cost, so no message waits.
UNPACED_RATE_PER_S = int(RANGES["digest.rate_per_s"].high)


# ---- setup: a store with a built edition and the subscribers


def digest_keys(port: int, connections: int) -> str:
    return (
        '[digest]\nfrom = "The Zarechensk Courier <digest@courier.example.org>"\n'
        f'smtp_url = "smtp+insecure://127.0.0.1:{port}"\n'
        'unsubscribe_url = "https://news.example.org/unsubscribe"\n'
        'unsubscribe_mailto = "leave@news.example.org"\n'
        f"connections = {connections}\nrate_per_s = {UNPACED_RATE_PER_S}\n"
        f"per_domain_rate_per_s = {UNPACED_RATE_PER_S}\n"
    )


MIRRORS = "".join(
    f'\n[[mirrors]]\nname = "{name}"\ntype = "directory"\npath = "mirrors/{name}"\n'
    f'public_url = "https://{name}.example.net/m/"\nlisted = {listed}\n'
    for name, listed in (("alpha", "true"), ("beta", "true"), ("hidden", "false"))
)


def env() -> dict[str, str]:
    return {**os.environ, "MIRROR_UNSUBSCRIBE_SECRET": SECRET}


def checked(args: list[str]) -> None:
    run = run_mirror(args, env=env())
    if run.status != 0:
        raise RuntimeError(f"mirror {' '.join(args[2:])} exited {run.status}: {run.stderr[-2000:]}")


def write_subscribers(path: Path, count: int) -> None:
    with path.open("w", newline="") as out:
        rows = csv.writer(out)
        rows.writerow(["email", "lang"])
        rows.writerows([f"reader{i}@d{i}.example.net", "any"] for i in range(count))


@dataclass(frozen=True)
class Setup:
    folder: Path
    config: Path  # the timed runs' config: its store is state/mirror.db
    golden: Path  # the store with the edition and every subscriber, before any digest
    base: Path  # the store with the edition and no subscriber (for the size probe)

    @property
    def store(self) -> Path:
        return self.folder / "state" / "mirror.db"


def set_up(folder: Path, args: argparse.Namespace, port: int) -> Setup:
    """Fetch, keygen, build, import: the store every timed run starts from (untimed)."""
    started = time.perf_counter()
    with newsroom(args.articles, image_size=args.image_size) as server:
        config = write_config(folder, server.base_url, args.articles)
        report = fetch(config)
    if report["new"] != args.articles or report["failed"]:
        raise RuntimeError(f"setup fetch stored {report['new']} of {args.articles} articles")
    text = config.read_text().replace("[digest]\n", digest_keys(port, args.connections), 1)
    config.write_text(text + MIRRORS)
    keygen(config)
    checked(["-c", str(config), "build", "--json"])
    setup = Setup(folder, config, folder / "golden.db", folder / "base.db")
    copy_store(setup.store, setup.base)
    write_subscribers(folder / "subscribers.csv", args.subscribers)
    checked(["-c", str(config), "subscribers", "import", str(folder / "subscribers.csv")])
    copy_store(setup.store, setup.golden)
    print(f"    setup done in {time.perf_counter() - started:.1f} s")
    return setup


def copy_store(source: Path, target: Path) -> None:
    """A consistent copy of an SQLite store (its WAL included), replacing `target`."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


# ---- the timed commands


@dataclass(frozen=True)
class Timed:
    label: str
    wall_s: float
    cpu_s: float
    status: int
    delivered: int  # counted by the sink
    sink_cpu_s: float
    stdout: str = ""
    stderr: str = ""
    peak: Peak | None = None

    def rate(self, messages: int) -> float:
        return messages / self.wall_s


@contextmanager
def measured(sink: Sink) -> Iterator[dict[str, float]]:
    """Wall and CPU time of what runs inside (children reaped there), and the sink's."""
    got: dict[str, float] = {}
    cpu_before = children_cpu()
    sink_before, count_before = sink.cpu_s(), sink.count()
    started = time.perf_counter()
    yield got
    got["wall_s"] = time.perf_counter() - started
    got["cpu_s"] = children_cpu() - cpu_before
    got["count_before"] = count_before
    got["sink_before"] = sink_before


def finish(label: str, got: dict[str, float], sink: Sink, messages: int, **rest: Any) -> Timed:
    delivered = sink.settled_count(int(got["count_before"]) + messages) - int(got["count_before"])
    sink_cpu = sink.cpu_s() - got["sink_before"]
    return Timed(
        label, got["wall_s"], got["cpu_s"], delivered=delivered, sink_cpu_s=sink_cpu, **rest
    )


def source_command(postfix: Postfix, port: int, args: argparse.Namespace, reuse: bool) -> list[str]:
    sessions, messages = str(args.connections), str(args.subscribers)
    reused = ["-d"] if reuse else []
    return [
        str(postfix.source), *reused, "-s", sessions, "-m", messages,
        "-l", str(SOURCE_PAYLOAD), f"127.0.0.1:{port}",
    ]  # fmt: skip


def run_source(postfix: Postfix, sink: Sink, args: argparse.Namespace, *, reuse: bool) -> Timed:
    command = source_command(postfix, sink.port, args, reuse)
    with measured(sink) as got:
        done = subprocess.run(command, capture_output=True, text=True, env=postfix.env())
    label = "smtp-source -d" if reuse else "smtp-source"
    return finish(
        label, got, sink, args.subscribers,
        status=done.returncode, stdout=done.stdout, stderr=done.stderr,
    )  # fmt: skip


def run_digest(setup: Setup, sink: Sink, args: argparse.Namespace) -> Timed:
    """`mirror digest send --json` on a fresh copy of the golden store."""
    copy_store(setup.golden, setup.store)
    command = [*mirror_launcher(), "-c", str(setup.config), "digest", "send", "--json"]
    with measured(sink) as got:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env()
        )
        with TreeSampler(process.pid, interval_s=0.02) as sampler:
            stdout, stderr = process.communicate()
    return finish(
        "mirror", got, sink, args.subscribers,
        status=process.returncode, stdout=stdout, stderr=stderr, peak=sampler.peak,
    )  # fmt: skip


def digest_report(run: Timed) -> dict[str, Any]:
    try:
        report: dict[str, Any] = json.loads(run.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"mirror exited {run.status}: {run.stderr[-2000:]}") from None
    return report


def show(run: Timed, messages: int) -> None:
    extra = ""
    if run.peak is not None:
        report = digest_report(run)
        extra = (
            f"; sent {report['sent']}, failed {len(report['failed'])}, deferred "
            f"{report['deferred']}; peak RSS {run.peak.tree_bytes / MB:.0f} MB"
        )
    print(
        f"    {run.label:<15} {run.wall_s:6.2f} s = {run.rate(messages):5.0f} msg/s, "
        f"exit {run.status}, sink counted {run.delivered}, CPU {run.cpu_s:.1f} s, "
        f"sink CPU {run.sink_cpu_s:.1f} s{extra}",
        flush=True,
    )
    if run.status != 0:
        print(f"        stderr: {run.stderr[-500:]}")


# ---- rounds


Round = dict[str, Timed]


def one_round(
    number: int, postfix: Postfix, sink: Sink, setup: Setup, args: argparse.Namespace
) -> Round:
    steps = {
        "source": lambda: run_source(postfix, sink, args, reuse=False),
        "mirror": lambda: run_digest(setup, sink, args),
        "reuse": lambda: run_source(postfix, sink, args, reuse=True),
    }
    order = ["source", "mirror", "reuse"] if number % 2 == 0 else ["mirror", "source", "reuse"]
    print(f"\n[round {number + 1}] load average {os.getloadavg()[0]:.2f}", flush=True)
    done: Round = {}
    for name in order:
        done[name] = steps[name]()
        show(done[name], args.subscribers)
    return done


def median_run(rounds: list[Round], name: str) -> Timed:
    runs = sorted((r[name] for r in rounds), key=lambda run: run.wall_s)
    return runs[len(runs) // 2]


def walls(rounds: list[Round], name: str) -> str:
    return ", ".join(f"{r[name].wall_s:.2f}" for r in rounds)


def report_rounds(rounds: list[Round], args: argparse.Namespace, results: Results) -> None:
    n = args.subscribers
    mirror, source, reuse = (median_run(rounds, name) for name in ("mirror", "source", "reuse"))
    print(f"\n[figures] medians of {len(rounds)} round(s)")
    results.add(
        f"smtp-source -s {args.connections} -m {n} -l {SOURCE_PAYLOAD}",
        f"{source.rate(n):.0f} msg/s ({source.wall_s:.2f} s; runs {walls(rounds, 'source')} s)",
    )
    results.add(
        f"mirror digest send --json, connections = {args.connections}",
        f"{mirror.rate(n):.0f} msg/s ({mirror.wall_s:.2f} s; runs {walls(rounds, 'mirror')} s), "
        f"CPU {mirror.cpu_s:.1f} s",
    )
    ratio = mirror.rate(n) / source.rate(n)
    per_round = ", ".join(f"{r['source'].wall_s / r['mirror'].wall_s:.0%}" for r in rounds)
    results.add(
        "mirror / smtp-source messages per second",
        f"{ratio:.0%} (per round: {per_round})",
        f">= {RATIO_TARGET:.0%}",
        ratio >= RATIO_TARGET,
    )
    results.add(
        f"(info) smtp-source -d (sessions reused, as mirror does), -s {args.connections}",
        f"{reuse.rate(n):.0f} msg/s ({reuse.wall_s:.2f} s; runs {walls(rounds, 'reuse')} s); "
        f"mirror / it = {mirror.rate(n) / reuse.rate(n):.0%}",
    )
    report_counts(rounds, n, results)
    report_memory(rounds, results)


def report_counts(rounds: list[Round], n: int, results: Results) -> None:
    for name in ("mirror", "source", "reuse"):
        counts = [r[name].delivered for r in rounds]
        statuses = [r[name].status for r in rounds]
        label = rounds[0][name].label
        ok = all(c == n for c in counts) and not any(statuses)
        results.add(
            f"messages the sink counted, {label}",
            f"{counts} (exit {statuses})",
            f"{n} each, exit 0",
            ok,
        )
    sent = [digest_report(r["mirror"])["sent"] for r in rounds]
    results.add("mirror's JSON `sent`", str(sent), f"{n} each", all(s == n for s in sent))


def report_memory(rounds: list[Round], results: Results) -> None:
    peaks = [r["mirror"].peak for r in rounds if r["mirror"].peak is not None]
    tree = max(p.tree_bytes for p in peaks)
    main = max(p.main_bytes for p in peaks)
    processes = max(p.most_processes for p in peaks)
    samples = min(p.samples for p in peaks)
    results.add(
        f"peak RSS of mirror digest send (highest of {len(peaks)} runs, up to {processes} "
        f"process(es), >= {samples} samples at 20 ms)",
        f"{tree / MB:.0f} MB (main process {main / MB:.0f} MB)",
        f"< {PEAK_RSS_TARGET // MB} MB",
        tree < PEAK_RSS_TARGET,
    )


# ---- the size probe: a few messages of each sender caught by aiosmtpd


class Catcher:
    """aiosmtpd handler keeping the size of every message (bytes after dot-unstuffing)."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.sizes.append(len(envelope.original_content or envelope.content))
        return "250 OK"


@contextmanager
def catcher() -> Iterator[tuple[Catcher, int]]:
    from aiosmtpd.controller import Controller

    handler, port = Catcher(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, data_size_limit=None)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def probe_sizes(postfix: Postfix, setup: Setup) -> tuple[list[int], list[int]]:
    """Sizes of a few digest messages and of one smtp-source message, as received."""
    folder = setup.folder / "probe"
    folder.mkdir(exist_ok=True)
    with catcher() as (handler, port):
        command = [str(postfix.source), "-m", "2", "-l", str(SOURCE_PAYLOAD), f"127.0.0.1:{port}"]
        subprocess.run(command, check=True, capture_output=True, env=postfix.env())
        source_sizes, handler.sizes = handler.sizes, []
        config = probe_config(setup, folder, port)
        copy_store(setup.base, folder / "mirror.db")
        write_subscribers(folder / "few.csv", PROBE_SUBSCRIBERS)
        checked(["-c", str(config), "subscribers", "import", str(folder / "few.csv")])
        checked(["-c", str(config), "digest", "send", "--json"])
        return sorted(handler.sizes), sorted(source_sizes)


def probe_config(setup: Setup, folder: Path, port: int) -> Path:
    """The timed config with its own store and the catcher's port."""
    text = setup.config.read_text().replace(str(setup.store), str(folder / "mirror.db"))
    url = f'smtp_url = "smtp+insecure://127.0.0.1:{port}"'
    text = re.sub(r"(?m)^smtp_url = .*$", url, text, count=1)
    path = folder / "mirror.toml"
    path.write_text(text)
    return path


def report_sizes(mirror: list[int], source: list[int], results: Results) -> None:
    if not mirror or not source:
        results.add(
            "message sizes (probe)", f"mirror {mirror}, smtp-source {source}", "caught", False
        )
        return
    results.add(
        f"digest message size as received ({len(mirror)} subscribers, lang any)",
        f"median {statistics.median(mirror) / KB:.1f} kB (min {mirror[0]}, max {mirror[-1]} bytes)",
    )
    results.add(
        f"smtp-source -l {SOURCE_PAYLOAD} message size as received",
        f"{statistics.median(source) / KB:.1f} kB ({source[0]} bytes)",
    )


# ---- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--subscribers", type=int, default=10_000, help="= smtp-source -m")
    add("--connections", type=int, default=4, help="digest.connections = smtp-source -s")
    add("--articles", type=int, default=10, help="articles in the edition (all in the digest)")
    add("--image-size", default="320x200", help="newsroom pictures (not in the digest)")
    add("--repeat", type=int, default=3, help="rounds; medians reported")
    add("--postfix-root", type=Path, default=None, help="folder of an extracted postfix .deb")
    add("--quick", action="store_true", help="smoke run: 1,000 subscribers, one round")
    args = parser.parse_args(argv)
    if args.quick:
        args.subscribers, args.repeat = 1000, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print_machine()
    postfix = find_postfix(args.postfix_root)
    print(f"Postfix test programs: {postfix.describe()}")
    results = Results()
    with (
        tempfile.TemporaryDirectory(prefix="digest-bench-") as tmp,
        smtp_sink(postfix, Path(tmp)) as sink,
    ):
        print(f"smtp-sink: {' '.join(sink.command)}")
        print(f"\n[setup, untimed] {args.articles} articles, {args.subscribers} subscribers")
        setup = set_up(Path(tmp), args, sink.port)
        rounds = [one_round(i, postfix, sink, setup, args) for i in range(args.repeat)]
        report_rounds(rounds, args, results)
        print("\n[message sizes, untimed probe: aiosmtpd on 127.0.0.1]")
        report_sizes(*probe_sizes(postfix, setup), results)
    return results.exit_status()


if __name__ == "__main__":
    note_launcher()
    sys.exit(main())
