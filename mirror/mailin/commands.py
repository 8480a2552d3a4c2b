"""What a reader asks for: a command word in the subject or the first line they wrote,
English or Russian, whatever the case, reply prefixes and punctuation around it."""

from __future__ import annotations

import re

from mirror.mailin.model import Command, Inbound, Request

# The command words, each with the language it is in.
WORDS: dict[str, tuple[Command, str]] = {
    **dict.fromkeys(("mirrors", "mirror"), (Command.MIRRORS, "en")),
    **dict.fromkeys(("зеркала", "зеркало", "зеркал"), (Command.MIRRORS, "ru")),
    **dict.fromkeys(("latest", "news"), (Command.LATEST, "en")),
    **dict.fromkeys(("новости", "новое"), (Command.LATEST, "ru")),
    "subscribe": (Command.SUBSCRIBE, "en"),
    **dict.fromkeys(("подписаться", "подписка", "подпишите"), (Command.SUBSCRIBE, "ru")),
    "unsubscribe": (Command.UNSUBSCRIBE, "en"),
    **dict.fromkeys(("отписаться", "отписка", "отпишите"), (Command.UNSUBSCRIBE, "ru")),
    "help": (Command.HELP, "en"),
    **dict.fromkeys(("помощь", "справка"), (Command.HELP, "ru")),
    "confirm": (Command.CONFIRM, ""),
    **dict.fromkeys(("подтвердить", "подтверждаю"), (Command.CONFIRM, "")),
}
# subscribe's argument: the language of the digest.
LANGUAGES = {
    **dict.fromkeys(("en", "eng", "english", "английский", "англ"), "en"),
    **dict.fromkeys(("ru", "rus", "russian", "русский", "рус"), "ru"),
}
# A confirmation token (mailin.tokens: up to CONFIRM_TOKEN_MAX_CHARS = 512).
CONFIRM_CODE = r"[A-Za-z0-9_.-]{10,512}"
# An unsubscribe token (mirror.digest.tokens: "<id>.<mac>"), as the digest's mailto
# List-Unsubscribe puts it in the subject: "unsubscribe TOKEN".
UNSUBSCRIBE_CODE = r"[1-9][0-9]{0,17}\.[A-Za-z0-9_-]{22}"
MAX_SCANNED_CHARS = 16_384  # of the body searched for a confirmation token

_REPLY_PREFIX = re.compile(
    r"^\s*(?:\[[^\]]{0,40}\]\s*)?"
    r"(?:re|fwd?|fw|aw|wg|sv|vs|tr|ответ|отв|пересл|перес|пер)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_]+")
_CONFIRM_TAG = re.compile(rf"\[confirm:({CONFIRM_CODE})\]", re.IGNORECASE)
_CONFIRM_WORDS = r"(?:confirm|подтвердить|подтверждаю)"
_CONFIRM_AT_START = re.compile(
    rf"^[\W_]*{_CONFIRM_WORDS}[\s:=]+({CONFIRM_CODE})(?![A-Za-z0-9_.-])", re.I
)
_CONFIRM_ANYWHERE = re.compile(rf"{_CONFIRM_WORDS}[\s:=]+({CONFIRM_CODE})(?![A-Za-z0-9_.-])", re.I)
_UNSUBSCRIBE_TOKEN = re.compile(rf"(?<![A-Za-z0-9_.-])({UNSUBSCRIBE_CODE})(?![A-Za-z0-9_.-])")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")


def confirm_tag(token: str) -> str:
    """The tag the confirmation's Subject carries, so that a bare reply confirms."""
    return f"[confirm:{token}]"


def read_request(inbound: Inbound) -> Request:
    """The reader's command. A reply's subject is ours, so the body's first line is read
    first there; `unsubscribe` wins wherever it is; a confirmation token anywhere confirms;
    anything else (or nothing) is Request(MIRRORS, understood=False)."""
    subject, is_reply = strip_reply_prefixes(inbound.subject)
    lines = (inbound.first_line, subject) if is_reply else (subject, inbound.first_line)
    found = [request for line in lines if (request := _command_in(line, inbound)) is not None]
    for request in found:
        if request.command is Command.UNSUBSCRIBE:
            return request
    tag = _CONFIRM_TAG.search(inbound.subject)
    if tag:
        return Request(Command.CONFIRM, _language_of_text(inbound), argument=tag.group(1))
    if found:
        return found[0]
    token = _token_in_body(inbound.body_text[:MAX_SCANNED_CHARS])
    if token:
        return Request(Command.CONFIRM, _language_of_text(inbound), argument=token)
    return Request(Command.MIRRORS, _language_of_text(inbound), understood=False)


def strip_reply_prefixes(subject: str) -> tuple[str, bool]:
    """The subject without its (repeated) Re:/Fwd:/Ответ:/... prefixes, and whether it
    had any."""
    stripped = subject
    while match := _REPLY_PREFIX.match(stripped):
        stripped = stripped[match.end() :]
    return stripped.strip(), stripped != subject


def _command_in(line: str, inbound: Inbound) -> Request | None:
    words = _WORD.findall(line.casefold())
    if not words or words[0] not in WORDS:
        return None
    command, language = WORDS[words[0]]
    if command is Command.CONFIRM:
        token = _CONFIRM_AT_START.match(line) or _CONFIRM_TAG.search(inbound.subject)
        if token is None:
            return None
        return Request(command, _language_of_text(inbound), argument=token.group(1))
    argument = ""
    if command is Command.SUBSCRIBE and len(words) > 1:
        argument = LANGUAGES.get(words[1], "")
    if command is Command.UNSUBSCRIBE:
        token = _UNSUBSCRIBE_TOKEN.search(line[:MAX_SCANNED_CHARS])
        argument = token.group(1) if token else ""
    return Request(command, language, argument=argument)


def _token_in_body(text: str) -> str:
    """A confirmation token quoted or typed in the body: the tag first, then "confirm X"
    where X does not read as a plain word ("confirm subscription" is no token)."""
    tag = _CONFIRM_TAG.search(text)
    if tag:
        return tag.group(1)
    for match in _CONFIRM_ANYWHERE.finditer(text):
        if _looks_like_token(match.group(1)):
            return match.group(1)
    return ""


def _looks_like_token(candidate: str) -> bool:
    rest = candidate[1:]
    return not candidate.isalpha() or rest != rest.lower()


def _language_of_text(inbound: Inbound) -> str:
    text = f"{inbound.subject}\n{inbound.first_line}\n{inbound.body_text[:MAX_SCANNED_CHARS]}"
    return "ru" if _CYRILLIC.search(text) else "en"
