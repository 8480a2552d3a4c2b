"""The subscriber list: adding (with address checks), removing, listing and importing.

Addresses are checked for syntax and internationalised domains (no DNS is asked: a
lookup would tell the network who subscribes). Logs and reports name subscribers by id,
never by address: a log must never become a reader list.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email

from mirror.errors import SubscriberError
from mirror.store import Store

LANGUAGES = ("en", "ru", "any")
MAX_IMPORT_BYTES = 50_000_000
MAX_IMPORT_ROWS = 1_000_000
MAX_ADDRESS_CHARS = 254


def normalise_address(address: str) -> str:
    """The address as stored: checked, lower-case, domain in IDNA (SubscriberError)."""
    text = address.strip()
    if not text or len(text) > MAX_ADDRESS_CHARS:
        raise SubscriberError("not an email address (empty or too long)")
    try:
        valid = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise SubscriberError(f"not a valid email address: {exc}") from None
    # Local parts are case-sensitive on paper and not at any real provider: one reader,
    # one row.
    return f"{valid.local_part.lower()}@{valid.ascii_domain.lower()}"


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise SubscriberError(f"language must be one of {LANGUAGES}, not {lang!r}")
    return lang


def watched(address: str, watched_domains: tuple[str, ...]) -> bool:
    """The address is at a mail provider under the censor's jurisdiction."""
    domain = address.rsplit("@", 1)[-1].lower()
    return any(domain == d or domain.endswith("." + d) for d in watched_domains)


@dataclass(frozen=True)
class Added:
    id: int
    created: bool
    watched: bool


def add(
    store: Store,
    address: str,
    lang: str,
    *,
    at: datetime,
    watch: tuple[str, ...],
    welcome: bool = False,
) -> Added:
    """Add (or bring back) a subscriber. `welcome`: added by ops, so the next digest is a
    welcome (why they get it, the mirrors, the newest articles); readers who confirm by
    mail or on the web get mail-in's welcome instead, never both."""
    email = normalise_address(address)
    subscriber_id, created = store.add_subscriber(email, check_language(lang), at, welcome=welcome)
    return Added(subscriber_id, created, watched(email, watch))


def remove(store: Store, address_or_id: str, *, at: datetime) -> int:
    """Record an unsubscribe (kept with its time); returns the subscriber's id."""
    subscriber_id = resolve(store, address_or_id)
    store.unsubscribe(subscriber_id, at)
    return subscriber_id


def resolve(store: Store, address_or_id: str) -> int:
    if address_or_id.isdigit():
        known = {row["id"] for row in store.subscribers(active_only=False)}
        if int(address_or_id) in known:
            return int(address_or_id)
    else:
        found = store.subscriber_id(normalise_address(address_or_id))
        if found is not None:
            return found
    raise SubscriberError("no such subscriber")


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    watched: int = 0
    bad: list[dict[str, Any]] = field(default_factory=list)  # {"row", "reason"}: no address

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "watched": self.watched,
            "bad": self.bad,
        }


def import_csv(
    store: Store, data: bytes, *, at: datetime, watch: tuple[str, ...], default_lang: str = "any"
) -> ImportReport:
    """Import rows "email[,lang]" (a header row is skipped) in ONE transaction: a crash
    leaves the list as it was; bad rows are reported by number and skipped. Each new (or
    returning) subscriber is owed the digest's welcome, as after `add(welcome=True)`."""
    if len(data) > MAX_IMPORT_BYTES:
        raise SubscriberError(f"the file is over {MAX_IMPORT_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubscriberError(f"the file is not UTF-8: {exc.reason}") from None
    report = ImportReport()
    with store.transaction():
        for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            if number > MAX_IMPORT_ROWS:
                raise SubscriberError(f"more than {MAX_IMPORT_ROWS} rows")
            import_row(store, report, number, row, at, watch, default_lang)
    return report


def import_row(
    store: Store,
    report: ImportReport,
    number: int,
    row: list[str],
    at: datetime,
    watch: tuple[str, ...],
    default_lang: str,
) -> None:
    if not row or not "".join(row).strip() or (number == 1 and "@" not in row[0]):
        return  # blank line, or the header
    lang = row[1].strip().lower() if len(row) > 1 and row[1].strip() else default_lang
    try:
        added = add(store, row[0], lang, at=at, watch=watch, welcome=True)
    except SubscriberError as exc:
        report.bad.append({"row": number, "reason": str(exc)})
        return
    report.added += added.created
    report.updated += not added.created
    report.watched += added.watched
