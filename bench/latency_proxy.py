"""A reverse proxy adding latency to every request: run as a separate process by benchmarks.

    python bench/latency_proxy.py --upstream http://127.0.0.1:PORT [--latency-ms 30]

Every request is read whole, held `--latency-ms`, then forwarded to `--upstream` (Host
and every end-to-end header kept, so signed S3 requests stay as they were sent) and the
answer relayed back. `Expect: 100-continue` is answered at once (aiohttp's default), so
a PUT costs one latency here where a real link would cost two. A second, uncounted
server on `--stats-port` answers `GET /stats` with what the proxy was asked since the
last `POST /reset`: requests by method and by S3 operation, the object keys PUT, the
statuses, how many sent `Expect: 100-continue`, the first arrival and last answer times.
Prints `proxy listening on URL` then `stats listening on URL` once both accept.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from benchkit import announce_and_serve, start
from yarl import URL

# Hop-by-hop headers (RFC 9110 7.6.1), and those the client library recomputes.
DROPPED = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
     "upgrade", "expect", "content-length"}
)  # fmt: skip
MAX_BODY = 1 << 30


@dataclass
class Tally:
    """Requests seen since the last reset."""

    methods: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    put_keys: list[str] = field(default_factory=list)
    expect_continue: int = 0  # requests sent with `Expect: 100-continue`
    first: float | None = None
    last: float | None = None
    in_flight: int = 0
    most_in_flight: int = 0

    def to_json(self, *, keys: bool) -> dict[str, Any]:
        document: dict[str, Any] = {
            "total": sum(self.methods.values()),
            "methods": dict(self.methods),
            "operations": dict(self.operations),
            "statuses": dict(self.statuses),
            "first": self.first,
            "last": self.last,
            "most_in_flight": self.most_in_flight,
            "expect_continue": self.expect_continue,
        }
        if keys:
            document["put_keys"] = list(self.put_keys)
        return document

    def reset(self) -> None:
        self.methods.clear()
        self.operations.clear()
        self.statuses.clear()
        self.put_keys.clear()
        self.expect_continue = 0
        self.first = self.last = None
        self.most_in_flight = self.in_flight


def operation(method: str, path: str, query: Any) -> str:
    """The S3 operation of a path-style request: ListObjects, PutObject, DeleteObjects, ..."""
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets" if method == "GET" else method
    if not key:
        if method == "GET":
            return "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        return f"{method} bucket"
    if "uploadId" in query or "uploads" in query:
        return f"{method} multipart"
    names = {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}
    return names.get(method, f"{method} object")


def object_key(path: str) -> str:
    return path.lstrip("/").partition("/")[2]


class Proxy:
    def __init__(self, upstream: str, latency_s: float) -> None:
        self.upstream = upstream.rstrip("/")
        self.latency_s = latency_s
        self.tally = Tally()
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=300),
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        arrived = self._arrive(request)
        status = 502
        try:
            body = await request.read()
            await asyncio.sleep(self.latency_s)
            response = await self._forward(request, body)
            status = response.status
            return response
        finally:
            self._leave(status, arrived)

    def _arrive(self, request: web.Request) -> float:
        tally = self.tally
        arrived = time.time()
        if tally.first is None:
            tally.first = arrived
        tally.methods[request.method] += 1
        op = operation(request.method, request.path, request.query)
        tally.operations[op] += 1
        if op == "PutObject":
            tally.put_keys.append(object_key(request.path))
        if request.headers.get("Expect", "").lower() == "100-continue":
            tally.expect_continue += 1
        tally.in_flight += 1
        tally.most_in_flight = max(tally.most_in_flight, tally.in_flight)
        return arrived

    def _leave(self, status: int, arrived: float) -> None:
        self.tally.statuses[str(status)] += 1
        self.tally.last = time.time()
        self.tally.in_flight -= 1

    async def _forward(self, request: web.Request, body: bytes) -> web.StreamResponse:
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in DROPPED}
        async with self.session.request(
            request.method,
            URL(self.upstream + request.raw_path, encoded=True),
            headers=headers,
            data=body if body or request.method in ("PUT", "POST") else None,
            allow_redirects=False,
        ) as answer:
            payload = await answer.read()
            out = {k: v for k, v in answer.headers.items() if k.lower() not in DROPPED}
        if request.method == "HEAD":
            response = web.StreamResponse(status=answer.status, headers=out)
            response.content_length = int(answer.headers.get("Content-Length", "0"))
            return response
        return web.Response(status=answer.status, body=payload, headers=out)


def stats_app(tally: Tally) -> web.Application:
    async def stats(request: web.Request) -> web.Response:
        return web.json_response(tally.to_json(keys="keys" in request.query))

    async def reset(_: web.Request) -> web.Response:
        tally.reset()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    return app


async def serve(args: argparse.Namespace) -> None:
    proxy = Proxy(args.upstream, args.latency_ms / 1000)
    await proxy.open()
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    proxy_runner, bound = await start(app, args.host, args.port)
    stats_runner, stats_bound = await start(stats_app(proxy.tally), args.host, args.stats_port)
    lines = [
        f"proxy listening on http://{args.host}:{bound}",
        f"stats listening on http://{args.host}:{stats_bound}/",
    ]
    try:
        await announce_and_serve(lines, [proxy_runner, stats_runner])
    finally:
        await proxy.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:5000")
    parser.add_argument("--latency-ms", type=float, default=30.0, help="added to every request")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stats-port", type=int, default=0)
    args = parser.parse_args(argv)
    if urlsplit(args.upstream).scheme != "http":
        parser.error("--upstream must be an http:// URL")
    return args


def main() -> None:
    asyncio.run(serve(parse_args()))


if __name__ == "__main__":
    main()
