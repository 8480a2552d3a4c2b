"""Feeds a reader's app can live on: whole articles (content type="html"), images within a
per-entry budget, links that resolve as on the page, and never over feed_max_bytes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from urllib.parse import urljoin

import feedparser
import lxml.etree
import lxml.html
import pytest

from mirror.build.render import (
    ArticleView,
    entry_images,
    feed_content,
    fit_feed,
    render_feed,
)
from mirror.config import Config, load_config
from mirror.errors import ConfigError, FeedTooLargeError
from mirror.store import Store
from tests.test_build import NOW, build, config  # noqa: F401 -- `config` is a fixture
from tests.test_render import EDITION, LINKS, ORIGIN, PIXEL, SITE, article

ATOM = "{http://www.w3.org/2005/Atom}"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
MIRROR = "https://s3.example.com/bucket/"
BIG = "data:image/webp;base64," + "A" * 5_000


def parse(feed: bytes, url: str = MIRROR + "feed.xml") -> feedparser.FeedParserDict:
    """The feed as a reader fetching it from `url` sees it."""
    parsed = feedparser.parse(
        feed, response_headers={"content-location": url, "content-type": "application/atom+xml"}
    )
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def entries_xml(feed: bytes) -> list[lxml.etree._Element]:
    return lxml.etree.fromstring(feed).findall(f"{ATOM}entry")


def content_html(entry: lxml.etree._Element) -> lxml.html.HtmlElement | None:
    content = entry.find(f"{ATOM}content")
    if content is None:
        return None
    return lxml.html.fragment_fromstring(content.text or "", create_parent="div")


def many(count: int, paragraph_bytes: int = 2_000) -> list[ArticleView]:
    """`count` articles, newest first, each with a body of about `paragraph_bytes`."""
    return [
        article(
            path=f"articles/2026/11/story-{number:02d}.html",
            url=f"{ORIGIN}/story-{number}",
            title=f"Story {number}",
            published=EDITION - timedelta(hours=number),
            body_html=f"<p>Story {number}: " + "word " * (paragraph_bytes // 5) + "</p>",
            images={},
        )
        for number in range(count)
    ]


def bodies_of(views: list[ArticleView]) -> dict[str, str]:
    return {view.path: feed_content(view, LINKS) for view in views}


# --- one feed, whole articles ----------------------------------------------------------


def test_the_entry_carries_the_whole_body_and_keeps_its_summary() -> None:
    view = article()
    feed = render_feed([view.summary()], SITE, updated=EDITION, bodies=bodies_of([view]))
    entry = parse(feed).entries[0]
    assert entry.summary == "The council met at noon."
    assert [c.type for c in entry.content] == ["text/html"]
    body = lxml.html.fragment_fromstring(entry.content[0].value, create_parent="div")
    assert "Body text" in body.text_content() and "the other story" in body.text_content()
    assert body.xpath("//script") == [] and "alert" not in entry.content[0].value
    assert render_feed([view.summary()], SITE, updated=EDITION, bodies=bodies_of([view])) == feed


def test_without_a_body_an_entry_is_a_summary_as_before() -> None:
    feed = render_feed([article().summary()], SITE, updated=EDITION)
    assert b"<content" not in feed
    assert parse(feed).entries[0].summary == "The council met at noon."


@pytest.mark.parametrize("feed_url", [MIRROR + "feed.xml", MIRROR + "feed-en.xml"])
def test_links_in_the_body_resolve_inside_the_mirror_as_on_the_page(feed_url: str) -> None:
    """xml:base names the entry's page, so a reader resolving against it (feedparser,
    Atom's rule) or against the entry's link lands on the same files."""
    view = article()
    feed = render_feed([view.summary()], SITE, updated=EDITION, bodies=bodies_of([view]))
    expected = [
        MIRROR + "articles/2026/10/other.html",
        MIRROR + "articles/2026/10/other.html#part",
        f"{ORIGIN}/not-mirrored/",
        "https://elsewhere.example.net/report",
    ]
    entry = parse(feed, feed_url).entries[0]
    resolved = lxml.html.fragment_fromstring(entry.content[0].value, create_parent="div")
    assert resolved.xpath("//a/@href") == expected  # feedparser resolved them
    raw = entries_xml(feed)[0]
    page = raw.find(f"{ATOM}link").get("href")
    assert raw.find(f"{ATOM}content").get(XML_BASE) == page
    body = content_html(raw)
    assert body is not None
    assert [urljoin(entry.link, href) for href in body.xpath("//a/@href")] == expected


def test_links_that_go_nowhere_are_text_in_the_feed_too() -> None:
    view = article(body_html='<p>A <a href="javascript:x()">dead</a> and <a>bare</a> link.</p>')
    feed = render_feed([view.summary()], SITE, updated=EDITION, bodies=bodies_of([view]))
    body = content_html(entries_xml(feed)[0])
    assert body is not None and body.xpath("//a") == []
    assert body.text_content() == "A dead and bare link."


def test_images_within_the_entry_budget_are_inline_the_rest_noted() -> None:
    images = {f"{ORIGIN}/img/a.jpg": BIG, f"{ORIGIN}/img/b.jpg": PIXEL}
    assert entry_images(images, len(BIG) + len(PIXEL)) == images
    assert entry_images(images, len(BIG) - 1) == {f"{ORIGIN}/img/a.jpg": None, **{
        f"{ORIGIN}/img/b.jpg": PIXEL}}  # fmt: skip
    assert entry_images(images, 0) == dict.fromkeys(images)
    view = article(images=entry_images(images, len(BIG) - 1))
    feed = render_feed([view.summary()], SITE, updated=EDITION, bodies=bodies_of([view]))
    body = content_html(entries_xml(feed)[0])
    assert body is not None
    assert body.xpath("//img/@src") == [PIXEL]
    assert body.xpath("//span[@class='noimage']/text()") == [
        "[Image left out to keep this feed small: the article page has it]"
    ]  # the first image's alt repeated its caption: left out of the note


def test_the_note_is_in_the_articles_language() -> None:
    view = article(language="ru", images={})
    body = content_html(
        entries_xml(render_feed([view.summary()], SITE, updated=EDITION, bodies=bodies_of([view])))[
            0
        ]
    )
    assert body is not None
    assert "лента оставалась лёгкой" in body.text_content()


# --- the byte limit ---------------------------------------------------------------------


def test_oldest_bodies_go_first_then_oldest_entries_and_never_over_the_limit() -> None:
    views = many(12)
    summaries = [view.summary() for view in views]
    bodies = bodies_of(views)
    whole = fit_feed(summaries, SITE, bodies=bodies, max_bytes=10_000_000, updated=EDITION)
    assert (whole.entries, whole.full) == (12, 12)
    seen: list[tuple[int, int]] = []
    for limit in range(2_000, len(whole.xml) + 1, 1_500):
        try:
            fitted = fit_feed(summaries, SITE, bodies=bodies, max_bytes=limit, updated=EDITION)
        except FeedTooLargeError:
            assert limit < 3_000  # only when even the feed's own head does not fit
            continue
        assert len(fitted.xml) <= limit
        entries = parse(fitted.xml).entries
        assert [e.title for e in entries] == [f"Story {n}" for n in range(fitted.entries)]
        has_body = ["content" in e for e in entries]
        assert has_body == [True] * fitted.full + [False] * (fitted.entries - fitted.full)
        assert all(e.summary and e.link for e in entries)  # a bodiless entry keeps the rest
        assert fitted.full == 0 or fitted.entries == 12  # bodies go before any entry does
        seen.append((fitted.entries, fitted.full))
    assert seen == sorted(seen) and len(set(seen)) > 5  # more room, more kept
    assert any(full == 0 and entries < 12 for entries, full in seen)
    assert any(0 < full < 12 for _, full in seen)


def test_the_fitted_feed_is_deterministic() -> None:
    views = many(6)
    summaries = [view.summary() for view in views]
    first = fit_feed(summaries, SITE, bodies=bodies_of(views), max_bytes=9_000, updated=EDITION)
    again = fit_feed(summaries, SITE, bodies=bodies_of(views), max_bytes=9_000, updated=EDITION)
    assert first == again and 0 < first.full < 6


def test_a_limit_no_feed_fits_is_a_named_error() -> None:
    with pytest.raises(FeedTooLargeError):
        fit_feed([article().summary()], SITE, bodies={}, max_bytes=100, updated=EDITION)


# --- in the build --------------------------------------------------------------------------


def test_the_built_feeds_carry_whole_articles(config: Config) -> None:  # noqa: F811
    build(config)
    folder = config.edition.output_dir
    for name in ("feed.xml", "feed-en.xml", "feed-ru.xml"):
        feed = (folder / name).read_bytes()
        assert len(feed) <= config.edition.feed_max_bytes
        entries = parse(feed, MIRROR + name).entries
        assert entries and all(e.content[0].value.strip() for e in entries), name
        for entry in entries_xml(feed):
            body = content_html(entry)
            assert body is not None
            for href in body.xpath("//a/@href"):  # every link into the edition is a file
                target = urljoin(MIRROR + entry.find(f"{ATOM}link").get("href"), href)
                if target.startswith(MIRROR):
                    assert (folder / target.removeprefix(MIRROR).split("#")[0]).is_file()
            sizes = [len(src) for src in body.xpath("//img/@src")]
            assert all(src.startswith("data:image/") for src in body.xpath("//img/@src"))
            assert sum(sizes) <= config.edition.feed_entry_image_bytes


def test_a_changed_body_changes_the_feed_and_makes_a_version(config: Config) -> None:  # noqa: F811
    build(config)
    feed = config.edition.output_dir / "feed.xml"
    before = feed.read_bytes()
    with Store(config.state.path) as store:
        path = store.execute("SELECT path FROM articles ORDER BY id LIMIT 1").fetchone()[0]
        article_id = store.execute("SELECT id FROM articles WHERE path = ?", (path,)).fetchone()[0]
        current = store.revision(article_id)
        assert current is not None
        corrected = replace(
            current,
            content_hash="corrected-" + current.content_hash,
            body_html=current.body_html + "<p>Correction: the vote was on Friday.</p>",
        )
        store.save_revision(article_id, corrected, etag=None, last_modified=None, at=NOW)
    report = build(config, NOW + timedelta(hours=1))
    assert report.new_version and "feed.xml" in report.written
    assert b"Correction: the vote was on Friday." in feed.read_bytes()
    assert b"Correction: the vote was on Friday." not in before


def test_a_small_feed_limit_drops_bodies_in_the_build(config: Config) -> None:  # noqa: F811
    small = replace(config, edition=replace(config.edition, feed_max_bytes=12_000))
    report = build(small)
    feed = (small.edition.output_dir / "feed.xml").read_bytes()
    assert len(feed) <= 12_000
    entries = parse(feed).entries
    has_body = ["content" in e for e in entries]
    assert False in has_body and has_body == sorted(has_body, reverse=True)
    assert report.feed_bodies_dropped > 0


def test_the_feed_keys_are_checked(config: Config) -> None:  # noqa: F811
    path = config.state.path.parent.parent / "mirror.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("[edition]\n", "[edition]\nfeed_max_bytes = 500\n"))
    with pytest.raises(ConfigError, match="feed_max_bytes"):
        load_config(path)
    path.write_text(text.replace("[edition]\n", "[edition]\nfeed_max_byte = 50000\n"))
    with pytest.raises(ConfigError, match="feed_max_bytes"):  # did you mean
        load_config(path)
    path.write_text(text.replace("[edition]\n", "[edition]\nfeed_entry_image_bytes = 0\n"))
    assert load_config(path).edition.feed_entry_image_bytes == 0
