"""`mirror mirrors setup` and `mirror mirrors retire`."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from mirror.cli import EXIT_OK, add_common, config_from, subcommand
from mirror.errors import UsageError
from mirror.store import RunLock

log = logging.getLogger("mirror")


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
