"""`mirror digest send` and `mirror serve-unsubscribe`."""

from __future__ import annotations

import argparse
import logging
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
from mirror.store import RunLock, Store

log = logging.getLogger("mirror")


def add_digest(commands: Any) -> None:
    parser = subcommand(commands, "digest", cmd_digest_send, "mail digests")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    send = actions.add_parser("send", help="mail the digest of what is new since the last one")
    add_common(send, sub=True)
    send.add_argument(
        "--dry-run",
        action="store_true",
        help="print the digest one subscriber would get, how many would get it, and how "
        "many deferred at an earlier run would be tried again",
    )
    send.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    send.set_defaults(handler=cmd_digest_send)


def cmd_digest_send(args: argparse.Namespace) -> int:
    from mirror.digest.run import send_digest

    config = config_from(args)
    with RunLock(config.state.path), Store(config.state.path) as store:
        report = cli.run_async(send_digest(config, store, now=cli.utc_now(), dry_run=args.dry_run))
    if args.dry_run and report.preview and not args.json:
        write_out(report.preview)
    if args.json:
        emit_json(report.to_json())
    if args.dry_run:
        log.info("%s", report.dry_summary())
    else:
        log.info("%s", report.summary())
    return EXIT_PARTIAL if report.partial else EXIT_OK  # deferred alone: 1 too


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
