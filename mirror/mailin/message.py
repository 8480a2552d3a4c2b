"""Raw mail bytes in, an `Inbound` out: bounded in size, header count and length, MIME
parts and depth; any charset, RFC 2047 encoded words, raw 8-bit headers, HTML-only mail;
attachments ignored. A message we cannot read raises a `MailInError`, never anything else.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import AddressHeader
from email.message import Message
from email.parser import BytesParser

from mirror.errors import MalformedMailError, MessageTooLargeError
from mirror.mailin import auth, bodytext
from mirror.mailin.model import DeliveryStatus, Inbound

MAX_HEADERS = 500  # header fields in the top-level header section
MAX_HEADER_CHARS = 8192  # per header value, kept and parsed; the rest is cut
MAX_MIME_PARTS = 200  # parts in the whole tree
MAX_MIME_DEPTH = 16  # nested multiparts
MAX_BOUNDARY_LINES = 600  # "--..." lines, checked before parsing (parse time grows with them)
MAX_BODY_CHARS = 65_536  # of the text body kept in Inbound.body_text
MAX_REFERENCES = 100  # message ids kept from In-Reply-To + References
MAX_DSN_BLOCKS = 50  # per-recipient blocks kept from a delivery-status part
MAX_DIAGNOSTIC_CHARS = 300

RECIPIENT_HEADERS = ("delivered-to", "x-original-to", "to", "cc")
_BOUNDARY_LINE = re.compile(rb"^--\S", re.MULTILINE)
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,500}>")
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_ADDRESS = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SURROGATES = re.compile("[\udc80-\udcff]")


def parse_inbound(data: bytes, *, max_bytes: int) -> Inbound:
    """Parse one raw message (RFC 5322 bytes). Raises MessageTooLargeError over
    `max_bytes`, MalformedMailError when the message cannot be read within the limits."""
    if len(data) > max_bytes:
        raise MessageTooLargeError("too_large", f"{len(data)} bytes > {max_bytes}")
    if len(_BOUNDARY_LINE.findall(data)) > MAX_BOUNDARY_LINES:
        raise MalformedMailError("malformed", "too many MIME parts")
    message = _parse(data)
    tree = _walk(message)
    headers = _headers(message, fallback_charset=tree.charset)
    body = _body_text(tree)
    return Inbound(
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        message_id=_first(headers, "message-id")[:998],
        sender=_sender(headers),
        sender_domain=_domain(_sender(headers)),
        envelope_sender=_envelope_sender(headers),
        recipients=_recipients(headers),
        subject=_one_line(_first(headers, "subject")),
        first_line=bodytext.first_line(body),
        body_text=body,
        headers=headers,
        auth_results=auth.parse_all(headers.get("authentication-results", ())),
        references=_references(headers),
        is_report=_is_delivery_report(message),
        delivery_status=tuple(tree.delivery_status[:MAX_DSN_BLOCKS]),
    )


def _parse(data: bytes) -> Message:
    """The MIME structure; compat32 here because it reads Content-Type cheaply (the
    default policy re-parses it on every access); headers are decoded by _headers."""
    try:
        message = BytesParser(policy=policy.compat32).parsebytes(data)
    except RecursionError as exc:
        raise MalformedMailError("malformed", "MIME nesting too deep") from exc
    except Exception as exc:  # the stdlib parser has had crash bugs on hostile input
        raise MalformedMailError("malformed", f"unparsable ({type(exc).__name__})") from exc
    if not message.keys():
        raise MalformedMailError("malformed", "no header section")
    if len(message.keys()) > MAX_HEADERS:
        raise MalformedMailError("malformed", "too many headers")
    return message


@dataclass
class _Tree:
    """What the walk over the MIME tree found."""

    plain: list[Message] = field(default_factory=list)  # inline text/plain parts
    html: list[Message] = field(default_factory=list)  # inline text/html parts
    delivery_status: list[DeliveryStatus] = field(default_factory=list)
    charset: str | None = None  # of the first text part: a hint for raw 8-bit headers


def _walk(message: Message) -> _Tree:
    """Iterative (no recursion), bounded walk; attached messages are not entered."""
    tree = _Tree()
    stack: list[tuple[Message, int]] = [(message, 0)]
    count = 0
    while stack:
        part, depth = stack.pop()
        count += 1
        if count > MAX_MIME_PARTS:
            raise MalformedMailError("malformed", "too many MIME parts")
        if depth > MAX_MIME_DEPTH:
            raise MalformedMailError("malformed", "MIME nesting too deep")
        content_type = part.get_content_type()
        if content_type == "message/delivery-status":
            tree.delivery_status.extend(_delivery_status(part))
        elif part.get_content_maintype() == "multipart" and part.is_multipart():
            children = [child for child in part.get_payload() if isinstance(child, Message)]
            stack.extend((child, depth + 1) for child in reversed(children))
        elif part.get_content_maintype() == "text" and not _is_attachment(part):
            _add_text_part(tree, part, content_type)
    return tree


def _is_attachment(part: Message) -> bool:
    return part.get_content_disposition() == "attachment"


def _add_text_part(tree: _Tree, part: Message, content_type: str) -> None:
    if content_type == "text/html":
        tree.html.append(part)
    elif content_type == "text/plain":
        tree.plain.append(part)
    else:
        return
    if tree.charset is None:
        tree.charset = part.get_content_charset()


def _part_text(part: Message) -> str:
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return ""
    return bodytext.decode_bytes(raw, part.get_content_charset()).replace("\r\n", "\n")


def _body_text(tree: _Tree) -> str:
    """The first inline text/plain part, else the first text/html part as text."""
    if tree.plain:
        return _part_text(tree.plain[0])[:MAX_BODY_CHARS]
    if tree.html:
        return bodytext.html_to_text(_part_text(tree.html[0]), max_chars=MAX_BODY_CHARS)
    return ""


def _delivery_status(part: Message) -> list[DeliveryStatus]:
    blocks = part.get_payload()
    if not isinstance(blocks, list):
        return []
    found = []
    for block in blocks[1 : MAX_DSN_BLOCKS + 1]:  # the first block is per-message
        if not isinstance(block, Message):
            continue
        action = str(block.get("action", "")).strip().lower()[:20]
        status = _STATUS.search(str(block.get("status", "")))
        diagnostic = _ADDRESS.sub("<address>", _one_line(str(block.get("diagnostic-code", ""))))
        found.append(
            DeliveryStatus(
                action=action,
                status=status.group(1) if status else "",
                diagnostic=diagnostic[:MAX_DIAGNOSTIC_CHARS],
            )
        )
    return found


def _is_delivery_report(message: Message) -> bool:
    return (
        message.get_content_type() == "multipart/report"
        and str(message.get_param("report-type", "")).lower() == "delivery-status"
    )


def _headers(message: Message, *, fallback_charset: str | None) -> dict[str, tuple[str, ...]]:
    """Every header, lower-cased name -> decoded values in order (RFC 2047 decoded,
    raw 8-bit text decoded as UTF-8 or the body's charset, unfolded, bounded)."""
    found: dict[str, list[str]] = {}
    for name, raw in message.raw_items():
        value = _decode_header(name, _decode_8bit(str(raw), fallback_charset))
        found.setdefault(name.strip().lower(), []).append(value)
    return {name: tuple(values) for name, values in found.items()}


def _decode_8bit(value: str, fallback_charset: str | None) -> str:
    """Undo the parser's surrogateescape of raw 8-bit header bytes."""
    if not _SURROGATES.search(value):
        return value
    raw = value.encode("utf-8", errors="surrogateescape")
    try:
        return raw.decode("utf-8")  # RFC 6532
    except UnicodeDecodeError:
        return bodytext.decode_bytes(raw, fallback_charset)


def _decode_header(name: str, value: str) -> str:
    value = _CONTROL.sub("", value.replace("\r", "").replace("\n", ""))[:MAX_HEADER_CHARS]
    if "=?" not in value:  # no encoded words: nothing to decode
        return value.strip()
    try:
        return str(policy.default.header_factory(name, value)).strip()
    except Exception:  # headerregistry has had crash bugs on hostile input
        return value.strip()


def _addresses(value: str) -> list[str]:
    """Lower-cased addr-specs with a domain; display names, groups and junk dropped."""
    try:
        header = policy.default.header_factory("to", value)
    except Exception:  # as in _decode_header
        return []
    if not isinstance(header, AddressHeader):
        return []
    found = []
    for address in header.addresses:
        spec = str(address.addr_spec).strip().lower()
        if "@" in spec and spec.rsplit("@", 1)[1] and " " not in spec:
            found.append(spec)
    return found


def _first(headers: dict[str, tuple[str, ...]], name: str) -> str:
    values = headers.get(name, ())
    return values[0] if values else ""


def _sender(headers: dict[str, tuple[str, ...]]) -> str:
    """The one From address; "" when none, unparsable or several (whom to authenticate?)."""
    values = headers.get("from", ())
    addresses = _addresses(values[0]) if len(values) == 1 else []
    return addresses[0] if len(addresses) == 1 else ""


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[1].rstrip(".") if "@" in address else ""


def _envelope_sender(headers: dict[str, tuple[str, ...]]) -> str:
    """The topmost Return-Path's address ("" for <>, or when missing: see loops)."""
    value = _first(headers, "return-path")
    addresses = _addresses(value) if value.strip() not in ("", "<>") else []
    return addresses[0] if addresses else ""


def _recipients(headers: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for name in RECIPIENT_HEADERS:
        for value in headers.get(name, ()):
            found.update(dict.fromkeys(_addresses(value)))
    return tuple(found)


def _references(headers: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    text = " ".join(headers.get("in-reply-to", ()) + headers.get("references", ()))
    return tuple(dict.fromkeys(_MESSAGE_ID.findall(text)))[:MAX_REFERENCES]


def _one_line(text: str) -> str:
    return " ".join(text.split())[:998]
