"""`mirror digest send`: one digest run — who gets what, composing each message, sending
it, and recording every (digest, subscriber) send so that a run killed at any moment and
started again delivers every remaining message and none twice (except those in flight
at the kill, sent again with the same Message-ID so mail clients fold them).

States of a send: sent (recorded the moment the server has taken the message, one
commit each), failed (permanent: 5xx), deferred (4xx, server down: tried again next
run), skipped. A subscriber with no record yet is still due one. A message the server
took right before a kill, unrecorded, is the "in flight" one sent again: at most one
per connection. A digest is finished when everyone has a record (a deferred one too).

A deferral never holds the others back: the digest finishes, and stays open for the
deferred recipient alone. Each run first tries such open sends again, as they were (same
digest, same articles, same Message-ID); a recipient with one is left out of any newer
digest until it is sent, so their next digest covers everything since the last one they
got (`Store.last_sent_versions`): nothing is lost, nothing comes twice. A new digest
is made for a welcome, or for an edition newer than the last digest's. After
`digest.max_deferrals` runs deferred, the send counts failed, with the last reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from mirror import fleet
from mirror.build.daily import DailyFile, parse_daily_path
from mirror.build.locale import base_language
from mirror.build.render import INDEX_HTML, is_index_path
from mirror.config import Config
from mirror.credentials import SecretSource
from mirror.digest.compose import (
    SIGNATURE_SUFFIX,
    Composer,
    DigestArticle,
    DigestContext,
    DigestMirror,
    Recipient,
    compose,
    message_id,
    readable,
)
from mirror.errors import DigestError, SubscriberError
from mirror.fetch.urls import with_slash
from mirror.mail.delivery import Delivery, Transport, deliver, transport_for
from mirror.mail.wire import Outgoing
from mirror.mailin.tokens import verp_address
from mirror.progress import counted
from mirror.store import EditionArticle, Store, link_map, parse_iso, with_own_canonicals
from mirror.trust.keyfiles import load_signing_public_key, published_keys

log = logging.getLogger("mirror.digest")
# -v: each digest's decision; -vv: each recipient, by subscriber id (never the address)
detail = logging.getLogger("mirror.detail.digest")
DONE_STATES = ("sent", "failed", "skipped")
CLOSED_STATES = (*DONE_STATES, "deferred")  # a digest whose sends are all closed is finished
RETRY_NOTE = "will be retried at the next run"
MAX_SIGNATURE_BYTES = 4_096  # a .minisig: two comment lines and two base64 lines


@dataclass
class DigestReport:
    digest: int | None = None
    sent: int = 0
    skipped: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)  # {"subscriber", "reason"}
    # temporary refusals (4xx, no connection): {"subscriber", "reason"}, tried again next run
    deferrals: list[dict[str, Any]] = field(default_factory=list)
    welcomed: int = 0  # of `sent`: welcomes to subscribers ops added (their first message)
    retried: int = 0  # sends deferred at an earlier run tried again (counted in the above too)
    resumed: bool = False
    nothing_new: bool = False
    preview: str = ""  # --dry-run: the message one subscriber would get
    would_send: int = 0  # --dry-run: how many would get one
    would_retry: int = 0  # --dry-run: deferred sends a real run would try again

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "sent": self.sent,
            "skipped": self.skipped,
            "failed": self.failed,
            "deferred": self.deferred,
            "deferrals": self.deferrals,
            "welcomed": self.welcomed,
            "retried": self.retried,
            "resumed": self.resumed,
            "nothing_new": self.nothing_new,
            "would_send": self.would_send,
            "would_retry": self.would_retry,
        }

    @property
    def deferred(self) -> int:
        """How many recipients were deferred (each is in `deferrals`, never in `failed`)."""
        return len(self.deferrals)

    @property
    def partial(self) -> bool:
        """Some recipient did not get the digest in this run: failed, or deferred to the
        next (exit status 1 either way: see README's exit table)."""
        return bool(self.failed or self.deferrals)

    def summary(self) -> str:
        retried = f"; {self.retried} deferred earlier retried" if self.retried else ""
        if self.nothing_new and not self.retried:
            return "digest: nothing new since the last one; nothing sent"
        deferred = f", {self.deferred} deferred ({RETRY_NOTE})" if self.deferred else ""
        welcomed = f" ({self.welcomed} of them welcomes)" if self.welcomed else ""
        name = "digest: no new digest" if self.digest is None else f"digest {self.digest}"
        return (
            f"{name}: {self.sent} sent{welcomed}, {self.skipped} skipped, "
            f"{len(self.failed)} failed{deferred}"
            + (" (resumed)" if self.resumed else "")
            + retried
        )

    def dry_summary(self) -> str:
        """What a real run would do (`--dry-run`)."""
        retry = (
            f"; {self.would_retry} deferred at an earlier run would be tried again"
            if self.would_retry
            else ""
        )
        return f"{counted(self.would_send, 'subscriber')} would get this digest{retry}"


def secret_from(config: Config) -> bytes:
    digest = config.digest
    source = SecretSource(
        "digest.unsubscribe_secret", digest.unsubscribe_secret_file, digest.unsubscribe_secret_env
    )
    value = source.read(str(config.path)) or ""
    if len(value) < 16:
        raise source.refusal(
            str(config.path),
            "must hold a secret of 16 characters or more: it signs every unsubscribe link",
        )
    return value.encode("utf-8")


def previous_secrets(config: Config) -> tuple[bytes, ...]:
    """The secrets in use before the last rotations (none when the variable is unset);
    separated by spaces or newlines."""
    digest = config.digest
    source = SecretSource(
        "digest.unsubscribe_previous_secrets",
        digest.unsubscribe_previous_secrets_file,
        digest.unsubscribe_previous_secrets_env,
    )
    values = (source.read(str(config.path)) or "").split()
    if any(len(value) < 16 for value in values):
        raise source.refusal(str(config.path), "holds a secret shorter than 16 characters")
    return tuple(value.encode("utf-8") for value in values)


def smtp_password(config: Config) -> str | None:
    digest = config.digest
    if not digest.smtp_url or not digest.smtp_username:
        return None
    source = SecretSource(
        "digest.smtp_password", digest.smtp_password_file, digest.smtp_password_env
    )
    return source.require(str(config.path), "the SMTP password")


def due(store: Store, config: Config, now: datetime) -> bool:
    """`sync` sends a digest when min_interval_h has passed since the last one."""
    last = store.last_digest()
    if last is None:
        return bool(store.subscribers(disabled=False))
    finished = datetime.fromisoformat(last["created_at"])
    return now - finished >= timedelta(hours=config.digest.min_interval_h)


class DigestRun:
    """One run of `mirror digest send` over an open store."""

    def __init__(
        self, config: Config, store: Store, *, now: datetime, secret: bytes | None = None
    ) -> None:
        self.config = config
        self.store = store
        self.now = now
        self.secret = secret if secret is not None else secret_from(config)
        self.report = DigestReport()
        self._articles: dict[tuple[int, int], list[EditionArticle]] = {}
        self._edition: list[EditionArticle] | None = None
        self.welcomes: set[int] = set()  # subscribers whose message in this run is a welcome
        self.open = store.open_deferrals()  # as the run starts
        # those with an open deferred send: left out of newer digests until it is sent
        self.carried = frozenset(d.subscriber_id for d in self.open)

    def recipients(self, upto: int) -> Iterator[tuple[Recipient, list[DigestArticle]]]:
        """Active subscribers and what is new for each of them, newest first (as the index);
        for one added by ops and not yet welcomed, the newest articles, as a welcome."""
        last_sent = self.store.last_sent_versions()
        for row in self.store.subscribers(disabled=False):  # the disabled get no digest
            if row["id"] not in self.carried:
                yield self.recipient(row, upto, last_sent)

    def recipient(
        self, row: dict[str, Any], upto: int, last_sent: dict[int, int]
    ) -> tuple[Recipient, list[DigestArticle]]:
        """A subscriber and what is new for them up to edition `upto`: since the last
        digest they got (sent), or the newest articles when they are owed a welcome."""
        digest = self.config.digest
        welcome = bool(row["welcome_due"])
        after = 0 if welcome else max(row["since_version"], last_sent.get(row["id"], 0))
        chosen = [
            digest_article(a)
            for a in self.new_articles(after, upto)
            if row["lang"] == "any" or base_language(a.revision.language) == row["lang"]
        ]
        newest = chosen[: digest.welcome_articles if welcome else digest.max_articles]
        return Recipient(row["id"], row["email"], row["lang"], welcome=welcome), newest

    def new_articles(self, after: int, upto: int) -> list[EditionArticle]:
        if (after, upto) not in self._articles:
            revisions = self.config.digest.send_revisions
            found = self.store.digest_articles(after, upto, revisions=revisions)
            own = {a.id: a for a in self.edition_articles()}
            self._articles[after, upto] = [own.get(a.id, a) for a in found]
        return self._articles[after, upto]

    def edition_articles(self) -> list[EditionArticle]:
        """The edition's articles, each with the canonical URL the pages show (a page that
        claims another article's URL as canonical keeps its own, as in the build)."""
        if self._edition is None:
            found = self.store.edition_articles(self.config.edition.keeps_gone)
            self._edition = with_own_canonicals(found)
        return self._edition

    def blocked_since_last(self, digest_id: int) -> dict[str, Any]:
        """`blocked` and `previous_digest_id` of the context: the mirrors blocked since
        the last finished digest before this one."""
        last = self.store.last_digest()
        since = parse_iso(last["created_at"]) if last and last["id"] != digest_id else None
        if last is None or since is None:
            return {}
        blocked = fleet.blocked_since(self.config, self.store, since)
        handed = {m.name for m in fleet.handed_out(self.config, self.store)}
        return {
            "blocked": tuple(
                DigestMirror(m.name, with_slash(m.public_url), m.listed)
                for m in blocked
                if m.name not in handed  # the last live one stays handed out
            ),
            "previous_digest_id": last["id"],
        }

    def context(self, digest_id: int, created: datetime, version: int, sha: str) -> DigestContext:
        digest, publication = self.config.digest, self.config.publication
        root_key_line, keys_serial = published_keys(self.config)
        return DigestContext(
            digest_id=digest_id,
            date=created,
            publication=publication.name,
            sender=digest.sender,
            language=publication.language,
            mirrors=tuple(
                DigestMirror(m.name, with_slash(m.public_url), m.listed)
                for m in fleet.handed_out(self.config, self.store)
            ),
            **self.blocked_since_last(digest_id),
            links_per_article=digest.links_per_article,
            public_key_line=load_signing_public_key(self.config).line(),
            manifest_version=version,
            manifest_sha256=sha,
            unsubscribe_url=digest.unsubscribe_url,
            unsubscribe_mailto=digest.unsubscribe_mailto,
            list_id=digest.list_id or list_id_from(digest.sender),
            full_text=digest.content == "full",
            max_message_bytes=digest.max_message_bytes,
            neutral=digest.neutral,
            neutral_sender=digest.neutral_sender,
            neutral_subject=digest.neutral_subject,
            secret=self.secret,
            internal_links=link_map(self.edition_articles()),
            root_key_line=root_key_line,
            keys_serial=keys_serial,
            **self.daily_editions(),
        )

    def daily_editions(self) -> dict[str, Any]:
        """`editions` and `page_languages` of the context (the newest daily file in each
        language; the languages with their own pages), and with
        `attach_edition` the bytes of those that could fit in a message, each with its
        .minisig (a file whose signature is missing is only linked)."""
        paths = self.store.edition_files()
        editions = newest_daily_files(paths)
        if not self.config.digest.attach_edition:
            return {"editions": editions, "page_languages": page_languages(paths)}
        files = {}
        folder = self.config.edition.output_dir
        for path in editions.values():
            data = read_bounded(folder / path, self.config.digest.max_message_bytes)
            signature = read_bounded(folder / (path + SIGNATURE_SUFFIX), MAX_SIGNATURE_BYTES)
            if data is not None and signature is not None:
                files[path], files[path + SIGNATURE_SUFFIX] = data, signature
        return {
            "editions": editions,
            "page_languages": page_languages(paths),
            "attach_edition": True,
            "edition_files": files,
        }

    def latest(self) -> tuple[int, str]:
        edition = self.store.latest_edition()
        if edition is None:
            raise DigestError("nothing published yet: run `mirror build` (or `mirror sync`)")
        return edition.version, edition.manifest_sha256

    def dry_run(self) -> DigestReport:
        """The message one subscriber would get, how many would get one, and how many
        deferred sends would be tried again; no send."""
        self.report.would_retry = len(self.open)
        version, sha = self.latest()
        if not self.store.last_unfinished_digest() and not self.anything_new(version):
            self.report.nothing_new = True
            return self.report
        context = self.context(0, self.now, version, sha)
        for recipient, articles in self.recipients(version):
            if not articles and not recipient.welcome:
                continue
            self.report.would_send += 1
            if not self.report.preview:
                self.report.preview = readable(compose(context, recipient, articles))
        self.report.nothing_new = self.report.would_send == 0
        return self.report

    async def send(self, transport: Transport, *, new_digest: bool = True) -> DigestReport:
        """Sends deferred at earlier runs first, then the digest (a new one only with
        `new_digest`: sync's when digest.min_interval_h has passed; one left unfinished
        by a killed run is always resumed)."""
        version, sha = self.latest()
        for digest_id in sorted({d.digest_id for d in self.open}):
            await self.retry(digest_id, transport)
        unfinished = self.store.last_unfinished_digest()
        if not unfinished and not (new_digest and self.anything_new(version)):
            self.report.nothing_new = True
            detail.info("digest: nothing new for anyone (edition version %d)", version)
            return self.report
        digest_id, resumed = self.store.open_digest(self.now, version, sha)
        row = self.store.digest(digest_id)
        self.report.digest, self.report.resumed = digest_id, resumed
        detail.info("digest %d: %s, edition version %d", digest_id,
                    "resumed" if resumed else "new", row["manifest_version"])  # fmt: skip
        context = self.digest_context(row, sha)
        deliveries = await self.deliver(
            digest_id, self.outgoing(context, row["manifest_version"]), transport
        )
        self.finish(digest_id, deliveries)
        return self.report

    def digest_context(self, row: dict[str, Any], sha: str) -> DigestContext:
        """The context of the digest stored as `row` (its date, edition version and hash)."""
        return self.context(
            row["id"],
            datetime.fromisoformat(row["created_at"]),
            row["manifest_version"],
            row["manifest_sha256"] or sha,
        )

    async def deliver(
        self, digest_id: int, messages: Iterator[Outgoing], transport: Transport
    ) -> list[Delivery]:
        digest = self.config.digest
        return await deliver(
            messages,
            transport,
            rate_per_s=digest.rate_per_s,
            per_domain_rate_per_s=digest.per_domain_rate_per_s,
            concurrency=digest.connections,
            retries=digest.retries,
            after_send=lambda out, result: self.recorded(digest_id, out, result),
        )

    async def retry(self, digest_id: int, transport: Transport) -> None:
        """Send again, as it was, the finished digest `digest_id` to those it was deferred
        for (one who left or was disabled since: skipped)."""
        row = self.store.digest(digest_id)
        context = self.digest_context(row, row["manifest_sha256"] or "")
        due = {d.subscriber_id for d in self.open if d.digest_id == digest_id}
        self.report.retried += len(due)
        detail.info("digest %d: sending again to %d deferred", digest_id, len(due))
        active = [r for r in self.store.subscribers(disabled=False) if r["id"] in due]
        for gone in due - {r["id"] for r in active}:
            self.store.record_send(
                digest_id, gone, "skipped", message_id=f"<left-{digest_id}-{gone}>",
                at=self.now, error="no longer subscribed",
            )  # fmt: skip
        last_sent = self.store.last_sent_versions()
        chosen = [self.recipient(r, row["manifest_version"], last_sent) for r in active]
        await self.deliver(digest_id, self.composed(context, chosen), transport)

    def composed(
        self, context: DigestContext, chosen: list[tuple[Recipient, list[DigestArticle]]]
    ) -> Iterator[Outgoing]:
        """Each chosen recipient's message of this digest (one that cannot be mailed:
        failed), composed lazily."""
        composer = Composer(context)
        for recipient, articles in chosen:
            try:
                data, payload = composer.wire(recipient, articles)
            except SubscriberError as exc:  # an address that cannot be mailed
                self.refused(context, recipient, str(exc))
                continue
            if recipient.welcome:
                self.welcomes.add(recipient.id)
            welcome = " and a welcome" if recipient.welcome else ""
            detail.debug("digest %d: subscriber %d: %d articles%s", context.digest_id,
                         recipient.id, len(articles), welcome)  # fmt: skip
            yield Outgoing(
                recipient.id, recipient.email, data, message_id(context, recipient), payload,
                envelope_from=self.envelope_from(recipient.id),
            )  # fmt: skip

    def anything_new(self, version: int) -> bool:
        """Someone is due a message: a welcome, or new articles in an edition newer than
        the last digest's (one who missed articles, failed or deferred, gets them with
        the next digest new articles make, not one of their own)."""
        last = self.store.last_digest()
        fresh = last is None or version > last["manifest_version"]
        return any(
            (articles and fresh) or who.welcome for who, articles in self.recipients(version)
        )

    def outgoing(self, context: DigestContext, upto: int) -> Iterator[Outgoing]:
        """One message per subscriber still due one in this digest, composed lazily."""
        yield from self.composed(context, list(self.due_in(context, upto)))

    def due_in(
        self, context: DigestContext, upto: int
    ) -> Iterator[tuple[Recipient, list[DigestArticle]]]:
        """Those still due this digest; one with nothing new (and no welcome): skipped."""
        states = self.store.send_state(context.digest_id)
        for recipient, articles in self.recipients(upto):
            if states.get(recipient.id) in DONE_STATES:
                continue
            if not articles and not recipient.welcome:  # a welcome goes even with none
                self.record_skip(context, recipient)
                continue
            if not self.store.is_subscribed(recipient.id):
                continue  # unsubscribed while this digest was going out
            yield recipient, articles

    def envelope_from(self, subscriber_id: int) -> str:
        """The VERP envelope sender (digest.return_path + the subscriber's token): a
        bounce names its subscriber. "" (the transport's sender) when it is off."""
        return_path = self.config.digest.return_path
        return verp_address(return_path, self.secret, subscriber_id) if return_path else ""

    def record(self, digest_id: int, out: Outgoing, state: str, error: str | None = None) -> None:
        self.store.record_send(
            digest_id, out.recipient_id, state, message_id=out.message_id, at=self.now,
            error=error,
        )  # fmt: skip

    def recorded(self, digest_id: int, out: Outgoing, result: Delivery) -> None:
        if result.ok:
            self.record(digest_id, out, "sent")  # a welcome is done with it (Store.record_send)
            detail.debug("digest %d: subscriber %d: sent", digest_id, out.recipient_id)
            self.report.sent += 1
            self.report.welcomed += out.recipient_id in self.welcomes
        elif result.permanent:
            self.record(digest_id, out, "failed", result.reason)
            self.report.failed.append({"subscriber": out.recipient_id, "reason": result.reason})
            log.warning("subscriber %d refused: %s", out.recipient_id, result.reason)
        else:
            self.deferred(digest_id, out, result.reason)

    def deferred(self, digest_id: int, out: Outgoing, why: str) -> None:
        """A 4xx or no connection: tried again at the next run, up to digest.max_deferrals
        runs; then failed, with the reason."""
        runs = self.store.deferrals(digest_id, out.recipient_id) + 1
        if runs >= self.config.digest.max_deferrals:
            reason = f"deferred at {runs} runs, given up (digest.max_deferrals): {why}"
            self.record(digest_id, out, "failed", reason)
            self.report.failed.append({"subscriber": out.recipient_id, "reason": reason})
        else:
            reason = f"{why}: {RETRY_NOTE}"
            self.record(digest_id, out, "deferred", why)
            self.report.deferrals.append({"subscriber": out.recipient_id, "reason": reason})
        log.warning("subscriber %d: %s", out.recipient_id, reason)

    def record_skip(self, context: DigestContext, recipient: Recipient) -> None:
        detail.debug("digest %d: subscriber %d: skipped, nothing new", context.digest_id,
                     recipient.id)  # fmt: skip
        self.store.record_send(
            context.digest_id, recipient.id, "skipped",
            message_id=message_id(context, recipient), at=self.now,
        )  # fmt: skip
        self.report.skipped += 1

    def refused(self, context: DigestContext, recipient: Recipient, reason: str) -> None:
        self.store.record_send(
            context.digest_id, recipient.id, "failed",
            message_id=message_id(context, recipient), at=self.now, error=reason,
        )  # fmt: skip
        self.report.failed.append({"subscriber": recipient.id, "reason": reason})

    def finish(self, digest_id: int, deliveries: list[Delivery]) -> None:
        states = self.store.send_state(digest_id)
        if all(state in CLOSED_STATES for state in states.values()):
            self.store.finish_digest(digest_id, self.now)


def newest_daily_files(paths: Iterable[str]) -> dict[str, str]:
    """Language -> path of the newest daily HTML file among the edition's `paths`."""
    newest: dict[str, DailyFile] = {}
    for path in paths:
        found = parse_daily_path(path)
        if found is None or found.kind != "html":
            continue
        if found.language not in newest or found.day > newest[found.language].day:
            newest[found.language] = found
    return {language: found.path for language, found in sorted(newest.items())}


def page_languages(paths: Iterable[str]) -> tuple[str, ...]:
    """The languages whose own pages (index-<lang>.html ...) are among the edition's."""
    return tuple(
        sorted(
            path.removeprefix("index-").removesuffix(".html")
            for path in paths
            if path != INDEX_HTML and is_index_path(path)
        )
    )


def read_bounded(path: Path, max_bytes: int) -> bytes | None:
    """The file's bytes; None when it is missing or over `max_bytes`."""
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError:
        return None
    return data if len(data) <= max_bytes else None


def digest_article(article: EditionArticle) -> DigestArticle:
    revision = article.revision
    assert article.path is not None
    return DigestArticle(
        path=article.path,
        title=revision.title,
        authors=revision.authors,
        published=revision.published_at,
        language=revision.language,
        lead=revision.lead,
        body_html=revision.body_html,
        canonical_url=revision.canonical_url,
    )


def list_id_from(sender: str) -> str:
    """A List-Id from the sender's domain: "digest.example.org"."""
    address = parseaddr(sender)[1]
    domain = address.rsplit("@", 1)[-1] if "@" in address else "mirror.invalid"
    return f"digest.{domain}"


async def send_digest(
    config: Config,
    store: Store,
    *,
    now: datetime,
    dry_run: bool = False,
    transport: Transport | None = None,
    secret: bytes | None = None,
    new_digest: bool = True,
) -> DigestReport:
    """Mail the digest of what is new to every subscriber (or, dry, show one), after the
    sends deferred at earlier runs; without `new_digest`, those alone (and a digest a
    killed run left). The unsubscribe secret is `secret` if given (the demo's own), else
    from the environment."""
    run = DigestRun(config, store, now=now, secret=secret)
    if dry_run:
        return run.dry_run()
    if transport is not None:
        return await run.send(transport, new_digest=new_digest)
    sender = parseaddr(config.digest.sender)[1]
    opened = transport_for(config.digest, password=smtp_password(config), sender_address=sender)
    try:
        return await run.send(opened, new_digest=new_digest)
    finally:
        await opened.close()
