"""When we must not answer (RFC 3834): machines, lists, the null sender and ourselves. An
answer to any of them could start a mail loop or mail a list. This says only whether to
reply: an unsubscribe or a bounce is still acted on."""

from __future__ import annotations

import re
from collections.abc import Iterable

from mirror.mailin.model import Inbound

# Set on every reply mail-in sends (with Auto-Submitted: auto-replied): a copy of our own
# reply that comes back in is never answered, whatever the header's value. The same name
# as mailin.replies.LOOP_HEADER.
AUTO_HEADER = "X-Mirror-Loop"

LIST_HEADERS = (
    "list-id",
    "list-unsubscribe",
    "list-post",
    "list-help",
    "list-subscribe",
    "list-owner",
    "list-archive",
)
BULK_PRECEDENCE = frozenset({"bulk", "list", "junk", "auto_reply"})
# Local parts of senders that are machines: mailer-daemon, postmaster, noreply, no-reply,
# do-not-reply, bounce(s), list robots; with a "+tag", "-tag", ".tag" or "_tag" after them.
_ROBOT_LOCAL_PART = re.compile(
    r"^(?:mailer-daemon|postmaster|(?:no|do[-_.]?not)[-_.]?reply|bounces?|listserv|majordomo|"
    r"mailman|owner-.+|.+-(?:owner|request|bounces?))(?:[-+._].*)?$",
    re.IGNORECASE,
)


def refusal(inbound: Inbound, *, own_addresses: Iterable[str]) -> str | None:
    """A short reason (a key for the report's `ignored` counts) not to answer, or None."""
    checks = (
        ("own_message", _is_own_message),
        ("auto_submitted", _is_auto_submitted),
        ("precedence", _is_bulk),
        ("list_mail", _is_list_mail),
        ("null_sender", _has_null_sender),
        ("robot_sender", _is_robot),
    )
    for reason, check in checks:
        if check(inbound):
            return reason
    own = {_base_address(address) for address in own_addresses}
    if inbound.sender and _base_address(inbound.sender) in own:
        return "own_address"
    return None


def _values(inbound: Inbound, name: str) -> list[str]:
    return [value.strip().lower() for value in inbound.headers.get(name, ())]


def _is_own_message(inbound: Inbound) -> bool:
    return bool(_values(inbound, AUTO_HEADER.lower()))


def _is_auto_submitted(inbound: Inbound) -> bool:
    values = _values(inbound, "auto-submitted")
    if any(value.split(";")[0].strip() != "no" for value in values):
        return True
    # Set by vacation programs that predate RFC 3834.
    return bool(_values(inbound, "x-autoreply") or _values(inbound, "x-autorespond"))


def _is_bulk(inbound: Inbound) -> bool:
    return any(value in BULK_PRECEDENCE for value in _values(inbound, "precedence"))


def _is_list_mail(inbound: Inbound) -> bool:
    return any(name in inbound.headers for name in LIST_HEADERS)


def _has_null_sender(inbound: Inbound) -> bool:
    """A Return-Path of <> (a missing Return-Path is not the null sender: a pipe may not
    add one)."""
    values = _values(inbound, "return-path")
    return bool(values) and values[0] in ("<>", "")


def _is_robot(inbound: Inbound) -> bool:
    return any(
        _ROBOT_LOCAL_PART.match(address.rsplit("@", 1)[0])
        for address in (inbound.sender, inbound.envelope_sender)
        if "@" in address
    )


def _base_address(address: str) -> str:
    """ "Bounces+tag@Example.org" -> "bounces@example.org"."""
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"
