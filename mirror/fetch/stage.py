"""The fetch stage: feeds and sitemaps in, new and changed articles and their images
into the store.

Feeds are always read with conditional GET; a feed that answers 304 leads to no article
request. A feed's validators are saved only after its articles are stored, so a run
killed half-way reads the feed again next time. Articles discovered but never fetched
(pending) and those that failed are tried again on every run.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mirror.config import Config
from mirror.errors import ContentError, FetchError, HTTPStatusError
from mirror.fetch.origin import OriginClient, Response, decode_html
from mirror.fetch.records import (
    ExtractedArticle,
    FeedEntry,
    FeedResult,
    ImageInfo,
    SitemapResult,
)
from mirror.fetch.urls import normalise_url
from mirror.progress import NoProgress, Progress
from mirror.store import ArticleRow, Revision, Store, StoredImage
from mirror.workers import ParserPool

log = logging.getLogger("mirror.fetch")
FAILURES_LISTED = 20  # fetch failures listed on stderr, each with its URL and reason
detail = logging.getLogger("mirror.detail.fetch")  # -v: each feed; -vv: each article, image
GONE_STATUSES = (404, 410)


@dataclass(frozen=True)
class Failure:
    url: str
    reason: str


@dataclass
class FetchReport:
    """What one fetch did; `failed` names every URL that failed and why."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    not_modified: int = 0
    gone: int = 0
    images: int = 0
    feeds_not_modified: int = 0
    failed: list[Failure] = field(default_factory=list)

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def fail(self, url: str, reason: str) -> None:
        self.failed.append(Failure(url, reason))

    def to_json(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "not_modified": self.not_modified,
            "gone": self.gone,
            "images": self.images,
            "feeds_not_modified": self.feeds_not_modified,
            "failed": [{"url": f.url, "reason": f.reason} for f in self.failed],
        }

    def summary(self) -> str:
        return (
            f"fetch: {self.new} new, {self.changed} changed, {self.unchanged} unchanged, "
            f"{self.not_modified} not modified, {self.gone} gone, {self.images} new images, "
            f"{len(self.failed)} failed"
        )

    def failure_lines(self, limit: int = FAILURES_LISTED) -> list[str]:
        """The first `limit` failures, a line each with its URL and reason, then how many
        more (all are in --json): what `fetch` and `sync` print after the fetch line."""
        lines = [f"fetch failed: {f.url}: {f.reason}" for f in self.failed[:limit]]
        if len(self.failed) > limit:
            lines.append(f"... and {len(self.failed) - limit} more failed (all in --json)")
        return lines


@dataclass(frozen=True)
class ArticleJob:
    row: ArticleRow
    conditional: bool  # revalidate with the stored ETag/Last-Modified


@dataclass(frozen=True)
class Listing:
    """A feed or sitemap that answered 200 and must have its validators saved at the end
    (only those: its body, up to `max_feed_bytes`, is not kept for the rest of the run)."""

    url: str
    etag: str | None
    last_modified: str | None

    @classmethod
    def of(cls, url: str, response: Response) -> Listing:
        return cls(url, response.etag, response.last_modified)


# What runs in the secret-free worker processes. Each imports its parser there, so the
# main process never loads trafilatura, readability, lxml, feedparser or Pillow.


def extract_in_worker(
    body: bytes, charset: str | None, url: str, selector: str, drop: tuple[str, ...], lang: str
) -> ExtractedArticle:
    """Decode and extract one page."""
    from mirror.fetch.extract import extract_article

    html = decode_html(body, charset)
    return extract_article(html, url, selector=selector, drop_selectors=drop, default_language=lang)


def parse_feed_in_worker(body: bytes, url: str, max_items: int) -> FeedResult:
    from mirror.fetch.feeds import parse_feed

    return parse_feed(body, url, max_items=max_items)


def parse_sitemap_in_worker(body: bytes, url: str, max_urls: int) -> SitemapResult:
    from mirror.fetch.feeds import parse_sitemap

    return parse_sitemap(body, url, max_urls=max_urls)


def probe_in_worker(data: bytes, max_pixels: int) -> ImageInfo:
    from mirror.fetch.images import probe_image

    return probe_image(data, max_pixels=max_pixels)


async def fetch_articles(
    config: Config, store: Store, *, now: datetime, progress: Progress | None = None
) -> FetchReport:
    """Run one fetch: read every feed and sitemap, then fetch what is new or due."""
    report = FetchReport()
    with ParserPool(config.source.workers) as pool:
        async with OriginClient(config.source, home_url=config.publication.home_url) as client:
            fetcher = Fetcher(config, store, client, pool, now, progress or NoProgress(), report)
            await fetcher.run()
    return report


class Fetcher:
    """One fetch run; holds the run's client, pool, clock reading and report."""

    def __init__(
        self,
        config: Config,
        store: Store,
        client: OriginClient,
        pool: ParserPool,
        now: datetime,
        progress: Progress,
        report: FetchReport,
    ) -> None:
        self.config = config
        self.source = config.source
        self.store = store
        self.client = client
        self.pool = pool
        self.now = now
        self.progress = progress
        self.report = report
        self._images: dict[str, asyncio.Future[FetchedImage | None]] = {}

    async def run(self) -> None:
        feeds = await asyncio.gather(*(self.read_feed(url) for url in self.source.feeds))
        sitemap_pages, sitemap_listings = await self.read_sitemaps()
        jobs = self.plan(feeds, sitemap_pages)
        self.progress.add_total(len(jobs))
        await self.run_jobs(jobs)
        changed_listings = [listing for _, listing in feeds if listing] + sitemap_listings
        for listing in changed_listings:
            self.save_listing(listing)

    # feeds and sitemaps

    async def read_feed(self, url: str) -> tuple[list[FeedEntry], Listing | None]:
        """A feed's entries (none when it answered 304 or failed)."""
        response = await self.get_listing(url, self.source.max_feed_bytes)
        if response is None:
            return [], None
        try:
            result = await self.pool.run(
                parse_feed_in_worker, response.body, response.url, self.source.max_feed_items
            )
        except ContentError as exc:
            self.listing_failed(url, str(exc))
            return [], None
        for reason in result.skipped:
            self.report.fail(url, reason)
        return list(result.entries), Listing.of(url, response)

    async def get_listing(self, url: str, max_bytes: int) -> Response | None:
        """Conditional GET of a feed or sitemap; None when it is unchanged or failed."""
        etag, last_modified = self.store.feed_validators(url)
        try:
            response = await self.client.get(
                url, max_bytes=max_bytes, etag=etag, last_modified=last_modified
            )
        except FetchError as exc:
            self.listing_failed(url, exc.reason)
            return None
        if response.status == 304:
            detail.info("read %s: not modified (304)", url)
            self.report.feeds_not_modified += 1
            self.store.save_feed(
                url, etag=etag, last_modified=last_modified, at=self.now, changed=False
            )
            return None
        detail.info("read %s: HTTP %d, %d bytes", url, response.status, len(response.body))
        return response

    def listing_failed(self, url: str, reason: str) -> None:
        detail.info("read %s: failed: %s", url, reason)
        self.report.fail(url, reason)
        self.store.save_feed_error(url, reason, self.now)

    def save_listing(self, listing: Listing) -> None:
        self.store.save_feed(
            listing.url,
            etag=listing.etag,
            last_modified=listing.last_modified,
            at=self.now,
            changed=True,
        )

    async def read_sitemaps(self) -> tuple[list[str], list[Listing]]:
        """Article URLs from the configured sitemaps and the sitemaps they index."""
        pages: list[str] = []
        listings: list[Listing] = []
        queue = list(self.source.sitemaps)
        followed = 0
        while queue and len(pages) < self.source.max_sitemap_urls:
            url = queue.pop(0)
            read = await self.read_sitemap(url, self.source.max_sitemap_urls - len(pages))
            if read is None:
                continue
            result, listing = read
            listings.append(listing)
            room = max(0, self.source.max_sitemaps - followed)
            queue.extend(result.sitemaps[:room])
            followed += min(room, len(result.sitemaps))
            pages.extend(entry.url for entry in result.pages)
        return pages, listings

    async def read_sitemap(self, url: str, max_urls: int) -> tuple[SitemapResult, Listing] | None:
        """A sitemap's contents (None when it answered 304 or failed)."""
        response = await self.get_listing(url, self.source.max_feed_bytes)
        if response is None:
            return None
        try:
            result = await self.pool.run(
                parse_sitemap_in_worker, response.body, response.url, max_urls
            )
        except ContentError as exc:
            self.listing_failed(url, str(exc))
            return None
        return result, Listing.of(url, response)

    # planning

    def plan(
        self, feeds: list[tuple[list[FeedEntry], Listing | None]], sitemap_pages: list[str]
    ) -> list[ArticleJob]:
        """Which articles to request, and which of those conditionally."""
        jobs: dict[int, ArticleJob] = {}
        with self.store.transaction():  # one commit for every article discovered
            for entries, listing in feeds:
                for entry in entries:
                    self.plan_entry(jobs, entry.url, entry.guid, listing, entry.published)
            for url in sitemap_pages:
                self.plan_entry(jobs, url, None, None, None, new_only=True)
        if any(listing for _, listing in feeds):
            since = self.now - timedelta(days=self.source.revalidate_days)
            for row in self.store.articles_to_revalidate(since):
                jobs.setdefault(row.id, ArticleJob(row, conditional=row.state == "ok"))
        for row in self.store.articles_in_state(("pending", "failed")):
            jobs.setdefault(row.id, ArticleJob(row, conditional=False))
        return list(jobs.values())

    def plan_entry(
        self,
        jobs: dict[int, ArticleJob],
        raw_url: str,
        guid: str | None,
        listing: Listing | None,
        published: datetime | None,
        *,
        new_only: bool = False,
    ) -> None:
        try:
            url = normalise_url(raw_url, max_length=self.source.max_url_length)
        except FetchError as exc:
            self.report.fail(raw_url[:300], exc.reason)
            return
        row = self.store.find_article(url, guid)
        if row is None:
            feed_url = listing.url if listing else None
            row = self.store.add_article(
                url, guid=guid, feed_url=feed_url, published_at=published, at=self.now
            )
            jobs[row.id] = ArticleJob(row, conditional=False)
        elif not new_only and row.state in ("gone", "pending", "failed"):
            jobs.setdefault(row.id, ArticleJob(row, conditional=False))

    # articles

    async def run_jobs(self, jobs: list[ArticleJob]) -> None:
        """Fetch every planned article, `concurrency` at a time."""
        queue: asyncio.Queue[ArticleJob] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)

        async def worker() -> None:
            while not queue.empty():
                job = queue.get_nowait()
                await self.fetch_article(job)
                self.progress.advance()

        # More tasks than request slots: a task waiting on a parser or the store
        # then leaves its slot to another.
        workers = min(2 * self.source.concurrency, len(jobs))
        await asyncio.gather(*(worker() for _ in range(workers)))
        await asyncio.gather(*self._images.values())

    async def fetch_article(self, job: ArticleJob) -> None:
        row = job.row
        response = await self.get_article(job)
        if response is None:
            return
        if response.status == 304:
            detail.debug("article %s: not modified (304)", row.url)
            self.store.save_not_modified(row.id, self.now)
            self.report.not_modified += 1
            return
        try:
            extracted = await self.pool.run(
                extract_in_worker,
                response.body,
                response.charset,
                response.url,
                self.source.article_selector,
                self.source.drop_selectors,
                self.config.publication.language,
            )
        except ContentError as exc:
            self.article_failed(row, str(exc))
            return
        images = await self.fetch_images(extracted)
        with self.store.transaction():  # the article and its new images, in one commit
            for fetched in images:
                self.store.save_image(fetched.url, fetched.image, fetched.data, self.now)
            outcome = self.store.save_revision(
                row.id,
                revision_of(extracted, self.source.max_images_per_article),
                etag=response.etag,
                last_modified=response.last_modified,
                at=self.now,
            )
        self.forget_stored(images)
        detail.debug("article %s: %s, %d new images", row.url, outcome, len(images))
        self.report.count(outcome)

    async def get_article(self, job: ArticleJob) -> Response | None:
        """The article's page; None (recorded) when it is gone or failed."""
        row = job.row
        etag = row.etag if job.conditional else None
        last_modified = row.last_modified if job.conditional else None
        try:
            return await self.client.get(
                row.url,
                max_bytes=self.source.max_page_bytes,
                etag=etag,
                last_modified=last_modified,
            )
        except HTTPStatusError as exc:
            if exc.status not in GONE_STATUSES or row.state not in ("ok", "gone"):
                self.article_failed(row, exc.reason)  # never fetched: not "gone" but failed
            elif row.state == "ok":
                detail.info("article %s: gone (%d)", row.url, exc.status)
                self.store.save_gone(row.id, exc.status, self.now)
                self.report.gone += 1
        except FetchError as exc:
            self.article_failed(row, exc.reason)
        return None

    def article_failed(self, row: ArticleRow, reason: str) -> None:
        detail.info("article %s: failed: %s", row.url, reason)
        self.report.fail(row.url, reason)
        self.store.save_article_error(row.id, reason, self.now)

    # images

    async def fetch_images(self, article: ExtractedArticle) -> list[FetchedImage]:
        """Every image of an article not yet in the store, each URL requested once per run."""
        tasks = []
        for ref in article.images[: self.source.max_images_per_article]:
            if ref.url not in self._images:
                self._images[ref.url] = asyncio.ensure_future(self.fetch_image(ref.url))
            tasks.append(self._images[ref.url])
        return [image for image in await asyncio.gather(*tasks) if image is not None]

    def forget_stored(self, images: list[FetchedImage]) -> None:
        """Drop the bytes of images now in the store; their URLs stay known, so each is
        still requested once per run. Otherwise the run holds every image until it ends."""
        for fetched in images:
            stored: asyncio.Future[FetchedImage | None] = asyncio.get_running_loop().create_future()
            stored.set_result(None)
            self._images[fetched.url] = stored

    async def fetch_image(self, url: str) -> FetchedImage | None:
        if self.store.image_for_url(url) is not None:
            return None
        try:
            response = await self.client.get(url, max_bytes=self.source.max_image_bytes)
            info = await self.pool.run(probe_in_worker, response.body, self.source.max_image_pixels)
        except (FetchError, ContentError) as exc:
            reason = exc.reason if isinstance(exc, FetchError) else str(exc)
            detail.info("image %s: failed: %s", url, reason)
            self.report.fail(url, reason)
            self.store.save_image_error(url, reason, self.now)
            return None
        digest = hashlib.sha256(response.body).hexdigest()
        image = StoredImage(digest, info.mime, info.width, info.height, len(response.body))
        detail.debug("image %s: %s %dx%d, %d bytes", url, info.mime, info.width, info.height,
                     len(response.body))  # fmt: skip
        self.report.images += 1
        return FetchedImage(url, image, response.body)


@dataclass(frozen=True)
class FetchedImage:
    """An image downloaded and checked this run, to be stored with its article."""

    url: str
    image: StoredImage
    data: bytes


def revision_of(article: ExtractedArticle, max_images: int) -> Revision:
    """The stored form of an extracted article."""
    return Revision(
        content_hash=article.content_hash,
        title=article.title,
        authors=tuple(article.authors),
        published_at=article.published,
        updated_at=article.updated,
        lead=article.lead,
        language=article.language,
        canonical_url=article.canonical_url,
        body_html=article.body_html,
        images=tuple(ref.url for ref in article.images[:max_images]),
    )
