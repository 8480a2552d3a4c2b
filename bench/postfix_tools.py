"""Postfix's `smtp-sink` and `smtp-source` test programs, found or fetched without
installing Postfix (no package install, no mail service started).

Looked for on PATH (plus /usr/sbin), then under a folder holding an extracted
`postfix` .deb (`ROOT/usr/sbin/smtp-sink`); if missing there, fetched into that folder
with `apt-get download postfix` and `dpkg -x`. Binaries from an extracted package need
`LD_LIBRARY_PATH=ROOT/usr/lib/postfix` (its shared libraries), which `Postfix.env` sets.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchkit import free_port, process_cpu, stop, wait_listening

SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin")
COUNTER = re.compile(rb"mesg=(\d+)")


def default_root() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "mirror-bench" / "postfix"


@dataclass(frozen=True)
class Postfix:
    sink: Path
    source: Path
    library_dir: Path | None  # set when taken from an extracted package
    origin: str

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.library_dir is not None:
            before = env.get("LD_LIBRARY_PATH", "")
            env["LD_LIBRARY_PATH"] = (
                f"{self.library_dir}:{before}" if before else str(self.library_dir)
            )
        return env

    def describe(self) -> str:
        libraries = f", LD_LIBRARY_PATH={self.library_dir}" if self.library_dir else ""
        return f"smtp-sink {self.sink}, smtp-source {self.source} ({self.origin}{libraries})"


def on_path() -> Postfix | None:
    search = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
    sink, source = shutil.which("smtp-sink", path=search), shutil.which("smtp-source", path=search)
    if sink and source:
        return Postfix(Path(sink), Path(source), None, "found on PATH")
    return None


def in_root(root: Path) -> Postfix | None:
    sink, source = root / "usr/sbin/smtp-sink", root / "usr/sbin/smtp-source"
    if sink.is_file() and source.is_file():
        return Postfix(sink, source, root / "usr/lib/postfix", f"extracted package under {root}")
    return None


def extract_package(root: Path) -> None:
    """`apt-get download postfix` into a temporary folder, then `dpkg -x` into `root`."""
    print(f"    fetching Postfix's test programs: apt-get download postfix; dpkg -x into {root}")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="postfix-deb-") as tmp:
        subprocess.run(["apt-get", "download", "postfix"], cwd=tmp, check=True)
        debs = sorted(Path(tmp).glob("postfix_*.deb"))
        if not debs:
            raise RuntimeError("apt-get download postfix left no postfix_*.deb")
        subprocess.run(["dpkg", "-x", str(debs[-1]), str(root)], check=True)


def find_postfix(root: Path | None = None) -> Postfix:
    """smtp-sink and smtp-source: on PATH, else under `root`, else fetched into it."""
    found = on_path()
    if found is not None:
        return found
    folder = root or default_root()
    found = in_root(folder)
    if found is None:
        extract_package(folder)
        found = in_root(folder)
    if found is None:
        raise RuntimeError(f"no smtp-sink and smtp-source under {folder}")
    return found


# ---- the sink process


@dataclass
class Sink:
    """A running `smtp-sink -c`: its counters go to a file, read back for the count."""

    process: subprocess.Popen[bytes]
    port: int
    counters: Path
    command: list[str]

    def count(self) -> int:
        """Messages received so far (its last `mesg=` counter)."""
        found = COUNTER.findall(self.counters.read_bytes()[-200:])
        return int(found[-1]) if found else 0

    def settled_count(self, expected: int, timeout_s: float = 5.0) -> int:
        """The count once it reaches `expected` or stops moving."""
        deadline = time.monotonic() + timeout_s
        count = self.count()
        while count < expected and time.monotonic() < deadline:
            time.sleep(0.1)
            count = self.count()
        return count

    def cpu_s(self) -> float:
        """User + system seconds the sink has used."""
        return process_cpu(self.process.pid)


@contextmanager
def smtp_sink(postfix: Postfix, folder: Path, backlog: int = 1000) -> Iterator[Sink]:
    """`smtp-sink -c [-u nobody] 127.0.0.1:PORT BACKLOG` in its own process."""
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []  # required when started as root
    command = [str(postfix.sink), "-c", *user, f"127.0.0.1:{port}", str(backlog)]
    counters = folder / "smtp-sink.out"
    with counters.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=postfix.env())
    try:
        wait_listening(port, process, "smtp-sink")
        yield Sink(process, port, counters, command)
    finally:
        stop(process)
