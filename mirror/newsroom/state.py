"""The sample newsroom's state: its articles, the mutations tests need, the request
log, and the rendered (cached) `Resource` behind every path. No sockets here."""

from __future__ import annotations

import gzip
import hashlib
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import NamedTuple

from mirror.newsroom import feeds, images, pages
from mirror.newsroom.articles import Article, build_articles, make_article, revised, slugify

DEFAULT_REFERENCE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
_SITEMAP_PATH = re.compile(r"^/sitemaps/(\d{4}-\d{2})\.xml$")
MEDIA_PATH = re.compile(r"^/media/([a-z0-9-]+)\.(jpg|webp|png)$")
_NEWS_SITEMAP_MAX = 1000  # URLs


@dataclass(frozen=True)
class NewsroomOptions:
    """The knobs of a sample newsroom."""

    articles: int = 24  # count at start
    feed_items: int = 20  # newest N in feeds, home and news sitemap; 0 = all
    latency_s: float = 0.0  # added before every response
    error_rate: float = 0.0  # share of requests answered 500
    slow_rate: float = 0.0  # share of responses dripped slowly
    slow_s: float = 1.0  # how long a slow response takes to drip
    validators: bool = True  # ETag + Last-Modified, 304 to conditional GETs
    images: bool = True  # one image per article
    image_size: tuple[int, int] = (1200, 800)  # pixels, width × height
    gzip: bool = True  # compress HTML/XML when the client accepts it
    seed: int = 1
    reference: datetime = DEFAULT_REFERENCE  # the newest article's publication time


@dataclass(frozen=True)
class Resource:
    """One answer, rendered once: body, type, validators, optional gzip form."""

    body: bytes
    content_type: str
    last_modified: datetime | None = None
    status: int = 200
    location: str = ""  # for redirects
    gzipped: bytes | None = None
    etag: str = field(init=False)
    last_modified_header: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.blake2b(self.body, digest_size=10).hexdigest()
        object.__setattr__(self, "etag", f'"{digest}"')
        stamp = format_datetime(self.last_modified, usegmt=True) if self.last_modified else ""
        object.__setattr__(self, "last_modified_header", stamp)


class RequestRecord(NamedTuple):
    """One request as the newsroom saw it."""

    method: str
    path: str
    conditional: bool  # an If-None-Match header was sent


@dataclass
class RequestLog:
    """Every request: a count per path and the ordered list."""

    counts: Counter[str] = field(default_factory=Counter)
    entries: list[RequestRecord] = field(default_factory=list)

    def record(self, method: str, path: str, conditional: bool) -> None:
        """Count one request."""
        self.counts[path] += 1
        self.entries.append(RequestRecord(method, path, conditional))

    def clear(self) -> None:
        """Forget every request so far."""
        self.counts.clear()
        self.entries.clear()


class Newsroom:
    """The articles of one sample newsroom and the pages rendered from them."""

    def __init__(self, options: NewsroomOptions | None = None) -> None:
        self.options = options or NewsroomOptions()
        self.base_url = ""  # set once a server listens
        self.requests = RequestLog()
        self.chrome_version = 0
        self.rng = random.Random(self.options.seed)  # error and slow draws
        built = build_articles(self.options.articles, self.options.seed, self.options.reference)
        self._articles: dict[int, Article] = {a.id: self._with_image(a) for a in built}
        self._gone: dict[int, int] = {}  # article id -> 404 | 410
        self._moved: dict[int, str] = {}  # article id -> where its page redirects
        self._cache: dict[tuple[str, str], Resource] = {}
        self._reindex()

    # ---- reading --------------------------------------------------------------

    @property
    def articles(self) -> tuple[Article, ...]:
        """The live articles, oldest first."""
        return self._live

    def article(self, article_id: int) -> Article:
        """One article by id, live or removed."""
        return self._articles[article_id]

    def newest(self, count: int = 0) -> tuple[Article, ...]:
        """The newest `count` live articles (0: all), newest first."""
        ordered = self._live[::-1]
        return ordered[:count] if count else ordered

    def feed_articles(self) -> tuple[Article, ...]:
        """The articles the feeds list: the newest `feed_items`."""
        return self.newest(self.options.feed_items)

    def url_of(self, article: Article | int) -> str:
        """The absolute URL of an article on the running server."""
        found = article if isinstance(article, Article) else self._articles[article]
        return self.base_url.rstrip("/") + found.path

    def article_requests(self) -> list[RequestRecord]:
        """The logged requests for article pages (live or removed)."""
        return [r for r in self.requests.entries if r.path in self._all_paths]

    # ---- mutations ------------------------------------------------------------

    def add_article(
        self,
        *,
        title: str | None = None,
        paragraphs: tuple[str, ...] | None = None,
        lead: str | None = None,
        lang: str | None = None,
    ) -> Article:
        """Publish a new article, newer than all others (it tops the feeds)."""
        article_id = max(self._articles, default=-1) + 1
        published = self._next_moment()
        article = make_article(article_id, self.options.seed, published, published, lang)
        if title is not None:
            article = replace(article, title=title, slug=f"{slugify(title)}-{article_id}")
        article = replace(
            article,
            paragraphs=paragraphs if paragraphs is not None else article.paragraphs,
            lead=lead if lead is not None else article.lead,
        )
        self._articles[article_id] = self._with_image(article)
        self._changed()
        return self._articles[article_id]

    def revise_article(self, article_id: int) -> Article:
        """Revise an article: a paragraph is added, `modified` moves forward."""
        self._articles[article_id] = revised(self._articles[article_id], self._next_moment())
        self._changed()
        return self._articles[article_id]

    def change_chrome(self) -> None:
        """Change only the page chrome (related links, script nonce) of every page."""
        self.chrome_version += 1
        self._changed()

    def remove_article(self, article_id: int, status: int = 404) -> None:
        """Take an article down: its page answers `status` (404 or 410) from now on."""
        if status not in (404, 410):
            raise ValueError(f"status must be 404 or 410, not {status}")
        self._gone[article_id] = status
        self._changed()

    def move_article(self, article_id: int, location: str) -> None:
        """Move an article: its page answers 301 to `location` (any URL) from now on."""
        self._moved[article_id] = location
        self._changed()

    # ---- rendering ------------------------------------------------------------

    def resource(self, path: str, base_url: str) -> Resource | None:
        """The answer for `path` (media excepted), rendered once and cached."""
        key = (base_url, path)
        found = self._cache.get(key)
        if found is None:
            found = self._render(path, base_url)
            if found is not None:
                self._cache[key] = found
        return found

    def image_article(self, name: str) -> Article | None:
        """The article whose image is called `name`, if images are on."""
        article_id = self._images.get(name)
        return self._articles[article_id] if article_id is not None else None

    def _render(self, path: str, base_url: str) -> Resource | None:
        static = self._static_routes().get(path)
        if static is not None:
            return static(base_url)
        if path in self._by_path:
            return self._article_resource(self._by_path[path], base_url)
        if path + "/" in self._by_path:
            return Resource(b"", "text/html", status=301, location=path + "/")
        month = _SITEMAP_PATH.match(path)
        if month and month.group(1) in self._months:
            chosen = tuple(a for a in self._live if f"{a.published:%Y-%m}" == month.group(1))
            return self._xml(feeds.render_sitemap_month(chosen, base_url), chosen)
        if path == "/static/placeholder.gif":
            return Resource(images.PLACEHOLDER_GIF, "image/gif", self.options.reference)
        return None

    def _static_routes(self) -> dict[str, Callable[[str], Resource]]:
        items = self.feed_articles()
        news = self.newest(min(self.options.feed_items or _NEWS_SITEMAP_MAX, _NEWS_SITEMAP_MAX))
        return {
            "/": lambda base: self._html(pages.render_home_page(items, self._context(base)), items),
            "/rss.xml": lambda base: self._xml(feeds.render_rss2(items, base), items, "rss+xml"),
            "/atom.xml": lambda base: self._xml(feeds.render_atom(items, base), items, "atom+xml"),
            "/rss1.xml": lambda base: self._xml(feeds.render_rss1(items, base), items, "rdf+xml"),
            "/sitemap.xml": lambda base: self._xml(
                feeds.render_sitemap_index(tuple(self._months.items()), base), self._live
            ),
            "/news-sitemap.xml": lambda base: self._xml(
                feeds.render_news_sitemap(news, base), news
            ),
        }

    def _article_resource(self, article_id: int, base_url: str) -> Resource:
        if article_id in self._moved:
            return Resource(b"", "text/html", status=301, location=self._moved[article_id])
        if article_id in self._gone:
            status = self._gone[article_id]
            return Resource(f"<h1>{status}</h1>".encode(), "text/html", status=status)
        article = self._articles[article_id]
        body = pages.render_article_page(article, article.style, self._context(base_url, article))
        return self._compressed(
            Resource(body, pages.content_type_for(article.style), article.modified)
        )

    def _context(self, base_url: str, article: Article | None = None) -> pages.PageContext:
        inline: tuple[Article, ...] = ()
        related: tuple[Article, ...] = ()
        if article is not None:
            near = (article.id - 2, article.id - 4, article.id + 2, article.id + 4)
            inline = tuple(self._articles[i] for i in near if i in self._articles)[:2]
            related = self._related(article)
        return pages.PageContext(
            base_url, inline, related, self.chrome_version, self.options.image_size
        )

    def _related(self, article: Article) -> tuple[Article, ...]:
        """Four other live articles of the same language; they rotate with the chrome."""
        same = [a for a in self._live_by_lang.get(article.lang, ()) if a.id != article.id]
        if not same:
            return ()
        start = (article.id * 7 + self.chrome_version * 3) % len(same)
        return tuple((same * 2)[start : start + min(4, len(same))])

    def _html(self, body: bytes, articles: tuple[Article, ...]) -> Resource:
        modified = feeds.last_modified(articles)
        return self._compressed(Resource(body, "text/html; charset=utf-8", modified))

    def _xml(self, body: bytes, articles: tuple[Article, ...], kind: str = "xml") -> Resource:
        modified = feeds.last_modified(articles)
        return self._compressed(Resource(body, f"application/{kind}; charset=utf-8", modified))

    def _compressed(self, resource: Resource) -> Resource:
        if not self.options.gzip:
            return resource
        packed = gzip.compress(resource.body, compresslevel=6, mtime=0)
        return replace(resource, gzipped=packed)

    # ---- bookkeeping ----------------------------------------------------------

    def _with_image(self, article: Article) -> Article:
        return article if self.options.images else replace(article, image="")

    def _next_moment(self) -> datetime:
        """A time after every publication and modification so far (no clock read)."""
        latest = max(
            (max(a.published, a.modified) for a in self._articles.values()),
            default=self.options.reference,
        )
        return latest + timedelta(hours=1)

    def _changed(self) -> None:
        self._cache.clear()
        self._reindex()

    def _reindex(self) -> None:
        every = sorted(self._articles.values(), key=lambda a: (a.published, a.id))
        self._live = tuple(a for a in every if a.id not in self._gone)
        self._live_by_lang: dict[str, tuple[Article, ...]] = {
            lang: tuple(a for a in self._live if a.lang == lang) for lang in ("en", "ru")
        }
        self._by_path = {a.path: a.id for a in every}
        self._all_paths = frozenset(self._by_path)
        self._images = {a.image: a.id for a in every if a.image}
        months: dict[str, datetime] = {}
        for a in self._live:
            key = f"{a.published:%Y-%m}"
            months[key] = max(months.get(key, a.modified), a.modified)
        self._months = months
