"""The SMTP transport: a few reused SMTP sessions (TLS required), MAIL, RCPT and DATA
pipelined when the server offers it.

`smtp_url` schemes (DESIGN.md): `smtp://host:587` (STARTTLS required: a server that
does not offer it gets nothing), `smtps://host:465` (implicit TLS) and
`smtp+insecure://host:25` (no TLS, loopback hosts only). Certificates are verified.

aiosmtplib's exceptions are translated in one place, `translate_smtp_error`. Reasons and
log lines never carry a recipient's address: subscribers are named by id only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections import deque
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import aiosmtplib
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import SMTPStatus

from mirror.config import EHLO_NAME
from mirror.errors import (
    DeliveryError,
    DigestError,
    SmtpConnectionError,
    SubscriberError,
    TlsRequiredError,
)
from mirror.http_errors import cannot_connect, no_answer
from mirror.mail.hosts import is_loopback
from mirror.mail.wire import Outgoing, ascii_domain

log = logging.getLogger("mirror.mailer")

DEFAULT_PORTS = {"smtp": 587, "smtps": 465, "smtp+insecure": 25}
MAX_REASON_CHARS = 300  # a server's text, cut short in a reason
ADDRESS_LIKE = re.compile(r"[^\s<>\"',;:()\[\]]+@[^\s<>\"',;:()\[\]]+")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")
FORBIDDEN_IN_PATH = re.compile(r"[\s<>\x00-\x1f\x7f]")  # would break out of <...>
TIMEOUT_KEY = "digest.timeout_s"  # the setting a timeout's message names
QUIT_TIMEOUT_S = 2.0  # a polite QUIT at close is not worth waiting for longer
MAX_REPLY_LINE = 2048  # bytes: RFC 5321 allows 512; a server sending more is broken
MAX_REPLY_LINES = 100  # lines of one multi-line reply


# --- translating aiosmtplib's exceptions --------------------------------------------


def translate_smtp_error(exc: BaseException, where: SmtpWhere | None = None) -> DigestError:
    """The named error for an aiosmtplib (or socket/TLS) failure; texts carry no address.
    With `where`, a timeout or a refused connection is worded as mirror.http_errors words
    them ("cannot connect to HOST:PORT: connection refused", "no answer within 60 s
    (digest.timeout_s)")."""
    if isinstance(exc, aiosmtplib.SMTPResponseException | aiosmtplib.SMTPRecipientsRefused):
        return _refusal(exc)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):  # connect and read timeouts
        if where is not None:
            return SmtpConnectionError(no_answer(where.timeout_s, where.timeout_key))
        return SmtpConnectionError(f"timed out: {_clean(exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        if isinstance(exc.__cause__, ssl.SSLError):
            return _tls_failed(exc.__cause__)
        if where is not None and isinstance(exc.__cause__, OSError):
            return SmtpConnectionError(cannot_connect(where.host, where.port, exc.__cause__))
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
    said = "deferred" if soft else "refused"  # a 4xx: try later
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return DeliveryError(_reply(f"recipient {said}", exc.code, exc.message), permanent=not soft)
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return DeliveryError(_reply(f"message {said}", exc.code, exc.message), permanent=not soft)
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


@dataclass(frozen=True)
class SmtpWhere:
    """The server and the limit a connection or timeout message names."""

    host: str
    port: int
    timeout_s: float
    timeout_key: str = TIMEOUT_KEY


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
    if scheme == "smtp+insecure" and not is_loopback(host):
        raise TlsRequiredError(
            "smtp+insecure:// is allowed only to a loopback host (localhost, 127.0.0.1, ::1);"
            " use smtp:// (STARTTLS) or smtps://"
        )
    return SmtpEndpoint(scheme, host, port)


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
        self._where = SmtpWhere(self._endpoint.host, self._endpoint.port, timeout_s)
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

    async def probe(self) -> str:
        """Open one session as a send would (TLS as the URL says, certificate verified,
        AUTH when a username is set, EHLO), then QUIT: no mail is sent. What the server
        did, for a report; the named error (translate_smtp_error) when it failed."""
        slot = _Slot()
        try:
            slot.session = await self._connect()
            extensions = sorted(slot.session.extensions)
        except SMTP_FAILURES as exc:
            raise translate_smtp_error(exc, self._where) from exc
        finally:
            await slot.close()
        e = self._endpoint
        tls = {"smtp": "STARTTLS", "smtps": "TLS"}.get(e.scheme, "no TLS (loopback)")
        login = "login accepted" if self._username else "no login configured"
        return f"{e.host}:{e.port}: {tls}, {login}, EHLO offers {', '.join(extensions)}"

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
            raise translate_smtp_error(exc, self._where) from (
                None if _names_recipient(exc) else exc
            )
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
        sender = _envelope(out.envelope_from) if out.envelope_from else self._sender
        options, encoding = _mail_options(session, out, sender + recipient)
        mail = b" ".join([b"MAIL FROM:" + _path(sender, encoding), *options]) + b"\r\n"
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
            why = no_answer(self._timeout_s, TIMEOUT_KEY)
            raise aiosmtplib.SMTPReadTimeoutError(why) from None
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
    if not at:
        return address
    try:
        return f"{local}@{ascii_domain(domain)}"
    except SubscriberError:
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
