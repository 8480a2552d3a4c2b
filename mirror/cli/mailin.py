"""`mirror mail-in once|run|--stdin`: readers' mail in, from the IMAP mailbox or a pipe.

`--stdin` is for Postfix's `pipe` transport and answers in sysexits, which Postfix reads:
0 the message was handled or ignored (an unreadable or unauthenticated one too: a
bounce would go to a sender who may be forged); 75 (EX_TEMPFAIL: Postfix keeps the
message and tries again) for everything else: the reply could not be sent, the store is
locked or cannot be used, the config is wrong, a signal, any unexpected error. Never 78
(EX_CONFIG) nor 1: Postfix keeps the message only on 75 and EX_OSERR (sys_exits.c) and
bounces it on any other status, to a sender who may be forged, and the mail is lost.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path
from typing import IO, Any

from mirror import cli  # cli.utc_now: the one clock, read through the package so a test can set it
from mirror.cli import EXIT_OK, EXIT_PARTIAL, add_common, config_from, emit_json, subcommand
from mirror.errors import ConfigError, MirrorError, UsageError
from mirror.store import RunLock, Store

log = logging.getLogger("mirror")

EX_OK, EX_TEMPFAIL = 0, 75  # sysexits.h
DRAIN_CHUNK_BYTES = 65_536
MAX_DRAIN_BYTES = 1_000_000_000  # past the limit, the rest of a piped message is read and
# dropped (the MTA sees it taken), up to this much


def add_mail_in(commands: Any) -> None:
    parser = subcommand(
        commands, "mail-in", cmd_mail_in, "readers' mail: requests, subscriptions, bounces"
    )
    parser.add_argument(
        "--stdin",
        action="store_true",
        help="handle one message read from stdin (Postfix's pipe transport); exits 0 "
        "handled or ignored, 75 kept for later (also a bad config: Postfix would bounce "
        "on any other status)",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    once = actions.add_parser("once", help="handle what waits in the IMAP mailbox, then exit")
    add_common(once, sub=True)
    once.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    once.set_defaults(handler=cmd_mail_in_once)
    run = actions.add_parser(
        "run", help="keep an IDLE connection to the IMAP mailbox and answer as mail arrives"
    )
    add_common(run, sub=True)
    run.set_defaults(handler=cmd_mail_in_run)


def cmd_mail_in(args: argparse.Namespace) -> int:
    if not args.stdin:
        raise UsageError("say what to do: `mirror mail-in once`, `run` or `--stdin`")
    return cmd_mail_in_stdin(args)


# --stdin


def cmd_mail_in_stdin(args: argparse.Namespace) -> int:
    """One message from stdin; sysexits (see the module docstring): 0 or 75, nothing else."""
    try:
        return piped(args, sys.stdin.buffer)
    except ConfigError as exc:  # 75, not 78: Postfix would bounce the reader's mail
        log.critical("mail-in is not configured right, fix it: %s (the message stays with "
                     "the MTA, which tries again until its queue lifetime ends)", exc)  # fmt: skip
        return EX_TEMPFAIL
    except MirrorError as exc:  # locked, unwritable, a server: try again later
        log.error("%s: the message stays with the MTA", exc)
        return EX_TEMPFAIL
    except KeyboardInterrupt:  # SIGTERM (Postfix stopping): 143 would bounce the mail
        log.error("interrupted: the message stays with the MTA")
        return EX_TEMPFAIL
    except Exception as exc:  # a bug must not bounce the reader's mail
        log.critical("mail-in failed: %s: the message stays with the MTA", where(exc))
        return EX_TEMPFAIL


def where(exc: BaseException) -> str:
    """An exception's class and the line that raised it; not its text, which may hold
    an address."""
    frames = traceback.extract_tb(exc.__traceback__)
    last = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"unexpected {type(exc).__name__}{last}"


def piped(args: argparse.Namespace, stream: IO[bytes]) -> int:
    from mirror.mailin.run import handle_piped, mailin_of, reply_transport, secrets_from

    config = config_from(args)
    secrets = secrets_from(config)
    data = read_bounded(stream, mailin_of(config).max_message_bytes + 1)
    with RunLock(config.state.path), Store(config.state.path) as store:
        transport = reply_transport(config)

        async def handle() -> Any:
            try:
                return await handle_piped(
                    config, store, data, now=cli.utc_now, transport=transport, secrets=secrets
                )
            finally:
                await transport.close()

        outcome, report = cli.run_async(handle())
    log.info("%s", report.summary())
    if not outcome.handled:
        log.error("%s: the message stays with the MTA", outcome.reason)
        return EX_TEMPFAIL
    return EX_OK


def read_bounded(stream: IO[bytes], max_bytes: int) -> bytes:
    """Up to `max_bytes` of the stream; the rest is read and dropped."""
    data = stream.read(max_bytes)
    dropped = 0
    while dropped < MAX_DRAIN_BYTES and stream.read(DRAIN_CHUNK_BYTES):
        dropped += DRAIN_CHUNK_BYTES
    return data


# once, run


def cmd_mail_in_once(args: argparse.Namespace) -> int:
    from mirror.mailin.run import imap_password, mail_in_from_mailbox, secrets_from

    config = config_from(args)
    secrets, password = secrets_from(config), imap_password(config)
    with RunLock(config.state.path), Store(config.state.path) as store:
        report = cli.run_async(
            mail_in_from_mailbox(config, store, now=cli.utc_now, secrets=secrets, password=password)
        )
    if args.json:
        emit_json(report.to_json())
    for failure in report.failed:
        log.warning("message %s: %s", failure["message"], failure["reason"])
    log.info("%s", report.summary())
    return EXIT_PARTIAL if report.failed else EXIT_OK


def cmd_mail_in_run(args: argparse.Namespace) -> int:
    from mirror.mailin.run import imap_password, run_forever, secrets_from

    config = config_from(args)
    secrets, password = secrets_from(config), imap_password(config)
    log.info("mail-in: watching the mailbox until SIGTERM")
    cli.run_async(run_forever(config, now=cli.utc_now, secrets=secrets, password=password))
    return EXIT_OK  # not reached: it runs until a signal
