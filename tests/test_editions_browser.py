"""A real build's reader-facing files in real browsers: the daily HTML file, the EPUB's
chapters (unzipped, opened by file:// with the style sheet and images beside them) and
the Russian pages, in headless Chromium with the network cut, at 390 px (a phone) and
1200 px (a desk): no request leaves the page, no sideways scroll, every internal link
lands on an existing file and id, every image shows. w3m reads the daily file as text
with its contents. The EPUB the build wrote has the EPUB 3 structure.

The sample newsroom's store (English and Russian articles) is built once per module:
each check is one page at one width, ~40 of them, too many for a build apiece.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import lxml.etree
import lxml.html
import pytest
from conftest import SECRET

from mirror.build.catalogue import wording
from mirror.build.daily import parse_daily_path, section_id
from mirror.build.epub import Book, Chapter, make_epub
from mirror.build.render import MESSAGES, render_daily
from mirror.cli import run
from mirror.newsroom import config_for
from mirror.trust import minisign

from browsers import chromium, missing
from epub_check import assert_valid_epub3
from hard_article import SITE, article

WIDTHS = (390, 1200)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
LINKS = "els => els.map(e => [e.getAttribute('href'), e.href])"
X = {"x": "http://www.w3.org/1999/xhtml"}
IMAGES = "els => els.map(e => [e.getAttribute('src') || '', e.complete && e.naturalWidth])"


@pytest.fixture(scope="module")
def edition(tmp_path_factory: pytest.TempPathFactory, fetched_store: Path) -> Path:
    """The edition folder of a build of the fetched sample store (as conftest's `built`)."""
    folder = tmp_path_factory.mktemp("built")
    config = folder / "mirror.toml"
    config.write_text(
        config_for("http://127.0.0.1:9/", folder)
        + '\n[[mirrors]]\nname = "a"\ntype = "directory"\npath = "a"\n'
        'public_url = "https://a.example.net/m/"\n',
        encoding="utf-8",
    )
    (folder / "state").mkdir()
    shutil.copy(fetched_store, folder / "state" / "mirror.db")
    key = minisign.generate_key()
    minisign.write_key_pair(
        key, folder / "keys" / "mirror.key", folder / "keys" / "mirror.pub", None
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MIRROR_UNSUBSCRIBE_SECRET", SECRET)
        assert run(["-c", str(config), "build"]) == 0
    return folder / "edition"


def daily(edition: Path, language: str, kind: str = "html") -> str:
    """The path of the build's daily file in `language` (the build's day is the clock's)."""
    found = [
        path
        for file in (edition / "editions").iterdir()
        if (parsed := parse_daily_path(path := f"editions/{file.name}"))
        and (parsed.language, parsed.kind) == (language, kind)
    ]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def book(edition: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Russian EPUB of the day, unzipped: the folder holding EPUB/."""
    folder = tmp_path_factory.mktemp("epub")
    with zipfile.ZipFile(edition / daily(edition, "ru", "epub")) as archive:
        archive.extractall(folder)
    return folder


@pytest.fixture(scope="module")
def browser(edition: Path, book: Path) -> Iterator[Any]:
    """One Chromium, started after the build (playwright's loop would stop asyncio.run)."""
    with chromium() as launched:
        yield launched


def russian_article(edition: Path) -> str:
    """An article page in Russian, with at least one image."""
    for page in sorted((edition / "articles").rglob("*.html")):
        root = lxml.html.parse(str(page)).getroot()
        if root.get("lang") == "ru" and root.xpath("//img"):
            return page.relative_to(edition).as_posix()
    raise AssertionError("no Russian article with an image in the sample build")


PAGES = [
    "daily ru",
    "daily en",
    "index-ru.html",
    "mirrors-ru.html",
    "verify-ru.html",
    "editions/index.html",
    "russian article",
]


@cache
def ids_in(path: Path) -> frozenset[str]:
    """The ids (and a names) a fragment can land on in the file at `path`."""
    if path.suffix == ".xhtml":
        root = lxml.etree.parse(str(path)).getroot()
    else:
        root = lxml.html.parse(str(path)).getroot()
    return frozenset(
        value for element in root.iter() for value in (element.get("id"), element.get("name"))
        if value
    )  # fmt: skip


def dead_links(links: list[list[str]], root: Path) -> list[str]:
    """Each relative or #fragment href (given as [attribute, resolved URL]) that lands on
    no file under `root`, or on no id of its file."""
    dead = []
    for given, resolved in links:
        if SCHEME.match(given):
            continue  # http(s), mailto: a link out, not into the edition
        parts = urlsplit(resolved)
        target = Path(unquote(parts.path))
        fragment = unquote(parts.fragment)
        if not (target.is_relative_to(root) and target.is_file()) or (
            fragment and fragment not in ids_in(target)
        ):
            dead.append(given)
    return dead


def open_checked(browser: Any, url: str, root: Path, width: int) -> dict[str, Any]:
    """Open `url` at `width` px with every request routed: only file:// under `root`
    (the page, and an EPUB chapter's style sheet and images) and data: get through."""
    context = browser.new_context(viewport={"width": width, "height": 800})
    sent: list[str] = []

    def only_the_page(route: Any) -> None:
        wanted = route.request.url
        inside = wanted.startswith(root.as_uri() + "/") or wanted.startswith("data:")
        route.continue_() if inside else route.abort()

    context.route("**/*", only_the_page)
    page = context.new_page()
    page.on("request", lambda request: sent.append(request.url))
    page.goto(url, wait_until="load")
    page.wait_for_timeout(200)  # late requests (favicon, prefetch) would show up here
    seen = {
        "sent": sent,
        "scroll_width": page.evaluate("document.scrollingElement.scrollWidth"),
        "inner_width": page.evaluate("window.innerWidth"),
        "links": page.eval_on_selector_all("a[href]", LINKS),
        "images": page.eval_on_selector_all("img", IMAGES),
        "text": page.evaluate("document.body.innerText"),
    }
    context.close()
    return seen


def assert_reader_safe(seen: dict[str, Any], root: Path, own: set[str]) -> None:
    outside = [url for url in seen["sent"] if url not in own and not url.startswith("data:")]
    assert outside == []
    assert seen["scroll_width"] <= seen["inner_width"], "sideways scroll"
    assert dead_links(seen["links"], root) == []
    assert all(width and width > 0 for _src, width in seen["images"]), seen["images"]


# --- the daily file and the Russian pages --------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", PAGES)
def test_edition_page_stays_on_the_page(browser: Any, edition: Path, name: str, width: int) -> None:
    path = {
        "russian article": lambda: russian_article(edition),
        "daily ru": lambda: daily(edition, "ru"),
        "daily en": lambda: daily(edition, "en"),
    }.get(name, lambda: name)()
    url = (edition / path).as_uri()
    seen = open_checked(browser, url, edition, width)
    assert seen["sent"] and seen["sent"][0] == url
    assert_reader_safe(seen, edition, {url})
    assert seen["links"], "a page with no link at all"


@pytest.mark.slow
def test_the_daily_file_contents_link_every_section_and_show_its_images(
    browser: Any, edition: Path
) -> None:
    path = daily(edition, "ru")
    root = lxml.html.parse(str(edition / path)).getroot()
    sections = [s.get("id") for s in root.xpath("//main//article[@id]")]
    contents = root.xpath("//nav[@id='contents']//a/@href")
    assert sections and contents == [f"#{s}" for s in sections]
    seen = open_checked(browser, (edition / path).as_uri(), edition, 390)
    assert seen["images"], "the sample's Russian articles have pictures"
    assert all(src.startswith("data:image/") for src, _width in seen["images"])
    assert "Содержание" in seen["text"]


def test_w3m_shows_the_daily_file_with_its_contents(edition: Path) -> None:
    w3m = shutil.which("w3m") or ""
    if not w3m:
        missing("w3m")
    path = edition / daily(edition, "ru")
    dumped = subprocess.run(
        [w3m, "-dump", "-T", "text/html", "-I", "UTF-8", "-O", "UTF-8", "-cols", "80", str(path)],
        capture_output=True, check=True, timeout=30, text=True,
    ).stdout  # fmt: skip
    root = lxml.html.parse(str(path)).getroot()
    titles = [" ".join(a.text_content().split()) for a in root.xpath("//nav[@id='contents']//a")]
    assert titles and "Содержание" in dumped
    contents = dumped[dumped.index("Содержание") :]
    for title in titles:
        assert title in " ".join(contents.split()), title
    assert ":root{" not in dumped  # the style sheet is not shown as text
    assert "minisign" in dumped  # the footer says how to check the file


# --- the EPUB ------------------------------------------------------------------------


def test_the_epub_the_build_wrote_has_the_epub3_structure(edition: Path) -> None:
    for language in ("ru", "en"):
        data = (edition / daily(edition, language, "epub")).read_bytes()
        assert_valid_epub3(data)


def chapters(book: Path) -> list[str]:
    return [*sorted(p.name for p in (book / "EPUB" / "text").glob("*.xhtml")), "nav.xhtml"]


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_epub_chapters_stay_in_the_book(browser: Any, book: Path, width: int) -> None:
    names = chapters(book)
    assert len(names) >= 3  # chapters, the check page, the contents
    for name in names:
        page = book / "EPUB" / ("text" if name != "nav.xhtml" else "") / name
        seen = open_checked(browser, page.as_uri(), book, width)
        own = {p.as_uri() for p in book.rglob("*") if p.is_file()}
        assert_reader_safe(seen, book, own)


def test_epub_links_between_chapters_stay_in_the_book(book: Path) -> None:
    """A link from one article to another in the same book goes to that chapter, not to
    the blocked origin; our "Video:" lines are in the book's language."""
    texts = sorted((book / "EPUB" / "text").glob("c*.xhtml"))
    trees = {page.name: lxml.etree.parse(str(page)).getroot() for page in texts}
    ids = {(name, i) for name, tree in trees.items() for i in tree.xpath("//@id")}
    hrefs = [href for tree in trees.values() for href in tree.xpath("//x:a/@href", namespaces=X)]
    inside = [href for href in hrefs if not SCHEME.match(href)]
    assert inside, "the sample's Russian articles link each other"
    assert {tuple(href.split("#")) for href in inside} <= ids
    assert not [href for href in hrefs if href.startswith("http://127.0.0.1")]  # the origin
    words = " ".join(" ".join(tree.itertext()) for tree in trees.values())
    assert "Video:" not in words
    assert wording(MESSAGES, "ru")["video"] in words


# --- the hardest body the sanitiser lets through, at 390 px ---------------------------


@pytest.fixture(scope="module")
def stress(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The daily file and the EPUB (unzipped) of tests/hard_article.py's article:
    a word that never ends, a long URL, a wide table, a long <pre>, a missing image."""
    folder = tmp_path_factory.mktemp("stress")
    page = article()
    day = page.published.date()
    daily_file = folder / "daily.html"
    daily_file.write_bytes(render_daily(day, "en", [page], SITE))
    images = {
        url: (("image/webp", base64.b64decode(uri.partition(",")[2])) if uri else None)
        for url, uri in page.images.items()
    }
    chapter = Chapter(
        anchor=section_id(page.path), title=page.title, byline="", date_words="",
        language="en", body_html=page.body_html, images=images,
    )  # fmt: skip
    book = Book(
        identifier="urn:uuid:6f1c7a52-3d1e-4f0e-9a57-2b8f1d3c9e41", title=page.title,
        language="en", day=day, publisher=SITE.name, chapters=(chapter,), footer_html="",
    )  # fmt: skip
    with zipfile.ZipFile(io.BytesIO(make_epub(book, max_bytes=10**6))) as archive:
        archive.extractall(folder / "book")
    return folder


@pytest.mark.parametrize("name", ["daily.html", "book/EPUB/text/c001.xhtml"])
def test_the_hardest_body_needs_no_sideways_scroll_at_390(
    browser: Any, stress: Path, name: str
) -> None:
    seen = open_checked(browser, (stress / name).as_uri(), stress, 390)
    own = {p.as_uri() for p in stress.rglob("*") if p.is_file()}
    assert_reader_safe(seen, stress, own)
    assert seen["images"]
