"""The `mirror` command: the only place that prints and picks exit codes.

Exit status: 0 all done; 1 some items, mirrors or recipients failed, the rest done;
2 bad usage, bad config, or another run holds the store; 3 verification failed.
Human output and progress go to stderr; `--json` documents go to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from tqdm import tqdm

from mirror import __version__
from mirror.config import Config, find_config, load_config
from mirror.errors import ConfigError, MirrorError, StoreError, UsageError
from mirror.store import RunLock, Store

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_VERIFY = 0, 1, 2, 3
log = logging.getLogger("mirror")


def main(argv: list[str] | None = None) -> NoReturn:
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """Parse the command line, run one command, return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose - args.quiet)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (ConfigError, UsageError, StoreError) as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except MirrorError as exc:
        log.error("%s", exc)
        return EXIT_PARTIAL
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mirror",
        description="Keep a blocked news outlet readable: fetch its articles, build a "
        "signed static edition, publish it to mirrors, mail digests.",
        epilog="Exit status: 0 done; 1 partly failed (see the report); 2 bad usage or "
        "config, or another run holds the store; 3 verification failed.",
    )
    parser.add_argument("--version", action="version", version=f"mirror {__version__}")
    add_common(parser)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add_fetch(commands)
    add_backup(commands)
    add_demo(commands)
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
        help="only errors on stderr",
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


def configure_logging(level: int) -> None:
    """Human output on stderr: -q errors only, default info, -v detail, -vv debug."""
    levels = {-1: logging.ERROR, 0: logging.INFO, 1: logging.INFO, 2: logging.DEBUG}
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("mirror: %(message)s"))
    root = logging.getLogger("mirror")
    root.handlers[:] = [handler]
    root.setLevel(levels[max(-1, min(2, level))])
    root.propagate = False
    logging.getLogger("mirror.detail").setLevel(logging.INFO if level >= 1 else logging.WARNING)


def utc_now() -> datetime:
    """The one clock every command reads."""
    return datetime.now(UTC)


def emit_json(document: dict[str, Any]) -> None:
    json.dump(document, sys.stdout, ensure_ascii=False, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    sys.stdout.flush()


class BarProgress:
    """A progress bar on stderr when it is a terminal; silent when piped or quiet."""

    def __init__(self, label: str, *, quiet: bool) -> None:
        enabled = sys.stderr.isatty() and not quiet
        self._bar = tqdm(total=0, desc=label, unit="item", file=sys.stderr, disable=not enabled)

    def add_total(self, count: int) -> None:
        self._bar.total = (self._bar.total or 0) + count
        self._bar.refresh()

    def advance(self, count: int = 1) -> None:
        self._bar.update(count)

    def close(self) -> None:
        self._bar.close()


@contextmanager
def progress_bar(label: str, args: argparse.Namespace) -> Iterator[BarProgress]:
    bar = BarProgress(label, quiet=args.quiet > 0 or getattr(args, "json", False))
    try:
        yield bar
    finally:
        bar.close()


def config_from(args: argparse.Namespace) -> Config:
    return load_config(find_config(args.config))


# fetch


def add_fetch(commands: Any) -> None:
    parser = subcommand(commands, "fetch", cmd_fetch, "fetch new and changed articles")
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")


def cmd_fetch(args: argparse.Namespace) -> int:
    config = config_from(args)
    with RunLock(config.state.path), Store(config.state.path) as store:
        return run_fetch(config, store, args)


def run_fetch(config: Config, store: Store, args: argparse.Namespace) -> int:
    from mirror.fetch import fetch_articles

    started = utc_now()
    run_id = store.start_run("fetch", started)
    with progress_bar("fetch", args) as bar:
        report = asyncio.run(fetch_articles(config, store, now=started, progress=bar))
    status = EXIT_PARTIAL if report.failed else EXIT_OK
    store.finish_run(run_id, status, report.to_json(), utc_now())
    if args.json:
        emit_json(report.to_json())
    for failure in report.failed:
        log.warning("failed: %s: %s", failure.url, failure.reason)
    log.info("%s", report.summary())
    return status


# backup


def add_backup(commands: Any) -> None:
    parser = subcommand(commands, "backup", cmd_backup, "make a consistent copy of the store")
    parser.add_argument("dest", help="file or existing folder to copy the store to")


def cmd_backup(args: argparse.Namespace) -> int:
    config = config_from(args)
    if not config.state.path.exists():
        raise StoreError(f"no store at {config.state.path} yet: nothing to back up")
    dest = Path(args.dest)
    with Store(config.state.path) as store:
        store.backup(dest)
    log.info("store copied to %s (keys are not in the store: back them up apart)", dest)
    return EXIT_OK


# demo


def add_demo(commands: Any) -> None:
    parser = subcommand(
        commands, "demo", cmd_demo, "run the pipeline offline against a built-in sample newsroom"
    )
    parser.add_argument(
        "--dir", default="mirror-demo", help="folder for the demo's config and store"
    )
    parser.add_argument("--articles", type=int, default=24, help="articles in the sample newsroom")
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")


def cmd_demo(args: argparse.Namespace) -> int:
    from mirror.demo import run_demo

    folder = Path(args.dir).resolve()
    with progress_bar("demo", args) as bar:
        report = asyncio.run(run_demo(folder, articles=args.articles, progress=bar))
    if args.json:
        emit_json(report.to_json())
    log.info("%s", report.summary())
    log.info("demo config: %s", report.config_path)
    log.info("store: %s", report.store_path)
    return EXIT_PARTIAL if report.fetch.failed else EXIT_OK
