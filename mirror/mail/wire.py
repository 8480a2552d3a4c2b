"""A message as the wire carries it: MIME headers and a 7-bit body, CRLF line ends,
dot-stuffed for SMTP DATA.

Pure (no socket, no event loop, no transport library): the composer encodes its
messages with it, the transports send the `Outgoing` it makes.

    header_bytes, SMTP_POLICY, policy_for   headers as folded on the wire (SMTPUTF8 apart)
    encoded_body, encode_body, shared_body  the body in quoted-printable or base64
    ascii_address, ascii_domain             internationalised domains in IDNA form
    data_payload, dot_stuffed, end_of_data  the message as SMTP DATA carries it
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import parseaddr

from mirror.errors import SubscriberError

BARE_LINE_END = re.compile(rb"\r\n|\r|\n")
CTE_HEADER = "Content-Transfer-Encoding: quoted-printable\r\n\r\n"  # and the blank line


@dataclass(frozen=True)
class Outgoing:
    """One message for one subscriber."""

    recipient_id: int
    address: str  # the envelope recipient; never logged
    message: bytes  # the full RFC 5322 message, CRLF line endings
    message_id: str  # the Message-ID header's value: re-sends reuse it
    payload: bytes | None = None  # `data_payload(message)`, when the composer made it already
    envelope_from: str = ""  # MAIL FROM for this message (a VERP address); "": the sender's

    def data(self) -> bytes:
        """The message as DATA carries it (see data_payload)."""
        return self.payload if self.payload is not None else data_payload(self.message)


def data_payload(message: bytes) -> bytes:
    """A message as DATA carries it: CRLF line endings, leading dots doubled, then `.`."""
    crlf = message.count(b"\r\n")
    if message.count(b"\n") != crlf or message.count(b"\r") != crlf:
        message = BARE_LINE_END.sub(b"\r\n", message)
    return end_of_data(dot_stuffed(message))


def dot_stuffed(text: bytes) -> bytes:
    """CRLF text that starts a line, every line's leading dot doubled (RFC 5321 4.5.2).

    Pieces that each start a line can be stuffed apart and joined: a composer stuffs
    the body every recipient shares once."""
    text = text.replace(b"\r\n.", b"\r\n..")
    return b"." + text if text.startswith(b".") else text


def end_of_data(stuffed: bytes) -> bytes:
    """Stuffed CRLF text with the end-of-data mark after its last line."""
    return stuffed + (b".\r\n" if stuffed.endswith(b"\r\n") else b"\r\n.\r\n")


@dataclass(frozen=True)
class SharedBody:
    """A body every recipient of a kind shares: its encoding, the encoded part before the
    first line holding the token (CRLF line ends), and the text from there on."""

    encoding: str
    head: bytes
    tail: bytes  # UTF-8, not yet encoded
    stuffed_head: bytes  # `head` as SMTP DATA carries it (leading dots doubled)


def shared_body(text: str, stand_in: str) -> SharedBody:
    """Split where encoding the two parts apart gives the same bytes as the whole:
    at a line start for quoted-printable, at a 57-byte boundary for base64."""
    encoding, _ = encoded_body(text.replace(stand_in, "A" * len(stand_in)))
    data = text.encode("utf-8")
    first = data.find(stand_in.encode("utf-8"))
    first = len(data) if first < 0 else first
    cut = data.rfind(b"\n", 0, first) + 1 if encoding == "quoted-printable" else first // 57 * 57
    head = encode_body(encoding, data[:cut]).replace(b"\n", b"\r\n")
    return SharedBody(encoding, head, data[cut:], dot_stuffed(head))


def encode_body(encoding: str, data: bytes) -> bytes:
    """UTF-8 `data` in quoted-printable or base64, "\n" line ends (as `encoded_body`)."""
    if encoding == "base64":
        return base64.encodebytes(data)
    printable = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    return re.sub(rb"(?m)^From ", b"=46rom ", printable)  # mbox would write ">From"


def header_bytes(message: EmailMessage) -> int:
    """The size of the message's header lines, as the generator will write them."""
    return sum(len(message.policy.fold_binary(name, value)) for name, value in message.items())


def wire_bytes(payload: str) -> int:
    """The payload's size on the wire, where every line ends in CRLF."""
    return len(payload) + payload.count("\n")


def ascii_address(address: str) -> str:
    """The address with its domain in ASCII (IDNA): what a header or envelope can carry."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{ascii_domain(domain)}"


def ascii_domain(domain: str) -> str:
    """An internationalised domain in its ASCII (IDNA) form; SubscriberError if it has none."""
    try:
        return domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError as exc:
        raise SubscriberError("the address's domain is not a valid domain name") from exc


@functools.lru_cache(maxsize=8)  # one sender per run, asked once per message
def sender_domain(sender: str) -> str:
    """The ASCII domain of a "Name <addr>" sender; "mirror.invalid" when it has none."""
    domain = parseaddr(sender)[1].rpartition("@")[2]
    try:
        return ascii_domain(domain) or "mirror.invalid"
    except SubscriberError:
        return "mirror.invalid"


class MailPolicy(EmailPolicy):
    """SMTP's policy, except that List-Unsubscribe folds between its URIs.

    The email package would turn a URI longer than a line into an RFC 2047
    encoded-word, which no mail client reads as a URI.
    """

    def fold(self, name: str, value: str) -> str:
        if name.lower() == "list-unsubscribe":
            return f"{name}: " + f",{self.linesep} ".join(_uris(value)) + self.linesep
        folded: str = super().fold(name, value)
        return folded

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() == "list-unsubscribe":
            return self.fold(name, value).encode("ascii")
        return super().fold_binary(name, value)


def _uris(value: str) -> list[str]:
    return [part.strip() for part in str(value).split(",") if part.strip()]


SMTP_POLICY = MailPolicy(linesep="\r\n")
SMTPUTF8_POLICY = SMTP_POLICY.clone(utf8=True)


def policy_for(email: str) -> EmailPolicy:
    """SMTP's policy; SMTPUTF8's for a non-ASCII local part (the server must offer it)."""
    return SMTP_POLICY if email.rpartition("@")[0].isascii() else SMTPUTF8_POLICY


def encoded_body(text: str) -> tuple[str, str]:
    """(Content-Transfer-Encoding, payload): the shorter of quoted-printable and base64.

    Both are 7-bit, so servers without 8BITMIME or SMTPUTF8 carry the message intact.
    """
    data = text.encode("utf-8")
    printable = encode_body("quoted-printable", data)
    encoded = encode_body("base64", data)
    if len(printable) <= len(encoded):
        return "quoted-printable", printable.decode("ascii")
    return "base64", encoded.decode("ascii")
