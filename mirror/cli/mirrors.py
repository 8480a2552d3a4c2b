"""`mirror mirrors setup`, `retire`, `spawn`, `list`, `block` and `unblock`."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from mirror import cli, fleet
from mirror.cli import EXIT_OK, EXIT_PARTIAL, add_common, config_from, emit_json, subcommand
from mirror.config import mirror_key
from mirror.errors import ConfigError, MirrorAccessError, UsageError
from mirror.store import RunLock, Store

log = logging.getLogger("mirror")


def add_mirrors(commands: Any) -> None:
    parser = subcommand(
        commands, "mirrors", cmd_mirrors_setup, "set up, spawn, list, block or retire mirrors"
    )
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
    add_fleet_actions(actions)


def add_fleet_actions(actions: Any) -> None:
    spawn = actions.add_parser(
        "spawn", help="new mirrors in pools, on random names: created, public, spare, published"
    )
    add_common(spawn, sub=True)
    spawn.add_argument("pools", nargs="+", metavar="POOL", help="a [[pools]] name")
    spawn.add_argument("--count", type=int, default=1, help="mirrors per pool (default 1)")
    spawn.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    spawn.set_defaults(handler=cmd_mirrors_spawn)
    listing = actions.add_parser("list", help="every mirror: origin, state, age, reason")
    add_common(listing, sub=True)
    listing.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    listing.set_defaults(handler=cmd_mirrors_list)
    block = actions.add_parser(
        "block", help="a mirror is blocked: no longer handed out; a spare replaces it"
    )
    add_common(block, sub=True)
    block.add_argument("name", help="the mirror's name")
    block.add_argument("--reason", required=True, help="why (kept in the mirror's history)")
    block.set_defaults(handler=cmd_mirrors_block)
    unblock = actions.add_parser("unblock", help="a blocked mirror is live again")
    add_common(unblock, sub=True)
    unblock.add_argument("name", help="the mirror's name")
    unblock.add_argument("--reason", default="unblocked by hand", help="why")
    unblock.set_defaults(handler=cmd_mirrors_unblock)


def cmd_mirrors_setup(args: argparse.Namespace) -> int:
    from mirror.storage.provision import BY_HAND, provider_of, setup_mirror

    config = config_from(args)
    named = [m for m in config.mirrors if m.name == args.name]
    if not named:
        known = ", ".join(m.name for m in config.mirrors) or "none"
        raise UsageError(f"no mirror named {args.name!r} in [[mirrors]] (known: {known})")
    mirror = [m for m in named if m.enabled]
    if not mirror:
        raise UsageError(f"{args.name}: disabled (enabled = false): enable it to set it up")
    if mirror[0].type != "s3":
        raise UsageError(
            f"{args.name}: a {mirror[0].type} mirror needs no setup (only s3 mirrors do); "
            "let the web server read its folder"
        )
    manual = provider_of(mirror[0], args.provider or "") in BY_HAND
    try:
        steps = setup_mirror(mirror[0], args.provider or "")
    except MirrorAccessError as exc:  # the credentials, the account or the name: the config's
        raise ConfigError(exc.reason, key=mirror_key(args.name)) from exc
    for step in steps:
        # R2's steps are for a person to do: a warning, not a report of work done
        log.log(logging.WARNING if manual else logging.INFO, "%s: %s", args.name, step)
    return EXIT_OK


def cmd_mirrors_retire(args: argparse.Namespace) -> int:
    from mirror.pipeline import retire

    config = config_from(args)
    with RunLock(config.state.path):
        removed = cli.run_async(retire(config, args.name, at=cli.utc_now()))
    log.info(
        "%s: %d files removed; it is no longer listed (the next build drops it from "
        "mirrors.json); remove it from the config when you like",
        args.name,
        removed,
    )
    return EXIT_OK


def cmd_mirrors_spawn(args: argparse.Namespace) -> int:
    from mirror.fleet.spawn import spawn

    config = config_from(args)
    with RunLock(config.state.path), Store(config.state.path) as store:
        results = [
            cli.run_async(spawn(config, store, pool, count=args.count, at=cli.utc_now()))
            for pool in args.pools
        ]
    if args.json:
        emit_json({"pools": [result.to_json() for result in results]})
    for result in results:
        log.log(logging.INFO if result.ok else logging.ERROR, "%s", result.summary())
    return EXIT_OK if all(result.ok for result in results) else EXIT_PARTIAL


def cmd_mirrors_list(args: argparse.Namespace) -> int:
    config = config_from(args)
    now = cli.utc_now()
    with Store(config.state.path) as store:
        mirrors = fleet.fleet(config, store)
    if args.json:
        emit_json({"mirrors": [mirror.to_json(now) for mirror in mirrors]})
    for mirror in mirrors:
        age = mirror.age_s(now)
        age_text = f"{age / 86_400:.1f} days" if age is not None else "as configured"
        reason = f" ({mirror.reason})" if mirror.reason else ""
        log.info("%s: %s, %s, %s%s", mirror.name, mirror.state, mirror.origin, age_text, reason)
    return EXIT_OK


def cmd_mirrors_block(args: argparse.Namespace) -> int:
    config = config_from(args)
    with RunLock(config.state.path), Store(config.state.path) as store:
        result = fleet.block(config, store, args.name, reason=args.reason, at=cli.utc_now())
    log.info("%s: blocked (was %s); the next build drops it from mirrors.json", args.name,
             result.previous)  # fmt: skip
    if result.promoted:
        log.info("%s: promoted from spare to live in its place", result.promoted)
    if result.last_live:
        log.warning(
            "WARNING: %s was the last live mirror: it is still handed out; spawn one "
            "(mirror mirrors spawn POOL) or add a [[mirrors]] table",
            args.name,
        )
    return EXIT_OK


def cmd_mirrors_unblock(args: argparse.Namespace) -> int:
    config = config_from(args)
    with RunLock(config.state.path), Store(config.state.path) as store:
        fleet.unblock(config, store, args.name, reason=args.reason, at=cli.utc_now())
    log.info("%s: live again; the next build lists it", args.name)
    return EXIT_OK
