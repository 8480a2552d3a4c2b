"""What mail-in passes between its parts: plain data, no I/O.

The parts (see the package docstring): `message` parses bytes into an `Inbound`;
`commands` reads what the reader asks; `auth` judges the receiving server's
Authentication-Results; `loops` says when we must not answer; `bounces` recognises
delivery reports; `replies` composes what we send back; `handle` runs one message through
all of it against the store and a transport; `mail.imap` brings messages in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Command(enum.Enum):
    """What a reader's mail asks for."""

    MIRRORS = "mirrors"  # also the answer to anything we do not understand (with help)
    LATEST = "latest"
    SUBSCRIBE = "subscribe"
    CONFIRM = "confirm"  # a reply carrying a subscription confirmation token
    UNSUBSCRIBE = "unsubscribe"
    HELP = "help"


@dataclass(frozen=True)
class Request:
    """A command, the language to answer in, and what it carries."""

    command: Command
    language: str  # "en" | "ru": of the command word, else of the message
    understood: bool = True  # False: not a command we know (the MIRRORS reply adds help)
    argument: str = ""  # subscribe: "en" | "ru" | ""; confirm: the token; unsubscribe: the
    # digest's unsubscribe token ("unsubscribe TOKEN", from its mailto link) or ""


@dataclass(frozen=True)
class AuthResult:
    """One method's verdict in an Authentication-Results header (RFC 8601)."""

    authserv_id: str
    method: str  # "dmarc" | "dkim" | "spf" | ...
    result: str  # "pass" | "fail" | "none" | ...
    domain: str = ""  # dkim: header.d; spf: smtp.mailfrom's domain; dmarc: header.from


@dataclass(frozen=True)
class DeliveryStatus:
    """One recipient's block of an RFC 3464 delivery-status part."""

    action: str  # "failed" | "delayed" | "delivered" | "relayed" | "expanded" | ""
    status: str  # "5.1.1" | "4.2.2" | "" when missing or malformed
    diagnostic: str  # Diagnostic-Code, bounded, addresses replaced by "<address>"


@dataclass(frozen=True)
class Inbound:
    """One inbound message, parsed and bounded. Addresses are lower-cased; the sender's is
    never logged (log `sender_hash` from `tokens`, never this)."""

    sha256: str  # of the raw bytes
    size: int  # bytes
    message_id: str  # "" when missing
    sender: str  # the From address ("" when none or unparsable)
    sender_domain: str
    envelope_sender: str  # Return-Path ("" for the null sender <>)
    recipients: tuple[str, ...]  # Delivered-To / X-Original-To / To / Cc addresses
    subject: str  # decoded (RFC 2047), one line
    first_line: str  # the first non-empty, non-quoted body line (text/plain, else from HTML)
    body_text: str  # the text body, bounded (for confirmation tokens and bounce heuristics)
    headers: dict[str, tuple[str, ...]] = field(default_factory=dict)  # lower-cased names
    auth_results: tuple[AuthResult, ...] = ()
    references: tuple[str, ...] = ()  # In-Reply-To + References message ids
    is_report: bool = False  # multipart/report; report-type=delivery-status
    delivery_status: tuple[DeliveryStatus, ...] = ()  # per-recipient blocks of a DSN


@dataclass(frozen=True)
class Bounce:
    """A delivery report (RFC 3464 DSN or a plain bounce) matched to a subscriber by the
    VERP token in the address it came back to."""

    subscriber_id: int
    permanent: bool  # 5.x.x: counts toward mailin.hard_bounces; 4.x.x: counted only
    status: str  # "5.1.1", "4.2.2", "" when unknown
    reason: str  # short, never an address


@dataclass
class MailInReport:
    """What `mirror mail-in once` did (its --json document)."""

    handled: int = 0
    replied: int = 0
    subscribed: int = 0  # confirmation requests sent
    confirmed: int = 0
    unsubscribed: int = 0
    bounces: int = 0
    welcomed: int = 0  # welcomes sent to readers who confirmed on the web
    ignored: dict[str, int] = field(default_factory=dict)  # reason -> count
    failed: list[dict[str, str]] = field(default_factory=list)  # {"message", "reason"}

    def to_json(self) -> dict[str, object]:
        return {
            "handled": self.handled,
            "replied": self.replied,
            "subscribed": self.subscribed,
            "confirmed": self.confirmed,
            "unsubscribed": self.unsubscribed,
            "bounces": self.bounces,
            "welcomed": self.welcomed,
            "ignored": dict(self.ignored),
            "failed": list(self.failed),
        }

    def summary(self) -> str:
        ignored = ", ".join(f"{reason} {count}" for reason, count in sorted(self.ignored.items()))
        return (
            f"mail-in: {self.handled} handled, {self.replied} replied "
            f"({self.subscribed} subscribing, {self.confirmed} confirmed, "
            f"{self.unsubscribed} unsubscribed), {self.bounces} bounces, "
            + (f"{self.welcomed} welcomed, " if self.welcomed else "")
            + f"{sum(self.ignored.values())} ignored"
            + (f" ({ignored})" if ignored else "")
            + f", {len(self.failed)} deferred (retried at the next run)"
        )
