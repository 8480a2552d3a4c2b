"""One fetch against a hostile origin: every bad input is reported by URL and reason,
none stops the run, and everything good is stored."""

from __future__ import annotations

import asyncio
import gzip
import io
import struct
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image

from mirror.config import Config, SourceConfig, StateConfig
from mirror.fetch.stage import FetchReport, fetch_articles
from mirror.store import Store

from servers import serve

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LONG_PATH = "/" + "a" * 2100
BASE = web.AppKey("base", dict)
PARAGRAPH = "The river council met on Tuesday and voted to publish every water sample."


def page(title: str, body: str, charset: str = "utf-8") -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="{charset}"><title>{title}</title>'
        f'<meta property="og:title" content="{title}"></head><body><nav>Menu Home</nav>'
        f"<article><h1>{title}</h1>{body}</article><footer>Cookie consent</footer></body></html>"
    )


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a size that its few bytes of pixels don't back."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def small_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


ITEMS = [
    "/good.html",
    None,  # an item with no link
    "http://evil.example.net/article.html",
    "/huge.html",
    "/broken.html",
    "/cp1251.html",
    "/redirect-out.html",
    "/loop.html",
    "/images.html",
    "/hostile.html",
    "/%2e%2e/%2e%2e/etc/passwd",
    LONG_PATH,
    "/статья.html",
    "/slow.html",
    "/bomb.html",
    "/gone.html",
    "/limited.html",
    "file:///etc/passwd",
]


def rss(base: str) -> str:
    items = []
    for index, link in enumerate(ITEMS):
        href = "" if link is None else f"<link>{link if ':' in link else base + link}</link>"
        guid = f'<guid isPermaLink="false">g{index}</guid>'
        items.append(f"<item><title>Item {index}</title>{href}{guid}</item>")
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Hostile</title>'
        f"<link>{base}</link><description>d</description>{''.join(items)}</channel></rss>"
    )


def hostile_app(hits: dict[str, int]) -> web.Application:
    async def count(request: web.Request, handler):  # type: ignore[no-untyped-def]
        hits[request.path] = hits.get(request.path, 0) + 1
        return await handler(request)

    app = web.Application(middlewares=[web.middleware(count)])
    base = {}

    async def feed(request: web.Request) -> web.Response:
        return web.Response(text=rss(base["url"]), content_type="application/rss+xml")

    async def html(text: str, **headers: str) -> web.Response:
        return web.Response(text=text, content_type="text/html", headers=headers)

    async def good(request: web.Request) -> web.Response:
        return await html(page("Good news", f'<p>{PARAGRAPH}</p><img src="/img/ok.png" alt="ok">'))

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        await response.prepare(request)
        try:
            for _ in range(10_000):
                await response.write(b"<p>" + b"x" * 10_000 + b"</p>")
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="down")

    async def cp1251(request: web.Request) -> web.Response:
        body = page(
            "Новости реки", "<p>Совет по реке опубликовал все пробы воды.</p>", "windows-1251"
        )
        # The header lies: it says utf-8, the bytes are windows-1251.
        return web.Response(
            body=body.encode("windows-1251"), headers={"Content-Type": "text/html; charset=utf-8"}
        )

    async def redirect_out(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://evil.example.net/landing")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop.html")

    async def images(request: web.Request) -> web.Response:
        body = f'<p>{PARAGRAPH}</p><img src="/img/notimage.jpg"><img src="/img/giant.png">'
        return await html(page("Pictures", body))

    async def hostile(request: web.Request) -> web.Response:
        body = (
            f'<p onclick="steal()">{PARAGRAPH}</p><script>steal()</script>'
            '<iframe src="https://www.youtube.com/embed/abc123"></iframe>'
            '<img src="/img/ok.png" onerror="steal()"><a href="javascript:steal()">click</a>'
            '<p style="background:url(https://tracker.example.net/x)">styled</p>'
        )
        return await html(page("Hostile", body))

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        await response.prepare(request)
        try:
            for _ in range(100):
                await response.write(b"<p>drip</p>")
                await asyncio.sleep(0.2)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def bomb(request: web.Request) -> web.Response:
        return web.Response(
            body=BOMB, headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}
        )

    async def gone(request: web.Request) -> web.Response:
        if hits[request.path] == 1:
            return await html(page("Soon gone", f"<p>{PARAGRAPH}</p>"))
        return web.Response(status=410, text="gone")

    async def limited(request: web.Request) -> web.Response:
        if hits[request.path] == 1:
            return web.Response(status=429, headers={"Retry-After": "1"}, text="slow down")
        return await html(page("Patience", f"<p>{PARAGRAPH}</p>"))

    async def ok_png(request: web.Request) -> web.Response:
        return web.Response(body=small_png(), content_type="image/png")

    async def not_image(request: web.Request) -> web.Response:
        return web.Response(body=b"<html>not an image</html>", content_type="image/jpeg")

    async def giant(request: web.Request) -> web.Response:
        return web.Response(body=png_claiming(30000, 30000), content_type="image/png")

    async def not_xml(request: web.Request) -> web.Response:
        return web.Response(text="this is { not xml", content_type="application/rss+xml")

    for path, handler in [
        ("/rss.xml", feed), ("/good.html", good), ("/huge.html", huge),
        ("/broken.html", broken), ("/cp1251.html", cp1251), ("/redirect-out.html", redirect_out),
        ("/loop.html", loop), ("/images.html", images), ("/hostile.html", hostile),
        ("/slow.html", slow), ("/bomb.html", bomb), ("/gone.html", gone),
        ("/limited.html", limited), ("/img/ok.png", ok_png), ("/img/notimage.jpg", not_image),
        ("/img/giant.png", giant), ("/notxml.xml", not_xml),
    ]:  # fmt: skip
        app.router.add_get(path, handler)
    app[BASE] = base
    return app


def _bomb() -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as handle:
        chunk = b"\0" * 1_000_000
        for _ in range(50):  # 50 MB inflated, from 50 KB
            handle.write(chunk)
    return buffer.getvalue()


BOMB = _bomb()


@pytest.fixture
async def hostile(tmp_path: Path) -> tuple[Config, dict[str, int]]:
    hits: dict[str, int] = {}
    app = hostile_app(hits)
    async with serve(app) as port:
        base = f"http://127.0.0.1:{port}"
        app[BASE]["url"] = base
        source = SourceConfig(
            feeds=(f"{base}/rss.xml", f"{base}/notxml.xml"),
            allowed_hosts=("127.0.0.1",),
            article_selector="article",
            timeout_s=0.8,
            read_timeout_s=0.5,
            connect_timeout_s=1.0,
            retries=1,
            backoff_s=0.05,
            max_page_bytes=200_000,
            workers=2,
        )
        config = Config(
            path=tmp_path / "mirror.toml",
            source=source,
            state=StateConfig(path=tmp_path / "state" / "mirror.db"),
        )
        yield config, hits


async def run_fetch(config: Config, now: datetime = NOW) -> FetchReport:
    with Store(config.state.path) as store:
        return await fetch_articles(config, store, now=now)


def reasons(report: FetchReport) -> dict[str, str]:
    return {failure.url: failure.reason for failure in report.failed}


@pytest.mark.slow
async def test_hostile_origin_every_failure_named_and_the_rest_stored(hostile) -> None:  # type: ignore[no-untyped-def]
    config, hits = hostile
    base = config.source.feeds[0].rsplit("/", 1)[0]
    report = await run_fetch(config)
    failed = reasons(report)

    def reason(path: str) -> str:
        return failed[base + path].lower()

    feed_problems = [f.reason for f in report.failed if f.url == config.source.feeds[0]]
    assert len(feed_problems) == 2  # the item with no link and the file: link
    assert all("no http(s) link" in problem for problem in feed_problems)
    assert "not in allowed_hosts" in failed["http://evil.example.net/article.html"].lower()
    assert "byte" in reason("/huge.html") or "large" in reason("/huge.html")
    assert "500" in reason("/broken.html")
    assert "not in allowed_hosts" in reason("/redirect-out.html")
    assert "redirect" in reason("/loop.html")
    assert "time" in reason("/slow.html")
    assert "large" in reason("/bomb.html") or "byte" in reason("/bomb.html")
    assert "image" in reason("/img/notimage.jpg")
    assert "pixel" in reason("/img/giant.png")
    assert any(url.endswith("/notxml.xml") for url in failed)
    assert all(len(url) <= 2100 for url in failed)
    # nothing was requested outside the allowed host, and the long URL was refused unrequested
    assert LONG_PATH not in hits
    # the 429 was retried after its Retry-After and then stored
    assert hits["/limited.html"] == 2
    assert base + "/limited.html" not in failed
    assert "404" in reason("/etc/passwd")  # %2e%2e cannot climb above the root
    assert "404" in reason("/%D1%81%D1%82%D0%B0%D1%82%D1%8C%D1%8F.html")  # Unicode, encoded
    assert report.gone == 0

    with Store(config.state.path) as store:
        good = store.find_article(base + "/good.html")
        assert good is not None and good.state == "ok"
        revision = store.revision(good.id)
        assert revision is not None and PARAGRAPH in revision.body_html
        assert revision.images == (base + "/img/ok.png",)
        assert store.image_for_url(base + "/img/ok.png") is not None

        russian = store.revision(store.find_article(base + "/cp1251.html").id)  # type: ignore[union-attr]
        assert russian is not None and "Совет по реке" in russian.body_html

        cleaned = store.revision(store.find_article(base + "/hostile.html").id)  # type: ignore[union-attr]
        assert cleaned is not None
        body = cleaned.body_html.lower()
        for bad in ("<script", "onclick", "onerror", "javascript:", "<iframe", "style="):
            assert bad not in body
        assert "youtube.com" in body  # the video became a plain link
        assert PARAGRAPH.lower() in body

        pictures = store.find_article(base + "/images.html")
        assert pictures is not None and pictures.state == "ok"  # bad images don't lose the text
    assert report.new == 6  # good, cp1251, images, hostile, limited, gone


@pytest.mark.slow
async def test_failed_articles_are_retried_next_run_and_ok_ones_are_not(hostile) -> None:  # type: ignore[no-untyped-def]
    config, hits = hostile
    await run_fetch(config)
    first = dict(hits)
    await run_fetch(config, NOW + timedelta(days=30))  # past revalidate_days
    assert hits["/broken.html"] > first["/broken.html"]  # still failing: tried again
    assert hits["/good.html"] == first["/good.html"]  # stored, too old to re-check


@pytest.mark.slow
async def test_article_that_disappears_is_recorded_as_gone(hostile) -> None:  # type: ignore[no-untyped-def]
    config, _ = hostile
    await run_fetch(config)
    report = await run_fetch(config)  # young articles are re-checked: the feed changed
    assert report.gone == 1
    base = config.source.feeds[0].rsplit("/", 1)[0]
    with Store(config.state.path) as store:
        gone = store.find_article(base + "/gone.html")
        assert gone is not None and gone.state == "gone"
        assert store.revision(gone.id) is not None  # its content is kept; the edition decides
