"""Feeds and sitemaps: which article URLs the origin has published.

`parse_feed` reads RSS 0.9x/1.0/2.0 or Atom (through feedparser) and
`parse_sitemap` reads a sitemap index, a urlset or a Google News sitemap (through
lxml with a parser that loads nothing and expands no entity). Both take the bytes
the fetcher got and return frozen records; anything that is not a feed or
sitemap is a `FeedError` with the reason.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
from lxml import etree

from mirror.errors import FeedError
from mirror.fetch.records import FeedEntry, FeedResult, SitemapEntry, SitemapResult

MAX_SITEMAP_BYTES = 50_000_000  # uncompressed, as the sitemap protocol allows
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.I | re.S)
_ITEM_END = re.compile(rb"</(?:[\w.-]+:)?(?:item|entry)\s*>", re.I)
_AUTHOR_SEPARATOR = re.compile(r"[,;]")
# feedparser's complaints that leave the document whole: no Content-Type given, or a
# declared encoding it had to override.
_BENIGN_BOZO = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)


def parse_feed(data: bytes, feed_url: str, *, max_items: int) -> FeedResult:
    """Parse an RSS or Atom document fetched from `feed_url`; at most `max_items` entries."""
    _refuse_non_feed(data)
    parsed = feedparser.parse(
        io.BytesIO(data),  # a bare bytes argument could be taken for a file name
        response_headers={"content-location": feed_url},
        resolve_relative_uris=False,
        sanitize_html=False,
    )
    if not parsed.get("version"):
        problem = "" if _is_benign(parsed) else f" ({_bozo_reason(parsed)})"
        raise FeedError(f"not a feed: no RSS or Atom root element{problem}")
    raw_entries, skipped = _complete_entries(data, parsed)
    entries, more_skipped = _usable_entries(raw_entries, feed_url, max_items)
    skipped += more_skipped
    if not entries and parsed.get("bozo") and not _is_benign(parsed):
        raise FeedError(f"feed is malformed or truncated: {_bozo_reason(parsed)}")
    feed_title = _text(parsed.get("feed", {}).get("title"))
    return FeedResult(title=feed_title, entries=tuple(entries), skipped=tuple(skipped))


def _refuse_non_feed(data: bytes) -> None:
    """Raise `FeedError` for empty data and HTML pages, which are never feeds."""
    if not data.strip():
        raise FeedError("empty document")
    head = data[:4096].lstrip(b"\xef\xbb\xbf")
    if _HTML_START.match(head):
        raise FeedError("an HTML page, not a feed")


def _complete_entries(data: bytes, parsed: Any) -> tuple[list[Any], list[str]]:
    """The entries, less those a malformed (truncated) document may have cut off."""
    entries = list(parsed.get("entries", []))
    if not parsed.get("bozo") or _is_benign(parsed):
        return entries, []
    closed = len(_ITEM_END.findall(data))
    if closed >= len(entries):
        return entries, []
    cut = [f"item {number} cut off: {_bozo_reason(parsed)}" for number in
           range(closed + 1, len(entries) + 1)]  # fmt: skip
    return entries[:closed], cut


def _usable_entries(
    raw_entries: list[Any], feed_url: str, max_items: int
) -> tuple[list[FeedEntry], list[str]]:
    """Entries with an http(s) link, first `max_items` of them, duplicates dropped."""
    entries: list[FeedEntry] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for number, raw in enumerate(raw_entries, start=1):
        if len(entries) >= max_items:
            skipped.append(f"{len(raw_entries) - number + 1} items past max_items={max_items}")
            break
        url = _entry_url(raw, feed_url)
        if not url:
            skipped.append(f"item {number} has no http(s) link")
        elif url in seen:
            skipped.append(f"item {number} repeats {url}")
        else:
            seen.add(url)
            entries.append(_entry(raw, url))
    return entries, skipped


def _entry(raw: Any, url: str) -> FeedEntry:
    updated = _struct_time(dict.get(raw, "updated_parsed"))  # no fallback to published
    return FeedEntry(
        url=url,
        guid=_text(raw.get("id")) or url,
        title=_text(raw.get("title")),
        published=_struct_time(raw.get("published_parsed")) or updated,  # dc:date, Atom
        updated=updated,
        authors=_entry_authors(raw),
    )


def _entry_url(raw: Any, feed_url: str) -> str:
    """The item's article link, absolute, or "" if it has no http(s) link."""
    candidates = [raw.get("link")]
    candidates += [link.get("href") for link in raw.get("links", []) if
                   link.get("rel", "alternate") == "alternate"]  # fmt: skip
    if raw.get("guidislink"):
        candidates.append(raw.get("id"))
    for candidate in candidates:
        url = _absolute_http(_text(candidate), feed_url)
        if url:
            return url
    return ""


def _entry_authors(raw: Any) -> tuple[str, ...]:
    """The item's author names; "A, B" in one element names two people."""
    names = [_text(author.get("name")) for author in raw.get("authors", []) or []]
    if not any(names):
        names = [_text(raw.get("author"))]
    split = (part.strip() for name in names for part in _AUTHOR_SEPARATOR.split(name))
    return _unique(name for name in split if name)


def _struct_time(value: Any) -> datetime | None:
    """feedparser's UTC struct_time as an aware datetime."""
    if not value:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in value[:6])
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _is_benign(parsed: Any) -> bool:
    return isinstance(parsed.get("bozo_exception"), _BENIGN_BOZO)


def _bozo_reason(parsed: Any) -> str:
    exc = parsed.get("bozo_exception")
    return str(exc) if exc is not None else ""


# Sitemaps


def parse_sitemap(data: bytes, sitemap_url: str, *, max_urls: int) -> SitemapResult:
    """Parse a sitemap index, urlset or news sitemap; at most `max_urls` URLs."""
    root = _sitemap_root(_maybe_gunzip(data))
    kind = etree.QName(root).localname
    if kind == "sitemapindex":
        urls, skipped = _locations(root, "sitemap", sitemap_url, max_urls)
        return SitemapResult(sitemaps=tuple(url for url, _ in urls), pages=(),
                             skipped=tuple(skipped))  # fmt: skip
    if kind == "urlset":
        urls, skipped = _locations(root, "url", sitemap_url, max_urls)
        pages = tuple(SitemapEntry(url=url, lastmod=lastmod) for url, lastmod in urls)
        return SitemapResult(sitemaps=(), pages=pages, skipped=tuple(skipped))
    raise FeedError(f"not a sitemap: root element is <{kind}>")


def _maybe_gunzip(data: bytes) -> bytes:
    """`data`, gunzipped if it is gzip, never past `MAX_SITEMAP_BYTES`."""
    if not data.startswith(b"\x1f\x8b"):
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            unpacked = stream.read(MAX_SITEMAP_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise FeedError(f"sitemap is not valid gzip: {exc}") from exc
    if len(unpacked) > MAX_SITEMAP_BYTES:
        raise FeedError(f"sitemap is over {MAX_SITEMAP_BYTES} bytes uncompressed")
    return unpacked


def _sitemap_root(data: bytes) -> etree._Element:
    """The document element, parsed with no network, no DTD and no entity expansion."""
    if not data.strip():
        raise FeedError("empty document")
    if _HTML_START.match(data[:4096].lstrip(b"\xef\xbb\xbf")):
        raise FeedError("an HTML page, not a sitemap")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"sitemap is not well-formed XML: {exc}") from exc
    if root is None:
        raise FeedError("sitemap has no root element")
    return root


def _locations(
    root: etree._Element, item_tag: str, sitemap_url: str, max_urls: int
) -> tuple[list[tuple[str, datetime | None]], list[str]]:
    """(url, lastmod) of each <sitemap> or <url> child, first `max_urls` of them."""
    found: list[tuple[str, datetime | None]] = []
    skipped: list[str] = []
    seen: set[str] = set()
    items = [child for child in root if _localname(child) == item_tag]
    for number, item in enumerate(items, start=1):
        if len(found) >= max_urls:
            skipped.append(f"{len(items) - number + 1} URLs past max_urls={max_urls}")
            break
        url = _absolute_http(_child_text(item, "loc"), sitemap_url)
        if not url:
            skipped.append(f"<{item_tag}> {number} has no http(s) <loc>")
        elif url not in seen:
            seen.add(url)
            found.append((url, _item_date(item)))
    return found, skipped


def _item_date(item: etree._Element) -> datetime | None:
    lastmod = parse_w3c_datetime(_child_text(item, "lastmod"))
    if lastmod is not None:
        return lastmod
    for news in _children(item, "news"):
        published = parse_w3c_datetime(_child_text(news, "publication_date"))
        if published is not None:
            return published
    return None


def parse_w3c_datetime(text: str) -> datetime | None:
    """A W3C/ISO 8601 date or date-time as an aware UTC datetime (naive taken as UTC)."""
    text = text.strip()
    if not text or len(text) > 64:
        return None
    try:
        value = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _children(element: etree._Element, name: str) -> Iterator[etree._Element]:
    return (child for child in element if _localname(child) == name)


def _child_text(element: etree._Element, name: str) -> str:
    for child in _children(element, name):
        return (child.text or "").strip()
    return ""


def _localname(element: etree._Element) -> str:
    tag = element.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


# Shared


def _absolute_http(url: str, base_url: str) -> str:
    """`url` resolved against `base_url` if it is http(s), else ""."""
    if not url:
        return ""
    try:
        resolved = urljoin(base_url, url.strip())
        parts = urlsplit(resolved)
    except ValueError:
        return ""
    return resolved if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


def _text(value: Any) -> str:
    return " ".join(str(value).split()) if value else ""


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
