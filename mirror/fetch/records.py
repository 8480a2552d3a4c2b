"""What the fetch's parsers give back: plain frozen records, with no parser imported.

The parsers run in worker processes (`mirror.workers`) and their results come back
pickled; a record's class is imported where it is unpickled. Defined here rather than
beside its parser, a record brings nothing but this module into the main process, which
so never loads feedparser, lxml, trafilatura, readability or Pillow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# feeds and sitemaps (`mirror.fetch.feeds`)


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed that links to an article."""

    url: str  # absolute http(s)
    guid: str  # the item's id, else its link
    title: str
    published: datetime | None  # UTC; the updated date when the item gives no other
    updated: datetime | None  # UTC
    authors: tuple[str, ...]


@dataclass(frozen=True)
class FeedResult:
    """What one feed lists, in feed order, and why items were left out."""

    title: str
    entries: tuple[FeedEntry, ...]
    skipped: tuple[str, ...]  # one reason per left-out item (or group of items)


@dataclass(frozen=True)
class SitemapEntry:
    """One page a sitemap lists."""

    url: str  # absolute http(s)
    lastmod: datetime | None  # UTC; <lastmod>, else <news:publication_date>


@dataclass(frozen=True)
class SitemapResult:
    """Child sitemaps of an index, or the pages of a urlset."""

    sitemaps: tuple[str, ...]
    pages: tuple[SitemapEntry, ...]
    skipped: tuple[str, ...] = ()


# articles (`mirror.fetch.extract`)


@dataclass(frozen=True)
class ImageRef:
    """An image the body shows."""

    url: str  # absolute http(s)
    alt: str


@dataclass(frozen=True)
class ExtractedArticle:
    """An article as the edition will show it."""

    url: str  # the page it was read from
    canonical_url: str
    title: str
    authors: tuple[str, ...]
    published: datetime | None  # UTC
    updated: datetime | None  # UTC
    lead: str  # plain text
    language: str  # BCP 47 tag, e.g. "en", "ru-RU"
    body_html: str  # sanitised fragment, absolute URLs
    images: tuple[ImageRef, ...]  # every <img> of body_html, in order, once each
    content_hash: str  # sha256 hex of the reader-visible fields
    extractor: str = "selector"  # "selector" or "automatic": which one found the body


# images (`mirror.fetch.images`)


@dataclass(frozen=True)
class ImageInfo:
    """What an image is, from its own bytes."""

    format: str  # "jpeg", "png", "gif" or "webp"
    mime: str
    width: int  # pixels
    height: int  # pixels
