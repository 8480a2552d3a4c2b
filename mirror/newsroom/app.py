"""The sample newsroom's aiohttp app and `serve_newsroom`, which runs it on a free port:
`async with serve_newsroom(options) as running:` gives `running.base_url`
("http://127.0.0.1:PORT/") and `running.newsroom` (mutations and the request log).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from aiohttp import web

from mirror.newsroom import images
from mirror.newsroom.state import MEDIA_PATH, Newsroom, NewsroomOptions, Resource

__all__ = ["Newsroom", "NewsroomOptions", "RunningNewsroom", "make_app", "serve_newsroom"]

NEWSROOM_KEY = web.AppKey("newsroom", Newsroom)
_DRIP_CHUNKS = 8


@dataclass(frozen=True)
class RunningNewsroom:
    """A newsroom listening on `base_url`."""

    base_url: str  # "http://127.0.0.1:PORT/"
    newsroom: Newsroom

    def url(self, path: str) -> str:
        """The absolute URL of a path on this server."""
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


def make_app(newsroom: Newsroom) -> web.Application:
    """An aiohttp app serving `newsroom` on every path."""
    app = web.Application()
    app[NEWSROOM_KEY] = newsroom
    app.router.add_get("/{tail:.*}", _handle)
    return app


@asynccontextmanager
async def serve_newsroom(
    options: NewsroomOptions | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    newsroom: Newsroom | None = None,
) -> AsyncIterator[RunningNewsroom]:
    """Run a newsroom (a new one from `options`, or the given one) until the block ends."""
    room = newsroom or Newsroom(options)
    runner = web.AppRunner(make_app(room), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = runner.addresses[0][1]
        room.base_url = f"http://{host}:{bound_port}/"
        yield RunningNewsroom(room.base_url, room)
    finally:
        await runner.cleanup()


async def _handle(request: web.Request) -> web.StreamResponse:
    """Log, delay, maybe fail, then answer from the newsroom's cached resources."""
    room = request.app[NEWSROOM_KEY]
    options = room.options
    room.requests.record(request.method, request.path, "If-None-Match" in request.headers)
    if options.latency_s > 0:
        await asyncio.sleep(options.latency_s)
    if options.error_rate > 0 and room.rng.random() < options.error_rate:
        return web.Response(status=500, text="Internal Server Error")
    resource = await _find(room, request)
    if resource is None:
        return web.Response(status=404, text="Not Found")
    if resource.status in (301, 302):
        raise web.HTTPMovedPermanently(location=resource.location)
    if options.validators and resource.status == 200 and _not_modified(request, resource):
        return web.Response(status=304, headers=_validator_headers(resource))
    return await _send(request, room, resource)


async def _find(room: Newsroom, request: web.Request) -> Resource | None:
    """The resource behind the request's path; images are made off the event loop."""
    media = MEDIA_PATH.match(request.path)
    if media is None:
        return room.resource(request.path, f"{request.scheme}://{request.host}/")
    name, ext = media.groups()
    article = room.image_article(name)
    if article is None:
        return None
    size = room.options.image_size
    loop = asyncio.get_running_loop()
    body = await loop.run_in_executor(None, images.render_image, name, size, ext)
    return Resource(body, images.FORMATS[ext][1], article.published)


def _not_modified(request: web.Request, resource: Resource) -> bool:
    """Whether a conditional GET matches: If-None-Match first, else If-Modified-Since."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return bool(tags & {"*", resource.etag, _gzip_etag(resource)})
    since = _http_date(request.headers.get("If-Modified-Since", ""))
    modified = resource.last_modified
    return since is not None and modified is not None and modified.replace(microsecond=0) <= since


def _http_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _gzip_etag(resource: Resource) -> str:
    return resource.etag[:-1] + '-gzip"'


def _validator_headers(resource: Resource, gzipped: bool = False) -> dict[str, str]:
    headers = {"ETag": _gzip_etag(resource) if gzipped else resource.etag}
    if resource.last_modified_header:
        headers["Last-Modified"] = resource.last_modified_header
    return headers


async def _send(request: web.Request, room: Newsroom, resource: Resource) -> web.StreamResponse:
    """The full answer: gzip when accepted, validators when on, dripped when slow."""
    gzipped = resource.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", "")
    headers = {"Content-Type": resource.content_type, "Cache-Control": "max-age=60"}
    if room.options.validators:
        headers.update(_validator_headers(resource, gzipped))
    if resource.gzipped is not None:
        headers["Vary"] = "Accept-Encoding"
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    body = resource.gzipped if gzipped and resource.gzipped is not None else resource.body
    options = room.options
    if options.slow_rate > 0 and room.rng.random() < options.slow_rate:
        return await _drip(request, resource.status, headers, body, options.slow_s)
    return web.Response(status=resource.status, body=body, headers=headers)


async def _drip(
    request: web.Request, status: int, headers: dict[str, str], body: bytes, duration_s: float
) -> web.StreamResponse:
    """Send the body in chunks spread over `duration_s`."""
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = len(body)
    await response.prepare(request)
    step = max(1, -(-len(body) // _DRIP_CHUNKS))
    for start in range(0, len(body), step):
        await asyncio.sleep(duration_s / _DRIP_CHUNKS)
        await response.write(body[start : start + step])
    await response.write_eof()
    return response
