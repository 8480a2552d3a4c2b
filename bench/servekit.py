"""What the benchmarks' helper servers (counted newsroom, latency proxy) share: starting
an aiohttp app on a port, saying where it listens, and running until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from aiohttp import web


async def start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve `app` on host:port (0: any free port); the runner and the port bound."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, host, port, shutdown_timeout=0.5, backlog=1024).start()
    return runner, int(runner.addresses[0][1])


async def until_signalled() -> None:
    """Return once SIGINT or SIGTERM arrives."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def announce_and_serve(lines: list[str], runners: list[web.AppRunner]) -> None:
    """Print `lines` (`NAME listening on URL`: benchkit.helper reads them), serve until
    signalled, then clean the runners up, last started first."""
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    sys.stdout.flush()
    try:
        await until_signalled()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
