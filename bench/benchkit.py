"""What the benchmarks share; each bench imports its helpers from here, never from
another bench.

- results: every figure printed with its target and PASS/FAIL, and the exit status;
- the machine: CPU model, cores, Python, load average;
- processes: CPU seconds from /proc and RUSAGE_CHILDREN, free ports, helper processes
  (bench/counted_newsroom.py, bench/latency_proxy.py) that print `... listening on URL`;
- the helper servers' side: starting an aiohttp app, saying where it listens, serving
  until SIGINT or SIGTERM;
- mirror's CLI run as a subprocess, timed: fetch, keygen, build, and the config they share;
- moto's S3 server as its own process on 127.0.0.1;
- resident memory of a process tree, read from /proc (Linux only);
- the extraction benchmark's pages (/work/shared/extraction-benchmark, read in place) and
  the plain text of an HTML element, blocks on lines of their own.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import gzip
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lxml.etree
import lxml.html
from aiohttp import web

from mirror.newsroom import config_for

HERE = Path(__file__).resolve().parent
MB = 1_000_000
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
FETCH_CONCURRENCY = 32
STOP_TIMEOUT_S = 10.0
MOTO_REGION = "us-east-1"
MOTO_START_TIMEOUT_S = 30.0
MOTO_START_ATTEMPTS = 3  # another process may take the free port before moto binds it


# ---- results


@dataclass(frozen=True)
class Figure:
    """One measured figure, with its target when it has one."""

    name: str
    value: str
    target: str
    ok: bool | None  # None: informative only

    def line(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "info"}[self.ok]
        target = f"  (target {self.target})" if self.target else ""
        return f"  {verdict:<4}  {self.name}: {self.value}{target}"


@dataclass
class Results:
    """The figures of a run, each printed as it is added."""

    figures: list[Figure] = field(default_factory=list)

    def add(self, name: str, value: str, target: str = "", ok: bool | None = None) -> None:
        figure = Figure(name, value, target, ok)
        self.figures.append(figure)
        print(figure.line(), flush=True)

    @property
    def failed(self) -> list[Figure]:
        return [f for f in self.figures if f.ok is False]

    def exit_status(self) -> int:
        """Print how many targets were missed; 1 if any was, else 0."""
        failed = self.failed
        print(f"\n{len(failed)} target(s) missed" if failed else "\nevery target met")
        return 1 if failed else 0


# ---- the machine


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_machine() -> None:
    """Print the CPU, the cores, Python and the platform."""
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores (os.cpu_count)")
    print(f"Python {platform.python_version()}, {platform.platform()}")


def print_load(when: str) -> None:
    """The 1-minute load average: wall times mean little when other work shares the cores."""
    load = os.getloadavg()[0]
    note = "" if load < 0.5 else " (something else is running: wall times will suffer)"
    print(f"    load average {load:.2f} {when}{note}")


# ---- processes


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_cpu() -> float:
    """User + system CPU seconds of every child process reaped so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Run:
    """One client subprocess: wall and CPU time (itself and its children), exit, output."""

    wall_s: float
    cpu_s: float
    status: int
    stdout: str
    stderr: str

    def report(self) -> dict[str, Any]:
        """Its stdout as JSON; RuntimeError with its stderr when it is not JSON."""
        try:
            result: dict[str, Any] = json.loads(self.stdout)
        except json.JSONDecodeError:
            raise RuntimeError(f"mirror exited {self.status}: {self.stderr[-2000:]}") from None
        return result


def run_timed(command: list[str], env: dict[str, str] | None = None) -> Run:
    """`command` in a subprocess, timed from start to exit; CPU from RUSAGE_CHILDREN."""
    cpu_before = children_cpu()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    return Run(wall, children_cpu() - cpu_before, done.returncode, done.stdout, done.stderr)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_listening(
    port: int, process: subprocess.Popen[Any], name: str, timeout_s: float = 10
) -> None:
    """Return once 127.0.0.1:port accepts; RuntimeError if `process` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} is not listening on 127.0.0.1:{port}")


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT_S."""
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def listening_url(process: subprocess.Popen[str]) -> str:
    """The URL of the next `NAME listening on URL` line a helper process prints."""
    assert process.stdout is not None
    line = process.stdout.readline()
    if " listening on " not in line:
        raise RuntimeError(f"the helper did not start (said {line!r})")
    return line.rsplit(" ", 1)[1].strip()


@contextmanager
def helper(script: str, *args: str) -> Iterator[tuple[str, str, int]]:
    """bench/SCRIPT in its own process: the URL it serves, its stats URL, its pid."""
    command = [sys.executable, str(HERE / script), *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        url, stats_url = (listening_url(process) for _ in range(2))
        yield url, stats_url, process.pid
    finally:
        stop(process)


# ---- the helper servers' side (inside counted_newsroom.py and latency_proxy.py)


async def start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve `app` on host:port (0: any free port); the runner and the port bound."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, host, port, shutdown_timeout=0.5, backlog=1024).start()
    return runner, int(runner.addresses[0][1])


async def until_signalled() -> None:
    """Return once SIGINT or SIGTERM arrives."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def announce_and_serve(lines: list[str], runners: list[web.AppRunner]) -> None:
    """Print `lines` (`NAME listening on URL`: benchkit.helper reads them), serve until
    signalled, then clean the runners up, last started first."""
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    sys.stdout.flush()
    try:
        await until_signalled()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


# ---- the counted newsroom (bench/counted_newsroom.py)


@dataclass(frozen=True)
class CountedNewsroom:
    base_url: str
    stats_url: str

    def stats(self) -> dict[str, Any]:
        """What the newsroom was asked since the last reset."""
        with urllib.request.urlopen(self.stats_url + "stats", timeout=10) as answer:
            result: dict[str, Any] = json.load(answer)
            return result

    def reset(self) -> None:
        post(self.stats_url + "reset", timeout_s=10)

    def add_article(self) -> dict[str, Any]:
        """The newsroom publishes one new article (it tops the feed): its id and path."""
        request = urllib.request.Request(self.stats_url + "add-article", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            result: dict[str, Any] = json.load(answer)
            return result


def post(url: str, timeout_s: float = 60) -> None:
    """An empty POST to `url`, its answer ignored."""
    request = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=timeout_s):
        pass


@contextmanager
def newsroom(
    articles: int, *, latency_ms: float | None = None, image_size: str | None = None
) -> Iterator[CountedNewsroom]:
    """A counted sample newsroom in its own process, every article in its feeds."""
    args = ["--port", "0", "--articles", str(articles), "--feed-items", "0"]
    if latency_ms is not None:
        args += ["--latency-ms", str(latency_ms)]
    if image_size is not None:
        args += ["--image-size", image_size]
    with helper("counted_newsroom.py", *args) as (url, stats_url, _):
        yield CountedNewsroom(base_url=url, stats_url=stats_url)


# ---- mirror's CLI


def mirror_launcher() -> list[str]:
    """The venv's `mirror` script, else `python -m mirror`."""
    script = Path(sys.executable).parent / "mirror"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mirror"]


def note_launcher() -> None:
    """Say on stderr when mirror runs as `python -m mirror` (no script installed)."""
    if shutil.which("mirror") is None and not (Path(sys.executable).parent / "mirror").exists():
        print("note: no `mirror` script; running `python -m mirror`", file=sys.stderr)


def run_mirror(args: list[str], env: dict[str, str] | None = None) -> Run:
    """`mirror ARGS` in a subprocess, timed from start to exit."""
    return run_timed([*mirror_launcher(), *args], env)


def write_config(folder: Path, base_url: str, articles: int) -> Path:
    """`config_for`'s config, taking every feed item, with the fetch bench's concurrency."""
    extra = (
        f"max_feed_items = {max(articles + 10, 1)}\nmax_feed_bytes = 100_000_000\n"
        f"concurrency = {FETCH_CONCURRENCY}\nper_host_concurrency = {FETCH_CONCURRENCY}\n"
        "timeout_s = 120\n"
    )
    text = config_for(base_url, folder).replace("[source]\n", "[source]\n" + extra, 1)
    path = folder / "mirror.toml"
    path.write_text(text)
    return path


def fetch(config: Path) -> dict[str, Any]:
    """`mirror -c CONFIG fetch --json`, its one-line summary printed: its report."""
    run = run_mirror(["-c", str(config), "fetch", "--json"])
    report = run.report()
    print(
        f"    fetch: {run.wall_s:.1f} s, exit {run.status}: {report['new']} new, "
        f"{report['images']} images, {len(report['failed'])} failed"
    )
    return report


def keygen(config: Path) -> None:
    """`mirror -c CONFIG keygen`; RuntimeError if it fails."""
    run = run_mirror(["-c", str(config), "keygen"])
    if run.status != 0:
        raise RuntimeError(f"mirror keygen exited {run.status}: {run.stderr[-2000:]}")


def build_run(config: Path) -> tuple[Run, dict[str, Any]]:
    """`mirror -c CONFIG build --json`: the run and its report."""
    run = run_mirror(["-c", str(config), "build", "--json"])
    report = run.report()
    if run.status != 0:
        print(f"    build exited {run.status}: {run.stderr[-1000:]}")
    return run, report


# ---- moto's S3 server


def moto_command() -> str:
    """The moto_server executable of this venv (else the one on PATH)."""
    beside = Path(sys.executable).with_name("moto_server")
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if not found:
        raise RuntimeError("moto_server is not installed (pip install 'moto[server]')")
    return found


def start_moto(log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A moto server accepting on 127.0.0.1 and its endpoint URL; its output goes to the log."""
    for _ in range(MOTO_START_ATTEMPTS):
        port = free_port()
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [moto_command(), "-H", "127.0.0.1", "-p", str(port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        try:
            wait_listening(port, process, "moto_server", MOTO_START_TIMEOUT_S)
        except RuntimeError:
            stop(process)
            continue
        return process, f"http://127.0.0.1:{port}"
    raise RuntimeError(f"moto_server did not start; see {log_path}")


@contextmanager
def moto_server(log_path: Path) -> Iterator[tuple[str, int]]:
    """moto's S3 server in its own process: its endpoint URL and its pid."""
    process, url = start_moto(log_path)
    try:
        yield url, process.pid
    finally:
        stop(process)


# ---- memory


def rss_bytes(pid: int) -> int:
    """Resident set size of one process; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    return int(fields[1]) * PAGE_BYTES


def children_of(pid: int) -> list[int]:
    """Direct children of `pid`, from every thread's children list."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return found
    for task in tasks:
        try:
            found += [int(n) for n in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def descendants_of(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, ...)."""
    out: list[int] = []
    queue = children_of(pid)
    while queue:
        child = queue.pop()
        out.append(child)
        queue += children_of(child)
    return out


@dataclass
class Peak:
    """The highest resident memory seen, in bytes."""

    main_bytes: int = 0
    tree_bytes: int = 0  # main process plus every descendant, summed at one instant
    descendants_bytes: int = 0  # every descendant without the main process (a worker pool)
    most_processes: int = 0
    samples: int = 0


class TreeSampler:
    """Polls the RSS of a process and its descendants in a thread; keeps the peaks."""

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak = Peak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def sample(self) -> None:
        main = rss_bytes(self.pid)
        others = descendants_of(self.pid)
        tree = main + sum(rss_bytes(pid) for pid in others)
        peak = self.peak
        peak.main_bytes = max(peak.main_bytes, main)
        peak.tree_bytes = max(peak.tree_bytes, tree)
        peak.descendants_bytes = max(peak.descendants_bytes, tree - main)
        peak.most_processes = max(peak.most_processes, 1 + len(others))
        peak.samples += 1


# ---- the extraction benchmark's pages (bench/extract_bench.py)

EXTRACTION_SET = Path("/work/shared/extraction-benchmark")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
CHARSET_SNIFF_BYTES = 16_384
# fmt: off
BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav",
    "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
})
# fmt: on


@dataclass(frozen=True)
class BenchmarkPage:
    """One page of the set: its id (sha256), bytes, declared charset and hand-checked body."""

    page_id: str
    url: str
    body: bytes
    charset: str  # the one the page declares, else "utf-8"
    expected: str


def declared_charset(body: bytes) -> str:
    """The charset a page's `<meta>` declares (in its first 16 kB), else "utf-8"."""
    found = _META_CHARSET.search(body[:CHARSET_SNIFF_BYTES])
    if found:
        name = found[1].decode("ascii").lower()
        with contextlib.suppress(LookupError):
            codecs.lookup(name)
            return name
    return "utf-8"


def benchmark_pages(folder: Path = EXTRACTION_SET, limit: int | None = None) -> list[BenchmarkPage]:
    """The set's pages in id order (the first `limit` of them); read in place, never copied."""
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for page_id in sorted(truth)[:limit]:
        body = gzip.decompress((folder / "html" / f"{page_id}.html.gz").read_bytes())
        entry = truth[page_id]
        pages.append(
            BenchmarkPage(page_id, entry["url"], body, declared_charset(body), entry["articleBody"])
        )
    return pages


def element_text(element: lxml.html.HtmlElement) -> str:
    """The text of an element as a reader sees it: each block element on its own line."""
    parts: list[str] = []
    for event, node in lxml.etree.iterwalk(element, events=("start", "end")):
        if not isinstance(node.tag, str):
            continue  # comments, processing instructions
        block = node.tag in BLOCK_TAGS
        if event == "start":
            parts.append("\n" if block else "")
            parts.append(node.text or "")
        else:
            parts.append("\n" if block else "")
            if node is not element:
                parts.append(node.tail or "")
    return re.sub(r"\n\s*\n+", "\n", "".join(parts)).strip()
