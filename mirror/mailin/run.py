"""Mail-in's I/O edge: the secrets, the reply transport, and the three ways mail comes in.

- `handle_piped`: one message handed over by the MTA (`mirror mail-in --stdin`).
- `mail_in_once`: what waits in the mailbox, in batches; each handled message is moved to
  the done mailbox (or deleted), one whose reply could not be sent stays for the next run;
  a message over `max_message_bytes` is never downloaded: it is counted as
  `ignored: too_large` and moved (or deleted) unread like a handled one.
- `send_welcomes`: the welcomes owed to readers who confirmed on serve-unsubscribe's
  page (each of the above sends them too, after the mail).
- `mail_in_forever`: IDLE on the mailbox for systemd (`mirror mail-in run`): a round of
  `once` whenever mail arrives (or the IDLE times out), the run lock and the store held
  only during a round, reconnects with backoff (`mirror.retry`) after a lost connection.

Everything here is bounded by the mailbox's limits (messages listed, bytes per message,
seconds per command) and the handler's (replies per sender and per hour).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from mirror.config import Config, MailInConfig
from mirror.credentials import SecretSource
from mirror.errors import ConfigError, MailboxError, StoreLockedError
from mirror.mail.delivery import Transport, transport_for
from mirror.mailin.handle import MailIn, Outcome, Parsers
from mirror.mailin.model import MailInReport
from mirror.mailin.parsers import real_parsers
from mirror.retry import RetryPolicy, Sleep
from mirror.store import RunLock, Store

if TYPE_CHECKING:  # aioimaplib loads only when a mailbox is read: the pipe needs none
    from mirror.mail.imap import ImapSettings, Mailbox

log = logging.getLogger("mirror.mailin")
Clock = Callable[[], datetime]

MIN_SECRET_CHARS = 16
IDLE_S = 600.0  # one IDLE at most: RFC 2177 asks for a new one within 29 minutes
LOCKED_RETRY_S = 30.0  # another run holds the store: try the mailbox again after this
# reconnecting after a lost connection: 1 s, 2 s, 4 s ... 5 minutes between attempts
RECONNECT = RetryPolicy(retries=1_000_000, backoff_s=1.0, jitter=0.3, max_backoff_s=300.0)
MAX_BACKOFF_STEP = 30  # 2 ** 30 s is far past max_backoff_s: no float overflow


@dataclass(frozen=True)
class MailInSecrets:
    """Mail-in's key (senders' hashes, reply ids) and the digest's (VERP, confirmation)."""

    sender: bytes = field(repr=False)
    digest: bytes = field(repr=False)
    digest_previous: tuple[bytes, ...] = field(default=(), repr=False)  # before rotations


# --- secrets and the transport ----------------------------------------------------------


def mailin_of(config: Config) -> MailInConfig:
    """The [mailin] section, or a ConfigError saying it is missing."""
    if config.mailin is None:
        raise ConfigError("no [mailin] section: mail-in is off", path=str(config.path))
    return config.mailin


def secrets_from(config: Config) -> MailInSecrets:
    """Both keys, from their files or variables (ConfigError when missing or short)."""
    from mirror.digest.run import previous_secrets, secret_from

    mailin = mailin_of(config)
    source = SecretSource(
        "mailin.sender_secret", mailin.sender_secret_file, mailin.sender_secret_env
    )
    value = source.read(str(config.path)) or ""
    if len(value) < MIN_SECRET_CHARS:
        raise source.refusal(
            str(config.path),
            f"must hold a secret of {MIN_SECRET_CHARS} characters or more: "
            "it keys the senders' hashes",
        )
    return MailInSecrets(
        sender=value.encode("utf-8"), digest=secret_from(config),
        digest_previous=previous_secrets(config),
    )  # fmt: skip


def imap_password(config: Config) -> str:
    """The IMAP password, from mailin.password_file or mailin.password_env."""
    mailin = mailin_of(config)
    source = SecretSource("mailin.password", mailin.password_file, mailin.password_env)
    return source.require(str(config.path), "the IMAP password")


def reply_transport(config: Config) -> Transport:
    """Where replies go: the digest's SMTP server (or its outbox), from mailin.address."""
    from mirror.digest.run import smtp_password

    address = mailin_of(config).address
    sender = parseaddr(address)[1] or address
    return transport_for(config.digest, password=smtp_password(config), sender_address=sender)


def make_mail_in(
    config: Config,
    store: Store,
    transport: Transport,
    *,
    now: Clock,
    secrets: MailInSecrets,
    parsers: Parsers | None = None,
) -> MailIn:
    """A MailIn over the real parsers (or `parsers`)."""
    return MailIn(
        config, store, transport, now=now, secret=secrets.sender, digest_secret=secrets.digest,
        parsers=parsers or real_parsers(config), previous_digest_secrets=secrets.digest_previous,
    )  # fmt: skip


def advancing(start: datetime) -> Clock:
    """A clock that starts at `start` and runs on with the monotonic clock (for `sync`,
    which is given one moment)."""
    started_s = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - started_s)


# --- one message from a pipe --------------------------------------------------------------


async def handle_piped(
    config: Config,
    store: Store,
    data: bytes,
    *,
    now: Clock,
    transport: Transport,
    secrets: MailInSecrets,
) -> tuple[Outcome, MailInReport]:
    """One message from the MTA: its outcome (`handled` False: the reply could not be sent,
    the MTA should try again later) and the report."""
    mailin = make_mail_in(config, store, transport, now=now, secrets=secrets)
    outcome = await mailin.handle(data)
    await mailin.send_owed_welcomes()
    return outcome, mailin.report


# --- the mailbox ----------------------------------------------------------------------------


async def mail_in_once(
    config: Config,
    store: Store,
    *,
    now: Clock,
    transport: Transport,
    mailbox: Mailbox,
    secrets: MailInSecrets,
    parsers: Parsers | None = None,
) -> MailInReport:
    """Handle what waits in the mailbox (see the module docstring)."""
    mailin = make_mail_in(config, store, transport, now=now, secrets=secrets, parsers=parsers)
    await handle_waiting(mailin, mailbox, finish_every=mailin_of(config).batch)
    await mailin.send_owed_welcomes()
    return mailin.report


async def handle_waiting(mailin: MailIn, mailbox: Mailbox, *, finish_every: int) -> None:
    """One pass over the mailbox: too large ones counted and finished unread, the rest
    fetched in batches and handled; finished (moved or deleted) `finish_every` at a time."""
    waiting = await mailbox.waiting()
    done = [message.uid for message in waiting if message.too_large]
    report = mailin.report
    if done:
        report.handled += len(done)
        report.ignored["too_large"] = report.ignored.get("too_large", 0) + len(done)
        log.info("%d message(s) over mailin.max_message_bytes: finished unread", len(done))
    wanted = [message.uid for message in waiting if not message.too_large]
    async for uid, data in mailbox.fetch(wanted):
        if (await mailin.handle(data)).handled:
            done.append(uid)
        if len(done) >= finish_every:
            await mailbox.finish(done)
            done = []
    await mailbox.finish(done)


async def mail_in_forever(
    config: Config,
    *,
    now: Clock,
    secrets: MailInSecrets,
    connect: Callable[[], AbstractAsyncContextManager[Mailbox]],
    make_transport: Callable[[], Transport],
    idle_s: float = IDLE_S,
    policy: RetryPolicy = RECONNECT,
    sleep: Sleep = asyncio.sleep,
) -> NoReturn:
    """Rounds of `once` on one IDLE connection, until cancelled (a signal). A lost
    connection is opened again after a backoff; an error that retrying cannot mend (a
    refused login, TLS) is raised."""
    failures = 0
    while True:
        try:
            async with connect() as mailbox:
                failures = 0
                await _serve(config, mailbox, now=now, secrets=secrets,
                             make_transport=make_transport, idle_s=idle_s)  # fmt: skip
        except MailboxError as exc:
            wait_s = policy.delay_s(exc, min(failures, MAX_BACKOFF_STEP))
            if wait_s is None:
                raise
            log.warning("mail-in: %s; connecting again in %.0f s", exc, wait_s)
            failures += 1
            await sleep(wait_s)


async def _serve(
    config: Config,
    mailbox: Mailbox,
    *,
    now: Clock,
    secrets: MailInSecrets,
    make_transport: Callable[[], Transport],
    idle_s: float,
) -> NoReturn:
    while True:
        done = await mail_in_round(
            config, mailbox, now=now, secrets=secrets, make_transport=make_transport
        )
        log.debug("mail-in: waiting for new mail (IDLE)")
        await mailbox.idle(idle_s if done else min(idle_s, LOCKED_RETRY_S))


async def mail_in_round(
    config: Config,
    mailbox: Mailbox,
    *,
    now: Clock,
    secrets: MailInSecrets,
    make_transport: Callable[[], Transport],
) -> bool:
    """One `once` under the run lock, on a store and a transport of its own; False when
    another run holds the store (the mail waits for the next round)."""
    path: Path = config.state.path
    try:
        with RunLock(path), Store(path) as store:
            transport = make_transport()
            try:
                report = await mail_in_once(
                    config, store, now=now, transport=transport, mailbox=mailbox, secrets=secrets
                )
            finally:
                await transport.close()
    except StoreLockedError as exc:
        log.info("mail-in: %s", exc)
        return False
    if report.handled or report.failed:
        log.info("%s", report.summary())
    for failure in report.failed:
        log.warning("message %s: %s", failure["message"], failure["reason"])
    return True


# --- the IMAP mailbox -----------------------------------------------------------------------


def imap_settings(config: Config, password: str) -> ImapSettings:
    """The [mailin] section as the IMAP mailbox's settings."""
    from mirror.mail.imap import ImapSettings

    mailin = mailin_of(config)
    if not mailin.imap_url:
        raise ConfigError(
            "is empty: `once` and `run` read the IMAP mailbox (the pipe needs none)",
            path=str(config.path),
            key="mailin.imap_url",
        )
    return ImapSettings(
        url=mailin.imap_url, username=mailin.username, password=password,
        mailbox=mailin.mailbox, done_mailbox=mailin.done_mailbox, keep=mailin.keep,
        timeout_s=mailin.timeout_s, batch=mailin.batch,
        max_message_bytes=mailin.max_message_bytes,
    )  # fmt: skip


async def mail_in_from_mailbox(
    config: Config, store: Store, *, now: Clock, secrets: MailInSecrets, password: str
) -> MailInReport:
    """`mail_in_once` on the configured IMAP mailbox, replies through the configured
    transport (`mirror mail-in once`, and `mirror sync`)."""
    from mirror.mail.imap import ImapMailbox

    settings = imap_settings(config, password)
    transport = reply_transport(config)
    try:
        async with ImapMailbox(settings) as mailbox:
            return await mail_in_once(
                config, store, now=now, transport=transport, mailbox=mailbox, secrets=secrets
            )
    finally:
        await transport.close()


async def send_welcomes(
    config: Config, store: Store, *, now: Clock, secrets: MailInSecrets
) -> MailInReport:
    """Only the welcomes owed to readers who confirmed on the web (`mirror sync` when
    mail comes in by the pipe, not from a mailbox)."""
    transport = reply_transport(config)
    try:
        mailin = make_mail_in(config, store, transport, now=now, secrets=secrets)
        await mailin.send_owed_welcomes()
    finally:
        await transport.close()
    return mailin.report


async def run_forever(
    config: Config, *, now: Clock, secrets: MailInSecrets, password: str
) -> NoReturn:
    """`mail_in_forever` on the configured IMAP mailbox (`mirror mail-in run`)."""
    from mirror.mail.imap import ImapMailbox

    settings = imap_settings(config, password)
    await mail_in_forever(
        config, now=now, secrets=secrets, connect=lambda: ImapMailbox(settings),
        make_transport=lambda: reply_transport(config),
    )  # fmt: skip
