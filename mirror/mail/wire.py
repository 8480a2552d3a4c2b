"""A message as the wire carries it: bytes, CRLF line ends, dot-stuffed for SMTP DATA.

Pure (no socket, no event loop): the composer builds `Outgoing` messages with it, the
transports send them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BARE_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class Outgoing:
    """One message for one subscriber."""

    recipient_id: int
    address: str  # the envelope recipient; never logged
    message: bytes  # the full RFC 5322 message, CRLF line endings
    message_id: str  # the Message-ID header's value: re-sends reuse it
    payload: bytes | None = None  # `data_payload(message)`, when the composer made it already

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
