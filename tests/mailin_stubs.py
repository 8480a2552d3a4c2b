"""Small stand-ins for mail-in's pure parsers (mailin.message, commands, auth, loops,
bounces), enough to drive the handler in tests: stdlib `email`, plain rules. The real
parsers have their own tests; these only make well-formed test mail into `Inbound`."""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr

from mirror.config import MailInConfig
from mirror.errors import MailInError
from mirror.mailin.handle import Parsers
from mirror.mailin.model import AuthResult, Bounce, Command, Inbound, Request
from mirror.mailin.replies import LOOP_HEADER

WORDS = {
    "mirrors": (Command.MIRRORS, "en"),
    "зеркала": (Command.MIRRORS, "ru"),
    "latest": (Command.LATEST, "en"),
    "новости": (Command.LATEST, "ru"),
    "subscribe": (Command.SUBSCRIBE, "en"),
    "подписаться": (Command.SUBSCRIBE, "ru"),
    "unsubscribe": (Command.UNSUBSCRIBE, "en"),
    "отписаться": (Command.UNSUBSCRIBE, "ru"),
    "help": (Command.HELP, "en"),
    "помощь": (Command.HELP, "ru"),
}


def parse(data: bytes, max_bytes: int) -> Inbound:
    message = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(message, EmailMessage) or message["From"] is None:
        raise MailInError("no From")
    headers = {k.lower(): tuple(str(v) for v in message.get_all(k, [])) for k in message}
    sender = parseaddr(str(message["From"]))[1].lower()
    body = message.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(">")]
    to = [a.lower() for _, a in getaddresses([str(v) for v in message.get_all("To", [])])]
    return Inbound(
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        message_id=str(message["Message-ID"] or ""),
        sender=sender,
        sender_domain=sender.rpartition("@")[2],
        envelope_sender=parseaddr(str(message["Return-Path"] or ""))[1].lower(),
        recipients=tuple(to),
        subject=str(message["Subject"] or ""),
        first_line=lines[0] if lines else "",
        body_text=text,
        headers=headers,
        auth_results=tuple(_auth(v) for v in headers.get("authentication-results", ())),
        references=tuple(str(message["In-Reply-To"] or "").split()),
        is_report=message.get_content_type() == "multipart/report",
    )


def _auth(value: str) -> AuthResult:
    authserv, _, rest = value.partition(";")
    found = re.search(r"dmarc=(\w+)", rest)
    return AuthResult(authserv.strip(), "dmarc", found[1] if found else "none")


def request(inbound: Inbound) -> Request:
    confirm = re.search(r"\[confirm:([A-Za-z0-9_.-]+)\]", inbound.subject + inbound.body_text)
    if confirm:
        return Request(Command.CONFIRM, "en", argument=confirm[1])
    words = re.sub(r"^(re|fwd?):\s*", "", inbound.subject.strip(), flags=re.I).split()
    if words and words[0].lower() in WORDS:
        command, language = WORDS[words[0].lower()]
        argument = words[1] if len(words) > 1 else ""
        argument = argument if command is Command.UNSUBSCRIBE else argument.lower()
        return Request(command, language, argument=argument)
    return Request(Command.MIRRORS, "en", understood=False)


def authenticated(inbound: Inbound, mailin: MailInConfig) -> bool:
    if mailin.require == "none":
        return True
    return any(
        r.authserv_id in mailin.trusted_authserv_ids and r.result == "pass"
        for r in inbound.auth_results
    )


def refusal(inbound: Inbound, own: str) -> str | None:
    if inbound.headers.get(LOOP_HEADER.lower()):
        return "own_message"
    if any(v.lower() != "no" for v in inbound.headers.get("auto-submitted", ())):
        return "auto_submitted"
    if inbound.headers.get("list-id"):
        return "list"
    if inbound.sender.startswith(("mailer-daemon@", "postmaster@", "noreply")):
        return "robot"
    return None


def bounce_of(inbound: Inbound, subscriber_of: Callable[[str], int | None]) -> Bounce | None:
    if not inbound.is_report:
        return None
    for address in inbound.recipients:
        found = subscriber_of(address)
        if found is not None:
            status = re.search(r"Status: (\d\.\d+\.\d+)", inbound.body_text)
            code = status[1] if status else ""
            return Bounce(found, code.startswith("5"), code, "report")
    return None


PARSERS = Parsers(parse, request, authenticated, refusal, bounce_of)
