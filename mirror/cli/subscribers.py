"""`mirror subscribers add/remove/list/import`: the subscriber list."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from mirror import cli  # cli.utc_now: the one clock, read through the package so a test can set it
from mirror.cli import (
    EXIT_OK,
    EXIT_PARTIAL,
    add_common,
    config_from,
    emit_json,
    subcommand,
    write_out,
)
from mirror.errors import SubscriberError, UsageError
from mirror.store import Store

log = logging.getLogger("mirror")


def add_subscribers(commands: Any) -> None:
    parser = subcommand(commands, "subscribers", cmd_subscribers_list, "the subscriber list")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add", help="add a subscriber (or bring one back): the next digest run welcomes them"
    )
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
        "import",
        help="import a CSV of email[,lang] rows (all or nothing on a crash); the next "
        "digest run welcomes each new one",
    )
    add_common(importing, sub=True)
    importing.add_argument("file", metavar="FILE.csv")
    importing.add_argument("--lang", default="any", choices=("en", "ru", "any"))
    importing.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    importing.set_defaults(handler=cmd_subscribers_import)


def cmd_subscribers_add(args: argparse.Namespace) -> int:
    from mirror.digest import subscribers

    config = config_from(args)
    with Store(config.state.path) as store, bad_usage():
        added = subscribers.add(
            store, args.email, args.lang, at=cli.utc_now(), watch=config.digest.watched_domains,
            welcome=True,
        )  # fmt: skip
    log.info("subscriber %d %s", added.id, "added" if added.created else "updated")
    if added.watched:
        log.warning(WATCHED_WARNING)
    return EXIT_OK


@contextmanager
def bad_usage() -> Iterator[None]:
    """A bad address, an unknown subscriber or an unusable file is the command line's
    fault: exit 2, not the "partly failed" 1 a digest's refused recipient gives."""
    try:
        yield
    except SubscriberError as exc:
        raise UsageError(str(exc)) from exc


WATCHED_WARNING = (
    "warning: this address is at a mail provider under the censor's jurisdiction, which "
    "sees every digest it receives (digest.watched_domains)"
)


def cmd_subscribers_remove(args: argparse.Namespace) -> int:
    from mirror.digest import subscribers

    config = config_from(args)
    with Store(config.state.path) as store, bad_usage():
        subscriber_id = subscribers.remove(store, args.subscriber, at=cli.utc_now())
    log.info("subscriber %d unsubscribed", subscriber_id)
    return EXIT_OK


def cmd_subscribers_list(args: argparse.Namespace) -> int:
    config = config_from(args)
    days = config.mailin.bounce_window_days if config.mailin else DEFAULT_BOUNCE_WINDOW_DAYS
    with Store(config.state.path) as store:
        rows = store.subscribers(active_only=not getattr(args, "all", False))
        bounces = store.bounce_counts(cli.utc_now() - timedelta(days=days))
    for row in rows:  # bouncing: delivery reports within the window (permanent, transient)
        permanent, transient = bounces.get(row["id"], (0, 0))
        row["bounces"] = {"permanent": permanent, "transient": transient}
    if getattr(args, "json", False):
        # JSON goes to monitoring and logs: subscribers by id unless asked (an export)
        keep = (
            rows if args.addresses else [{k: v for k, v in r.items() if k != "email"} for r in rows]
        )
        emit_json({"subscribers": keep})
    else:
        write_out(
            "".join(f"{r['id']}\t{r['lang']}\t{r['email']}{_states(r, days)}\n" for r in rows)
        )
    log.info("%d subscribers", len(rows))
    return EXIT_OK


DEFAULT_BOUNCE_WINDOW_DAYS = 30  # without [mailin]: the window `bouncing` counts over


def _states(row: dict[str, Any], days: int) -> str:
    """The tab-separated notes after an address: left, disabled (why), bouncing."""
    notes = []
    if row["unsubscribed_at"]:
        notes.append(f"left {row['unsubscribed_at']}")
    if row["disabled_at"]:
        notes.append(f"disabled {row['disabled_at']}: {row['disabled_reason']}")
    bounced = row["bounces"]["permanent"] + row["bounces"]["transient"]
    if bounced:
        notes.append(
            f"bouncing: {bounced} bounces in {days} days ({row['bounces']['permanent']} permanent)"
        )
    return "".join(f"\t{note}" for note in notes)


def cmd_subscribers_import(args: argparse.Namespace) -> int:
    from mirror.digest import subscribers

    config = config_from(args)
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from exc
    with Store(config.state.path) as store, bad_usage():
        report = subscribers.import_csv(
            store, data, at=cli.utc_now(), watch=config.digest.watched_domains,
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
