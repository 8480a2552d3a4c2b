"""`mirror reach`: what OONI says of each listed mirror, and `--ooni-run FILE`."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from mirror import cli
from mirror.cli import EXIT_OK, EXIT_PARTIAL, config_from, emit_json, subcommand
from mirror.cli.stages import live_public_mirrors

log = logging.getLogger("mirror")


def add_reach(commands: Any) -> None:
    parser = subcommand(
        commands,
        "reach",
        cmd_reach,
        "per listed mirror and [reach] country: what OONI's measurements say (ok, anomalies, "
        "confirmed blocked, no data), cached for reach.window_h",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    parser.add_argument(
        "--refresh", action="store_true", help="ask the API again, ignoring cached verdicts"
    )
    parser.add_argument(
        "--ooni-run",
        metavar="FILE",
        help="write an OONI Run v2 descriptor of the listed mirrors' URLs to FILE (unlisted "
        "mirrors never appear) and ask OONI nothing",
    )


def cmd_reach(args: argparse.Namespace) -> int:
    from mirror.reach.run import check_reach, public_mirrors

    config = config_from(args)
    targets = public_mirrors(config, live_public_mirrors(config))
    if args.ooni_run:
        return write_descriptor(Path(args.ooni_run), config.publication.name, targets)
    report = cli.run_async(check_reach(config, targets, now=cli.utc_now(), refresh=args.refresh))
    if args.json:
        emit_json(report.to_json())
    for verdict in report.verdicts:
        level = logging.WARNING if verdict.verdict not in ("ok", "no data") else logging.INFO
        log.log(level, "%s%s", verdict.summary(), " (cached)" if verdict.cached else "")
    if not targets:
        log.info("no listed mirror: nothing to ask OONI about")
    return EXIT_PARTIAL if report.errors else EXIT_OK


def write_descriptor(path: Path, publication: str, targets: list[Any]) -> int:
    from mirror.atomic import write_atomic
    from mirror.reach.ooni_run import ooni_run_descriptor

    descriptor = ooni_run_descriptor(publication, [target.url for target in targets])
    text = json.dumps(descriptor, ensure_ascii=False, indent=2) + "\n"
    write_atomic(path, text.encode())
    log.info("OONI Run descriptor of %d listed mirror(s) written to %s", len(targets), path)
    return EXIT_OK
