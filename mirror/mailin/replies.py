"""What mail-in sends back, composed from plain data: no store, no socket, no clock.

    mirrors_reply       a few mirrors chosen for this sender (stable within an ISO week),
                        the keys, the live manifest and the minisign commands (the
                        digest's own footer); with `help` when the mail asked nothing we know
    latest_reply        the newest articles as a digest message (the digest's composer)
    confirmation_reply  double opt-in: the token in the Subject ("[confirm:TOKEN]") and the
                        body, the confirm link, the watched-domain warning
    welcome_reply       mirrors and the newest articles, for a new subscriber
    unsubscribed_reply, not_subscribed_reply, help_reply

Every reply is `Auto-Submitted: auto-replied` (RFC 3834), answers the message it
replies to (In-Reply-To, References), carries our loop marker (`LOOP_HEADER`) and has a
Message-ID derived from the inbound message, so a reply sent again folds into the first.
Words: `MESSAGES` (English msgids), translated by the catalogue (`mirror.build.catalogue`),
as the digest's are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import urlencode, urlsplit, urlunsplit

from mirror.build import catalogue
from mirror.build.catalogue import N_
from mirror.build.locale import base_language
from mirror.digest.compose import (
    DigestArticle,
    DigestContext,
    DigestMirror,
    Recipient,
    compose,
    verification_text,
)
from mirror.digest.text import one_line, tidy, wrap
from mirror.digest.tokens import mac
from mirror.mail.wire import ascii_address, encoded_body, policy_for, sender_domain
from mirror.mailin.model import Inbound

LOOP_HEADER = "X-Mirror-Loop"  # on every reply; mail carrying it is never answered
MAX_REFERENCES = 10  # message ids carried over into References
CONFIRM_SUBJECT_MARK = "[confirm:{token}]"


@dataclass(frozen=True)
class ReplyContext:
    """What every reply of one run shares."""

    digest: DigestContext  # the live edition's (keys, manifest, every enabled mirror)
    address: str  # mailin.address: the From of every reply
    secret: bytes = field(repr=False)  # mail-in's: the mirror choice, the Message-IDs
    now: datetime  # the Date header
    mirrors_per_reply: int = 3
    confirm_url: str = ""  # https://.../confirm of serve-unsubscribe; "": reply only
    loop_marker: str = ""  # LOOP_HEADER's value; "": a hash of `address`


@dataclass(frozen=True)
class Reply:
    """One message ready for the transport."""

    to: str  # the envelope recipient; never logged
    message: bytes  # CRLF
    message_id: str


def iso_week(moment: datetime) -> str:
    year, week, _ = moment.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def reply_mirrors(context: ReplyContext, sender_hash: str) -> tuple[DigestMirror, ...]:
    """`mirrors_per_reply` of every enabled mirror (unlisted ones too), chosen by the
    sender's hash and the ISO week: the same all week, another set the next."""
    week = iso_week(context.now)

    def rank(mirror: DigestMirror) -> bytes:
        return mac(context.secret, "reply-mirrors", sender_hash, week, mirror.name)

    return tuple(sorted(context.digest.mirrors, key=rank)[: context.mirrors_per_reply])


def reply_message_id(context: ReplyContext, inbound: Inbound) -> str:
    """The reply's Message-ID: derived from the inbound message, the same every time."""
    key = inbound.message_id or inbound.sha256
    digest = mac(context.secret, "reply", key)[:16].hex()
    return f"<{digest}.reply@{sender_domain(context.address)}>"


def loop_marker(context: ReplyContext) -> str:
    return context.loop_marker or mac(context.secret, "loop", context.address.lower())[:8].hex()


# --- the replies -----------------------------------------------------------------------------


def mirrors_reply(
    context: ReplyContext, inbound: Inbound, language: str, sender_hash: str, *, help: bool
) -> Reply:
    t = _words(language)
    parts = [wrap(t["mirrors_intro"])]
    if help:
        parts.append(_help_text(context, language))
    parts.append(verification_text(context.digest, reply_mirrors(context, sender_hash), language))
    return _reply(context, inbound, t["mirrors_subject"], "\n\n".join(parts))


def help_reply(context: ReplyContext, inbound: Inbound, language: str) -> Reply:
    t = _words(language)
    return _reply(context, inbound, t["help_subject"], _help_text(context, language))


def latest_reply(
    context: ReplyContext,
    inbound: Inbound,
    language: str,
    sender_hash: str,
    articles: Sequence[DigestArticle],
    subscriber_id: int | None,
    *,
    subject: str = "",
) -> Reply:
    """The newest articles as the digest composes them (its subject unless `subject`);
    unsubscribe lines only for a subscriber (their own token)."""
    mirrors = reply_mirrors(context, sender_hash)
    digest = replace(
        context.digest,
        mirrors=mirrors,
        links_per_article=max(1, len(mirrors)),
        unsubscribe=subscriber_id is not None,
    )
    recipient = Recipient(subscriber_id or 0, inbound.sender, _language(language))
    message = compose(digest, recipient, articles)
    if subject:
        message.replace_header("Subject", one_line(subject))
    return _as_reply(context, inbound, message)


def confirmation_reply(
    context: ReplyContext, inbound: Inbound, language: str, token: str, *, watched: bool
) -> Reply:
    t = _words(language)
    parts = [wrap(t["confirm_intro"].format(publication=context.digest.publication))]
    parts.append(wrap(t["confirm_reply"]))
    if context.confirm_url:
        parts.append(wrap(t["confirm_link"]) + "\n  " + confirm_link(context.confirm_url, token))
    parts.append(wrap(t["confirm_ignore"]))
    if watched:
        parts.append(wrap(t["watched"]))
    parts.append(f"{CONFIRM_SUBJECT_MARK.format(token=token)}")
    subject = f"{t['confirm_subject']} {CONFIRM_SUBJECT_MARK.format(token=token)}"
    return _reply(context, inbound, subject, "\n\n".join(parts))


def welcome_reply(
    context: ReplyContext,
    inbound: Inbound,
    language: str,
    sender_hash: str,
    articles: Sequence[DigestArticle],
    subscriber_id: int,
) -> Reply:
    """The newest articles with the mirrors, under a welcome subject."""
    subject = _words(language)["welcome_subject"].format(publication=context.digest.publication)
    return latest_reply(
        context, inbound, language, sender_hash, articles, subscriber_id, subject=subject
    )


def unsubscribed_reply(context: ReplyContext, inbound: Inbound, language: str) -> Reply:
    t = _words(language)
    text = wrap(t["unsubscribed"].format(publication=context.digest.publication))
    return _reply(context, inbound, t["unsubscribed_subject"], text)


def not_subscribed_reply(context: ReplyContext, inbound: Inbound, language: str) -> Reply:
    """An unsubscribe that found no one subscribed (neither the token nor the sender)."""
    t = _words(language)
    text = wrap(t["not_subscribed"].format(publication=context.digest.publication))
    return _reply(context, inbound, t["not_subscribed_subject"], text)


def confirm_link(confirm_url: str, token: str) -> str:
    parts = urlsplit(confirm_url)
    query = "&".join(q for q in (parts.query, urlencode({"token": token})) if q)
    return urlunsplit(parts._replace(query=query))


def confirm_url_from(unsubscribe_url: str) -> str:
    """serve-unsubscribe's confirm endpoint beside its unsubscribe one ("" for none)."""
    if not unsubscribe_url:
        return ""
    parts = urlsplit(unsubscribe_url)
    folder = parts.path.rsplit("/", 1)[0]
    return urlunsplit(parts._replace(path=f"{folder}/confirm", query="", fragment=""))


# --- the message -------------------------------------------------------------------------------


def _reply(context: ReplyContext, inbound: Inbound, subject: str, text: str) -> Reply:
    message = EmailMessage(policy=policy_for(inbound.sender))
    name = one_line(context.digest.publication)
    message["From"] = Address(display_name=name, addr_spec=ascii_address(context.address))
    message["To"] = inbound.sender
    message["Subject"] = one_line(subject)
    message["Date"] = format_datetime(context.now.astimezone(UTC))
    message["MIME-Version"] = "1.0"
    message["Content-Type"] = 'text/plain; charset="utf-8"'
    encoding, payload = encoded_body(tidy(text))
    message["Content-Transfer-Encoding"] = encoding
    message.set_payload(payload)
    return _as_reply(context, inbound, message)


def _as_reply(context: ReplyContext, inbound: Inbound, message: EmailMessage) -> Reply:
    """The message as a reply to `inbound`: our Message-ID, the thread, RFC 3834."""
    for name in ("Message-ID", "Auto-Submitted", "List-Id", LOOP_HEADER):
        del message[name]
    message_id = reply_message_id(context, inbound)
    message["Message-ID"] = message_id
    if inbound.message_id:
        message["In-Reply-To"] = inbound.message_id
        thread = [*inbound.references, inbound.message_id][-MAX_REFERENCES:]
        message["References"] = " ".join(dict.fromkeys(thread))
    message["Auto-Submitted"] = "auto-replied"
    message[LOOP_HEADER] = loop_marker(context)
    return Reply(inbound.sender, message.as_bytes(), message_id)


def _help_text(context: ReplyContext, language: str) -> str:
    t = _words(language)
    address = parseaddr(context.address)[1]
    return wrap(t["help"].format(address=address)) + "\n" + t["commands"]


def _language(language: str) -> str:
    """The language of the reply's words: `language`'s base when it has a catalogue."""
    return base_language(language) if catalogue.has_catalogue(language) else "en"


def _words(language: str) -> dict[str, str]:
    chosen = _language(language)
    return {key: catalogue.translate(message, chosen) for key, message in MESSAGES.items()}


# The words of the replies, in English; the catalogue (`mirror.build.catalogue`) holds
# their translations. A new key: add it here with N_(), then to every .po (README).
MESSAGES: dict[str, str] = {
    "mirrors_subject": N_("Mirrors"),
    "mirrors_intro": N_(
        "Here are copies of our site that may open for you. Every file on them is "
        "signed; below is how to check it."
    ),
    "help_subject": N_("How to use this address"),
    "help": N_("Write to {address} with one of these words in the subject:"),
    # the commands each language's readers type: a translation gives its own words
    "commands": N_(
        "  mirrors      links to copies of the site\n"
        "  latest       the newest articles by email\n"
        "  subscribe    the news by email (subscribe ru: in Russian)\n"
        "  unsubscribe  no more email from us\n"
        "  help         this text"
    ),
    "confirm_subject": N_("Confirm your subscription"),
    "confirm_intro": N_(
        "Someone, probably you, asked to receive {publication} by email at this address."
    ),
    "confirm_reply": N_("To confirm, reply to this email (keep the subject as it is)."),
    "confirm_link": N_("Or open this link and press the button:"),
    "confirm_ignore": N_(
        "If you did not ask for this, ignore this email: nothing will be sent to you. "
        "The confirmation expires in 7 days."
    ),
    "watched": N_(
        "Note: your address is at a mail provider under the censor's jurisdiction, which "
        "can read every email it delivers to you. If you can, subscribe from an address "
        "at a provider abroad."
    ),
    "welcome_subject": N_("Welcome to {publication}"),
    "unsubscribed_subject": N_("You are unsubscribed"),
    "unsubscribed": N_(
        "You are unsubscribed from {publication}: no more digests will be sent to you. "
        "To come back, write to us with the word subscribe in the subject."
    ),
    "not_subscribed_subject": N_("Not subscribed"),
    "not_subscribed": N_(
        "This address is not subscribed to {publication}, so there was nothing to "
        "unsubscribe. If digests still reach you at another address, write from that "
        "address, or use the unsubscribe link at the end of a digest."
    ),
}
