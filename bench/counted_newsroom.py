"""The sample newsroom with a request counter: run as a separate process by the benchmark.

    python bench/counted_newsroom.py [python -m mirror.newsroom options] --stats-port P

Serves the newsroom exactly as `python -m mirror.newsroom` does, plus a second,
uncounted server on `--stats-port` answering `GET /stats` with what the newsroom was
asked for (by kind and by status, with first and last times), `POST /reset`, and
`POST /add-article` (the newsroom publishes one new article; answers its id and path).
Prints `newsroom listening on URL` then `stats listening on URL` once both accept.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from benchkit import announce_and_serve, start

from mirror.newsroom import images
from mirror.newsroom.__main__ import parse_args
from mirror.newsroom.app import make_app
from mirror.newsroom.state import MEDIA_PATH, Newsroom, NewsroomOptions

FEED_PATHS = frozenset({"/rss.xml", "/atom.xml", "/rss1.xml", "/sitemap.xml", "/news-sitemap.xml"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def kind_of(path: str) -> str:
    """feed, image or page: what a request path asks for."""
    if path in FEED_PATHS or path.startswith("/sitemaps/"):
        return "feed"
    if MEDIA_PATH.match(path) or path.startswith("/static/"):
        return "image"
    return "page"


@dataclass
class Tally:
    """Requests seen since the last reset."""

    kinds: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    first: float | None = None  # time.time() the first request arrived
    last: float | None = None  # time.time() the last response was ready
    first_other: float | None = None  # time.time() the first request for no feed arrived
    service_s: float = 0.0  # summed over requests: arrival to response ready
    in_flight: int = 0
    most_in_flight: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "total": sum(self.kinds.values()),
            "kinds": dict(self.kinds),
            "statuses": dict(self.statuses),
            "first": self.first,
            "last": self.last,
            "first_other": self.first_other,
            "service_s": self.service_s,
            "most_in_flight": self.most_in_flight,
        }


def counting_middleware(tally: Tally) -> Any:
    """Outermost middleware: counts every request and times the first and the last."""

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        arrived = time.time()
        if tally.first is None:
            tally.first = arrived
        kind = kind_of(request.path)
        tally.kinds[kind] += 1
        if kind != "feed" and tally.first_other is None:
            tally.first_other = arrived
        tally.in_flight += 1
        tally.most_in_flight = max(tally.most_in_flight, tally.in_flight)
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            tally.statuses[str(status)] += 1
            tally.last = time.time()
            tally.in_flight -= 1
            tally.service_s += tally.last - arrived

    return count


def stats_app(tally: Tally, room: Newsroom) -> web.Application:
    async def stats(_: web.Request) -> web.Response:
        document = tally.to_json()
        document["newsroom_log"] = len(room.requests.entries)  # the newsroom's own count
        return web.json_response(document)

    async def reset(_: web.Request) -> web.Response:
        tally.kinds.clear()
        tally.statuses.clear()
        tally.first = tally.last = tally.first_other = None
        tally.service_s = 0.0
        tally.most_in_flight = tally.in_flight
        room.requests.clear()
        return web.json_response({"ok": True})

    async def add_article(_: web.Request) -> web.Response:
        article = room.add_article()
        return web.json_response({"id": article.id, "path": article.path})

    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    app.router.add_post("/add-article", add_article)
    return app


def prerender(room: Newsroom) -> None:
    """Render every page, feed and picture once, as a real origin has them ready on disk."""
    for path in ("/rss.xml", "/atom.xml"):
        room.resource(path, room.base_url)
    for article in room.articles:
        room.resource(article.path, room.base_url)
        if article.image:
            images.render_image(article.image, room.options.image_size)


async def serve(
    options: NewsroomOptions, host: str, port: int, stats_port: int, *, warm: bool
) -> None:
    room = Newsroom(options)
    tally = Tally()
    app = make_app(room)
    app.middlewares.insert(0, counting_middleware(tally))
    news_runner, bound = await start(app, host, port)
    room.base_url = f"http://{host}:{bound}/"
    if warm:
        await asyncio.get_running_loop().run_in_executor(None, prerender, room)
    stats_runner, stats_bound = await start(stats_app(tally, room), host, stats_port)
    lines = [
        f"newsroom listening on {room.base_url}",
        f"stats listening on http://{host}:{stats_bound}/",
    ]
    await announce_and_serve(lines, [news_runner, stats_runner])


def main() -> None:
    ours = argparse.ArgumentParser(add_help=False)
    ours.add_argument("--stats-port", type=int, default=0)
    ours.add_argument("--no-warm", action="store_true", help="render on first request only")
    known, rest = ours.parse_known_args()
    options, host, port = parse_args(rest)
    asyncio.run(serve(options, host, port, known.stats_port, warm=not known.no_warm))


if __name__ == "__main__":
    main()
