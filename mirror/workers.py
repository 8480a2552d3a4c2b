"""Worker processes for parsing origin content, holding no secrets.

Origin HTML, feeds and images are hostile input parsed by C libraries (libxml2,
Pillow). They run in processes started fresh (spawn, not fork: no copy of the
parent's memory) with an environment reduced to an allow-list, so a parser exploit
finds no keys, credentials or passwords there. Each worker then confines itself with
Landlock (`mirror.sandbox`) before it parses anything: it can read only the Python
installation, so neither the signing key nor the parent's `/proc/<pid>/environ` is
within its reach, though it runs as the same user. Where Landlock is unavailable the
pool warns as it starts and runs unconfined.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from mirror import sandbox
from mirror.errors import SandboxError

T = TypeVar("T")

SAFE_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")
_environ_lock = threading.Lock()
log = logging.getLogger("mirror.workers")
UNCONFINED_WARNING = (
    "parser workers run unconfined: this kernel has no Landlock (Linux 5.13 or later with "
    "landlock in lsm=), so a parser exploit could read any file this user can read"
)


@contextlib.contextmanager
def _scrubbed_environ() -> Iterator[None]:
    """Swap os.environ for the safe subset while child processes are started."""
    with _environ_lock:
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(safe_environment_of(saved))
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)


def safe_environment_of(environ: dict[str, str]) -> dict[str, str]:
    """The part of an environment a worker may see."""
    return {key: value for key, value in environ.items() if key in SAFE_ENV}


class _Confinement:
    """What the worker's initializer achieved: the Landlock ABI in force, or its failure."""

    abi = 0
    error = ""


def _start_worker(read_only: tuple[str, ...]) -> None:
    """Worker initializer: no Ctrl-C, drop any variable that slipped through, then
    confine. A terminal's Ctrl-C reaches the whole process group; the parent stops the
    run and terminates its workers, so a worker ignoring it prints no traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    for key in list(os.environ):
        if key not in SAFE_ENV:
            del os.environ[key]
    try:
        _Confinement.abi = sandbox.confine_worker(read_only)
    except SandboxError as exc:
        _Confinement.error = str(exc)  # every task then refuses to run (see _confined)


def _confined(function: Callable[..., T], *args: Any) -> T:
    """Run one task, unless this worker failed to confine itself."""
    if _Confinement.error:
        raise SandboxError(f"parser worker not confined: {_Confinement.error}")
    return function(*args)


@contextlib.contextmanager
def _interrupts_blocked() -> Iterator[None]:
    """SIGINT held back from this thread while it starts workers: they inherit the mask,
    so a Ctrl-C while one starts up waits until it ignores SIGINT (`_start_worker`)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _stop_now(executor: ProcessPoolExecutor) -> None:
    """Terminate the workers without waiting for their work (an interrupted run)."""
    processes = list(executor._processes.values())  # no public way before Python 3.14
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


# multiprocessing's resource tracker, a process of its own started with this process's -W
# options: an interrupted run's terminated workers leave it semaphores to free, which it
# does, warning on its stderr past our log format; the warning says nothing ops can act on.
QUIET_TRACKER = "ignore:resource_tracker:UserWarning"


def _quiet_resource_tracker() -> None:
    if QUIET_TRACKER not in sys.warnoptions:
        sys.warnoptions.append(QUIET_TRACKER)


def _warm_up() -> int:
    if _Confinement.error:
        raise SandboxError(f"parser worker not confined: {_Confinement.error}")
    return _Confinement.abi


class ParserPool:
    """A pool of secret-free worker processes, started eagerly; `async with` it."""

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 2
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> ParserPool:
        _quiet_resource_tracker()
        context = multiprocessing.get_context("spawn")
        executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(sandbox.worker_read_roots(),),
        )
        try:
            with _scrubbed_environ():
                # Every worker is started now, while the environment is scrubbed.
                with _interrupts_blocked():
                    futures = [executor.submit(_warm_up) for _ in range(self.workers)]
                confined = [future.result() for future in futures]
        except BaseException:
            _stop_now(executor)
            raise
        if not all(confined):
            log.warning("%s", UNCONFINED_WARNING)
        self._executor = executor
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: object, traceback: object
    ) -> None:
        """Wait for the workers to finish; interrupted or cancelled, terminate them."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if exc_type is not None and not issubclass(exc_type, Exception):
            _stop_now(executor)
        else:
            executor.shutdown(wait=True, cancel_futures=True)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run a picklable function in a worker without blocking the event loop."""
        if self._executor is None:
            raise RuntimeError("the parser pool is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _confined, function, *args)
