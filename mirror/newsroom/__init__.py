"""The sample newsroom: a fictional independent outlet served by aiohttp on 127.0.0.1,
for the tests, the benchmarks and `mirror demo`.

    articles.py   the Article record, deterministic generation (corpus*.py: our own text)
    pages.py      pure HTML renderers in four CMS styles; chrome.py: the page chrome
    feeds.py      pure RSS 2.0 / RSS 1.0 / Atom / sitemap renderers
    images.py     deterministic JPEG / WebP / PNG sample photos
    state.py      NewsroomOptions, Newsroom (articles, mutations, request log, cache)
    app.py        the aiohttp app and `serve_newsroom`
    sample_config.py  `config_for`, a mirror config that fetches from a newsroom
"""

from __future__ import annotations

from mirror.newsroom.app import RunningNewsroom, make_app, serve_newsroom
from mirror.newsroom.articles import Article
from mirror.newsroom.pages import (
    CHROME_MARKERS,
    IN_BODY_JUNK_MARKERS,
    OUTER_CHROME_MARKERS,
    STYLE_SELECTORS,
    STYLES,
    StyleSelectors,
)
from mirror.newsroom.sample_config import config_for
from mirror.newsroom.state import Newsroom, NewsroomOptions, RequestRecord

__all__ = [
    "CHROME_MARKERS",
    "IN_BODY_JUNK_MARKERS",
    "OUTER_CHROME_MARKERS",
    "STYLES",
    "STYLE_SELECTORS",
    "Article",
    "Newsroom",
    "NewsroomOptions",
    "RequestRecord",
    "RunningNewsroom",
    "StyleSelectors",
    "config_for",
    "make_app",
    "serve_newsroom",
]
