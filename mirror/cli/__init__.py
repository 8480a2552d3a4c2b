"""The `mirror` command: the only place that prints and picks exit codes.

Exit status: 0 all done; 1 some items, mirrors or recipients failed, the rest done;
2 bad usage, bad config, or another run holds the store; 3 verification failed;
130 stopped by SIGINT (Ctrl-C), 143 by SIGTERM.
Human output and progress go to stderr; `--json` documents go to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from tqdm import tqdm

from mirror import __version__, sandbox
from mirror.config import Config, MirrorConfig, find_config, load_config
from mirror.errors import (
    ConfigError,
    MirrorError,
    SandboxError,
    SigningError,
    StoreError,
    UsageError,
    VerifyError,
)
from mirror.store import RunLock, Store

if TYPE_CHECKING:  # publish loads boto3's neighbours lazily: only for the annotation
    from mirror.publish.publisher import MirrorResult

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_VERIFY = 0, 1, 2, 3
EXIT_SIGNALLED = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal's number
STOP_GRACE_S = 1.5  # after a first signal, the longest the run may take to stop cleanly
log = logging.getLogger("mirror")


class Interrupts:
    """SIGINT and SIGTERM for the `mirror` command. The first stops the run at once (as a
    KeyboardInterrupt: locks released, bars closed, mirror calls in flight abandoned,
    workers terminated) and forces the exit STOP_GRACE_S later should stopping hang; a
    second exits at once. Nothing is lost: writes are atomic, the publishing order keeps
    every mirror verifying, and the kernel frees the run lock."""

    def __init__(self) -> None:
        self.received: int | None = None

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
        raise KeyboardInterrupt


INTERRUPTS = Interrupts()


def hard_exit(status: int, why: str) -> NoReturn:
    """Exit now: worker processes terminated, no thread waited for (the kernel releases
    the run lock with the process)."""
    with contextlib.suppress(OSError):
        os.write(2, f"mirror: {why}\n".encode())
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
    configure_logging(args.verbose - args.quiet)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (ConfigError, UsageError, StoreError, SigningError, SandboxError) as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except VerifyError as exc:
        log.error("verification failed: %s", exc)
        return EXIT_VERIFY
    except MirrorError as exc:
        log.error("%s", exc)
        return EXIT_PARTIAL
    except KeyboardInterrupt:
        status = INTERRUPTS.exit_status()
        log.error("interrupted (%s): stopped", "SIGTERM" if status == 143 else "SIGINT")
        return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mirror",
        description="Keep a blocked news outlet readable: fetch its articles, build a "
        "signed static edition, publish it to mirrors, mail digests.",
        epilog="Exit status: 0 done; 1 partly failed (see the report); 2 bad usage or "
        "config, or another run holds the store; 3 verification failed; 130 stopped by "
        "SIGINT (Ctrl-C), 143 by SIGTERM.",
    )
    parser.add_argument("--version", action="version", version=f"mirror {__version__}")
    add_common(parser)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add_fetch(commands)
    add_build(commands)
    add_publish(commands)
    add_sync(commands)
    add_status(commands)
    add_mirrors(commands)
    add_verify(commands)
    add_keygen(commands)
    add_keys(commands)
    add_articles(commands)
    add_subscribers(commands)
    add_digest(commands)
    add_serve_unsubscribe(commands)
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

    def stage_done(self, summary: str) -> None:
        self.close()
        log.info("%s", summary)

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


# fetch


def add_fetch(commands: Any) -> None:
    parser = subcommand(commands, "fetch", cmd_fetch, "fetch new and changed articles")
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")


def cmd_fetch(args: argparse.Namespace) -> int:
    config = config_from(args)
    with RunLock(config.state.path), Store(config.state.path) as store:
        return run_fetch(config, store, args)


def run_fetch(config: Config, store: Store, args: argparse.Namespace) -> int:
    from mirror.fetch.stage import fetch_articles

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


# build


def add_build(commands: Any) -> None:
    parser = subcommand(commands, "build", cmd_build, "render and sign the edition")
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")


def cmd_build(args: argparse.Namespace) -> int:
    config = config_from(args)
    with RunLock(config.state.path), Store(config.state.path) as store:
        return run_build(config, store, args)


def run_build(config: Config, store: Store, args: argparse.Namespace, live_version: int = 0) -> int:
    from mirror.build.builder import build_edition
    from mirror.trust.keyfiles import build_inputs

    now = utc_now()
    inputs = build_inputs(
        config, now=now, live_version=live_version, retired=store.retired_mirrors()
    )
    with progress_bar("build", args) as bar:
        report = asyncio.run(build_edition(config, store, inputs, now=now, progress=bar))
    if args.json:
        emit_json(report.to_json())
    for path in report.over_budget:
        log.warning("over the page budget even without images: %s", path)
    if report.foreign:
        log.warning(
            "%s holds %d file(s) no build wrote: left alone",
            config.edition.output_dir,
            report.foreign,
        )
    log.info("%s", report.summary())
    log.info("edition: %s", config.edition.output_dir)
    return EXIT_OK


# verify


def add_verify(commands: Any) -> None:
    parser = subcommand(
        commands,
        "verify",
        cmd_verify,
        "check a copy of the edition (a folder or a mirror URL): signatures, expiry, every file",
    )
    parser.add_argument("target", help="edition folder, or the http(s) URL of a mirror")
    parser.add_argument(
        "--key",
        required=True,
        help="the root public key (follows keys.json) or the signing key: a .pub file or RW...",
    )
    parser.add_argument(
        "--min-serial",
        type=int,
        default=0,
        metavar="N",
        help="refuse a keys.json older than serial N (the digest prints the current one); "
        "needs the root key",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    add_deadline(parser, "give up on the copy")


def add_deadline(parser: argparse.ArgumentParser, what: str) -> None:
    """--deadline-s, for the commands that read mirrors as a reader does."""
    parser.add_argument(
        "--deadline-s",
        type=positive_seconds,
        metavar="SECONDS",
        help=f"{what} after this long (default 300), or when a body stays under "
        "100 bytes/s for 30 s (after 10 s)",
    )


def positive_seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def cmd_verify(args: argparse.Namespace) -> int:
    from mirror.verify.run import DEFAULT_DEADLINE_S, verify_target

    if args.min_serial < 0:
        raise UsageError("--min-serial must be 0 or more")
    deadline_s = args.deadline_s or DEFAULT_DEADLINE_S
    report = asyncio.run(
        verify_target(
            args.target,
            args.key,
            now=utc_now(),
            min_serial=args.min_serial,
            deadline_s=deadline_s,
        )
    )
    if args.json:
        emit_json(report.to_json())
    for kind in ("missing", "tampered", "extra", "symlinks"):
        for path in getattr(report, kind):
            log.warning("%s: %s", kind.removesuffix("s"), path)
    for peer in report.peers:
        if peer.error:
            log.warning("other mirror %s: %s", peer.url, peer.error)
    if report.keys_serial is not None:
        log.info("%s", report.keys_summary())
    log.info("%s", report.summary())
    return EXIT_OK if report.ok else EXIT_VERIFY


# keys


def add_keygen(commands: Any) -> None:
    parser = subcommand(
        commands,
        "keygen",
        cmd_keygen,
        "make a key pair: the online signing key, or (--root) the offline root key",
    )
    parser.add_argument("--root", action="store_true", help="make the offline root key")
    parser.add_argument(
        "--out",
        help="folder for the key files (default: the [signing] files of the config; "
        "with --root: the current folder)",
    )
    protection = parser.add_mutually_exclusive_group()
    protection.add_argument(
        "--passphrase-env",
        help="encrypt the secret key with the passphrase in this environment variable",
    )
    protection.add_argument(
        "--passphrase-file",
        help="encrypt the secret key with the passphrase in this file (one line)",
    )
    protection.add_argument(
        "--no-passphrase",
        action="store_true",
        help="with --root: leave the root key unencrypted (refused otherwise); the online "
        "key is unencrypted by default, since it must sign unattended",
    )


def cmd_keygen(args: argparse.Namespace) -> int:
    from mirror.trust.keyfiles import make_keys

    config = None if args.out or args.root else config_from(args)
    written = make_keys(
        config, root=args.root, out=args.out, passphrase_env=args.passphrase_env,
        passphrase_file=args.passphrase_file, unencrypted_root=args.no_passphrase,
    )  # fmt: skip
    log.info("secret key: %s (mode 0600; never share it)", written.secret_path)
    log.info("public key: %s", written.public_path)
    log.info("public key line: %s", written.public_line)
    return EXIT_OK


def add_keys(commands: Any) -> None:
    parser = subcommand(commands, "keys", cmd_keys_certify, "manage keys with the offline root")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    certify = actions.add_parser(
        "certify",
        help="the root certifies the online signing key (rotation, revocation)",
        description="Write keys.json + keys.json.minisig: the root certifies the signing "
        "key of the config for a period; --revoke cuts off a stolen key.",
    )
    add_common(certify, sub=True)
    certify.add_argument("--root-key", required=True, help="the offline root's secret key file")
    certify.add_argument(
        "--days",
        type=int,
        default=45,
        help="how long the certificate lasts (1 to 180, default 45): a revoked key can fool "
        "a reader who never saw the revocation until then, so renew monthly",
    )
    certify.add_argument(
        "--revoke", action="append", default=[], help="revoke this public key (file or RW...)"
    )
    certify.add_argument(
        "--reset-versions",
        action="store_true",
        help="start a new epoch: manifests may start over from version 1",
    )
    passphrase = certify.add_mutually_exclusive_group()
    passphrase.add_argument(
        "--passphrase-env", help="the root key's passphrase is in this environment variable"
    )
    passphrase.add_argument("--passphrase-file", help="the root key's passphrase is in this file")


def cmd_keys_certify(args: argparse.Namespace) -> int:
    from mirror.trust.keyfiles import certify_signing_key

    config = config_from(args)
    result = certify_signing_key(
        config,
        root_key_file=Path(args.root_key),
        days=args.days,
        revoke=tuple(args.revoke),
        reset_versions=args.reset_versions,
        passphrase_env=args.passphrase_env,
        passphrase_file=args.passphrase_file,
        now=utc_now(),
    )
    log.info("%s", result.summary())
    for warning in result.warnings:
        log.warning("warning: %s", warning)
    return EXIT_OK


# articles


def add_articles(commands: Any) -> None:
    parser = subcommand(commands, "articles", cmd_articles_list, "list or take down articles")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    hide = actions.add_parser(
        "hide",
        help="take an article down from the edition (and, at the next publish, every mirror)",
    )
    add_common(hide, sub=True)
    hide.add_argument("article", metavar="URL_OR_ID", help="article id, origin URL or edition path")
    hide.set_defaults(handler=cmd_articles_hide)
    listing = actions.add_parser("list", help="the articles in the store")
    add_common(listing, sub=True)
    listing.add_argument("--json", action="store_true", help="print JSON on stdout")
    listing.set_defaults(handler=cmd_articles_list)


def cmd_articles_hide(args: argparse.Namespace) -> int:
    config = config_from(args)
    with RunLock(config.state.path), Store(config.state.path) as store:
        row = store.hide_article(args.article, utc_now())
    if row is None:
        raise UsageError(f"no article {args.article!r} in the store (see `mirror articles list`)")
    log.info("article %s hidden; `mirror build` and `mirror publish` take it down", row.id)
    return EXIT_OK


def cmd_articles_list(args: argparse.Namespace) -> int:
    config = config_from(args)
    with Store(config.state.path) as store:
        articles = store.list_articles()
    if getattr(args, "json", False):
        emit_json({"articles": articles})
    else:
        for article in articles:
            flag = " (hidden)" if article["hidden"] else ""
            sys.stdout.write(
                f"{article['id']}\t{article['state']}{flag}\t{article['path'] or '-'}\t"
                f"{article['url']}\n"
            )
    return EXIT_OK


# publish, sync, status, mirrors


def add_publish(commands: Any) -> None:
    parser = subcommand(
        commands, "publish", cmd_publish, "sync the edition to every (or the named) mirror"
    )
    add_publish_options(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")


def add_publish_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mirror", action="append", default=[], metavar="NAME", help="only this mirror (repeat)"
    )
    parser.add_argument(
        "--allow-shrink",
        action="store_true",
        help="let a publish delete more than 10%% of a mirror's live files",
    )
    parser.add_argument(
        "--repair", action="store_true", help="read every file back and re-upload what is wrong"
    )
    parser.add_argument(
        "--gc", action="store_true", help="list each bucket once and remove unreferenced files"
    )


def cmd_publish(args: argparse.Namespace) -> int:
    config = config_from(args)
    with RunLock(config.state.path):
        return run_publish(config, args)


def run_publish(config: Config, args: argparse.Namespace) -> int:
    from mirror.pipeline import publish_edition

    mirrors = selected_mirrors(config, args.mirror)
    results = asyncio.run(
        publish_edition(
            config, mirrors, allow_shrink=args.allow_shrink, repair=args.repair, gc=args.gc
        )
    )
    if args.json:
        emit_json({"mirrors": [result.to_json() for result in results]})
    for result in results:
        if result.ok:
            log.info(
                "%s: version %s, %d uploaded, %d deleted",
                result.name, result.version, result.uploaded, result.deleted,
            )  # fmt: skip
        else:
            log.error("%s: FAILED: %s", result.name, result.error)
        log_warnings(result)
    return EXIT_OK if all(result.ok for result in results) else EXIT_PARTIAL


def log_warnings(result: MirrorResult) -> None:
    """What a publish found wrong on the mirror and worked around (a live manifest taken
    as empty, an odd pointer): at warning level, so cron mail shows it."""
    for warning in result.warnings:
        log.warning("%s: %s", result.name, warning)


def selected_mirrors(config: Config, names: list[str]) -> list[MirrorConfig]:
    """The enabled, not retired mirrors, or the named ones (UsageError for an unknown name)."""
    known = {mirror.name: mirror for mirror in config.mirrors}
    for name in names:
        if name not in known:
            raise UsageError(f"no mirror named {name!r} in the config (known: {sorted(known)})")
    chosen = [known[name] for name in names] if names else list(config.mirrors)
    retired = retired_mirrors(config)
    say = log.warning if names else log.info  # named on the command line: worth a warning
    for mirror in chosen:
        if not mirror.enabled:
            say("%s: skipped (enabled = false)", mirror.name)
        elif mirror.name in retired:
            say("%s: skipped (retired)", mirror.name)
    return [m for m in chosen if m.enabled and m.name not in retired]


def retired_mirrors(config: Config) -> frozenset[str]:
    if not config.state.path.exists():
        return frozenset()
    with Store(config.state.path) as store:
        return store.retired_mirrors()


def add_sync(commands: Any) -> None:
    parser = subcommand(
        commands,
        "sync",
        cmd_sync,
        "fetch, build and publish in one run (for cron/systemd)",
    )
    add_publish_options(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")


def cmd_sync(args: argparse.Namespace) -> int:
    from mirror.pipeline import run_sync

    config = config_from(args)
    with RunLock(config.state.path), progress_bar("sync", args) as bar:
        report = asyncio.run(
            run_sync(
                config,
                now=utc_now(),
                mirrors=selected_mirrors(config, args.mirror),
                allow_shrink=args.allow_shrink,
                repair=args.repair,
                gc=args.gc,
                progress=bar,
            )
        )
    if args.json:
        emit_json(report.to_json())
    if report.error:  # each stage's line was logged as the stage ended
        log.info("%s", report.error)
    for result in report.mirrors:
        log_warnings(result)
    for line in report.keys.due() if report.keys else []:
        log.warning("warning: %s", line)
    return EXIT_OK if report.ok else EXIT_PARTIAL


def add_status(commands: Any) -> None:
    parser = subcommand(
        commands, "status", cmd_status, "per mirror: reachable, live version, age, stale, tampered"
    )
    parser.add_argument("--full", action="store_true", help="also check every file's bytes")
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    add_deadline(parser, "report a mirror as unreachable")


def cmd_status(args: argparse.Namespace) -> int:
    from mirror.pipeline import check_status
    from mirror.verify.run import DEFAULT_DEADLINE_S

    config = config_from(args)
    deadline_s = args.deadline_s or DEFAULT_DEADLINE_S
    statuses = asyncio.run(
        check_status(config, now=utc_now(), full=args.full, deadline_s=deadline_s)
    )
    if args.json:
        emit_json({"mirrors": [status.to_json() for status in statuses]})
    for status in statuses:
        log.info("%s", status.summary())
    healthy = all(status.healthy for status in statuses)
    return EXIT_OK if healthy else EXIT_PARTIAL


def add_mirrors(commands: Any) -> None:
    parser = subcommand(commands, "mirrors", cmd_mirrors_setup, "set up or retire a mirror")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    setup = actions.add_parser(
        "setup", help="create the bucket if missing and make it publicly readable"
    )
    add_common(setup, sub=True)
    setup.add_argument("name", help="the mirror's name in the config")
    setup.add_argument(
        "--provider",
        choices=("aws", "minio", "b2", "r2"),
        help="default: guessed from endpoint_url",
    )
    setup.set_defaults(handler=cmd_mirrors_setup)
    retire = actions.add_parser(
        "retire", help="empty a mirror and drop it from the mirror list (e.g. once blocked)"
    )
    add_common(retire, sub=True)
    retire.add_argument("name", help="the mirror's name in the config")
    retire.set_defaults(handler=cmd_mirrors_retire)


def cmd_mirrors_setup(args: argparse.Namespace) -> int:
    from mirror.storage.provision import BY_HAND, provider_of, setup_mirror

    config = config_from(args)
    mirror = [m for m in config.mirrors if m.name == args.name and m.enabled]
    if not mirror or mirror[0].type != "s3":
        raise UsageError(f"{args.name}: only enabled s3 mirrors need setting up")
    manual = provider_of(mirror[0], args.provider or "") in BY_HAND
    for step in setup_mirror(mirror[0], args.provider or ""):
        # R2's steps are for a person to do: a warning, not a report of work done
        log.log(logging.WARNING if manual else logging.INFO, "%s: %s", args.name, step)
    return EXIT_OK


def cmd_mirrors_retire(args: argparse.Namespace) -> int:
    from mirror.pipeline import retire

    config = config_from(args)
    with RunLock(config.state.path):
        removed = asyncio.run(retire(config, args.name))
    log.info(
        "%s: %d files removed; it is no longer listed (the next build drops it from "
        "mirrors.json); remove it from the config when you like",
        args.name,
        removed,
    )
    return EXIT_OK


# subscribers and digests


def add_subscribers(commands: Any) -> None:
    parser = subcommand(commands, "subscribers", cmd_subscribers_list, "the subscriber list")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a subscriber (or bring one back)")
    add_common(add, sub=True)
    add.add_argument("email")
    add.add_argument("--lang", default="any", choices=("en", "ru", "any"))
    add.set_defaults(handler=cmd_subscribers_add)
    remove = actions.add_parser("remove", help="unsubscribe (recorded with its time)")
    add_common(remove, sub=True)
    remove.add_argument("subscriber", metavar="EMAIL_OR_ID")
    remove.set_defaults(handler=cmd_subscribers_remove)
    listing = actions.add_parser("list", help="the subscribers (addresses: on stdout only)")
    add_common(listing, sub=True)
    listing.add_argument(
        "--json", action="store_true", help="print JSON on stdout (ids, no addresses)"
    )
    listing.add_argument(
        "--addresses", action="store_true", help="with --json: include the addresses too"
    )
    listing.add_argument("--all", action="store_true", help="include those who left")
    listing.set_defaults(handler=cmd_subscribers_list)
    importing = actions.add_parser(
        "import", help="import a CSV of email[,lang] rows (all or nothing on a crash)"
    )
    add_common(importing, sub=True)
    importing.add_argument("file", metavar="FILE.csv")
    importing.add_argument("--lang", default="any", choices=("en", "ru", "any"))
    importing.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    importing.set_defaults(handler=cmd_subscribers_import)


def cmd_subscribers_add(args: argparse.Namespace) -> int:
    from mirror.digest import subscribers

    config = config_from(args)
    with Store(config.state.path) as store:
        added = subscribers.add(
            store, args.email, args.lang, at=utc_now(), watch=config.digest.watched_domains
        )
    log.info("subscriber %d %s", added.id, "added" if added.created else "updated")
    if added.watched:
        log.warning(WATCHED_WARNING)
    return EXIT_OK


WATCHED_WARNING = (
    "warning: this address is at a mail provider under the censor's jurisdiction, which "
    "sees every digest it receives (digest.watched_domains)"
)


def cmd_subscribers_remove(args: argparse.Namespace) -> int:
    from mirror.digest import subscribers

    config = config_from(args)
    with Store(config.state.path) as store:
        subscriber_id = subscribers.remove(store, args.subscriber, at=utc_now())
    log.info("subscriber %d unsubscribed", subscriber_id)
    return EXIT_OK


def cmd_subscribers_list(args: argparse.Namespace) -> int:
    config = config_from(args)
    with Store(config.state.path) as store:
        rows = store.subscribers(active_only=not getattr(args, "all", False))
    if getattr(args, "json", False):
        # JSON goes to monitoring and logs: subscribers by id unless asked (an export)
        keep = (
            rows if args.addresses else [{k: v for k, v in r.items() if k != "email"} for r in rows]
        )
        emit_json({"subscribers": keep})
    else:
        for row in rows:
            left = f"\tleft {row['unsubscribed_at']}" if row["unsubscribed_at"] else ""
            sys.stdout.write(f"{row['id']}\t{row['lang']}\t{row['email']}{left}\n")
    log.info("%d subscribers", len(rows))
    return EXIT_OK


def cmd_subscribers_import(args: argparse.Namespace) -> int:
    from mirror.digest import subscribers

    config = config_from(args)
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from exc
    with Store(config.state.path) as store:
        report = subscribers.import_csv(
            store, data, at=utc_now(), watch=config.digest.watched_domains,
            default_lang=args.lang,
        )  # fmt: skip
    if args.json:
        emit_json(report.to_json())
    for bad in report.bad:
        log.warning("row %d skipped: %s", bad["row"], bad["reason"])
    log.info("%d added, %d updated, %d bad rows", report.added, report.updated, len(report.bad))
    if report.watched:
        log.warning(
            "warning: %d of these addresses are at mail providers under the censor's "
            "jurisdiction, which see every digest they receive (digest.watched_domains)",
            report.watched,
        )
    return EXIT_PARTIAL if report.bad else EXIT_OK


def add_digest(commands: Any) -> None:
    parser = subcommand(commands, "digest", cmd_digest_send, "mail digests")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    send = actions.add_parser("send", help="mail the digest of what is new since the last one")
    add_common(send, sub=True)
    send.add_argument(
        "--dry-run",
        action="store_true",
        help="print the digest one subscriber would get and how many would get it",
    )
    send.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    send.set_defaults(handler=cmd_digest_send)


def cmd_digest_send(args: argparse.Namespace) -> int:
    from mirror.digest.run import send_digest

    config = config_from(args)
    with RunLock(config.state.path), Store(config.state.path) as store:
        report = asyncio.run(send_digest(config, store, now=utc_now(), dry_run=args.dry_run))
    if args.dry_run and report.preview and not args.json:
        sys.stdout.write(report.preview)
    if args.json:
        emit_json(report.to_json())
    if args.dry_run:
        log.info("%d subscribers would get this digest", report.would_send)
    else:
        log.info("%s", report.summary())
    return EXIT_PARTIAL if report.failed else EXIT_OK


def add_serve_unsubscribe(commands: Any) -> None:
    parser = subcommand(
        commands,
        "serve-unsubscribe",
        cmd_serve_unsubscribe,
        "serve the one-click unsubscribe page (run behind the outlet's reverse proxy)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)


def cmd_serve_unsubscribe(args: argparse.Namespace) -> int:
    from mirror.digest.run import previous_secrets, secret_from
    from mirror.digest.unsubscribe import serve_unsubscribe

    config = config_from(args)
    secret, previous = secret_from(config), previous_secrets(config)
    log.info("serving unsubscribe on http://%s:%d/unsubscribe", args.host, args.port)
    serve_unsubscribe(
        config.state.path, secret, publication=config.publication.name, previous=previous,
        host=args.host, port=args.port,
    )  # fmt: skip
    log.info("stopped")
    return EXIT_OK


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
        commands,
        "demo",
        cmd_demo,
        "the whole pipeline offline against a built-in sample newsroom, served on loopback "
        "(the digest goes to an outbox folder)",
    )
    parser.add_argument(
        "--dir", default="mirror-demo", help="folder for the demo's config, store and mirrors"
    )
    parser.add_argument("--articles", type=int, default=24, help="articles in the sample newsroom")
    parser.add_argument(
        "--no-serve", action="store_true", help="exit after the digest instead of serving"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")


def cmd_demo(args: argparse.Namespace) -> int:
    from mirror.cli.demo import DemoReport, run_demo

    reports: list[DemoReport] = []

    def ready(report: DemoReport) -> None:
        reports.append(report)
        if args.json:
            emit_json(report.to_json())
        for line in report.lines():
            log.info("%s", line)
        if not args.no_serve:
            log.info("serving the mirrors until Ctrl-C")

    folder = Path(args.dir).resolve()
    report: DemoReport | None
    try:
        with progress_bar("demo", args) as bar:
            report = asyncio.run(
                run_demo(
                    folder, articles=args.articles, progress=bar, serve=not args.no_serve,
                    on_ready=ready,
                )
            )  # fmt: skip
    except KeyboardInterrupt:
        log.info("demo stopped")
        report = reports[0] if reports else None
    return EXIT_PARTIAL if report is None or report.failed else EXIT_OK
