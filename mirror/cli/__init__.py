"""The `mirror` command: the only place that prints and picks exit codes.

Exit status: 0 all done; 1 some items, mirrors or recipients failed, the rest done;
2 bad usage, bad config, or another run holds the store; 3 verification failed;
130 stopped by SIGINT (Ctrl-C), 143 by SIGTERM. A closed stdout (`| head`) changes no
status: the rest of the output is dropped quietly (`write_out`).
Human output and progress go to stderr; `--json` documents go to stdout.

One module per command group (`stages`, `keys`, `mirrors`, `reach`, `subscribers`,
`digest`, `mailin`, `doctor`, `demo`); this one holds what they share: the parser, signals,
logging, the clock, `--json` output, the progress bar and the config.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NoReturn, TypeVar

from tqdm import tqdm

from mirror import __version__, sandbox
from mirror.config import Config, find_config, load_config
from mirror.errors import (
    ConfigError,
    MirrorError,
    SandboxError,
    SigningError,
    StoreError,
    UsageError,
    VerifyError,
)
from mirror.logs import JsonLineFormatter, OneLineFormatter

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_VERIFY = 0, 1, 2, 3
EXIT_SIGNALLED = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal's number
STOP_GRACE_S = 1.5  # after a first signal, the longest the run may take to stop cleanly
log = logging.getLogger("mirror")
T = TypeVar("T")


class Interrupts:
    """SIGINT and SIGTERM for the `mirror` command. The first stops the run at once
    (locks released, bars closed, mirror calls in flight abandoned, workers terminated)
    and forces the exit STOP_GRACE_S later should stopping hang; a second exits at once.
    Nothing is lost: writes are atomic, the publishing order keeps every mirror
    verifying, and the kernel frees the run lock.

    While an event loop runs (`run_async`), the stop cancels its main task, so every
    task unwinds through its own `finally` and nothing raises inside another task, a
    worker or the pool's threads; otherwise it raises KeyboardInterrupt where the main
    thread is."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._main: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None

    def attach(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        """`task` is the run's main task on `loop`: a stop cancels it."""
        self._main = (loop, task)
        if self.received is not None:  # a signal came while the loop started
            task.cancel()

    def detach(self) -> None:
        self._main = None

    def install(self) -> None:
        for number in EXIT_SIGNALLED:
            signal.signal(number, self._stop)

    def exit_status(self) -> int:
        """130 or 143; 130 for a KeyboardInterrupt not raised by these handlers."""
        return EXIT_SIGNALLED.get(signal.Signals(self.received or signal.SIGINT), 130)

    def finishing(self) -> None:
        """The run is over, only its exit is left: a signal now exits at once."""
        for number in EXIT_SIGNALLED:
            signal.signal(number, self._exit_at_once)

    def _exit_at_once(self, number: int, frame: object) -> None:
        status = self.exit_status() if self.received else EXIT_SIGNALLED[signal.Signals(number)]
        hard_exit(status, "interrupted while exiting: exiting at once")

    def _stop(self, number: int, frame: object) -> None:
        if self.received is not None:
            hard_exit(self.exit_status(), "second interrupt: exiting at once")
        self.received = number
        why = f"still stopping after {STOP_GRACE_S:g} s: exiting now"
        timer = threading.Timer(STOP_GRACE_S, hard_exit, (self.exit_status(), why))
        timer.daemon = True
        timer.start()
        if self._main is None:
            raise KeyboardInterrupt
        loop, task = self._main
        loop.call_soon_threadsafe(task.cancel)  # wakes the loop from its wait


INTERRUPTS = Interrupts()


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coroutine)`, stopped by SIGINT/SIGTERM through the cancellation of
    its main task (`Interrupts`); an interrupted run raises KeyboardInterrupt here,
    outside the loop, as `run` expects."""

    async def main() -> T:
        task = asyncio.current_task()
        assert task is not None
        INTERRUPTS.attach(asyncio.get_running_loop(), task)
        try:
            return await coroutine
        finally:
            INTERRUPTS.detach()

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        if INTERRUPTS.received is None:
            raise
        raise KeyboardInterrupt from None


def hard_exit(status: int, why: str) -> NoReturn:
    """Exit now: worker processes terminated, no thread waited for (the kernel releases
    the run lock with the process). `why` is logged as any line is (one line, or JSON
    with --log-json), written straight to stderr (no lock a stopped thread may hold)."""
    with contextlib.suppress(Exception):
        os.write(2, (formatted_line(logging.ERROR, why) + "\n").encode())
    if "multiprocessing" in sys.modules:
        for child in sys.modules["multiprocessing"].active_children():
            with contextlib.suppress(Exception):
                child.terminate()
    os._exit(status)


def main(argv: list[str] | None = None) -> NoReturn:
    """The `mirror` command: `run`, with signals handled (see `Interrupts`)."""
    INTERRUPTS.install()
    try:
        status = run(argv)
    except KeyboardInterrupt:  # a signal that came after `run` had caught its own
        status = INTERRUPTS.exit_status()
    finally:
        INTERRUPTS.finishing()
    leave(status)


def leave(status: int) -> NoReturn:
    """Exit with `status`. A thread still blocked in a mirror's call (abandoned at its
    timeout, deadline or an interrupt) is not waited for, as Python would at exit."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        logging.shutdown()
        os._exit(status)
    sys.exit(status)


def run(argv: list[str] | None = None) -> int:
    """Parse the command line, run one command, return its exit status."""
    # Before any secret is read: no process of this user may read our memory or
    # /proc/<pid>/environ (parser workers, confined apart, are kept out even as root).
    sandbox.make_non_dumpable()
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose - args.quiet, json_lines=args.log_json)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except VerifyError as exc:
        log.error("verification failed: %s", exc)
        return EXIT_VERIFY
    except MirrorError as exc:
        log.error("%s", exc)
        return exit_status_of(exc)
    except KeyboardInterrupt:
        status = INTERRUPTS.exit_status()
        log.error("interrupted (%s): stopped", "SIGTERM" if status == 143 else "SIGINT")
        return status


def exit_status_of(exc: BaseException) -> int:
    """The exit status a command ends with when `exc` stops it (see `run`)."""
    if isinstance(exc, ConfigError | UsageError | StoreError | SigningError | SandboxError):
        return EXIT_USAGE
    if isinstance(exc, VerifyError):
        return EXIT_VERIFY
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTS.exit_status()
    return EXIT_PARTIAL


def build_parser() -> argparse.ArgumentParser:
    from mirror.cli import (
        demo,
        digest,
        doctor,
        keys,
        mailin,
        mirrors,
        reach,
        stages,
        subscribers,
    )

    parser = argparse.ArgumentParser(
        prog="mirror",
        description="Keep a blocked news outlet readable: fetch its articles, build a "
        "signed static edition, publish it to mirrors, mail digests.",
        epilog="Exit status: 0 done; 1 partly failed (see the report); 2 bad usage or "
        "config, or another run holds the store; 3 verification failed; 130 stopped by "
        "SIGINT (Ctrl-C), 143 by SIGTERM. `mail-in --stdin` answers Postfix in sysexits, "
        "0 or 75 only: 0 taken, 75 (EX_TEMPFAIL) the MTA keeps the message and tries again "
        "(a config error too: 78, EX_CONFIG, would make Postfix bounce it).",
    )
    parser.add_argument("--version", action="version", version=f"mirror {__version__}")
    add_common(parser)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    stages.add_fetch(commands)
    stages.add_build(commands)
    stages.add_publish(commands)
    stages.add_sync(commands)
    stages.add_status(commands)
    mirrors.add_mirrors(commands)
    reach.add_reach(commands)
    stages.add_verify(commands)
    keys.add_keygen(commands)
    keys.add_keys(commands)
    stages.add_articles(commands)
    subscribers.add_subscribers(commands)
    digest.add_digest(commands)
    digest.add_serve_unsubscribe(commands)
    mailin.add_mail_in(commands)
    stages.add_backup(commands)
    doctor.add_doctor(commands)
    demo.add_demo(commands)
    return parser


def add_common(parser: argparse.ArgumentParser, *, sub: bool = False) -> None:
    """-c/-v/-q, accepted before or after the command."""
    default = argparse.SUPPRESS if sub else None
    parser.add_argument(
        "-c",
        "--config",
        default=default,
        help="config file (default: $MIRROR_CONFIG, then ./mirror.toml)",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS if sub else 0,
        help="more detail on stderr (repeat for debug)",
    )  # fmt: skip
    parser.add_argument(
        "-q", "--quiet", action="count", default=argparse.SUPPRESS if sub else 0,
        help="only warnings and errors on stderr",
    )  # fmt: skip
    parser.add_argument(
        "--log-json", action="store_true", default=argparse.SUPPRESS if sub else False,
        help="log one JSON object per line on stderr (ts, level, logger, msg, exc), "
        "for journald/Loki",
    )  # fmt: skip


def subcommand(
    commands: Any, name: str, handler: Callable[[argparse.Namespace], int], help_text: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text
    )
    add_common(parser, sub=True)
    parser.set_defaults(handler=handler)
    return parser


def configure_logging(level: int, *, json_lines: bool = False) -> None:
    """Human output on stderr, one line per event (mirror.logs): -q warnings and errors,
    default info, -v detail, -vv debug; `json_lines`: one JSON object per line instead.
    What other code prints goes the same way: the root logger (asyncio's "Task exception
    was never retrieved"), warnings, and exceptions no one caught, in any thread."""
    levels = {-1: logging.WARNING, 0: logging.INFO, 1: logging.INFO, 2: logging.DEBUG}
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter() if json_lines else OneLineFormatter())
    mirror_log = logging.getLogger("mirror")
    mirror_log.handlers[:] = [handler]
    mirror_log.setLevel(levels[max(-1, min(2, level))])
    mirror_log.propagate = False
    # mirror.detail.STAGE (one line per feed, article, page, upload, recipient): -v its
    # info, -vv its debug too (NOTSET: as `mirror`); hidden by default.
    logging.getLogger("mirror.detail").setLevel(logging.NOTSET if level >= 1 else logging.WARNING)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def formatted_line(level: int, message: str) -> str:
    """`message` as the `mirror` logger's handler would write it (one line, or JSON)."""
    handlers = log.handlers or [logging.StreamHandler(sys.stderr)]
    formatter = handlers[0].formatter or OneLineFormatter()
    return formatter.format(log.makeRecord(log.name, level, "", 0, message, (), None))


def _log_uncaught(
    kind: type[BaseException], exc: BaseException, trace: TracebackType | None
) -> None:
    log.error("uncaught %s: %s", kind.__name__, exc, exc_info=(kind, exc, trace))


def _log_uncaught_in_thread(hook: threading.ExceptHookArgs) -> None:
    """A thread's uncaught exception, on one line. After an interrupt it is the stop's
    doing (e.g. the parser pool's thread finding its workers terminated): debug only."""
    if hook.exc_type is SystemExit:
        return
    level = logging.DEBUG if INTERRUPTS.received is not None else logging.ERROR
    name = hook.thread.name if hook.thread is not None else "a thread"
    exc_info = (hook.exc_type, hook.exc_value or hook.exc_type(), hook.exc_traceback)
    log.log(level, "uncaught in %s: %s: %s", name, hook.exc_type.__name__, hook.exc_value,
            exc_info=exc_info)  # fmt: skip


def utc_now() -> datetime:
    """The one clock every command reads."""
    return datetime.now(UTC)


def emit_json(document: dict[str, Any]) -> None:
    write_out(json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n")


def write_out(text: str) -> None:
    """`text` on stdout, flushed. A reader that closed the pipe (`| head`) is no failure
    of the run: the rest of the output goes to /dev/null, quietly (no BrokenPipeError
    traceback, at exit neither), and the command exits with the status it would have."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        divert_stdout()


def divert_stdout() -> None:
    """Point stdout's descriptor at /dev/null (Python's recipe for a closed pipe), so
    what is still buffered is dropped instead of failing again at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    log.debug("stdout was closed by its reader: the rest of the output is dropped")


class BarProgress:
    """A progress bar on stderr when it is a terminal; silent when piped or quiet. The
    bar appears with the first work item (never an empty `0item` bar) and a stage's
    summary closes it before the summary is logged; the next stage starts a new one."""

    def __init__(self, label: str, *, quiet: bool) -> None:
        self._label = label
        self._enabled = sys.stderr.isatty() and not quiet
        self._bar: tqdm[Any] | None = None

    def add_total(self, count: int) -> None:
        if not self._enabled or count <= 0:
            return
        if self._bar is None:
            self._bar = tqdm(total=count, desc=self._label, unit="item", file=sys.stderr)
        else:
            self._bar.total = (self._bar.total or 0) + count
            self._bar.refresh()

    def advance(self, count: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def stage_done(self, summary: str, *, level: int = logging.INFO) -> None:
        self.close()
        log.log(level, "%s", summary)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@contextmanager
def progress_bar(label: str, args: argparse.Namespace) -> Iterator[BarProgress]:
    bar = BarProgress(label, quiet=args.quiet > 0 or getattr(args, "json", False))
    try:
        yield bar
    finally:
        bar.close()


def config_from(args: argparse.Namespace) -> Config:
    return load_config(find_config(args.config))
