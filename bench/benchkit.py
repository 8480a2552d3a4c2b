"""Resident memory of a process tree, read from /proc (Linux only)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


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
    main_bytes: int = 0
    tree_bytes: int = 0  # main process plus every descendant, summed at one instant
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
        peak.most_processes = max(peak.most_processes, 1 + len(others))
        peak.samples += 1
