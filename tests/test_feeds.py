"""Feeds (RSS 0.91, 1.0, 2.0, Atom) and sitemaps (index, urlset, news), and bad input."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mirror.errors import FeedError
from mirror.fetch.feeds import FeedEntry, SitemapEntry, parse_feed, parse_sitemap
from mirror.newsroom.articles import Article, build_articles
from mirror.newsroom.feeds import (
    render_atom,
    render_news_sitemap,
    render_rss1,
    render_rss2,
    render_sitemap_index,
    render_sitemap_month,
)

FEED_URL = "https://www.example.org/rss/main.xml"

RSS_091 = b"""<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
  "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91">
<channel>
<title>The Example Times</title>
<link>https://www.example.org/</link>
<description>News</description>
<language>en</language>
<item>
<title>Council passes the budget</title>
<link>https://www.example.org/news/budget</link>
<description>After an all-night session.</description>
</item>
<item>
<title>Caf\xe9 owners protest rent rise</title>
<link>https://www.example.org/news/cafe</link>
</item>
</channel>
</rss>
"""

RSS_10 = b"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://www.example.org/rss">
    <title>The Example Times</title>
    <link>https://www.example.org/</link>
    <description>News</description>
    <items><rdf:Seq><rdf:li rdf:resource="https://www.example.org/news/one"/></rdf:Seq></items>
  </channel>
  <item rdf:about="https://www.example.org/news/one">
    <title>River dredging banned</title>
    <link>https://www.example.org/news/one</link>
    <dc:creator>Maria Lopez</dc:creator>
    <dc:date>2024-05-14T09:30:00+03:00</dc:date>
  </item>
</rdf:RDF>
"""

RSS_20 = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
  <title>Речной вестник</title>
  <link>https://vestnik.example.ru/</link>
  <description>Новости</description>
  <item>
    <title>В Зареченске закрыли ночную поликлинику</title>
    <link>/2024/06/02/poliklinika/</link>
    <guid isPermaLink="false">post-4812</guid>
    <pubDate>Sun, 02 Jun 2024 18:45:00 +0500</pubDate>
    <dc:creator><![CDATA[Дарья Волкова]]></dc:creator>
  </item>
  <item>
    <title>Item with no link at all</title>
    <description>Only text.</description>
  </item>
  <item>
    <title>Permalink guid only</title>
    <guid>https://vestnik.example.ru/2024/06/01/most/</guid>
    <pubDate>Sat, 01 Jun 2024 10:00:00 GMT</pubDate>
  </item>
  <item>
    <title>A javascript link</title>
    <link>javascript:alert(1)</link>
  </item>
</channel>
</rss>
""".encode()

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://www.example.org/blog/">
  <title>Example blog</title>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <updated>2024-05-15T10:00:00Z</updated>
  <entry>
    <title>Wells run dry</title>
    <link rel="alternate" href="2024/05/wells"/>
    <link rel="enclosure" href="https://static.example.org/wells.mp3"/>
    <id>tag:example.org,2024:wells</id>
    <published>2024-05-14T08:00:00+02:00</published>
    <updated>2024-05-15T10:00:00Z</updated>
    <author><name>Tom Becker</name></author>
    <author><name>Maria Lopez</name></author>
  </entry>
</feed>
"""


def test_rss_091() -> None:
    result = parse_feed(RSS_091, FEED_URL, max_items=10)
    assert result.title == "The Example Times"
    assert [entry.url for entry in result.entries] == [
        "https://www.example.org/news/budget",
        "https://www.example.org/news/cafe",
    ]
    assert result.entries[1].title == "Café owners protest rent rise"
    assert result.entries[0].guid == "https://www.example.org/news/budget"  # falls back to link
    assert result.entries[0].published is None
    assert result.skipped == ()


def test_rss_10() -> None:
    result = parse_feed(RSS_10, FEED_URL, max_items=10)
    (entry,) = result.entries
    assert entry.url == "https://www.example.org/news/one"
    assert entry.authors == ("Maria Lopez",)
    assert entry.published == datetime(2024, 5, 14, 6, 30, tzinfo=UTC)


def test_rss_20_relative_links_guids_and_skipped_items() -> None:
    result = parse_feed(RSS_20, "https://vestnik.example.ru/feed/", max_items=10)
    assert result.title == "Речной вестник"
    first, second = result.entries
    assert first == FeedEntry(
        url="https://vestnik.example.ru/2024/06/02/poliklinika/",
        guid="post-4812",
        title="В Зареченске закрыли ночную поликлинику",
        published=datetime(2024, 6, 2, 13, 45, tzinfo=UTC),
        updated=None,
        authors=("Дарья Волкова",),
    )
    assert second.url == "https://vestnik.example.ru/2024/06/01/most/"
    assert second.published is not None and second.published.tzinfo is UTC
    assert result.skipped == ("item 2 has no http(s) link", "item 4 has no http(s) link")


def test_atom() -> None:
    result = parse_feed(ATOM, "https://www.example.org/atom.xml", max_items=10)
    (entry,) = result.entries
    assert entry.url == "https://www.example.org/blog/2024/05/wells"
    assert entry.guid == "tag:example.org,2024:wells"
    assert entry.authors == ("Tom Becker", "Maria Lopez")
    assert entry.published == datetime(2024, 5, 14, 6, 0, tzinfo=UTC)
    assert entry.updated == datetime(2024, 5, 15, 10, 0, tzinfo=UTC)


def test_relative_links_resolve_against_the_feed_url() -> None:
    feed = b"""<rss version="2.0"><channel><title>t</title>
    <item><title>a</title><link>news/a</link></item>
    <item><title>b</title><link>//cdn.example.org/b</link></item>
    <item><title>c</title><link>/c?x=1</link></item>
    </channel></rss>"""
    result = parse_feed(feed, "https://www.example.org/rss/main.xml", max_items=10)
    assert [entry.url for entry in result.entries] == [
        "https://www.example.org/rss/news/a",
        "https://cdn.example.org/b",
        "https://www.example.org/c?x=1",
    ]


def test_repeated_items_are_skipped() -> None:
    item = b"<item><title>a</title><link>https://www.example.org/a</link></item>"
    feed = b"<rss version='2.0'><channel><title>t</title>" + item * 2 + b"</channel></rss>"
    result = parse_feed(feed, FEED_URL, max_items=10)
    assert len(result.entries) == 1
    assert result.skipped == ("item 2 repeats https://www.example.org/a",)


def test_huge_feed_keeps_max_items() -> None:
    items = b"".join(
        b"<item><title>t%d</title><link>https://www.example.org/a/%d</link></item>" % (n, n)
        for n in range(5000)
    )
    feed = b"<rss version='2.0'><channel><title>big</title>" + items + b"</channel></rss>"
    result = parse_feed(feed, FEED_URL, max_items=500)
    assert len(result.entries) == 500
    assert result.entries[-1].url == "https://www.example.org/a/499"
    assert result.skipped == ("4500 items past max_items=500",)


def test_truncated_feed_keeps_the_complete_items() -> None:
    cut = RSS_20[: RSS_20.index(b"<title>Permalink guid only") + 20]
    result = parse_feed(cut, "https://vestnik.example.ru/feed/", max_items=10)
    assert [entry.guid for entry in result.entries] == ["post-4812"]
    assert any("item 3 cut off" in reason for reason in result.skipped)


def test_feed_truncated_inside_its_first_item_is_an_error() -> None:
    cut = RSS_20[: RSS_20.index(b"<guid isPermaLink") + 5]
    with pytest.raises(FeedError, match="malformed or truncated"):
        parse_feed(cut, FEED_URL, max_items=10)


def test_feed_truncated_in_its_header_is_an_error() -> None:
    with pytest.raises(FeedError):
        parse_feed(RSS_20[:60], FEED_URL, max_items=10)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"   \n ", "empty"),
        (b"Hello, world. This is not XML at all.", "not a feed"),
        (b'{"items": [{"url": "https://www.example.org/a"}]}', "not a feed"),
        (b"<?xml version='1.0'?><note><to>Tove</to></note>", "not a feed"),
        (b"<!DOCTYPE html><html><head><title>Home</title></head><body></body></html>", "HTML"),
        (b"\xef\xbb\xbf\n<html lang='en'><body><a href='/rss'>RSS</a></body></html>", "HTML"),
        (b"<!-- cms --><HTML><BODY><p>x</p></BODY></HTML>", "HTML"),
        (
            b'<?xml version="1.0"?><!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
            b'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">'
            b'<html xmlns="http://www.w3.org/1999/xhtml"><body><p>hi</p></body></html>',
            "no RSS or Atom root",
        ),
    ],
)
def test_not_a_feed(data: bytes, reason: str) -> None:
    with pytest.raises(FeedError, match=reason):
        parse_feed(data, FEED_URL, max_items=10)


def test_a_feed_with_no_items_is_not_an_error() -> None:
    result = parse_feed(b"<rss version='2.0'><channel><title>New</title></channel></rss>",
                        FEED_URL, max_items=10)  # fmt: skip
    assert (result.title, result.entries, result.skipped) == ("New", (), ())


def test_undefined_entities_keep_the_items() -> None:
    feed = (
        b"<rss version='2.0'><channel><title>A&nbsp;B</title>"
        b"<item><title>x&mdash;y</title><link>https://www.example.org/a</link></item>"
        b"</channel></rss>"
    )
    result = parse_feed(feed, FEED_URL, max_items=10)
    assert [entry.url for entry in result.entries] == ["https://www.example.org/a"]


def test_feed_bytes_are_never_taken_for_a_file_name(tmp_path: Path) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_bytes(RSS_091)
    with pytest.raises(FeedError):
        parse_feed(str(secret).encode(), FEED_URL, max_items=10)


def test_feed_external_entity_is_not_loaded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    feed = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        "<rss version='2.0'><channel><title>&xxe;</title>"
        "<item><title>&xxe;</title><link>https://www.example.org/a</link></item>"
        "</channel></rss>"
    ).encode()
    result = parse_feed(feed, FEED_URL, max_items=10)
    assert [entry.url for entry in result.entries] == ["https://www.example.org/a"]
    assert "TOP-SECRET" not in repr(result)


# Sitemaps

SITEMAP_INDEX = b"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>https://www.example.org/sitemap-2024-05.xml</loc>
    <lastmod>2024-05-31</lastmod></sitemap>
  <sitemap><loc>/sitemap-2024-04.xml.gz</loc></sitemap>
  <sitemap><loc>ftp://www.example.org/old.xml</loc></sitemap>
</sitemapindex>
"""

URLSET = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>https://www.example.org/news/a</loc><lastmod>2024-05-14T09:30:00+03:00</lastmod></url>
  <url><loc>https://www.example.org/news/b</loc></url>
  <url><loc>https://www.example.org/news/a</loc></url>
  <url><lastmod>2024-05-14</lastmod></url>
</urlset>
"""

NEWS_SITEMAP = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url>
    <loc>https://www.example.org/news/c</loc>
    <news:news>
      <news:publication><news:name>The Example Times</news:name>
        <news:language>en</news:language></news:publication>
      <news:publication_date>2024-05-16T07:00:00Z</news:publication_date>
      <news:title>Bridge to close for repairs</news:title>
    </news:news>
  </url>
</urlset>
"""


def test_sitemap_index() -> None:
    result = parse_sitemap(SITEMAP_INDEX, "https://www.example.org/sitemap.xml", max_urls=100)
    assert result.sitemaps == (
        "https://www.example.org/sitemap-2024-05.xml",
        "https://www.example.org/sitemap-2024-04.xml.gz",
    )
    assert result.pages == ()
    assert result.skipped == ("<sitemap> 3 has no http(s) <loc>",)


def test_urlset() -> None:
    result = parse_sitemap(URLSET, "https://www.example.org/sitemap.xml", max_urls=100)
    assert result.sitemaps == ()
    assert result.pages == (
        SitemapEntry("https://www.example.org/news/a", datetime(2024, 5, 14, 6, 30, tzinfo=UTC)),
        SitemapEntry("https://www.example.org/news/b", None),
    )


def test_news_sitemap_takes_the_publication_date() -> None:
    result = parse_sitemap(NEWS_SITEMAP, "https://www.example.org/news.xml", max_urls=100)
    assert result.pages == (
        SitemapEntry("https://www.example.org/news/c", datetime(2024, 5, 16, 7, 0, tzinfo=UTC)),
    )


def test_gzipped_sitemap() -> None:
    result = parse_sitemap(gzip.compress(URLSET), "https://www.example.org/s.xml.gz", max_urls=9)
    assert len(result.pages) == 2


def test_sitemap_max_urls() -> None:
    urls = b"".join(b"<url><loc>https://www.example.org/p/%d</loc></url>" % n for n in range(300))
    data = b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">' + urls + b"</urlset>"
    result = parse_sitemap(data, "https://www.example.org/sitemap.xml", max_urls=100)
    assert len(result.pages) == 100
    assert result.skipped == ("200 URLs past max_urls=100",)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not xml",
        b"<urlset><url><loc>https://www.example.org/a</loc>",  # truncated
        b"<!DOCTYPE html><html><body>Sitemap</body></html>",
        b"<rss version='2.0'><channel></channel></rss>",
        b"\x1f\x8b\x08\x00garbage",
    ],
)
def test_not_a_sitemap(data: bytes) -> None:
    with pytest.raises(FeedError):
        parse_sitemap(data, "https://www.example.org/sitemap.xml", max_urls=10)


def test_sitemap_xxe_reads_no_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("https://attacker.example/TOP-SECRET")
    data = (
        '<?xml version="1.0"?>'
        f'<!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<url><loc>&xxe;</loc></url>"
        "<url><loc>https://www.example.org/ok</loc></url></urlset>"
    ).encode()
    result = parse_sitemap(data, "https://www.example.org/sitemap.xml", max_urls=10)
    assert "TOP-SECRET" not in repr(result)
    assert [page.url for page in result.pages] == ["https://www.example.org/ok"]


def test_sitemap_external_dtd_and_parameter_entities_are_not_loaded(tmp_path: Path) -> None:
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY leak "https://attacker.example/FROM-DTD">')
    data = (
        '<?xml version="1.0"?>'
        f'<!DOCTYPE urlset [<!ENTITY % ext SYSTEM "file://{dtd}"> %ext;]>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<url><loc>&leak;</loc></url></urlset>"
    ).encode()
    try:
        result = parse_sitemap(data, "https://www.example.org/sitemap.xml", max_urls=10)
    except FeedError:
        return
    assert "FROM-DTD" not in repr(result)


def test_sitemap_billion_laughs_is_not_expanded() -> None:
    entities = '<!ENTITY lol0 "https://www.example.org/lol">' + "".join(
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    )
    data = (
        f'<?xml version="1.0"?><!DOCTYPE urlset [{entities}]>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<url><loc>&lol9;</loc></url></urlset>"
    ).encode()
    try:
        result = parse_sitemap(data, "https://www.example.org/sitemap.xml", max_urls=10)
    except FeedError:
        result = None
    assert result is None or result.pages == ()  # not one of the 10**9 expanded URLs


# The sample newsroom's feeds and sitemaps

NEWSROOM_BASE = "http://127.0.0.1:8080/"
NEWSROOM = build_articles(12, 7, datetime(2026, 11, 24, tzinfo=UTC))


@pytest.mark.parametrize("render", [render_rss1, render_rss2, render_atom])
def test_newsroom_feeds(render: Callable[[Sequence[Article], str], bytes]) -> None:
    result = parse_feed(render(NEWSROOM, NEWSROOM_BASE), f"{NEWSROOM_BASE}feed", max_items=100)
    assert result.skipped == ()
    assert [entry.url for entry in result.entries] == [
        NEWSROOM_BASE.rstrip("/") + article.path for article in NEWSROOM
    ]
    for entry, article in zip(result.entries, NEWSROOM, strict=True):
        assert entry.title == article.title
        assert entry.authors == article.authors
        assert entry.published == article.published


def test_newsroom_sitemaps() -> None:
    months = [("2026-10", datetime(2026, 10, 31, tzinfo=UTC))]
    index = parse_sitemap(render_sitemap_index(months, NEWSROOM_BASE), NEWSROOM_BASE, max_urls=100)
    assert index.sitemaps == (f"{NEWSROOM_BASE}sitemaps/2026-10.xml",)
    month = parse_sitemap(
        render_sitemap_month(NEWSROOM, NEWSROOM_BASE), NEWSROOM_BASE, max_urls=100
    )
    assert [page.lastmod for page in month.pages] == [article.modified for article in NEWSROOM]
    news = parse_sitemap(render_news_sitemap(NEWSROOM, NEWSROOM_BASE), NEWSROOM_BASE, max_urls=5)
    assert [page.lastmod for page in news.pages] == [a.published for a in NEWSROOM[:5]]
