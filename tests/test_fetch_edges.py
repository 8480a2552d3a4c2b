"""The network's and the origin's edges, end to end on 127.0.0.1: a redirect to another
local service on a listed host's other port, and a page claiming another page's URL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web

from mirror.build.builder import build_edition
from mirror.config import Config, load_config
from mirror.fetch.stage import FetchReport, fetch_articles
from mirror.newsroom import NewsroomOptions, RunningNewsroom, config_for, serve_newsroom
from mirror.newsroom.state import DEFAULT_REFERENCE
from mirror.store import Store
from mirror.trust import manifest, minisign
from mirror.trust.keyfiles import build_inputs

from servers import serve

NOW = DEFAULT_REFERENCE + timedelta(hours=6)


def write_config(tmp_path: Path, base_url: str, **replacements: str) -> Config:
    text = config_for(base_url, tmp_path).replace("[source]\n", "[source]\nworkers = 2\n")
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "mirror.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


async def fetch(config: Config) -> FetchReport:
    with Store(config.state.path) as store:
        return await fetch_articles(config, store, now=NOW)


# ---------------------------------------------------------------- ports of a listed host


@pytest.fixture
async def newsroom() -> AsyncIterator[RunningNewsroom]:
    async with serve_newsroom(NewsroomOptions(articles=4, feed_items=0)) as running:
        yield running


@pytest.fixture
async def other_service() -> AsyncIterator[tuple[int, list[str]]]:
    """Another service on 127.0.0.1 (an admin page, say), on a port of its own."""
    hits: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        hits.append(request.path)
        paragraphs = "".join(f"<p>Internal paragraph {n} of the admin page.</p>" for n in range(9))
        page = (
            f"<html><head><title>Admin</title></head><body><article class='post'>"
            f"<h1>Admin</h1><div class='entry-content'>{paragraphs}</div></article></body></html>"
        )
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    async with serve(app) as port:
        yield port, hits


async def test_redirect_to_another_port_of_a_listed_host_is_refused(
    newsroom: RunningNewsroom, other_service: tuple[int, list[str]], tmp_path: Path
) -> None:
    port, hits = other_service
    config = write_config(tmp_path, newsroom.base_url)
    assert config.source.allowed_hosts == ("127.0.0.1",)  # no port: the feeds' port only
    moved = newsroom.newsroom.articles[0]
    moved_url = newsroom.newsroom.url_of(moved)
    newsroom.newsroom.move_article(moved.id, f"http://127.0.0.1:{port}/admin")
    report = await fetch(config)
    assert hits == []
    assert [failure.url for failure in report.failed] == [moved_url]
    assert f"port {port} of host 127.0.0.1 is not in allowed_hosts" in report.failed[0].reason
    assert report.new == 3


async def test_a_port_listed_with_the_host_is_followed(
    newsroom: RunningNewsroom, other_service: tuple[int, list[str]], tmp_path: Path
) -> None:
    port, hits = other_service
    listed = f'allowed_hosts = ["127.0.0.1", "127.0.0.1:{port}"]'
    config = write_config(tmp_path, newsroom.base_url, **{'allowed_hosts = ["127.0.0.1"]': listed})
    moved = newsroom.newsroom.articles[0]
    newsroom.newsroom.move_article(moved.id, f"http://127.0.0.1:{port}/moved")
    report = await fetch(config)
    assert report.failed == []
    assert (report.new, hits) == (4, ["/moved"])


# ---------------------------------------------------------------- a claimed canonical URL


def claiming_page(title: str, canonical: str, word: str) -> str:
    paragraphs = "".join(
        f"<p>{word} paragraph {n}: the council met again and {word} decided nothing.</p>"
        for n in range(8)
    )
    return (
        f"<!doctype html><html lang='en'><head><title>{title}</title>"
        f"<link rel='canonical' href='{canonical}'><meta property='og:url' content='{canonical}'>"
        f"<meta property='article:published_time' content='2026-11-20T08:00:00Z'></head>"
        f"<body><article class='post'><h1>{title}</h1>"
        f"<div class='entry-content'>{paragraphs}</div></article></body></html>"
    )


@pytest.fixture
async def claimed_origin() -> AsyncIterator[str]:
    """A newsroom-like origin: /first.html, and /second.html claiming the first's URL."""
    base: dict[str, str] = {}

    async def page(request: web.Request) -> web.Response:
        first = base["url"] + "/first.html"
        pages = {
            "/first.html": claiming_page("First story", first, "alpha"),
            "/second.html": claiming_page("Second story", first, "beta"),
        }
        if request.path == "/rss.xml":
            items = "".join(
                f"<item><title>{path}</title><link>{base['url']}{path}</link>"
                f"<pubDate>Fri, 20 Nov 2026 08:00:00 GMT</pubDate></item>"
                for path in pages
            )
            rss = f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>"
            return web.Response(text=rss, content_type="application/rss+xml")
        if request.path == "/sitemap.xml":
            empty = "<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'></urlset>"
            return web.Response(text=empty, content_type="application/xml")
        if request.path in pages:
            return web.Response(text=pages[request.path], content_type="text/html")
        raise web.HTTPNotFound

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    async with serve(app) as port:
        base["url"] = f"http://127.0.0.1:{port}"
        yield base["url"]


def trusted_comment(signature: Path) -> manifest.PageComment:
    parsed = minisign.parse_signature(signature.read_bytes())
    return manifest.parse_page_comment(parsed.trusted_comment)


async def test_a_page_claiming_another_articles_url_keeps_its_own_identity(
    claimed_origin: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, claimed_origin + "/")
    key = minisign.generate_key()
    minisign.write_key_pair(
        key, config.signing.secret_key_file, config.signing.public_key_file, None
    )
    report = await fetch(config)
    assert (report.new, report.failed) == (2, [])
    inputs = build_inputs(config, now=NOW)
    with Store(config.state.path) as store:
        await build_edition(config, store, inputs, now=NOW)
        rows = [store.find_article(f"{claimed_origin}/{name}.html") for name in ("first", "second")]
    assert rows[0] is not None and rows[1] is not None
    assert rows[0].id != rows[1].id
    out = config.edition.output_dir
    pages = sorted(
        p for p in out.rglob("*.html") if manifest.is_article_page(p.relative_to(out).as_posix())
    )
    texts = {p.relative_to(out).as_posix(): p.read_text(encoding="utf-8") for p in pages}
    assert len(texts) == 2
    first = next(path for path, text in texts.items() if "alpha paragraph" in text)
    second = next(path for path, text in texts.items() if "beta paragraph" in text)
    assert first != second and "beta paragraph" not in texts[first]
    comments = {path: trusted_comment(out / (path + ".minisig")) for path in texts}
    assert comments[first].url == f"{claimed_origin}/first.html"
    assert comments[second].url == f"{claimed_origin}/second.html"
    assert f"{claimed_origin}/first.html" not in texts[second]  # no "original" link to it
    feed = (out / "feed.xml").read_text(encoding="utf-8")
    ids = re.findall(r"<entry[ >].*?<id>([^<]+)</id>", feed, flags=re.S)
    assert len(ids) == 2 and len(set(ids)) == 2
    for page in out.rglob("*.html"):  # every built page: no form posts, no <base> moves links
        csp = re.search(
            rb'http-equiv="Content-Security-Policy" content="([^"]+)"', page.read_bytes()
        )
        assert csp is not None, page
        assert {b"form-action 'none'", b"base-uri 'none'"} <= {
            part.strip() for part in csp.group(1).split(b";")
        }, page
