"""Real HTTP servers on 127.0.0.1 for tests: start an aiohttp app on a free port."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

from aiohttp import web


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[int]:
    """Run `app` on 127.0.0.1 and yield its port; stopped (within 0.5 s) on exit."""
    runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


_HELD: list[socket.socket] = []  # bound, never listening: refused, and no one else's


def closed_port() -> int:
    """A port on 127.0.0.1 that refuses connections for as long as the tests run: we keep
    it bound without listening, so no other process can take it in the meantime."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _HELD.append(sock)
    return int(sock.getsockname()[1])


def free_port() -> int:
    """A port on 127.0.0.1 free right now, for a server that binds it itself; another
    process may take it first, so starting that server must be retried."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
