"""One reader's message through mail-in, against the store and a mail transport.

`MailIn.handle(data)` runs, in order: the size check, the parse, the seen-before check,
the bounce check (recorded, never answered; `hard_bounces` permanent failures within
`bounce_window_days` disable the subscriber), the loop check, the authentication check
(unauthenticated: recorded, no reply), the rate limits (per sender and per hour: over,
no reply), then the command. The loop rules and the limits only forbid a reply: an
authenticated unsubscribe in automatic mail (Auto-Submitted, Precedence, List-*) is still
acted on, without a reply, and so is one over the limits. Its `Outcome` says whether
the message is done with (`handled`: the mailbox may move or delete it) or must stay for
the next run (a reply that could not be sent).

Exactly once: before a reply is sent the message is recorded as "replying" with the
reply's Message-ID (derived from the message), and "done" once the transport took it.
A crash in between sends that one reply again on the next run, with the same
Message-ID, and counts it against no limit twice.

Senders are logged and counted by their keyed hash (`tokens.sender_hash`), never by
address; messages are known by the keyed hash of their Message-ID (`tokens.message_key`)
and of their bytes, and only for `SEEN_WINDOW`: a message delivered again after that is
handled again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from mirror.build.locale import base_language
from mirror.config import Config, MailInConfig
from mirror.digest import subscribers
from mirror.digest.compose import DigestArticle
from mirror.digest.run import DigestRun, digest_article
from mirror.digest.tokens import token_subscriber
from mirror.errors import DeliveryError, DigestError, MailInError, SubscriberError
from mirror.mail.delivery import Transport
from mirror.mail.wire import Outgoing
from mirror.mailin import replies
from mirror.mailin.model import Bounce, Command, Inbound, MailInReport, Request
from mirror.mailin.replies import Reply, ReplyContext
from mirror.mailin.tokens import (
    confirmation,
    confirmation_token,
    message_key,
    sender_hash,
    verp_subscriber,
    verp_token_in,
)
from mirror.store import Store

log = logging.getLogger("mirror.mailin")
SENDER_WINDOW = timedelta(days=1)  # per_sender_per_day counts replies in this window
# Handled messages are known again (exactly once) for this long, then forgotten: one
# delivered again later is handled again (at most one more reply, within the limits).
SEEN_WINDOW = SENDER_WINDOW


@dataclass(frozen=True)
class Parsers:
    """The pure readers of a message (mailin.message, commands, auth, loops, bounces).

    parse(data, max_bytes) -> Inbound          MailInError for what cannot be read
    request(inbound) -> Request                what the reader asks
    authenticated(inbound, mailin) -> bool     Authentication-Results judged per `require`
    refusal(inbound, own_address) -> str|None  why we must not answer (RFC 3834), or None
    bounce(inbound, subscriber_of) -> Bounce|None  a delivery report; `subscriber_of(addr)`
                                               is the subscriber a VERP address names
    """

    parse: Callable[[bytes, int], Inbound]
    request: Callable[[Inbound], Request]
    authenticated: Callable[[Inbound, MailInConfig], bool]
    refusal: Callable[[Inbound, str], str | None]
    bounce: Callable[[Inbound, Callable[[str], int | None]], Bounce | None]


@dataclass(frozen=True)
class Outcome:
    """What became of one message."""

    kind: str  # replied | subscribed | confirmed | unsubscribed | bounce | ignored | failed
    reason: str = ""  # ignored: the report's key; failed: why (never an address)
    handled: bool = True  # False: leave the message for the next run
    replied: bool = True  # subscribed | confirmed | unsubscribed: False when no reply went

    @classmethod
    def ignored(cls, reason: str) -> Outcome:
        return cls("ignored", reason)


class MailIn:
    """Mail-in over an open store and a transport; `report` adds up every `handle`."""

    def __init__(
        self,
        config: Config,
        store: Store,
        transport: Transport,
        *,
        now: Callable[[], datetime],
        secret: bytes,
        digest_secret: bytes,
        parsers: Parsers,
        previous_digest_secrets: tuple[bytes, ...] = (),
    ) -> None:
        if config.mailin is None:
            raise MailInError("no [mailin] section in the config")
        self.config = config
        self.mailin = config.mailin
        self.store = store
        self.transport = transport
        self.now = now
        self.secret = secret  # mail-in's: sender hashes, reply ids, mirror choice
        self.digest_secret = digest_secret  # the digest's: VERP and confirmation tokens
        self.previous_digest_secrets = previous_digest_secrets  # unsubscribe tokens made before
        self.parsers = parsers
        self.report = MailInReport()
        self._context: ReplyContext | None = None
        self._articles: list[DigestArticle] | None = None
        self._current = ""  # the sha256 of the message being handled (for the report)
        self._pruned = False

    async def handle(self, data: bytes) -> Outcome:
        """Run one message through mail-in (see the module docstring)."""
        outcome = await self._handle(data)
        self._count(outcome)
        return outcome

    def _count(self, outcome: Outcome) -> None:
        report = self.report
        if not outcome.handled:
            report.failed.append({"message": self._current[:16], "reason": outcome.reason})
            return
        report.handled += 1
        if outcome.kind == "ignored":
            report.ignored[outcome.reason] = report.ignored.get(outcome.reason, 0) + 1
        elif outcome.kind == "bounce":
            report.bounces += 1
        else:
            report.replied += 1 if outcome.replied else 0
            if outcome.kind in ("subscribed", "confirmed", "unsubscribed"):
                setattr(report, outcome.kind, getattr(report, outcome.kind) + 1)

    async def _handle(self, data: bytes) -> Outcome:
        if not self._pruned:  # once a run: what is older than the window is forgotten
            self.store.forget_inbound(self.now() - SEEN_WINDOW)
            self._pruned = True
        digest = hashlib.sha256(data).hexdigest()
        self._current = digest
        if len(data) > self.mailin.max_message_bytes:
            return self._done(f"sha256:{digest}", digest, Outcome.ignored("too_large"))
        try:
            inbound = self.parsers.parse(data, self.mailin.max_message_bytes)
        except MailInError as exc:
            log.info("message %s unreadable: %s", digest[:12], exc.reason)
            return self._done(f"sha256:{digest}", digest, Outcome.ignored("malformed"))
        key = message_key(self.secret, inbound.message_id) if inbound.message_id else ""
        key = key or f"sha256:{inbound.sha256}"
        seen = self.store.inbound_state(key, inbound.sha256)
        if seen is not None and seen["state"] == "done":
            return Outcome.ignored("seen")
        return await self._judged(inbound, key, resumed=seen["outcome"] if seen else "")

    async def _judged(self, inbound: Inbound, key: str, *, resumed: str) -> Outcome:
        """`resumed`: the outcome recorded before a crash ("" for a new message)."""
        bounce = self.parsers.bounce(inbound, self.verp_subscriber)
        if bounce is not None:
            return self._done(key, inbound.sha256, self._bounced(bounce))
        request = self._request(inbound)
        refusal = self.parsers.refusal(inbound, self.mailin.address)
        # The loop rules forbid replying, not acting: an unsubscribe is still honoured
        # (but never our own message coming back)
        acted_on = refusal != "own_message" and request.command is Command.UNSUBSCRIBE
        if refusal is not None and not acted_on:
            return self._done(key, inbound.sha256, Outcome.ignored(refusal))
        if not inbound.sender or not self.parsers.authenticated(inbound, self.mailin):
            return self._done(key, inbound.sha256, Outcome.ignored("unauthenticated"))
        if refusal is not None:
            return self._done(key, inbound.sha256, self._unanswered(inbound, request, refusal))
        try:
            return await self._command(inbound, key, request, resumed=resumed)
        except (DigestError, MailInError) as exc:
            log.warning("message %s: no reply could be made: %s", inbound.sha256[:12], exc)
            return Outcome("failed", f"no reply could be made: {exc}", handled=False)

    def verp_subscriber(self, address: str) -> int | None:
        """The subscriber a bounce address (digest.return_path + token) names."""
        return_path = self.config.digest.return_path
        token = verp_token_in(return_path, address) if return_path else None
        return verp_subscriber(self.digest_secret, token) if token else None

    def _bounced(self, bounce: Bounce) -> Outcome:
        now = self.now()
        window = now - timedelta(days=self.mailin.bounce_window_days)
        disabled = self.store.record_bounce(
            bounce.subscriber_id, permanent=bounce.permanent, status=bounce.status, at=now,
            window_start=window, hard_limit=self.mailin.hard_bounces,
        )  # fmt: skip
        kind = "permanent" if bounce.permanent else "transient"
        log.info("subscriber %d: %s bounce %s", bounce.subscriber_id, kind, bounce.status)
        if disabled:
            log.warning("subscriber %d disabled: too many permanent bounces", bounce.subscriber_id)
        return Outcome("bounce", kind)

    def _request(self, inbound: Inbound) -> Request:
        request = self.parsers.request(inbound)
        mailto = self.config.digest.unsubscribe_mailto.lower()
        if request.command is not Command.UNSUBSCRIBE and mailto and mailto in inbound.recipients:
            return Request(Command.UNSUBSCRIBE, request.language)
        return request

    def _unanswered(self, inbound: Inbound, request: Request, refusal: str) -> Outcome:
        """An unsubscribe in mail we must not answer (RFC 3834): done, without a reply."""
        if self._unsubscribe(inbound, request) is None:
            return Outcome.ignored(refusal)
        return Outcome("unsubscribed", refusal, replied=False)

    async def _command(
        self, inbound: Inbound, key: str, request: Request, *, resumed: str
    ) -> Outcome:
        who = sender_hash(self.secret, inbound.sender)
        made = self._act(inbound, request, who, resumed=resumed)
        if isinstance(made, Outcome):
            return self._done(key, inbound.sha256, made)
        kind, reply = made
        if not resumed:
            limited = self._take(who, key, inbound.sha256, kind, reply)
            if limited is not None:
                log.info("sender %s: no reply, %s", who[:12], limited)
                return self._done(key, inbound.sha256, _unreplied(kind, "rate_limited"))
        return await self._send(inbound, key, kind, reply, who)

    def _take(self, who: str, key: str, sha: str, kind: str, reply: Reply) -> str | None:
        """Count the reply against the limits and record it as being sent, at once."""
        now = self.now()
        with self.store.transaction():
            limited = self.store.take_reply(
                who, at=now, window_start=now - SENDER_WINDOW,
                per_sender=self.mailin.per_sender_per_day,
                hour=now.strftime("%Y-%m-%dT%H"), per_hour=self.mailin.global_per_hour,
            )  # fmt: skip
            if limited is None:
                self.store.record_inbound(
                    key, sha, state="replying", outcome=kind, at=now,
                    reply_message_id=reply.message_id,
                )  # fmt: skip
        return limited

    async def _send(self, inbound: Inbound, key: str, kind: str, reply: Reply, who: str) -> Outcome:
        subscriber_id = self.store.subscriber_id(inbound.sender) or 0
        outgoing = Outgoing(subscriber_id, reply.to, reply.message, reply.message_id)
        try:
            await self.transport.send(outgoing)
        except DeliveryError as exc:
            if not exc.permanent:
                return self._unsent(who, exc)
            # refused for good (550 5.1.1): retrying would fail the same way, forever
            log.warning("sender %s: the reply was refused for good: %s", who[:12], exc.reason)
            return self._done(key, inbound.sha256, _unreplied(kind, "reply_refused"))
        except DigestError as exc:
            return self._unsent(who, exc)
        log.info("sender %s: %s", who[:12], kind)
        return self._done(key, inbound.sha256, Outcome(kind))

    @staticmethod
    def _unsent(who: str, exc: DigestError) -> Outcome:
        log.warning("sender %s: the reply could not be sent: %s", who[:12], exc)
        return Outcome("failed", f"the reply could not be sent: {exc}", handled=False)

    def _done(self, key: str, sha: str, outcome: Outcome) -> Outcome:
        self.store.record_inbound(
            key, sha, state="done", outcome=outcome.kind, reason=outcome.reason, at=self.now()
        )
        return outcome

    # --- the commands ------------------------------------------------------------------------

    def _act(
        self, inbound: Inbound, request: Request, who: str, *, resumed: str = ""
    ) -> Outcome | tuple[str, Reply]:
        """The command's change to the store, and its reply (or why there is none)."""
        context, language = self.context(), _language(request.language)
        command = request.command
        if command is Command.SUBSCRIBE:
            return self._subscribe(inbound, request, language)
        if command is Command.CONFIRM:
            return self._confirm(inbound, request, who)
        if command is Command.UNSUBSCRIBE:
            # resumed after a crash: the unsubscribe happened, its reply was not recorded
            if self._unsubscribe(inbound, request) is None and resumed != "unsubscribed":
                return "replied", replies.not_subscribed_reply(context, inbound, language)
            return "unsubscribed", replies.unsubscribed_reply(context, inbound, language)
        if command is Command.LATEST:
            articles = self.latest_articles(language)
            found = self.store.subscriber_id(inbound.sender)
            reply = replies.latest_reply(context, inbound, language, who, articles, found)
            return "replied", reply
        if command is Command.HELP:
            return "replied", replies.help_reply(context, inbound, language)
        help = not request.understood
        return "replied", replies.mirrors_reply(context, inbound, language, who, help=help)

    def _subscribe(
        self, inbound: Inbound, request: Request, language: str
    ) -> Outcome | tuple[str, Reply]:
        try:
            address = subscribers.normalise_address(inbound.sender)
        except SubscriberError:
            return Outcome.ignored("bad_address")
        wanted = request.argument if request.argument in ("en", "ru") else language
        token = confirmation_token(self.digest_secret, address, wanted, now=self.now())
        watched = subscribers.watched(address, self.config.digest.watched_domains)
        reply = replies.confirmation_reply(self.context(), inbound, wanted, token, watched=watched)
        return "subscribed", reply

    def _confirm(self, inbound: Inbound, request: Request, who: str) -> Outcome | tuple[str, Reply]:
        carried = confirmation(self.digest_secret, request.argument, now=self.now())
        if carried is None:
            return Outcome.ignored("bad_token")
        if carried.address != inbound.sender.lower():
            return Outcome.ignored("token_of_another")
        added = subscribers.add(
            self.store, carried.address, carried.language, at=self.now(), watch=()
        )
        log.info("subscriber %d confirmed (sender %s)", added.id, who[:12])
        language = _language(carried.language)
        articles = self.latest_articles(language)
        reply = replies.welcome_reply(self.context(), inbound, language, who, articles, added.id)
        return "confirmed", reply

    def _unsubscribe(self, inbound: Inbound, request: Request) -> int | None:
        """Unsubscribe the subscriber the mail's signed token names (the digest's mailto
        link carries it), else the sender; the id unsubscribed, None when neither was
        subscribed."""
        for found in (self._token_subscriber(request), self._sender_subscriber(inbound)):
            if found is not None and self.store.unsubscribe(found, self.now()):
                log.info("subscriber %d unsubscribed by mail", found)
                return found
        return None

    def _token_subscriber(self, request: Request) -> int | None:
        if not request.argument:
            return None
        return token_subscriber(
            self.digest_secret, request.argument, previous=self.previous_digest_secrets
        )

    def _sender_subscriber(self, inbound: Inbound) -> int | None:
        try:
            return self.store.subscriber_id(subscribers.normalise_address(inbound.sender))
        except SubscriberError:
            return None

    # --- welcomes owed to readers who confirmed on the web --------------------------------

    async def send_owed_welcomes(self) -> int:
        """Send the welcomes `serve-unsubscribe` recorded as owed (at most
        `global_per_hour` a run); how many went. One that cannot be sent stays owed; a
        crash after sending repeats it once, with the same Message-ID."""
        sent = 0
        for subscriber_id, owed_at in self.store.owed_welcomes(self.mailin.global_per_hour):
            row = self.store.subscriber(subscriber_id)
            if row is not None and self.store.is_subscribed(subscriber_id):
                if not await self._welcome(subscriber_id, row, owed_at):
                    continue
                sent += 1
            self.store.welcome_done(subscriber_id)
        self.report.welcomed += sent
        return sent

    async def _welcome(self, subscriber_id: int, row: dict[str, Any], owed_at: str) -> bool:
        language = _language(row["lang"])
        who = sender_hash(self.secret, row["email"])
        to = _addressed(row["email"], f"welcome:{subscriber_id}:{owed_at}")
        articles = self.latest_articles(language)
        reply = replies.welcome_reply(self.context(), to, language, who, articles, subscriber_id)
        try:
            await self.transport.send(
                Outgoing(subscriber_id, reply.to, reply.message, reply.message_id)
            )
        except DigestError as exc:
            log.warning("subscriber %d: the welcome could not be sent: %s", subscriber_id, exc)
            return isinstance(exc, DeliveryError) and exc.permanent  # refused for good: done
        log.info("subscriber %d: welcome sent (confirmed on the web)", subscriber_id)
        return True

    # --- what replies are made of --------------------------------------------------------------

    def context(self) -> ReplyContext:
        """The live edition's keys, manifest and mirrors; made once per run."""
        now = self.now()
        if self._context is None:
            run = DigestRun(self.config, self.store, now=now, secret=self.digest_secret)
            version, sha = run.latest()
            self._context = ReplyContext(
                digest=run.context(0, now, version, sha),
                address=parseaddr(self.mailin.address)[1] or self.mailin.address,
                secret=self.secret,
                now=now,
                mirrors_per_reply=self.mailin.mirrors_per_reply,
                confirm_url=replies.confirm_url_from(self.config.digest.unsubscribe_url),
            )
        return replace(self._context, now=now)

    def latest_articles(self, language: str) -> list[DigestArticle]:
        """The newest `latest_articles` articles, in `language` when there are any."""
        if self._articles is None:
            run = DigestRun(self.config, self.store, now=self.now(), secret=self.digest_secret)
            self._articles = [digest_article(a) for a in run.edition_articles() if a.path]
        own = [a for a in self._articles if base_language(a.language) == language]
        return (own or self._articles)[: self.mailin.latest_articles]


def _addressed(address: str, key: str) -> Inbound:
    """A stand-in for the message a reply answers, for mail no message asked for (the
    welcome after a web confirmation): `key` makes its Message-ID."""
    domain = address.rpartition("@")[2]
    return Inbound(
        sha256=key, size=0, message_id="", sender=address, sender_domain=domain,
        envelope_sender=address, recipients=(), subject="", first_line="", body_text="",
    )  # fmt: skip


def _unreplied(kind: str, reason: str) -> Outcome:
    """No reply went: ignored, or an unsubscribe that happened all the same."""
    if kind == "unsubscribed":
        return Outcome(kind, reason, replied=False)
    return Outcome.ignored(reason)


def _language(language: str) -> str:
    return language if language in ("en", "ru") else "en"
