"""`mirror doctor`: one line per check of the config, keys, mirrors, mail servers and
feeds, with the fix when one fails (mirror.doctor). Exit 0 all ok (warnings included),
1 some check failed, 2 the config does not load (one FAIL line says why)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mirror import cli
from mirror.cli import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, config_from, emit_json, subcommand
from mirror.cli.stages import positive_seconds
from mirror.config import Config, find_config
from mirror.doctor import DEFAULT_DEADLINE_S, DoctorReport, config_check, run_checks
from mirror.errors import ConfigError


def add_doctor(commands: Any) -> None:
    parser = subcommand(
        commands, "doctor", cmd_doctor,
        "check the config, keys, keys.json, output_dir, secrets, each mirror's credentials "
        "and public URL, pools, the SMTP and IMAP servers and the feeds: one line per check, "
        "with the fix; sends no mail, writes to no mirror",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    parser.add_argument(
        "--deadline-s",
        type=positive_seconds,
        default=DEFAULT_DEADLINE_S,
        metavar="SECONDS",
        help=f"the whole run's bound: a check not done by then fails (default "
        f"{DEFAULT_DEADLINE_S:g}); each check is also bounded by its own timeout_s",
    )


def cmd_doctor(args: argparse.Namespace) -> int:
    shown = str(find_config(args.config))
    try:
        config: Config = config_from(args)
    except ConfigError as exc:
        show(args, DoctorReport((config_check(shown, exc),)))
        return EXIT_USAGE
    report = cli.run_async(run_checks(config, now=cli.utc_now(), deadline_s=args.deadline_s))
    report = DoctorReport((config_check(str(config.path), None), *report.checks))
    show(args, report)
    return EXIT_OK if report.ok else EXIT_PARTIAL


def show(args: argparse.Namespace, report: DoctorReport) -> None:
    """The JSON document on stdout with --json; the lines on stderr (-q: only the
    checks that are not plainly ok)."""
    if args.json:
        emit_json(report.to_json())
    for check in report.checks:
        if args.quiet <= 0 or not check.ok or check.warning:
            sys.stderr.write(check.line() + "\n")
    if args.quiet <= 0:
        sys.stderr.write(f"doctor: {report.summary()}\n")
    sys.stderr.flush()
