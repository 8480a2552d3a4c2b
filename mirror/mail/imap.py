"""Readers' mail in over IMAP: what waits in the mailbox (with its sizes), the messages in
batches of UID ranges, then each handled one moved to the done mailbox (or deleted); IDLE
to wait for more. On aioimaplib, one connection.

    async with ImapMailbox(settings) as mailbox:      connect, TLS, LOGIN, SELECT
        waiting = await mailbox.waiting()             UID SEARCH + one UID FETCH of sizes
        async for uid, raw in mailbox.fetch(uids):    one UID FETCH per batch
            ...
        await mailbox.finish(uids)                    UID MOVE (or COPY, STORE, EXPUNGE)
        await mailbox.idle(timeout_s)                 IDLE until new mail or the timeout

`imap_url` schemes, as for SMTP: `imaps://host:993` (implicit TLS), `imap://host:143`
(STARTTLS required: a server that does not offer it never sees the password) and
`imap+insecure://host:143` (no TLS, loopback hosts only). Certificates are verified.

Every message in the mailbox not marked \\Deleted is waiting: handled ones leave it. A
message over `max_message_bytes` (by the server's RFC822.SIZE) is listed as too large
and never downloaded; the download itself asks for at most that many bytes plus one.

aioimaplib's exceptions (and socket, TLS and timeout errors) are translated once, in
`translate_imap_error`; an error's text never carries the password or an address.
aioimaplib's debug log (every byte sent and received, the login among them) is silenced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import aioimaplib

from mirror.errors import (
    ConfigError,
    ImapAuthError,
    ImapConnectionError,
    ImapProtocolError,
    ImapTlsError,
    MailboxError,
)
from mirror.http_errors import cannot_connect, no_answer
from mirror.mail.hosts import is_loopback

log = logging.getLogger("mirror.mailin")
logging.getLogger("aioimaplib").setLevel(logging.WARNING)  # its debug lines hold mail

T = TypeVar("T")

DEFAULT_PORTS = {"imaps": 993, "imap": 143, "imap+insecure": 143}
MAILBOX_NAME = re.compile(r"[\x20-\x7e]{1,200}")  # printable ASCII: no modified UTF-7 here
# aioimaplib reads each line of a response one recursion level deeper (iroco-co/aioimaplib
# issue 118, open): a response of ~1000 lines overflows the stack and drops the connection.
# Commands whose response has a line per message (sizes, MOVE's EXPUNGEs) go in chunks.
MAX_RESPONSE_LINES = 500
CLOSE_TIMEOUT_S = 2.0  # a polite LOGOUT at close is not worth waiting for longer
MAX_REASON_CHARS = 300  # a server's text, cut short in an error
ADDRESS_LIKE = re.compile(r"[^\s<>\"',;:()\[\]]+@[^\s<>\"',;:()\[\]]+")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")
FETCH_START = re.compile(rb"\d+ FETCH \(")
UID_ITEM = re.compile(rb"\bUID (\d+)")
SIZE_ITEM = re.compile(rb"\bRFC822\.SIZE (\d+)")
EXISTS = re.compile(rb"^\d+ EXISTS", re.MULTILINE)


# --- settings ------------------------------------------------------------------------


@dataclass(frozen=True)
class ImapEndpoint:
    """Where and how to connect, read from an imap_url."""

    scheme: str  # imaps | imap (STARTTLS) | imap+insecure
    host: str
    port: int


def parse_imap_url(url: str) -> ImapEndpoint:
    """Check an imap_url; plain text to a host that is not loopback is refused here."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ConfigError("must start with imaps://, imap:// or imap+insecure://", key="imap_url")
    if parts.username or parts.password:
        raise ConfigError(
            "must not hold credentials: use the username and password keys", key="imap_url"
        )
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise ConfigError("has an invalid port", key="imap_url") from None
    host = parts.hostname or ""
    if not host:
        raise ConfigError("has no host", key="imap_url")
    if scheme == "imap+insecure" and not is_loopback(host):
        raise ConfigError(
            "imap+insecure:// is allowed only to a loopback host (localhost, 127.0.0.1, ::1);"
            " use imaps:// or imap:// (STARTTLS)",
            key="imap_url",
        )
    return ImapEndpoint(scheme, host, port)


@dataclass(frozen=True)
class ImapSettings:
    """One mailbox to read readers' mail from, and the bounds on reading it."""

    url: str  # imaps://host:993 | imap://host:143 (STARTTLS) | imap+insecure://127.0.0.1:143
    username: str
    password: str = field(repr=False)
    mailbox: str = "INBOX"
    done_mailbox: str = "Handled"  # where handled messages go (created when missing)
    keep: bool = True  # False: handled messages are deleted, not moved
    timeout_s: float = 30.0  # per command (and per connect)
    batch: int = 50  # UIDs per FETCH
    batch_bytes: int = 8_000_000  # message bytes per FETCH, by the sizes `waiting` read
    max_message_bytes: int = 1_000_000  # larger ones are listed too_large, never downloaded
    max_waiting: int = 10_000  # messages `waiting` lists at once (the oldest first)

    def __post_init__(self) -> None:
        parse_imap_url(self.url)
        for key in ("mailbox", "done_mailbox"):
            name = getattr(self, key)
            if (name or key == "mailbox") and not MAILBOX_NAME.fullmatch(name):
                raise ConfigError("must be 1-200 printable ASCII characters", key=key)
        if self.keep and not self.done_mailbox:
            raise ConfigError("is needed unless keep = false", key="done_mailbox")
        if self.keep and self.done_mailbox == self.mailbox:
            raise ConfigError("must differ from mailbox", key="done_mailbox")
        for key in ("timeout_s", "batch", "batch_bytes", "max_message_bytes", "max_waiting"):
            if not getattr(self, key) > 0:
                raise ConfigError("must be positive", key=key)


@dataclass(frozen=True)
class Waiting:
    """A message waiting in the mailbox, by its UID (valid for this session)."""

    uid: int
    size: int  # bytes, as the server counts them (RFC822.SIZE)
    too_large: bool  # over max_message_bytes: skipped unread (`fetch` leaves it out)


class Mailbox(Protocol):
    """Where readers' mail waits: what mail-in's run codes against (`ImapMailbox` here;
    a test may give its own). Failures are `MailInError`s."""

    async def waiting(self) -> list[Waiting]:
        """Every message not yet finished, oldest first, bounded in count."""
        ...

    def fetch(self, uids: Iterable[int]) -> AsyncIterator[tuple[int, bytes]]:
        """(uid, bytes) of those still there and not too large; the others are left out."""
        ...

    async def finish(self, uids: Iterable[int]) -> None:
        """Take these out of `waiting` for good (moved or deleted); unknown ones: no error."""
        ...

    async def idle(self, timeout_s: float) -> bool:
        """Wait until new mail may be there (True) or `timeout_s` passes (False)."""
        ...


# --- translating aioimaplib's exceptions ---------------------------------------------

IMAP_FAILURES = (aioimaplib.AioImapException, OSError, asyncio.TimeoutError, ValueError)


@dataclass(frozen=True)
class ImapWhere:
    """The server and the limit a connection or timeout message names."""

    host: str
    port: int
    timeout_s: float


TIMEOUT_KEY = "mailin.timeout_s"  # the setting a timeout's message names


def translate_imap_error(exc: BaseException, where: ImapWhere | None = None) -> MailboxError:
    """The named error for an aioimaplib (or socket, TLS, timeout) failure. With `where`,
    a timeout or a refused connection is worded as mirror.http_errors words them."""
    if isinstance(exc, aioimaplib.CommandTimeout | asyncio.TimeoutError):
        if where is not None:
            return ImapConnectionError(no_answer(where.timeout_s, TIMEOUT_KEY))
        return ImapConnectionError("the IMAP server did not answer in time")
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "verify_message", "") or getattr(exc, "reason", "")
        reason = reason or type(exc).__name__
        return ImapTlsError(f"TLS failed: {clean(str(reason))}")
    if isinstance(exc, OSError) and where is not None and exc.errno:
        return ImapConnectionError(cannot_connect(where.host, where.port, exc))
    if isinstance(exc, OSError):
        return ImapConnectionError(f"network error: {exc.strerror or type(exc).__name__}")
    if isinstance(exc, aioimaplib.AioImapException):  # Abort, Error: a state we cannot use
        return ImapProtocolError(f"IMAP error: {clean(str(exc))}")
    if isinstance(exc, ValueError):  # aioimaplib refuses CR, LF or NUL in an argument
        return ImapProtocolError("a command argument cannot be sent")
    return ImapProtocolError(f"unexpected IMAP error: {type(exc).__name__}")


def clean(text: str) -> str:
    """A server's text made safe for an error: no address, no control characters, short."""
    text = ADDRESS_LIKE.sub("<address>", CONTROL_CHARS.sub(" ", text)).strip()
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS] + "…"


def _said(response: Any) -> str:
    """The server's text closing a response."""
    lines = [line for line in response.lines if isinstance(line, bytes)]
    return clean(lines[-1].decode("utf-8", "replace")) if lines else ""


# --- the mailbox ---------------------------------------------------------------------


class ImapMailbox:
    """One IMAP connection to the readers' mailbox; `async with`, refuses use after close.

    `round_trips` counts the commands sent after login (LOGOUT included): a run that
    finds nothing makes three (SELECT, UID SEARCH, LOGOUT).
    """

    def __init__(self, settings: ImapSettings, *, tls_context: ssl.SSLContext | None = None):
        self._settings = settings
        self._endpoint = parse_imap_url(settings.url)
        self._tls_context = tls_context
        self._client: Any = None  # aioimaplib.IMAP4 once open
        self._lost = asyncio.Event()
        self._broken = False  # a command was abandoned: the connection is not usable
        self._closed = False
        self._sizes: dict[int, int] = {}  # uid -> bytes, from `waiting`
        self._fresh = False  # the view is the one SELECT just gave: nothing to catch up
        self.round_trips = 0

    async def __aenter__(self) -> ImapMailbox:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect (TLS as the URL says), log in and select the mailbox."""
        if self._client is not None or self._closed:
            raise RuntimeError("an ImapMailbox is opened once")
        try:
            client = await self._connect()
            await self._login()
            await self._command("SELECT", client.select(quote(self._settings.mailbox)))
            self._fresh = True
        except BaseException:
            self._broken = True
            await self.close()
            raise

    async def close(self) -> None:
        """LOGOUT (briefly, when the connection still works), then hang up."""
        if self._closed:
            return
        self._closed = True
        client, self._client = self._client, None
        if client is None:
            return
        if not self._broken and not self._lost.is_set():
            self.round_trips += 1
            with contextlib.suppress(asyncio.TimeoutError, *IMAP_FAILURES):
                await asyncio.wait_for(client.logout(), CLOSE_TIMEOUT_S)
        if client.protocol.transport is not None:
            client.protocol.transport.close()

    async def waiting(self) -> list[Waiting]:
        """The messages waiting (oldest first, at most `max_waiting`), with their sizes:
        one UID SEARCH, and one UID FETCH of RFC822.SIZE per MAX_RESPONSE_LINES of them."""
        client = self._ready()
        if not self._fresh:  # a session's view moves only at a command's end (RFC 3501 5.2)
            await self._command("NOOP", client.noop())
        self._fresh = False
        found = await self._command("UID SEARCH", client.uid_search("UNDELETED", charset=None))
        uids = sorted(search_uids(found.lines))[: self._settings.max_waiting]
        if not uids:
            return []
        sizes: dict[int, int] = {}
        for chunk in chunks(uids, MAX_RESPONSE_LINES):
            sized = await self._command(
                "UID FETCH", client.uid("FETCH", uid_set(chunk), "(RFC822.SIZE)")
            )
            sizes.update(fetched_sizes(sized.lines))
        self._sizes.update(sizes)
        limit = self._settings.max_message_bytes
        return [Waiting(uid, sizes[uid], sizes[uid] > limit) for uid in uids if uid in sizes]

    async def fetch(self, uids: Iterable[int]) -> AsyncIterator[tuple[int, bytes]]:
        """(uid, the message's bytes) for each of `uids` still there and not too large, in
        UID order, one UID FETCH per batch of UID ranges (`batch`, `batch_bytes`)."""
        client = self._ready()
        limit = self._settings.max_message_bytes
        wanted = sorted(uid for uid in set(uids) if self._sizes.get(uid, 0) <= limit)
        sizes = {uid: self._sizes.get(uid, limit) for uid in wanted}
        per_fetch = min(self._settings.batch, MAX_RESPONSE_LINES // 4)  # a few lines each
        for batch in batches(wanted, sizes, per_fetch, self._settings.batch_bytes):
            items = f"(UID BODY.PEEK[]<0.{limit + 1}>)"  # the server sends no more than that
            response = await self._command("UID FETCH", client.uid("FETCH", uid_set(batch), items))
            in_batch = set(batch)
            for uid, raw in fetched_bodies(response.lines):
                if uid in in_batch and len(raw) <= limit:
                    yield uid, raw

    async def finish(self, uids: Iterable[int]) -> None:
        """Move these messages to the done mailbox (created when missing), or delete them
        when `keep` is false. MOVE when the server has it, else COPY and delete."""
        for chunk in chunks(sorted(set(uids)), MAX_RESPONSE_LINES):
            await self._finish(chunk)

    async def _finish(self, done: list[int]) -> None:
        client = self._ready()
        which = uid_set(done)
        if not self._settings.keep:
            await self._delete(which)
        elif client.has_capability("MOVE"):
            await self._into_done("UID MOVE", lambda: client.uid("MOVE", which, self._done()))
        else:
            await self._into_done("UID COPY", lambda: client.uid("COPY", which, self._done()))
            await self._delete(which)
        for uid in done:
            self._sizes.pop(uid, None)

    async def idle(self, timeout_s: float) -> bool:
        """Wait for new mail: True as soon as the server says some arrived, False after
        `timeout_s` without. A server without IDLE: wait `timeout_s`, then True."""
        client = self._ready()
        self._fresh = False
        if not client.has_capability("IDLE"):
            await asyncio.sleep(timeout_s)
            return True
        self.round_trips += 1
        idle = await self._guarded(client.idle_start(timeout=timeout_s))
        try:
            return await self._until_new_mail(client, timeout_s)
        finally:
            client.idle_done()
            response = await self._guarded(idle)
            self._drain_pushes(client)
            self._check("IDLE", response)

    # --- one command ------------------------------------------------------------------

    def _ready(self) -> Any:
        if self._client is None or self._closed:
            raise RuntimeError("the ImapMailbox is not open (or closed)")
        if self._broken or self._lost.is_set():
            raise ImapConnectionError("the IMAP connection was lost")
        return self._client

    async def _command(self, what: str, call: Awaitable[Any]) -> Any:
        """One command after login: a round trip; refused (NO, BAD) is an error."""
        self.round_trips += 1
        return self._check(what, await self._guarded(call))

    def _check(self, what: str, response: Any) -> Any:
        if response.result != "OK":
            raise ImapProtocolError(f"{what} refused: {response.result} {_said(response)}")
        return response

    async def _guarded(self, call: Awaitable[T]) -> T:
        """Await `call` unless the connection drops or `timeout_s` passes first; failures
        come out named. An abandoned command leaves the connection unusable."""
        task = asyncio.ensure_future(call)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait(
                {task, lost}, timeout=self._settings.timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            lost.cancel()
        if not task.done():
            task.cancel()
            self._broken = True
            gone = self._lost.is_set()
            raise ImapConnectionError(
                "the IMAP server dropped the connection"
                if gone
                else no_answer(self._settings.timeout_s, TIMEOUT_KEY)
            )
        try:
            return task.result()
        except IMAP_FAILURES as exc:
            self._broken = self._broken or not isinstance(exc, ValueError)
            where = ImapWhere(self._endpoint.host, self._endpoint.port, self._settings.timeout_s)
            raise translate_imap_error(exc, where) from exc

    # --- opening ----------------------------------------------------------------------

    async def _connect(self) -> Any:
        endpoint = self._endpoint
        context = self._tls_context or ssl.create_default_context()
        self._client = client = aioimaplib.IMAP4(
            host=endpoint.host,
            port=endpoint.port,
            timeout=self._settings.timeout_s,
            conn_lost_cb=lambda exc: self._lost.set(),
            ssl_context=context if endpoint.scheme == "imaps" else None,
        )
        await self._guarded(client.wait_hello_from_server())
        if endpoint.scheme == "imap":
            await self._starttls(context)
        return client

    async def _starttls(self, context: ssl.SSLContext) -> None:
        """STARTTLS (aioimaplib has the command but not the handshake): refused, or not
        offered, the password is never sent."""
        protocol = self._client.protocol
        if "STARTTLS" not in protocol.capabilities or self._client.get_state() != "NONAUTH":
            raise ImapTlsError(
                "imap:// needs STARTTLS, which the server does not offer: use imaps://"
            )
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        response = await self._guarded(protocol.execute(command))
        if response.result != "OK" or protocol.incomplete_line:
            raise ImapTlsError(f"STARTTLS refused: {response.result} {_said(response)}")
        loop = asyncio.get_running_loop()
        protocol.transport = await self._guarded(
            loop.start_tls(
                protocol.transport, protocol, context, server_hostname=self._endpoint.host
            )
        )
        await self._guarded(protocol.capability())  # what was said in clear is forgotten

    async def _login(self) -> None:
        settings = self._settings
        response = await self._guarded(
            self._client.login(aioimaplib.quoted(settings.username), settings.password)
        )
        if response.result != "OK":
            raise ImapAuthError(f"IMAP login refused: {_said(response)}")

    # --- finishing --------------------------------------------------------------------

    def _done(self) -> str:
        return quote(self._settings.done_mailbox)

    async def _into_done(self, what: str, send: Any) -> None:
        """COPY or MOVE to the done mailbox; when it does not exist yet ([TRYCREATE]),
        create it and try once more."""
        self.round_trips += 1
        response = await self._guarded(send())
        if response.result != "OK" and "TRYCREATE" in _said(response).upper():
            await self._command("CREATE", self._client.create(self._done()))
            response = await self._guarded(send())
            self.round_trips += 1
        self._check(what, response)

    async def _delete(self, which: str) -> None:
        """\\Deleted, then expunge only these (UIDPLUS) or, failing that, all deleted."""
        client = self._client
        await self._command("UID STORE", client.uid("STORE", which, "+FLAGS.SILENT", r"(\Deleted)"))
        if client.has_capability("UIDPLUS"):
            await self._command("UID EXPUNGE", client.uid("EXPUNGE", which))
        else:
            await self._command("EXPUNGE", client.expunge())

    # --- idling -----------------------------------------------------------------------

    async def _until_new_mail(self, client: Any, timeout_s: float) -> bool:
        """Read the server's pushes until one says EXISTS; False at the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (remaining := deadline - loop.time()) > 0:
            try:
                pushed = await client.wait_server_push(timeout=remaining)
            except TimeoutError:
                return False
            if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH or self._lost.is_set():
                return False
            if any(EXISTS.search(bytes(line)) for line in pushed):
                return True
        return False

    @staticmethod
    def _drain_pushes(client: Any) -> None:
        """Forget pushes left over (a late stop mark): the next IDLE starts clean."""
        queue = client.protocol.idle_queue
        while not queue.empty():
            queue.get_nowait()


# --- pure parts: UID sets, batches, parsing responses ---------------------------------


def quote(name: str) -> str:
    """A mailbox name as an IMAP quoted string."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def chunks(uids: Sequence[int], size: int) -> Iterator[list[int]]:
    """`uids` in lists of at most `size`."""
    for start in range(0, len(uids), size):
        yield list(uids[start : start + size])


def uid_set(uids: Sequence[int]) -> str:
    """Sorted, unique UIDs as IMAP ranges: [1, 2, 3, 7, 9, 10] -> "1:3,7,9:10"."""
    parts: list[str] = []
    start = previous = uids[0]
    for uid in [*uids[1:], None]:
        if uid is not None and uid == previous + 1:
            previous = uid
            continue
        parts.append(str(start) if start == previous else f"{start}:{previous}")
        if uid is not None:
            start = previous = uid
    return ",".join(parts)


def batches(
    uids: Sequence[int], sizes: dict[int, int], count: int, max_bytes: int
) -> Iterator[list[int]]:
    """`uids` in order, cut into runs of at most `count` UIDs and `max_bytes` (by `sizes`;
    one message larger than that makes a batch alone)."""
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if batch and (len(batch) >= count or total + size > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def search_uids(lines: Sequence[Any]) -> list[int]:
    """The UIDs of a SEARCH response (its untagged lines; the last line is the status)."""
    return [
        int(token)
        for line in lines[:-1]
        if isinstance(line, bytes)
        for token in line.split()
        if token.isdigit()
    ]


def _records(lines: Sequence[Any]) -> Iterator[tuple[bytes, bytes | None]]:
    """Each FETCH response's text and literal (the message), from aioimaplib's lines."""
    text, literal = b"", None
    started = False
    for line in lines[:-1]:
        if isinstance(line, bytearray):
            literal = bytes(line)
        elif isinstance(line, bytes) and FETCH_START.match(line):
            if started:
                yield text, literal
            text, literal, started = line, None, True
        elif isinstance(line, bytes):
            text += b" " + line
    if started:
        yield text, literal


def fetched_sizes(lines: Sequence[Any]) -> dict[int, int]:
    """uid -> RFC822.SIZE from a UID FETCH (RFC822.SIZE) response."""
    sizes: dict[int, int] = {}
    for text, _ in _records(lines):
        uid, size = UID_ITEM.search(text), SIZE_ITEM.search(text)
        if uid and size:
            sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


def fetched_bodies(lines: Sequence[Any]) -> Iterator[tuple[int, bytes]]:
    """(uid, bytes) from a UID FETCH (UID BODY.PEEK[]...) response; other FETCH responses
    the server slips in (flag changes) carry no body and are passed over."""
    for text, literal in _records(lines):
        uid = UID_ITEM.search(text)
        if uid and literal is not None:
            yield int(uid.group(1)), literal
