"""What surrounds the body, end to end through fetch and build on 127.0.0.1: the lead
image with its credit, a figure's caption and credit, the standfirst, byline and date."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image

from mirror.build.builder import build_edition
from mirror.config import Config, load_config
from mirror.fetch.extract import extract_article
from mirror.fetch.stage import fetch_articles
from mirror.newsroom import config_for
from mirror.newsroom.state import DEFAULT_REFERENCE
from mirror.store import Store
from mirror.trust import minisign
from mirror.trust.keyfiles import build_inputs

from servers import serve

NOW = DEFAULT_REFERENCE + timedelta(hours=6)
RU = "".join(
    f"<p>Абзац {n}: городской совет снова обсуждал ремонт старого моста.</p>" for n in range(6)
)
_EN = [
    f"<p>Paragraph {n}: the council met again and argued about the bridge.</p>" for n in range(6)
]
FIRST, REST = "".join(_EN[:3]), "".join(_EN[3:])


def page(lang: str, title: str, head: str, article: str) -> str:
    return (
        f"<!doctype html><html lang='{lang}'><head><title>{title}</title>{head}"
        "<meta property='article:published_time' content='2026-11-20T08:00:00Z'></head>"
        f"<body><nav><a href='/'>Home</a></nav><article>{article}</article></body></html>"
    )


PAGES = {
    "/ru.html": page(
        "ru",
        "Мост закрыт",
        "<meta property='og:description' content='Абзац 0: городской совет снова обсуждал ремонт'>"
        "<meta name='author' content='Пётр Сидоров'>",
        "<h1>Мост закрыт</h1><figure><img src='/lead.png' alt='Мост'><figcaption>Старый мост "
        "<span class='credit'>Фото: Иван Иванов/ТАСС</span></figcaption></figure>"
        "<div class='text'><p class='byline'>Автор: Пётр Сидоров</p>"
        f"<p>20 ноября 2026, 11:00</p>{RU}</div>",
    ),
    "/en.html": page(
        "en",
        "Bridge closed",
        "<meta property='og:description' content='Drivers face a long detour until spring.'>"
        "<meta name='author' content='Ann Smith'>",
        f"<h1>Bridge closed</h1><p class='byline'>By Ann Smith</p>{FIRST}"
        "<figure><img src='/inner.png' alt='Detour'><figcaption>The detour</figcaption>"
        f"<span class='copyright'>© Bob Jones</span></figure>{REST}",
    ),
}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    base: dict[str, str] = {}

    async def answer(request: web.Request) -> web.Response:
        if request.path.endswith(".png"):
            return web.Response(body=png(), content_type="image/png")
        if request.path == "/rss.xml":
            items = "".join(
                f"<item><title>{p}</title><link>{base['url']}{p}</link>"
                "<pubDate>Fri, 20 Nov 2026 08:00:00 GMT</pubDate></item>"
                for p in PAGES
            )
            return web.Response(
                text=f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>",
                content_type="application/rss+xml",
            )
        if request.path in PAGES:
            return web.Response(text=PAGES[request.path], content_type="text/html")
        raise web.HTTPNotFound

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    async with serve(app) as port:
        base["url"] = f"http://127.0.0.1:{port}"
        yield base["url"]


def write_config(tmp_path: Path, base_url: str) -> Config:
    text = config_for(base_url, tmp_path)
    text = re.sub(r"(?m)^(article_selector|drop_selectors) = .*$", r'\1 = ""', text)
    text = text.replace('drop_selectors = ""', "drop_selectors = []").replace(
        f'sitemaps = ["{base_url}sitemap.xml"]', "sitemaps = []"
    )
    path = tmp_path / "mirror.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


async def built_pages(origin: str, tmp_path: Path) -> dict[str, str]:
    config = write_config(tmp_path, origin + "/")
    key = minisign.generate_key()
    minisign.write_key_pair(
        key, config.signing.secret_key_file, config.signing.public_key_file, None
    )
    with Store(config.state.path) as store:
        report = await fetch_articles(config, store, now=NOW)
        assert (report.new, report.failed) == (2, [])
        await build_edition(config, store, build_inputs(config, now=NOW), now=NOW)
    out = config.edition.output_dir
    texts = [p.read_text(encoding="utf-8") for p in (out / "articles").rglob("*.html")]
    return {("ru" if "Мост" in text else "en"): text for text in texts}


def article_text(page: str) -> str:
    found = re.search(r"<article>(.*)</article>", page, re.S)
    assert found is not None
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


async def test_what_surrounds_the_body_on_the_built_pages(origin: str, tmp_path: Path) -> None:
    pages = await built_pages(origin, tmp_path)
    ru, en = pages["ru"], pages["en"]
    # the lead image, fetched and inlined, with its caption and its TASS credit, once
    assert ru.count("data:image/") == 1
    assert "Старый мост" in ru and "Фото: Иван Иванов/ТАСС" in ru
    # a figure inside the body keeps its caption and credit
    assert en.count("data:image/") == 1
    assert "The detour" in en and "© Bob Jones" in en
    # the standfirst equal to the first paragraph is not shown; a different one is
    assert 'class="lead"' not in ru
    assert '<p class="lead">Drivers face a long detour until spring.</p>' in en
    # the byline and the date line are shown once, from metadata, not in the body
    ru_text, en_text = article_text(ru), article_text(en)
    assert ru_text.count("Пётр Сидоров") == ru_text.count("Автор:") == 1
    assert "20 ноября 2026, 11:00" not in ru_text
    assert en_text.count("Ann Smith") == 1 and en_text.count("The detour") == 1
    assert "Абзац 5" in ru_text and "Paragraph 5" in en_text


def test_og_image_leads_a_body_without_images_and_never_a_body_with_one() -> None:
    head = (
        "<meta property='og:image' content='/photo.jpg'>"
        '<script type=\'application/ld+json\'>{"@type": "NewsArticle", "image": '
        '{"@type": "ImageObject", "caption": "The bridge", "creditText": "Фото: ТАСС"}}'
        "</script>"
    )
    bare = extract_article(page("en", "Bridge", head, FIRST + REST), "http://127.0.0.1/a.html")
    assert bare.images[0].url == "http://127.0.0.1/photo.jpg"
    assert bare.body_html.startswith('<figure><img src="http://127.0.0.1/photo.jpg"')
    assert "The bridge <small>Фото: ТАСС</small>" in bare.body_html
    pictured = page("en", "Bridge", head, f"{FIRST}<img src='/other.jpg'>{REST}")
    shown = extract_article(pictured, "http://127.0.0.1/a.html")
    assert [image.url for image in shown.images] == ["http://127.0.0.1/other.jpg"]
