"""The pipeline's commands: fetch, build, publish, sync, status, verify, articles, backup."""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mirror import (
    cli,  # cli.utc_now: the one clock, read through the package so a test can set it
    fleet,
)
from mirror.cli import (
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_VERIFY,
    add_common,
    config_from,
    emit_json,
    progress_bar,
    subcommand,
    write_out,
)
from mirror.config import Config, MirrorConfig
from mirror.errors import BuildError, MirrorError, StoreError, UsageError
from mirror.metrics import Metric, run_metrics, status_metrics, sync_metrics, write_metrics
from mirror.store import RunLock, Store

if TYPE_CHECKING:  # publish loads boto3's neighbours lazily: only for the annotation
    from mirror.publish.publisher import MirrorResult, PublishOptions

log = logging.getLogger("mirror")


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

    started = cli.utc_now()
    run_id = store.start_run("fetch", started)
    with progress_bar("fetch", args) as bar:
        report = cli.run_async(fetch_articles(config, store, now=started, progress=bar))
    status = EXIT_PARTIAL if report.failed else EXIT_OK
    store.finish_run(run_id, status, report.to_json(), cli.utc_now())
    if args.json:
        emit_json(report.to_json())
    for line in report.failure_lines():
        log.warning("%s", line)
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

    now = cli.utc_now()
    inputs = build_inputs(
        config, now=now, live_version=live_version, handed_out=fleet.handed_out(config, store)
    )
    with progress_bar("build", args) as bar:
        report = cli.run_async(build_edition(config, store, inputs, now=now, progress=bar))
    if args.json:
        emit_json(report.to_json())
    for path in report.over_budget:
        log.warning("over the page budget even without images: %s", path)
    for path in report.daily_too_large:
        log.warning("daily edition not written (its previous version removed): %s", path)
    if report.foreign:
        log.warning(
            "%s holds %d file(s) no build wrote: left alone",
            config.edition.output_dir,
            report.foreign,
        )
    log.info("%s", report.summary())
    log.info("edition: %s", config.edition.output_dir)
    return EXIT_OK if report.complete else EXIT_PARTIAL  # a daily file missing: partial


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
    report = cli.run_async(
        verify_target(
            args.target,
            args.key,
            now=cli.utc_now(),
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
        row = store.hide_article(args.article, cli.utc_now())
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
        write_out("".join(
            f"{a['id']}\t{a['state']}{' (hidden)' if a['hidden'] else ''}\t"
            f"{a['path'] or '-'}\t{a['url']}\n"
            for a in articles
        ))  # fmt: skip
    return EXIT_OK


# publish, sync, status


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


def publish_options(args: argparse.Namespace) -> PublishOptions:
    """The options `add_publish_options` parsed, as one value."""
    from mirror.publish.publisher import PublishOptions

    return PublishOptions(allow_shrink=args.allow_shrink, repair=args.repair, gc=args.gc)


def cmd_publish(args: argparse.Namespace) -> int:
    config = config_from(args)
    with RunLock(config.state.path):
        try:
            return run_publish(config, args)
        except BuildError as exc:  # no edition to publish (none built, or unreadable)
            raise UsageError(str(exc)) from exc


def run_publish(config: Config, args: argparse.Namespace) -> int:
    from mirror.pipeline import publish_edition

    mirrors = selected_mirrors(config, args.mirror)
    results = cli.run_async(publish_edition(config, mirrors, publish_options(args)))
    if args.json:
        emit_json({"mirrors": [result.to_json() for result in results]})
    for result in results:
        log.log(logging.INFO if result.ok else logging.ERROR, "%s", result.summary())
        log_warnings(result)
    return EXIT_OK if all(result.ok for result in results) else EXIT_PARTIAL


def log_warnings(result: MirrorResult) -> None:
    """What a publish found wrong on the mirror and worked around (a live manifest taken
    as empty, an odd pointer): at warning level, so cron mail shows it."""
    for warning in result.warnings:
        log.warning("%s: %s", result.name, warning)


def selected_mirrors(config: Config, names: list[str]) -> list[MirrorConfig]:
    """The published mirrors (configured and spawned: mirror.fleet), or the named ones
    (UsageError for an unknown name)."""
    every = published_mirrors(config)
    active = {mirror.name for mirror in every}
    known = {mirror.name for mirror in config.mirrors} | active
    for name in names:
        if name not in known:
            raise UsageError(f"no mirror named {name!r} (known: {sorted(known)})")
    say = log.warning if names else log.info  # named on the command line: worth a warning
    for mirror in config.mirrors:
        if mirror.name in names or not names:
            if not mirror.enabled:
                say("%s: skipped (enabled = false)", mirror.name)
            elif mirror.name not in active:
                say("%s: skipped (retired)", mirror.name)
    return [mirror for mirror in every if mirror.name in names or not names]


def live_public_mirrors(config: Config) -> tuple[MirrorConfig, ...]:
    """The live, listed mirrors (mirror.fleet.live_public): the ones OONI may hear of."""
    if not config.state.path.exists():
        return tuple(mirror for mirror in config.mirrors if mirror.enabled and mirror.listed)
    with Store(config.state.path) as store:
        return fleet.live_public(config, store)


def published_mirrors(config: Config) -> tuple[MirrorConfig, ...]:
    if not config.state.path.exists():
        return tuple(mirror for mirror in config.mirrors if mirror.enabled)
    with Store(config.state.path) as store:
        return fleet.published(config, store)


def add_sync(commands: Any) -> None:
    parser = subcommand(
        commands,
        "sync",
        cmd_sync,
        "fetch, build and publish in one run (for cron/systemd)",
    )
    add_publish_options(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    add_metrics(parser)


def add_metrics(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics",
        type=Path,
        metavar="FILE",
        help="write Prometheus metrics to FILE (atomically; e.g. node_exporter's textfile "
        "folder, FILE ending in .prom; its folder must exist), also when the run fails",
    )


@contextmanager
def metrics_on_failure(args: argparse.Namespace, command: str) -> Iterator[None]:
    """With --metrics: a run stopped by an error (or a signal) still writes when it ran
    and its exit status, then the error goes on to `cli.run`."""
    try:
        yield
    except (MirrorError, KeyboardInterrupt) as exc:
        if args.metrics is not None:
            status = cli.exit_status_of(exc)
            save_metrics(
                args.metrics, run_metrics(command, finished_at=cli.utc_now(), exit_code=status)
            )
        raise


def save_metrics(path: Path, metrics: list[Metric]) -> int:
    """Write the --metrics file: EXIT_OK, or EXIT_PARTIAL (said why) when it cannot be
    written; the run's own work is done either way."""
    if path.suffix != ".prom":
        log.warning("metrics file %s does not end in .prom: node_exporter's textfile "
                    "collector reads only *.prom files", path)  # fmt: skip
    try:
        write_metrics(path, metrics)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename and exc.filename != str(path) else ""
        log.error("metrics not written to %s: %s%s", path, exc.strerror or exc, where)
        return EXIT_PARTIAL
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    from mirror.pipeline import run_sync

    with metrics_on_failure(args, "sync"):
        config = config_from(args)
        with RunLock(config.state.path), progress_bar("sync", args) as bar:
            report = cli.run_async(
                run_sync(
                    config,
                    now=cli.utc_now(),
                    mirrors=selected_mirrors(config, args.mirror),
                    options=publish_options(args),
                    progress=bar,
                )
            )
    if args.json:
        emit_json(report.to_json())
    if report.error:  # each stage's line was logged as the stage ended
        log.error("%s", report.error)
    for failure in report.mailin.failed if report.mailin else []:
        log.warning("mail-in: message %s: %s", failure["message"], failure["reason"])
    for result in report.mirrors:
        log_warnings(result)
    for verdict in report.reach.errors if report.reach else []:
        log.warning("reach: %s", verdict.summary())
    for line in report.keys.due() if report.keys else []:
        log.warning("warning: %s", line)
    status = EXIT_OK if report.ok else EXIT_PARTIAL
    if args.metrics is None:
        return status
    finished = cli.utc_now()
    return (
        save_metrics(
            args.metrics,
            sync_metrics(report, report.stages, finished_at=finished, exit_code=status),
        )
        or status
    )


def add_status(commands: Any) -> None:
    parser = subcommand(
        commands, "status", cmd_status, "per mirror: reachable, live version, age, stale, tampered"
    )
    parser.add_argument("--full", action="store_true", help="also check every file's bytes")
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    add_deadline(parser, "report a mirror as unreachable")
    add_metrics(parser)


def cmd_status(args: argparse.Namespace) -> int:
    from mirror.pipeline import check_status
    from mirror.verify.run import DEFAULT_DEADLINE_S

    with metrics_on_failure(args, "status"):
        config = config_from(args)
        deadline_s = args.deadline_s or DEFAULT_DEADLINE_S
        statuses = cli.run_async(
            check_status(config, now=cli.utc_now(), full=args.full, deadline_s=deadline_s)
        )
    if args.json:
        emit_json({"mirrors": [status.to_json() for status in statuses]})
    for status in statuses:  # an unhealthy one at warning: `-q status` says which
        log.log(
            logging.INFO if status.healthy else logging.WARNING,
            "%s [%s]", status.summary(), status.state,
        )  # fmt: skip
    healthy = EXIT_OK if all(status.healthy for status in statuses) else EXIT_PARTIAL
    if args.metrics is None:
        return healthy
    finished = cli.utc_now()
    return (
        save_metrics(
            args.metrics, status_metrics(statuses, finished_at=finished, exit_code=healthy)
        )
        or healthy
    )


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
