"""Delivery reports: an RFC 3464 DSN, or a plain bounce mail (classified by flufl.bounce,
then by a few English and Russian phrases), matched to a subscriber by the VERP address it
came back to (`bounces+TOKEN@domain`). No valid VERP address, no bounce."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import Message

import flufl.bounce

from mirror.mailin.model import Bounce, DeliveryStatus, Inbound

# Where the address the report came back to (our VERP return path) is found.
TOKEN_HEADERS = ("delivered-to", "x-original-to", "to")
MAX_TRIED = 10  # candidate addresses per message
MAX_REASON_CHARS = 120

MAX_ADDRESS_CHARS = 254
_VERP = re.compile(r"[A-Za-z0-9._%=-]+\+[A-Za-z0-9._=-]{1,200}@[A-Za-z0-9.-]+")
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_ADDRESS = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status notification|failure|has failed)|"
    r"mail delivery (?:failed|failure|system)|returned mail|failure notice|"
    r"delivery (?:delayed|notification)|"
    r"не доставлен|недоставлен|не удалось доставить|ошибка доставки|возвращ[её]нное|"
    r"задерж",
    re.IGNORECASE,
)
_TRANSIENT = re.compile(
    r"\bdelay|will (?:be retried|retry|continue)|still trying|temporar|over ?quota|"
    r"quota exceeded|mailbox (?:is )?full|greylist|try again later|"
    r"задерж|повторн|временн|переполнен|превышен",
    re.IGNORECASE,
)
_PERMANENT = re.compile(
    r"user unknown|unknown user|no such (?:user|mailbox|recipient)|does not exist|"
    r"mailbox unavailable|address rejected|recipient rejected|"
    r"permanent(?:ly)? (?:error|failure|fatal)|"
    r"account (?:has been )?disabled|not found|"
    r"не существует|не найден|адрес не найден|заблокирован|отключ[её]н|"
    r"не удалось доставить|не может быть доставлено",
    re.IGNORECASE,
)
_ROBOT_SENDER = re.compile(r"^(?:mailer-daemon|postmaster)@", re.IGNORECASE)


def bounce_of(inbound: Inbound, *, subscriber_of: Callable[[str], int | None]) -> Bounce | None:
    """The delivery failure this message reports, for the subscriber that
    `subscriber_of(address)` finds in a VERP address it came to (each "local+tag@domain" of
    Delivered-To, X-Original-To, To is tried, case kept); None when none is valid, or when
    it reports no failure (a success notice, a vacation reply sent to the return path)."""
    subscriber_id = _subscriber(inbound, subscriber_of)
    if subscriber_id is None:
        return None
    if inbound.is_report and inbound.delivery_status:
        return _bounce(subscriber_id, _from_dsn(inbound.delivery_status))
    return _bounce(subscriber_id, _from_library(inbound) or _from_text(inbound))


def verp_addresses(inbound: Inbound) -> list[str]:
    """Candidate VERP addresses ("local+tag@domain") in Delivered-To, X-Original-To, To
    (case kept: read from the headers, not the lower-cased recipients)."""
    found: dict[str, None] = {}
    for name in TOKEN_HEADERS:
        for value in inbound.headers.get(name, ()):
            found.update(dict.fromkeys(_VERP.findall(value)))
    return [address for address in found if len(address) <= MAX_ADDRESS_CHARS][:MAX_TRIED]


def _subscriber(inbound: Inbound, subscriber_of: Callable[[str], int | None]) -> int | None:
    for address in verp_addresses(inbound):
        subscriber_id = subscriber_of(address)
        if subscriber_id is not None:
            return subscriber_id
    return None


# A failure found: (permanent, status, reason).
_Failure = tuple[bool, str, str]


def _bounce(subscriber_id: int, failure: _Failure | None) -> Bounce | None:
    if failure is None:
        return None
    permanent, status, reason = failure
    reason = _ADDRESS.sub("<address>", " ".join(reason.split()))[:MAX_REASON_CHARS]
    return Bounce(subscriber_id=subscriber_id, permanent=permanent, status=status, reason=reason)


def _from_dsn(blocks: tuple[DeliveryStatus, ...]) -> _Failure | None:
    """The worst failure among the per-recipient blocks: failed 5.x.x (or no status) is
    permanent; failed 4.x.x and delayed are transient; delivered/relayed/expanded none."""
    failures = [_dsn_failure(block) for block in blocks]
    found = [failure for failure in failures if failure is not None]
    if not found:
        return None
    return max(found, key=lambda failure: failure[0])


def _dsn_failure(block: DeliveryStatus) -> _Failure | None:
    if block.action not in ("failed", "delayed"):
        return None
    permanent = block.action == "failed" and not block.status.startswith("4")
    reason = block.diagnostic or f"{block.action} {block.status}".strip()
    return permanent, block.status, reason


def _from_library(inbound: Inbound) -> _Failure | None:
    """flufl.bounce's detectors (Exim, qmail, Postfix, Exchange, ... formats), over the
    headers and text body we kept."""
    try:
        temporary, permanent = flufl.bounce.all_failures(_as_message(inbound))
    except Exception:  # a detector tripping on odd input must not stop the run
        return None
    status = _status_in(inbound.body_text)
    if permanent:
        return True, status, "permanent failure (" + _detector_reason(inbound) + ")"
    if temporary:
        return False, status, "transient failure (" + _detector_reason(inbound) + ")"
    return None


def _as_message(inbound: Inbound) -> Message:
    message = Message()
    for name, values in inbound.headers.items():
        if name.startswith("content-") or name == "mime-version":
            continue
        for value in values:
            message[name] = value
    message["Content-Type"] = "text/plain; charset=utf-8"
    message.set_payload(inbound.body_text)
    return message


def _detector_reason(inbound: Inbound) -> str:
    return inbound.subject[:60] or "bounce"


def _from_text(inbound: Inbound) -> _Failure | None:
    """A plain bounce no detector knew: it must look like one (a bounce subject or a
    mailer-daemon sender), then a status code, or else its words, say how bad."""
    looks_like_bounce = _BOUNCE_SUBJECT.search(inbound.subject) or _ROBOT_SENDER.match(
        inbound.sender or inbound.envelope_sender
    )
    if not looks_like_bounce:
        return None
    status = _status_in(inbound.body_text)
    text = f"{inbound.subject}\n{inbound.body_text}"
    if status:
        return status.startswith("5"), status, _phrase(text) or f"status {status}"
    if not _PERMANENT.search(text) and _TRANSIENT.search(text):
        return False, "", _phrase(text)
    return True, "", _phrase(text) or "undeliverable"


def _status_in(text: str) -> str:
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else ""


def _phrase(text: str) -> str:
    match = _PERMANENT.search(text) or _TRANSIENT.search(text)
    return match.group(0).lower() if match else ""
