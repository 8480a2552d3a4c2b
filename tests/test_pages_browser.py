"""Rendered pages in real browsers: headless Chromium with the network blocked, and w3m.

Chromium (Debian's `chromium`, driven by the `playwright` package without its own
browser download) must make no request but the page itself, show every image, and
need no sideways scrolling at 360 px. w3m must show the article as text. Both are
installed by .ci/run: missing on CI is a failure, elsewhere a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mirror.build.render import (
    MirrorLink,
    render_archive_month,
    render_article,
    render_index,
    render_mirrors_html,
    render_verify_page,
)

from browsers import chromium, missing
from hard_article import ORIGIN, SITE, article


@pytest.fixture(scope="module")
def edition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small edition folder with one page of each kind."""
    root = tmp_path_factory.mktemp("edition")
    page = article()
    links = {f"{ORIGIN}/2026/10/other/": "articles/2026/10/other.html"}
    when = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    mirrors = [MirrorLink("own", "https://mirror.example.net/")]
    files = {
        page.path: render_article(page, SITE, links=links),
        "index.html": render_index(
            [page.summary()], SITE, edition_date=when, expires=when, months=["2026-11"]
        ),
        "archive/2026-11.html": render_archive_month("2026-11", [page.summary()], SITE),
        "mirrors.html": render_mirrors_html(mirrors, SITE),
        "verify.html": render_verify_page(SITE),
        "mirrors-ru.html": render_mirrors_html(mirrors, SITE, language="ru"),
        "verify-ru.html": render_verify_page(SITE, language="ru"),
    }
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


PAGES = [
    "articles/2026/11/city-hall.html",
    "index.html",
    "archive/2026-11.html",
    "mirrors.html",
    "verify.html",
    "mirrors-ru.html",
    "verify-ru.html",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    with chromium() as launched:
        yield launched


def _only(route: Any, url: str) -> None:
    """Let the page itself load, abort every other request."""
    if route.request.url == url:
        route.continue_()
    else:
        route.abort()


@pytest.mark.parametrize("path", PAGES)
def test_page_makes_no_request_but_itself(browser: Any, edition: Path, path: str) -> None:
    url = (edition / path).as_uri()
    context = browser.new_context(viewport={"width": 360, "height": 640})
    context.route("**/*", lambda route: _only(route, url))  # the network is blocked
    requests: list[str] = []
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url, wait_until="load")
    page.wait_for_timeout(200)  # late requests (favicon, prefetch) would show up here
    images = page.eval_on_selector_all("img", "els => els.map(e => e.complete && e.naturalWidth)")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    context.close()
    assert requests == [url]
    assert all(width and width > 0 for width in images), images
    assert scroll_width <= 360


def test_article_image_is_shown(browser: Any, edition: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto((edition / PAGES[0]).as_uri(), wait_until="load")
    widths = page.eval_on_selector_all("img", "els => els.map(e => [e.naturalWidth, e.width])")
    notes = page.eval_on_selector_all(".noimage", "els => els.map(e => e.textContent)")
    context.close()
    assert widths and widths[0][0] == 800
    assert 0 < widths[0][1] <= 800  # fits the text column
    assert notes == ["[Image left out to keep this page small: A chart]"]


def test_w3m_shows_the_article(edition: Path) -> None:
    w3m = shutil.which("w3m") or ""
    if not w3m:
        missing("w3m")
    dumped = subprocess.run(
        [w3m, "-dump", "-T", "text/html", "-I", "UTF-8", "-O", "UTF-8", "-cols", "80",
         str(edition / PAGES[0])],
        capture_output=True, check=True, timeout=30, text=True,
    ).stdout  # fmt: skip
    assert "City hall approves the budget" in dumped
    assert "By Daria Volkova" in dumped
    assert "November 25, 2026" in dumped
    assert "The council met at noon to discuss the budget" in dumped
    assert "Image left out to keep this page small" in dumped
    assert "Mirrors" in dumped
    assert ":root{" not in dumped  # the style sheet is not shown as text
