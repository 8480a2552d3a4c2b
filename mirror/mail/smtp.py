"""Sending the digest: SMTP (or an outbox folder) behind one small seam.

    deliver(outgoing, transport, ...)   paces, retries and reports one Delivery per message
    └── Transport.send(outgoing)        one message to one recipient, or a named error:
        ├── SmtpTransport               a few reused SMTP sessions (TLS required), pipelined
        └── OutboxTransport             <hash of message id>.eml files in a folder

`smtp_url` schemes (DESIGN.md): `smtp://host:587` (STARTTLS required: a server that
does not offer it gets nothing), `smtps://host:465` (implicit TLS) and
`smtp+insecure://host:25` (no TLS, loopback hosts only). Certificates are verified.

aiosmtplib's exceptions are translated in one place, `translate_smtp_error`. Reasons and
log lines never carry a recipient's address: subscribers are named by id only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import math
import os
import re
import ssl
import tempfile
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast
from urllib.parse import urlsplit

import aiosmtplib
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import SMTPStatus

from mirror.config import EHLO_NAME, DigestConfig
from mirror.errors import (
    DeliveryError,
    DigestError,
    SmtpConnectionError,
    TlsRequiredError,
)

log = logging.getLogger("mirror.mailer")

DEFAULT_PORTS = {"smtp": 587, "smtps": 465, "smtp+insecure": 25}
LOOPBACK_NAMES = ("localhost", "localhost.")
MAX_REASON_CHARS = 300  # a server's text, cut short in a reason
ADDRESS_LIKE = re.compile(r"[^\s<>\"',;:()\[\]]+@[^\s<>\"',;:()\[\]]+")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")
BARE_LINE_END = re.compile(rb"\r\n|\r|\n")
FORBIDDEN_IN_PATH = re.compile(r"[\s<>\x00-\x1f\x7f]")  # would break out of <...>
QUIT_TIMEOUT_S = 2.0  # a polite QUIT at close is not worth waiting for longer
MAX_REPLY_LINE = 2048  # bytes: RFC 5321 allows 512; a server sending more is broken
MAX_REPLY_LINES = 100  # lines of one multi-line reply


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


@dataclass(frozen=True)
class Delivery:
    """What became of one Outgoing."""

    recipient_id: int
    ok: bool
    permanent: bool  # a 5xx for this recipient: sending again will not help
    reason: str  # "" when ok; never contains the address


class Transport(Protocol):
    """Where messages go: one message per call.

    `send` returns once the message is taken; it raises `DeliveryError` (`permanent`
    or not) when this recipient or message is refused, `SmtpConnectionError` or
    `TlsRequiredError` when the server itself cannot be used (`retryable` says whether
    trying again may help).
    """

    async def send(self, outgoing: Outgoing) -> None:
        """Hand over one message."""
        ...

    async def close(self) -> None:
        """Release connections; sending afterwards is an error."""
        ...


# --- translating aiosmtplib's exceptions --------------------------------------------


def translate_smtp_error(exc: BaseException) -> DigestError:
    """The named error for an aiosmtplib (or socket/TLS) failure; texts carry no address."""
    if isinstance(exc, aiosmtplib.SMTPResponseException | aiosmtplib.SMTPRecipientsRefused):
        return _refusal(exc)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):  # connect and read timeouts
        return SmtpConnectionError(f"timed out: {_clean(exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        if isinstance(exc.__cause__, ssl.SSLError):
            return _tls_failed(exc.__cause__)
        return SmtpConnectionError(f"cannot connect: {_clean(exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return SmtpConnectionError(f"connection dropped: {_clean(exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPNotSupported):  # SMTPUTF8 needed, not offered
        return DeliveryError(f"not supported by the server: {_clean(exc.message)}", permanent=True)
    if isinstance(exc, aiosmtplib.SMTPException):  # no AUTH offered, and the like
        return _fatal(SmtpConnectionError(f"cannot use the server: {_clean(exc.message)}"))
    if isinstance(exc, ssl.SSLError):
        return _tls_failed(exc)
    if isinstance(exc, OSError):
        return SmtpConnectionError(f"network error: {exc.strerror or type(exc).__name__}")
    if isinstance(exc, ValueError):  # an address that cannot go in an envelope
        return DeliveryError("the address cannot be used in an SMTP envelope", permanent=True)
    return _fatal(SmtpConnectionError(f"unexpected SMTP error: {type(exc).__name__}"))


def _refusal(
    exc: aiosmtplib.SMTPResponseException | aiosmtplib.SMTPRecipientsRefused,
) -> DigestError:
    """An SMTP reply code: 4xx may pass, 5xx will not; a recipient's, or the server's."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        first = exc.recipients[0] if exc.recipients else None
        exc = first or aiosmtplib.SMTPRecipientRefused(550, "", "")
    soft = exc.code < 500
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return DeliveryError(_reply("recipient refused", exc.code, exc.message), permanent=not soft)
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return DeliveryError(_reply("message refused", exc.code, exc.message), permanent=not soft)
    if isinstance(exc, aiosmtplib.SMTPSenderRefused) and soft:
        return DeliveryError(_reply("sender deferred", exc.code, exc.message), permanent=False)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):  # not retried: it may lock the account
        return _fatal(SmtpConnectionError(_reply("login refused", exc.code, exc.message)))
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        error = SmtpConnectionError(_reply("the server refuses our sender", exc.code, exc.message))
    else:  # the greeting, EHLO, STARTTLS, RSET
        error = SmtpConnectionError(_reply("the server refused us", exc.code, exc.message))
    return error if soft else _fatal(error)


SMTP_FAILURES = (aiosmtplib.SMTPException, OSError, ValueError)  # what translate_smtp_error takes


def _reply(what: str, code: int, text: str) -> str:
    return f"{what}: {code} {_clean(text)}".rstrip()


def _clean(text: str) -> str:
    """A server's text made safe for a reason: no address, no control characters, short."""
    text = ADDRESS_LIKE.sub("<address>", CONTROL_CHARS.sub(" ", text)).strip()
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS] + "…"


def _fatal(error: DigestError) -> DigestError:
    """Mark a server-level error as one that trying again will not fix."""
    error.retryable = False
    return error


def _tls_failed(exc: ssl.SSLError) -> DigestError:
    reason = getattr(exc, "verify_message", "") or exc.reason or type(exc).__name__
    return _fatal(SmtpConnectionError(f"TLS failed: {_clean(str(reason))}"))


# --- SMTP ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpEndpoint:
    """Where and how to connect, read from an smtp_url."""

    scheme: str  # smtp | smtps | smtp+insecure
    host: str
    port: int


def parse_smtp_url(url: str) -> SmtpEndpoint:
    """Check an smtp_url; plain text to a host that is not loopback is refused here."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise DigestError("smtp_url must start with smtp://, smtps:// or smtp+insecure://")
    if parts.username or parts.password:
        raise DigestError("smtp_url must not hold credentials: use smtp_username and the env var")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise DigestError("smtp_url has an invalid port") from None
    host = parts.hostname or ""
    if not host:
        raise DigestError("smtp_url has no host")
    if scheme == "smtp+insecure" and not _is_loopback(host):
        raise TlsRequiredError(
            "smtp+insecure:// is allowed only to a loopback host (localhost, 127.0.0.1, ::1);"
            " use smtp:// (STARTTLS) or smtps://"
        )
    return SmtpEndpoint(scheme, host, port)


def _is_loopback(host: str) -> bool:
    """A loopback IP literal or the name localhost; other names are not resolved."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SmtpTransport:
    """Messages over a small pool of SMTP connections, each reused for many messages.

    aiosmtplib opens each session (TCP, TLS or STARTTLS, AUTH, EHLO); the transactions
    then run on `_Session`, which pipelines MAIL, RCPT and DATA in one write when the
    server offers PIPELINING (RFC 2920): two round trips a message instead of four.
    """

    def __init__(
        self,
        smtp_url: str,
        *,
        sender: str,
        username: str = "",
        password: str | None = None,
        connections: int = 4,
        timeout_s: float = 60,
        tls_context: ssl.SSLContext | None = None,
        ehlo_name: str = "",
    ) -> None:
        self._endpoint = parse_smtp_url(smtp_url)
        self._sender = _envelope(sender)  # as MAIL FROM carries it: made once
        # never socket.getfqdn(), aiosmtplib's default: the relay would write the ops
        # host's name into every digest's Received header
        self._ehlo_name = ehlo_name or _domain_name(self._sender)
        self._username = username
        self._password = password
        self._timeout_s = timeout_s
        self._tls_context = tls_context
        self._slots = [_Slot() for _ in range(max(1, connections))]
        self._idle: asyncio.Queue[_Slot] = asyncio.Queue()  # FIFO: every connection gets used
        for slot in self._slots:
            self._idle.put_nowait(slot)
        self._closed = False

    def __repr__(self) -> str:  # never shows the password
        e = self._endpoint
        return f"SmtpTransport({e.scheme}://{e.host}:{e.port}, connections={len(self._slots)})"

    async def __aenter__(self) -> SmtpTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def send(self, outgoing: Outgoing) -> None:
        """One SMTP transaction on a pooled connection (opened or reopened as needed)."""
        if self._closed:
            raise DigestError("the SMTP transport is closed")
        slot = await self._idle.get()
        try:
            await self._send_on(slot, outgoing)
        finally:
            self._idle.put_nowait(slot)

    async def close(self) -> None:
        """Say QUIT on every open connection; later sends are refused."""
        self._closed = True
        await asyncio.gather(*(slot.close() for slot in self._slots))

    async def _send_on(self, slot: _Slot, out: Outgoing) -> None:
        reused = slot.is_open()
        try:
            try:
                await self._transaction(slot, out)
            except aiosmtplib.SMTPServerDisconnected:
                if not reused or slot.data_started:
                    raise
                log.debug("an idle SMTP connection was dropped; reconnecting")
                slot.drop()
                await self._transaction(slot, out)
        except SMTP_FAILURES as exc:
            await slot.after_failure(exc)
            # aiosmtplib's recipient errors hold the address in their args: not chained
            raise translate_smtp_error(exc) from (None if _names_recipient(exc) else exc)
        except BaseException:
            slot.drop()  # cancelled mid-transaction: the session cannot be reused
            raise

    async def _transaction(self, slot: _Slot, out: Outgoing) -> None:
        """MAIL, RCPT and DATA (pipelined when offered), then the message and its 250.

        The message is CRLF and usually dot-stuffed already (`Outgoing.payload`):
        aiosmtplib's per-message regex rewrite of 40 KB cost more than the network."""
        if not slot.is_open():
            slot.drop()
            slot.session = await self._connect()
        session = slot.session
        assert session is not None
        slot.data_started = False
        recipient = _envelope(out.address)
        options, encoding = _mail_options(session, out, self._sender + recipient)
        mail = b" ".join([b"MAIL FROM:" + _path(self._sender, encoding), *options]) + b"\r\n"
        rcpt = b"RCPT TO:" + _path(recipient, encoding) + b"\r\n"
        if session.pipelining:
            session.write(mail + rcpt + b"DATA\r\n")
            replies = await session.replies(3)
        else:
            replies = []
            for command in (mail, rcpt, b"DATA\r\n"):
                session.write(command)
                replies += await session.replies(1)
                if replies[-1].code not in _EXPECTED[len(replies) - 1]:
                    break
        await self._check(session, replies, out)
        slot.data_started = True
        session.write(out.data())
        (reply,) = await session.replies(1)
        if reply.code != SMTPStatus.completed:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)

    async def _check(self, session: _Session, replies: list[SMTPResponse], out: Outgoing) -> None:
        """Raise for the first refusal among MAIL, RCPT, DATA, keeping the session in step."""
        if all(r.code in ok for r, ok in zip(replies, _EXPECTED, strict=False)):
            return
        if replies[-1].code == SMTPStatus.start_input:  # DATA taken after a refusal: end it
            session.write(b".\r\n")
            await session.replies(1)
        mail, *rest = replies
        if mail.code != SMTPStatus.completed:
            raise aiosmtplib.SMTPSenderRefused(mail.code, mail.message, self._sender)
        rcpt, *rest = rest
        if rcpt.code not in _EXPECTED[1]:
            raise aiosmtplib.SMTPRecipientRefused(rcpt.code, rcpt.message, out.address)
        raise aiosmtplib.SMTPDataError(rest[0].code, rest[0].message)

    async def _connect(self) -> _Session:
        """A new session: TLS (implicit or STARTTLS) and login done."""
        e = self._endpoint
        client = aiosmtplib.SMTP(
            hostname=e.host,
            port=e.port,
            use_tls=e.scheme == "smtps",
            start_tls=False,  # done below, to refuse clear text with a named error
            tls_context=self._tls_context,
            timeout=self._timeout_s,
            local_hostname=self._ehlo_name,
        )
        try:
            await client.connect()
            if e.scheme == "smtp":
                await _start_tls(client)
            if self._username:
                await client.login(self._username, self._password or "")
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()  # the extensions (SIZE, SMTPUTF8, PIPELINING) come from it
            assert client.transport is not None
            return _Session(client.transport, client.esmtp_extensions, self._timeout_s)
        except BaseException:
            client.close()
            raise


# The replies a transaction's MAIL, RCPT and DATA must get to go on.
_EXPECTED = (
    (SMTPStatus.completed,),
    (SMTPStatus.completed, SMTPStatus.will_forward),
    (SMTPStatus.start_input,),
)


class _Session(asyncio.Protocol):
    """An SMTP session after its set-up: commands out, every reply kept in order.

    aiosmtplib's protocol holds one reply at a time and drops what comes before the
    next read, so it cannot pipeline; this one takes over the connection's transport
    (`set_protocol`) once aiosmtplib has done TLS, AUTH and EHLO."""

    def __init__(
        self, transport: asyncio.BaseTransport, extensions: dict[str, str], timeout_s: float
    ) -> None:
        self.extensions = {name.lower(): value for name, value in extensions.items()}
        self.pipelining = "pipelining" in self.extensions
        self._transport = transport
        self._timeout_s = timeout_s
        self._buffer = bytearray()
        self._replies: deque[SMTPResponse] = deque()
        self._lines: list[bytes] = []  # the lines of a multi-line reply so far
        self._waiter: asyncio.Future[None] | None = None
        self._error: aiosmtplib.SMTPException | None = None
        transport.set_protocol(self)

    @property
    def is_open(self) -> bool:
        """Usable for a new command: connected, and no reply waiting that nobody asked
        for (a server's unsolicited "421 going away" would put later replies out of step)."""
        return self._error is None and not self._transport.is_closing() and not self._replies

    def supports(self, extension: str) -> bool:
        return extension in self.extensions

    def write(self, data: bytes) -> None:
        if not self.is_open:
            raise self._error or aiosmtplib.SMTPServerDisconnected("Connection lost")
        cast(asyncio.WriteTransport, self._transport).write(data)

    async def replies(self, count: int) -> list[SMTPResponse]:
        """The next `count` replies; a timeout or a lost connection ends the session."""
        try:
            async with asyncio.timeout(self._timeout_s):
                while len(self._replies) < count:
                    if self._error is not None:
                        raise self._error
                    self._waiter = asyncio.get_running_loop().create_future()
                    await self._waiter
        except TimeoutError:
            self.close()
            raise aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response") from None
        return [self._replies.popleft() for _ in range(count)]

    def close(self) -> None:
        self._fail(aiosmtplib.SMTPServerDisconnected("Connection closed"))
        self._transport.close()

    # asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            self._parse()
        except aiosmtplib.SMTPResponseException as exc:
            self._fail(exc)
            self._transport.close()
            return
        self._wake()

    def eof_received(self) -> bool:
        self._fail(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        error = aiosmtplib.SMTPServerDisconnected("Connection lost")
        error.__cause__ = exc
        self._fail(error)

    def _parse(self) -> None:
        """Move every complete reply out of the buffer (RFC 5321 4.2: `250-...`, `250 ...`)."""
        start = 0
        while (end := self._buffer.find(b"\n", start)) >= 0:
            line = bytes(self._buffer[start : end + 1])
            start = end + 1
            if len(line) > MAX_REPLY_LINE or not line[:3].isdigit():
                raise aiosmtplib.SMTPResponseException(
                    SMTPStatus.invalid_response, "malformed or overlong SMTP reply line"
                )
            self._lines.append(line)
            if len(self._lines) > MAX_REPLY_LINES:
                raise aiosmtplib.SMTPResponseException(
                    SMTPStatus.invalid_response, "SMTP reply with too many lines"
                )
            if line[3:4] != b"-":
                text = b"\n".join(part[4:].strip(b" \t\r\n") for part in self._lines)
                self._replies.append(SMTPResponse(int(line[:3]), text.decode("utf-8", "replace")))
                self._lines = []
        del self._buffer[:start]
        if len(self._buffer) > MAX_REPLY_LINE:
            raise aiosmtplib.SMTPResponseException(
                SMTPStatus.invalid_response, "overlong SMTP reply line"
            )

    def _fail(self, error: aiosmtplib.SMTPException) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def _domain_name(envelope_address: str) -> str:
    """The domain of an address in its envelope form (`_envelope`), if EHLO can carry
    it as the config's `ehlo_name` could; else "localhost"."""
    domain = envelope_address.rpartition("@")[2]
    return domain if EHLO_NAME.fullmatch(domain) else "localhost"


async def _start_tls(client: aiosmtplib.SMTP) -> None:
    """STARTTLS, or TlsRequiredError when the server does not offer it."""
    await client.ehlo()
    if not client.supports_extension("starttls"):
        raise TlsRequiredError(
            "the server does not offer STARTTLS: refusing to send in clear"
            " (use smtps:// if it speaks implicit TLS)"
        )
    await client.starttls()


def _envelope(address: str) -> str:
    """The address as an envelope carries it: an internationalised domain in its ASCII
    (IDNA) form, so only a non-ASCII local part needs SMTPUTF8."""
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return address  # left as it is: SMTPUTF8 or a refusal decides


def _mail_options(session: _Session, out: Outgoing, addresses: str) -> tuple[list[bytes], str]:
    """MAIL FROM options (SIZE, SMTPUTF8 for a non-ASCII address) and the envelope encoding."""
    size = f"SIZE={len(out.message)}".encode()
    options = [size] if session.supports("size") else []
    if addresses.isascii():
        return options, "ascii"
    if not session.supports("smtputf8"):
        raise aiosmtplib.SMTPNotSupported("the address needs SMTPUTF8, which the server lacks")
    return [*options, b"SMTPUTF8"], "utf-8"


def _path(address: str, encoding: str) -> bytes:
    """`<address>` for MAIL FROM or RCPT TO; ValueError for one that could break the command."""
    if not address or FORBIDDEN_IN_PATH.search(address):
        raise ValueError("an address unfit for an SMTP envelope")
    return b"<" + address.encode(encoding) + b">"


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


def _names_recipient(exc: BaseException) -> bool:
    """Whether the exception's args may hold the recipient's address."""
    return isinstance(
        exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPRecipientsRefused | ValueError
    )


class _Slot:
    """One place in the pool: a session, open or not."""

    def __init__(self) -> None:
        self.session: _Session | None = None
        self.data_started = False  # the message itself went out in this transaction

    def is_open(self) -> bool:
        return self.session is not None and self.session.is_open

    def drop(self) -> None:
        """Forget the session, closing its connection."""
        if self.session is not None:
            self.session.close()
        self.session = None

    async def after_failure(self, exc: BaseException) -> None:
        """Keep a session that only refused this message (RSET), else drop it."""
        if not self.is_open() or not isinstance(exc, aiosmtplib.SMTPResponseException):
            self.drop()
            return
        assert self.session is not None
        try:
            self.session.write(b"RSET\r\n")
            (reply,) = await self.session.replies(1)
        except aiosmtplib.SMTPException:
            self.drop()
            return
        if reply.code != SMTPStatus.completed:
            self.drop()

    async def close(self) -> None:
        """QUIT (briefly waited for), then close."""
        session, self.session = self.session, None
        if session is None or not session.is_open:
            return
        with contextlib.suppress(aiosmtplib.SMTPException, TimeoutError):
            session.write(b"QUIT\r\n")
            async with asyncio.timeout(QUIT_TIMEOUT_S):
                await session.replies(1)
        session.close()


# --- the outbox ----------------------------------------------------------------------


class OutboxTransport:
    """Each message as `<sha256 of its message id>.eml` in a folder (no SMTP at all).

    Writes are atomic (a temporary file, then `os.replace`); sending a message id again
    replaces the same file, so a resumed run leaves one file per message.
    """

    def __init__(self, outbox_dir: Path) -> None:
        self._dir = Path(outbox_dir)
        self._closed = False

    async def __aenter__(self) -> OutboxTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def send(self, outgoing: Outgoing) -> None:
        """Write the message's file (in a worker thread: the loop is not blocked)."""
        if self._closed:
            raise DigestError("the outbox transport is closed")
        try:
            await asyncio.to_thread(self._write, outbox_name(outgoing.message_id), outgoing.message)
        except OSError as exc:
            raise SmtpConnectionError(f"cannot write the outbox: {exc.strerror}") from exc

    async def close(self) -> None:
        """Nothing to release; later sends are refused."""
        self._closed = True

    def _write(self, name: str, message: bytes) -> None:
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self._dir, prefix=".", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(message)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self._dir / name)
        except BaseException:
            with contextlib.suppress(OSError):
                Path(temp).unlink()
            raise


def outbox_name(message_id: str) -> str:
    """The file name of a message in the outbox: safe whatever the message id holds."""
    return hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:32] + ".eml"


def transport_for(
    config: DigestConfig,
    *,
    password: str | None,
    sender_address: str,
    tls_context: ssl.SSLContext | None = None,
) -> Transport:
    """SMTP when `smtp_url` is set, else the outbox folder."""
    if not config.smtp_url:
        return OutboxTransport(config.outbox_dir)
    if config.smtp_username and password is None:
        raise DigestError(
            f"smtp_username is set but ${config.smtp_password_env} is not: "
            "set it to the SMTP password"
        )
    return SmtpTransport(
        config.smtp_url,
        sender=sender_address,
        username=config.smtp_username,
        password=password,
        connections=config.connections,
        timeout_s=config.timeout_s,
        tls_context=tls_context,
        ehlo_name=config.ehlo_name,
    )


# --- delivering many messages ----------------------------------------------------------


async def deliver(
    outgoing: AsyncIterable[Outgoing] | Iterable[Outgoing],
    transport: Transport,
    *,
    rate_per_s: float,
    per_domain_rate_per_s: float,
    concurrency: int,
    retries: int,
    backoff_s: float = 1.0,
    after_send: Callable[[Outgoing, Delivery], None] | None = None,
) -> list[Delivery]:
    """Send every message; one Delivery each, in the order given.

    Messages are read as they are needed (a few at a time, never all at once) and sent
    `concurrency` at a time, at most `rate_per_s` overall and `per_domain_rate_per_s`
    per recipient domain (0 or infinity: no limit). A refusal for now (4xx) or a lost
    connection is tried again up to `retries` more times, waiting `backoff_s`, then
    twice as long each time; a 5xx fails that recipient only. When the server cannot
    be reached through a message's every attempt (and nothing got through meanwhile),
    or refuses us outright (TLS, login), the rest fail at once, not permanently.
    `after_send` runs once per message with its outcome, as soon as it is known (the
    digest records a send there). An exception in it (or in the iterator) stops
    everything and is raised as it is.
    """
    sender = _Sender(
        transport,
        _Limits(rate_per_s, per_domain_rate_per_s),
        retries=max(0, retries),
        backoff_s=backoff_s,
        after_send=after_send,
    )
    workers = max(1, concurrency)
    queue: asyncio.Queue[tuple[int, Outgoing] | None] = asyncio.Queue(maxsize=2 * workers)
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_feed(outgoing, queue, workers))
            for _ in range(workers):
                group.create_task(_work(queue, sender))
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None  # the caller's own error, not a group
    return [delivery for _, delivery in sorted(sender.results, key=lambda pair: pair[0])]


async def _feed(
    outgoing: AsyncIterable[Outgoing] | Iterable[Outgoing],
    queue: asyncio.Queue[tuple[int, Outgoing] | None],
    workers: int,
) -> None:
    """Number the messages into the bounded queue, then one stop mark per worker."""
    index = 0
    async for item in _aiter(outgoing):
        await queue.put((index, item))
        index += 1
    for _ in range(workers):
        await queue.put(None)


async def _aiter(items: AsyncIterable[Outgoing] | Iterable[Outgoing]) -> AsyncIterator[Outgoing]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def _work(queue: asyncio.Queue[tuple[int, Outgoing] | None], sender: _Sender) -> None:
    while (item := await queue.get()) is not None:
        index, out = item
        sender.results.append((index, await sender.deliver_one(out)))


class _Sender:
    """One message at a time per worker: pacing, retries, the dead-server stop."""

    def __init__(
        self,
        transport: Transport,
        limits: _Limits,
        *,
        retries: int,
        backoff_s: float,
        after_send: Callable[[Outgoing, Delivery], None] | None,
    ) -> None:
        self.transport = transport
        self.limits = limits
        self.retries = retries
        self.backoff_s = backoff_s
        self.after_send = after_send
        self.results: list[tuple[int, Delivery]] = []
        self.stopped = ""  # why every remaining message fails at once
        self.successes = 0

    async def deliver_one(self, out: Outgoing) -> Delivery:
        """Attempts until sent, refused for good, out of retries or stopped."""
        delivery = await self._attempts(out)
        if self.after_send is not None:
            self.after_send(out, delivery)
        return delivery

    async def _attempts(self, out: Outgoing) -> Delivery:
        successes_before = self.successes
        reason = ""
        server_failures = 0
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            if self.stopped:
                return _failed(out, self.stopped)
            await self.limits.wait(_domain(out.address))
            try:
                await self.transport.send(out)
            except DeliveryError as exc:
                if exc.permanent:
                    return _failed(out, exc.reason, permanent=True)
                reason = exc.reason
            except DigestError as exc:
                reason = f"server unreachable: {exc}"
                server_failures += 1
                if not exc.retryable:
                    return _failed(out, self._stop(str(exc)))
            else:
                self.successes += 1
                return Delivery(out.recipient_id, ok=True, permanent=False, reason="")
        if server_failures > self.retries and self.successes == successes_before:
            self._stop(reason)
        return _failed(out, reason)

    def _stop(self, reason: str) -> str:
        """Fail every message not yet sent, with this reason."""
        if not self.stopped:
            log.warning("SMTP server unusable, not trying the remaining messages: %s", reason)
            self.stopped = reason
        return self.stopped


def _failed(out: Outgoing, reason: str, *, permanent: bool = False) -> Delivery:
    return Delivery(out.recipient_id, ok=False, permanent=permanent, reason=reason)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


class _Pace:
    """Evenly spaced slots, `rate_per_s` a second, no burst (0 or inf: no limit)."""

    def __init__(self, rate_per_s: float) -> None:
        limited = 0 < rate_per_s < math.inf
        self.interval_s = 1 / rate_per_s if limited else 0.0
        self.next_at = 0.0

    async def wait(self) -> None:
        """Take the next free slot and sleep until it comes."""
        if not self.interval_s:
            return
        now = asyncio.get_running_loop().time()
        at = max(now, self.next_at)
        self.next_at = at + self.interval_s
        if at > now:
            await asyncio.sleep(at - now)


class _Limits:
    """The overall rate and one per recipient domain."""

    def __init__(self, rate_per_s: float, per_domain_rate_per_s: float) -> None:
        self.overall = _Pace(rate_per_s)
        self.per_domain_rate_per_s = per_domain_rate_per_s
        self.domains: dict[str, _Pace] = {}

    async def wait(self, domain: str) -> None:
        """The domain's slot first, so a busy domain never holds overall slots."""
        pace = self.domains.get(domain)
        if pace is None:
            pace = self.domains[domain] = _Pace(self.per_domain_rate_per_s)
        await pace.wait()
        await self.overall.wait()
