"""How a stage reports progress: a small protocol the CLI implements (a bar on a TTY)."""

from __future__ import annotations

import logging
from typing import Protocol


def counted(count: int, noun: str) -> str:
    """A summary line's count with what it counts: `1 file`, `2 files`, `0 pointers`."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


class Progress(Protocol):
    """Receives a stage's progress; never prints by itself."""

    def add_total(self, count: int) -> None:
        """More work items became known."""

    def advance(self, count: int = 1) -> None:
        """Work items finished."""

    def stage_done(self, summary: str, *, level: int = logging.INFO) -> None:
        """A stage (fetch, build, one mirror's publish, ...) ended; `summary` says what it
        did, in one line; `level` how much it matters (logging's levels: WARNING when
        part of it failed, ERROR when it failed), so `-q` still says why a run exits 1."""


class NoProgress:
    """Progress that goes nowhere (tests, piped output)."""

    def add_total(self, count: int) -> None:
        pass

    def advance(self, count: int = 1) -> None:
        pass

    def stage_done(self, summary: str, *, level: int = logging.INFO) -> None:
        pass
