"""The sample newsroom, against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import io
import re
import tomllib
import types
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import feedparser
import lxml.html
import pytest
from PIL import Image

from mirror.config import load_config
from mirror.newsroom import (
    CHROME_MARKERS,
    IN_BODY_JUNK_MARKERS,
    STYLE_SELECTORS,
    STYLES,
    Article,
    NewsroomOptions,
    RunningNewsroom,
    config_for,
    serve_newsroom,
)
from mirror.newsroom import app as newsroom_app
from mirror.newsroom.__main__ import parse_args
from mirror.newsroom.articles import DRAFTS, build_articles
from mirror.newsroom.chrome import CHROME_TEXT
from mirror.newsroom.state import DEFAULT_REFERENCE


@pytest.fixture
async def running() -> AsyncIterator[RunningNewsroom]:
    async with serve_newsroom(NewsroomOptions(articles=24)) as served:
        yield served


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def fetch(
    session: aiohttp.ClientSession, url: str, **headers: str
) -> tuple[int, bytes, aiohttp.typedefs.LooseHeaders]:
    async with session.get(url, headers=headers, allow_redirects=False) as response:
        return response.status, await response.read(), response.headers


def by_style(running: RunningNewsroom, style: str) -> Article:
    return next(a for a in running.newsroom.articles if a.style == style)


def normalised(text: str) -> str:
    return " ".join(text.split())


def extract_body(page: bytes, style: str) -> tuple[str, lxml.html.HtmlElement]:
    """The body text by the style's selectors, junk dropped (what a configured extractor does)."""
    tree = lxml.html.document_fromstring(page)
    selectors = STYLE_SELECTORS[style]
    (body,) = tree.cssselect(selectors.article_selector)
    for selector in selectors.drop_selectors:
        for junk in body.cssselect(selector):
            junk.drop_tree()
    for script in body.cssselect("script"):
        script.drop_tree()
    return normalised(body.text_content()), body


# ---- content, without a server ----------------------------------------------------


def test_hand_written_articles_are_enough_and_well_formed() -> None:
    for lang in ("en", "ru"):
        assert len(DRAFTS[lang]) >= 8
        for draft in DRAFTS[lang]:
            assert 4 <= len(draft.paragraphs) <= 8
            assert 1 <= len(draft.authors) <= 2
            assert draft.lead and draft.section
    titles = " ".join(d.title for drafts in DRAFTS.values() for d in drafts)
    for mark in ("«", "—", "&", "“"):
        assert mark in titles
    assert re.search("[а-яё]", DRAFTS["ru"][0].paragraphs[0])


def test_generated_articles_are_deterministic_and_all_different() -> None:
    first = build_articles(300, 7, DEFAULT_REFERENCE)
    again = build_articles(300, 7, DEFAULT_REFERENCE)
    assert first == again
    assert len({a.text for a in first}) == 300
    assert len({a.path for a in first}) == 300
    assert {a.style for a in first} == set(STYLES)
    assert first[-1].published == DEFAULT_REFERENCE
    assert all(a.modified >= a.published for a in first)
    assert all(re.fullmatch(r"(/ru)?/\d{4}/\d\d/\d\d/[a-z0-9-]+/", a.path) for a in first)


# ---- feeds and sitemaps ----------------------------------------------------------


@pytest.mark.parametrize("path", ["rss.xml", "atom.xml", "rss1.xml"])
async def test_feeds_parse_cleanly(
    running: RunningNewsroom, session: aiohttp.ClientSession, path: str
) -> None:
    status, body, _ = await fetch(session, running.url(path))
    parsed = feedparser.parse(body)
    assert status == 200 and parsed.bozo == 0
    assert len(parsed.entries) == 20
    newest = running.newsroom.newest(1)[0]
    assert parsed.entries[0].link == running.newsroom.url_of(newest)
    assert parsed.entries[0].title == newest.title
    entry = parsed.entries[0]
    assert entry.get("author") and (entry.get("published") or entry.get("updated"))


async def test_sitemaps_list_every_article(
    running: RunningNewsroom, session: aiohttp.ClientSession
) -> None:
    _, index, _ = await fetch(session, running.url("sitemap.xml"))
    months = re.findall(rb"<loc>([^<]+)</loc>", index)
    assert months and all(re.search(rb"/sitemaps/\d{4}-\d\d\.xml$", m) for m in months)
    urls: list[bytes] = []
    for month in months:
        status, body, _ = await fetch(session, month.decode())
        assert status == 200
        urls += re.findall(rb"<loc>([^<]+)</loc>", body)
    expected = {running.newsroom.url_of(a).encode() for a in running.newsroom.articles}
    assert set(urls) == expected
    _, news, _ = await fetch(session, running.url("news-sitemap.xml"))
    assert news.count(b"<news:news>") == 20


# ---- article pages ----------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
async def test_page_has_chrome_and_a_clean_extractable_body(
    running: RunningNewsroom, session: aiohttp.ClientSession, style: str
) -> None:
    article = by_style(running, style)
    status, raw, _ = await fetch(session, running.newsroom.url_of(article))
    assert status == 200
    page = raw.decode("windows-1251" if style == "legacy" else "utf-8")
    for phrase in _markers(article.lang):
        assert phrase in page, phrase
    for piece in ('src="https://tracker.example.net/t.js"', 'width="1" height="1"', "<svg"):
        assert piece in page
    assert f'<html lang="{article.lang}">' in page
    assert f'rel="canonical" href="{running.newsroom.url_of(article)}"' in page
    assert "youtube.com/embed/" in page
    text, body = extract_body(raw, style)
    for paragraph in article.paragraphs:
        assert normalised(paragraph) in text
    for marker in CHROME_MARKERS:
        assert marker not in text
    assert article.title not in text
    inner = lxml.html.tostring(body, encoding="unicode")
    assert "javascript:" in inner and "onerror=" in inner and "<iframe" in inner
    links = [a.get("href") for a in body.cssselect("a")]
    assert any(h.startswith(running.base_url) for h in links)
    assert any(h.startswith("/") and not h.startswith("//") for h in links)


def _markers(lang: str) -> list[str]:
    text = CHROME_TEXT[lang]
    return [text.cookie, text.donate_title, text.newsletter_title, text.related_heading]


async def test_raw_body_holds_the_junk_the_drop_selectors_remove(
    running: RunningNewsroom, session: aiohttp.ClientSession
) -> None:
    article = by_style(running, "drupal")
    _, raw, _ = await fetch(session, running.newsroom.url_of(article))
    tree = lxml.html.document_fromstring(raw)
    (body,) = tree.cssselect(STYLE_SELECTORS["drupal"].article_selector)
    raw_text = body.text_content()
    assert any(marker in raw_text for marker in IN_BODY_JUNK_MARKERS)
    assert body.cssselect("script")


async def test_images_are_lazy_in_the_style_of_each_cms(
    running: RunningNewsroom, session: aiohttp.ClientSession
) -> None:
    pages = {}
    for style in STYLES:
        _, raw, _ = await fetch(session, running.newsroom.url_of(by_style(running, style)))
        pages[style] = raw.decode("windows-1251" if style == "legacy" else "utf-8")
    assert 'src="/static/placeholder.gif" data-src="' in pages["wordpress"]
    assert "data-srcset=" in pages["wordpress"] and "<noscript><img" in pages["wordpress"]
    assert '<source type="image/webp"' in pages["drupal"] and 'srcset="/media/' in pages["drupal"]
    newsapp = lxml.html.document_fromstring(pages["newsapp"])
    outside = "//div[@itemprop='articleBody']//img[not(ancestor::noscript)]"
    assert not newsapp.xpath(outside) and newsapp.xpath("//noscript//img")
    assert "<noscript><img src=" in pages["newsapp"]
    assert '"@type": "NewsArticle"' in pages["newsapp"] and "<time " in pages["newsapp"]


async def test_legacy_page_is_windows_1251_named_only_in_meta(
    running: RunningNewsroom, session: aiohttp.ClientSession
) -> None:
    article = by_style(running, "legacy")
    _, raw, headers = await fetch(session, running.newsroom.url_of(article))
    assert headers["Content-Type"] == "text/html"
    assert b'content="text/html; charset=windows-1251"' in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert article.title in raw.decode("windows-1251")


async def test_image_is_a_jpeg_of_the_configured_size(session: aiohttp.ClientSession) -> None:
    async with serve_newsroom(NewsroomOptions(articles=4, image_size=(640, 427))) as served:
        article = served.newsroom.articles[0]
        status, body, headers = await fetch(session, served.url(f"media/{article.image}.jpg"))
        assert status == 200 and headers["Content-Type"] == "image/jpeg"
        picture = Image.open(io.BytesIO(body))
        assert (picture.format, picture.size) == ("JPEG", (640, 427))
        _, webp, _ = await fetch(session, served.url(f"media/{article.image}.webp"))
        assert Image.open(io.BytesIO(webp)).format == "WEBP"
        other = served.newsroom.articles[1]
        _, second, _ = await fetch(session, served.url(f"media/{other.image}.jpg"))
        assert second != body
        status, _, _ = await fetch(session, served.url("media/not-an-article.jpg"))
        assert status == 404
        status, gif, _ = await fetch(session, served.url("static/placeholder.gif"))
        assert status == 200 and gif.startswith(b"GIF89a")


async def test_no_images_knob(session: aiohttp.ClientSession) -> None:
    async with serve_newsroom(NewsroomOptions(articles=4, images=False)) as served:
        article = served.newsroom.articles[0]
        _, raw, _ = await fetch(session, served.newsroom.url_of(article))
        assert b"/media/" not in raw


# ---- HTTP behaviour ----------------------------------------------------------------


async def test_conditional_get_answers_304(
    running: RunningNewsroom, session: aiohttp.ClientSession
) -> None:
    for url in (running.url("rss.xml"), running.newsroom.url_of(running.newsroom.articles[0])):
        _, _, headers = await fetch(session, url)
        etag, modified = headers["ETag"], headers["Last-Modified"]
        assert (await fetch(session, url, **{"If-None-Match": etag}))[0] == 304
        assert (await fetch(session, url, **{"If-Modified-Since": modified}))[0] == 304
        assert (await fetch(session, url, **{"If-None-Match": '"other"'}))[0] == 200
    log = running.newsroom.requests.entries
    assert [r.conditional for r in log[:4]] == [False, True, False, True]


async def test_validators_off(session: aiohttp.ClientSession) -> None:
    async with serve_newsroom(NewsroomOptions(articles=2, validators=False)) as served:
        status, _, headers = await fetch(session, served.url("rss.xml"), **{"If-None-Match": "*"})
        assert status == 200 and "ETag" not in headers and "Last-Modified" not in headers


async def test_gzip_when_accepted(running: RunningNewsroom) -> None:
    async with aiohttp.ClientSession(auto_decompress=False) as client:
        url = running.url("atom.xml")
        _, packed, headers = await fetch(client, url, **{"Accept-Encoding": "gzip"})
        assert headers["Content-Encoding"] == "gzip"
        _, plain, headers = await fetch(client, url, **{"Accept-Encoding": "identity"})
        assert "Content-Encoding" not in headers and gzip.decompress(packed) == plain


async def test_article_path_without_slash_redirects(
    running: RunningNewsroom, session: aiohttp.ClientSession
) -> None:
    url = running.newsroom.url_of(running.newsroom.articles[0])
    status, _, headers = await fetch(session, url.rstrip("/"))
    assert status == 301 and headers["Location"].endswith(url.removeprefix(running.base_url))


async def test_head_answers_without_a_body(
    running: RunningNewsroom, session: aiohttp.ClientSession
) -> None:
    async with session.head(running.url("rss.xml")) as response:
        assert response.status == 200 and response.headers["ETag"]
        assert await response.read() == b""


async def test_error_rate_one_answers_500(session: aiohttp.ClientSession) -> None:
    async with serve_newsroom(NewsroomOptions(articles=2, error_rate=1.0)) as served:
        assert (await fetch(session, served.url("rss.xml")))[0] == 500


async def test_latency_and_slow_knobs_delay(
    session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits_s: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded(delay_s: float) -> None:
        waits_s.append(delay_s)
        await real_sleep(delay_s)

    shim = types.SimpleNamespace(**{**vars(asyncio), "sleep": recorded})
    monkeypatch.setattr(newsroom_app, "asyncio", shim)  # the newsroom's sleeps only
    options = NewsroomOptions(articles=2, latency_s=0.1, slow_rate=1.0, slow_s=0.2)
    async with serve_newsroom(options) as served:
        status, body, _ = await fetch(session, served.url("rss.xml"))
        assert status == 200 and feedparser.parse(body).bozo == 0
    assert waits_s[0] == 0.1 and sum(waits_s[1:]) == pytest.approx(0.2)  # latency, drip


# ---- mutations and the request log -------------------------------------------------


async def test_added_article_tops_the_feeds(
    running: RunningNewsroom, session: aiohttp.ClientSession
) -> None:
    added = running.newsroom.add_article(title="Night trains return to Zarechensk")
    parsed = feedparser.parse((await fetch(session, running.url("rss.xml")))[1])
    assert parsed.entries[0].title == "Night trains return to Zarechensk"
    assert parsed.entries[0].link == running.newsroom.url_of(added)
    assert (await fetch(session, running.newsroom.url_of(added)))[0] == 200


async def test_revision_changes_text_and_validators(
    running: RunningNewsroom, session: aiohttp.ClientSession
) -> None:
    article = by_style(running, "wordpress")
    url = running.newsroom.url_of(article)
    _, before, old = await fetch(session, url)
    revised = running.newsroom.revise_article(article.id)
    status, after, new = await fetch(session, url, **{"If-None-Match": old["ETag"]})
    assert status == 200 and new["ETag"] != old["ETag"]
    assert new["Last-Modified"] != old["Last-Modified"]
    assert len(revised.paragraphs) == len(article.paragraphs) + 1
    assert extract_body(after, "wordpress")[0] != extract_body(before, "wordpress")[0]


async def test_chrome_change_keeps_the_body(
    running: RunningNewsroom, session: aiohttp.ClientSession
) -> None:
    article = by_style(running, "newsapp")
    url = running.newsroom.url_of(article)
    _, before, old = await fetch(session, url)
    running.newsroom.change_chrome()
    status, after, new = await fetch(session, url, **{"If-None-Match": old["ETag"]})
    assert status == 200 and after != before and new["ETag"] != old["ETag"]
    old_body = lxml.html.tostring(extract_body(before, "newsapp")[1])
    assert lxml.html.tostring(extract_body(after, "newsapp")[1]) == old_body


@pytest.mark.parametrize("gone", [404, 410])
async def test_removed_article_is_gone_everywhere(
    running: RunningNewsroom, session: aiohttp.ClientSession, gone: int
) -> None:
    article = running.newsroom.newest(1)[0]
    running.newsroom.remove_article(article.id, status=gone)
    assert (await fetch(session, running.newsroom.url_of(article)))[0] == gone
    _, feed, _ = await fetch(session, running.url("rss.xml"))
    assert running.newsroom.url_of(article).encode() not in feed


async def test_request_log_tells_feeds_from_article_pages(
    running: RunningNewsroom, session: aiohttp.ClientSession
) -> None:
    await fetch(session, running.url("rss.xml"))
    await fetch(session, running.url("rss.xml"))
    assert running.newsroom.requests.counts["/rss.xml"] == 2
    assert running.newsroom.article_requests() == []
    await fetch(session, running.newsroom.url_of(running.newsroom.articles[3]))
    assert len(running.newsroom.article_requests()) == 1
    assert running.newsroom.requests.entries[0] == ("GET", "/rss.xml", False)


# ---- config and command line -------------------------------------------------------


def test_config_for_is_a_valid_mirror_config(tmp_path: Path) -> None:
    text = config_for("http://127.0.0.1:8123/", tmp_path)
    (tmp_path / "mirror.toml").write_text(text, encoding="utf-8")
    config = load_config(tmp_path / "mirror.toml")
    assert config.state.path == tmp_path.resolve() / "state" / "mirror.db"
    parsed = tomllib.loads(text)
    source = parsed["source"]
    assert source["feeds"] == ["http://127.0.0.1:8123/rss.xml"]
    assert source["sitemaps"] == ["http://127.0.0.1:8123/sitemap.xml"]
    assert source["allowed_hosts"] == ["127.0.0.1"]
    assert all(s.article_selector in source["article_selector"] for s in STYLE_SELECTORS.values())


def test_command_line_knobs() -> None:
    options, host, port = parse_args(
        ["--port", "0", "--articles", "1000", "--latency-ms", "100", "--image-size", "1600x1067"]
    )
    assert (host, port, options.articles, options.latency_s) == ("127.0.0.1", 0, 1000, 0.1)
    assert options.image_size == (1600, 1067)
