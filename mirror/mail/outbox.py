"""The outbox transport: each message as a file in a folder, no SMTP at all."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from mirror.errors import DigestError, SmtpConnectionError
from mirror.mail.wire import Outgoing


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
            await asyncio.to_thread(self._write, outbox_name(outgoing.message_id), _file(outgoing))
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


def _file(outgoing: Outgoing) -> bytes:
    """The message as a mailbox keeps it: the envelope sender (a VERP address) in a
    Return-Path line on top, as the final delivery writes it (the message itself never
    carries one)."""
    if not outgoing.envelope_from:
        return outgoing.message
    return b"Return-Path: <" + outgoing.envelope_from.encode("utf-8") + b">\r\n" + outgoing.message


def outbox_name(message_id: str) -> str:
    """The file name of a message in the outbox: safe whatever the message id holds."""
    return hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:32] + ".eml"
