"""`python -m mirror.newsroom`: run a sample newsroom until interrupted.

Prints one line, `newsroom listening on http://HOST:PORT/`, once it accepts requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from mirror.newsroom import images
from mirror.newsroom.app import serve_newsroom
from mirror.newsroom.state import NewsroomOptions


def parse_args(argv: list[str] | None = None) -> tuple[NewsroomOptions, str, int]:
    """Options, host and port from the command line."""
    parser = argparse.ArgumentParser(prog="python -m mirror.newsroom", description=__doc__)
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=8080, help="0: any free port")
    add("--articles", type=int, default=24)
    add("--feed-items", type=int, default=20, help="newest N in the feeds; 0: all")
    add("--latency-ms", type=float, default=0.0, help="added to every response")
    add("--error-rate", type=float, default=0.0, help="share of requests answered 500")
    add("--slow-rate", type=float, default=0.0, help="share of responses dripped slowly")
    add("--slow-ms", type=float, default=1000.0, help="how long a slow response drips")
    add("--no-validators", action="store_true", help="no ETag/Last-Modified, never 304")
    add("--no-images", action="store_true")
    add("--image-size", default="1200x800", help="WIDTHxHEIGHT in pixels")
    add("--no-gzip", action="store_true")
    add("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    width, height = (int(n) for n in args.image_size.lower().split("x", 1))
    options = NewsroomOptions(
        articles=args.articles,
        feed_items=args.feed_items,
        latency_s=args.latency_ms / 1000,
        error_rate=args.error_rate,
        slow_rate=args.slow_rate,
        slow_s=args.slow_ms / 1000,
        validators=not args.no_validators,
        images=not args.no_images,
        image_size=(width, height),
        gzip=not args.no_gzip,
        seed=args.seed,
    )
    return options, args.host, args.port


async def run(options: NewsroomOptions, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    if options.images:  # the benchmarks time mirror, not the first encoding of each photo
        await loop.run_in_executor(None, images.warm_up, options.image_size)
    async with serve_newsroom(options, host, port) as running:
        sys.stdout.write(f"newsroom listening on {running.base_url}\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    options, host, port = parse_args(argv)
    asyncio.run(run(options, host, port))


if __name__ == "__main__":
    main()
