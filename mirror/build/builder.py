"""The build stage: the store in, the edition out — the exact bytes every mirror will
serve, signed, and nothing else in `edition.output_dir`.

Deterministic: the same store and config give byte-identical files, so an unchanged
article keeps its hash and is never uploaded again. Incremental: a file whose inputs
(its render key) did not change is not rendered again. A build with nothing new makes
no new version unless the live manifest is past half its lifetime.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import importlib.metadata
import json
import logging
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from importlib.abc import Traversable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import babel
import PIL

from mirror import __version__
from mirror.atomic import write_atomic
from mirror.build import catalogue, daily, epub, pictures, render
from mirror.build.locale import byline, date_words
from mirror.build.pictures import data_uri, mime_of, shrink_image
from mirror.build.slugs import article_path
from mirror.build.templating import template_root
from mirror.config import Config
from mirror.errors import ContentError, EditionTooLargeError, ManifestError
from mirror.fetch.urls import with_slash
from mirror.progress import NoProgress, Progress, counted
from mirror.store import (
    EditionArticle,
    EditionFile,
    EditionRecord,
    Store,
    link_map,
    with_own_canonicals,
)
from mirror.trust import certificate, manifest, minisign
from mirror.workers import ParserPool

log = logging.getLogger("mirror.build")
detail = logging.getLogger("mirror.detail.build")  # -v: the decisions; -vv: each file

# Image steps tried in turn until an article page fits its byte budget; then none.
IMAGE_STEPS: tuple[tuple[int, int], ...] = ((1, 60), (2, 50), (4, 40))  # (width divisor, quality)
POINTERS = ("current", "pending")
STAGE_PREFIX = manifest.STAGE_PREFIX  # staged files: a housekeeping name verify never counts
MAX_FOREIGN_COUNTED = 100_000  # files of others in output_dir: counted up to this
HREF = re.compile(r'href="([^"]+)"')
INDEX_PAGE = re.compile(r"index-[a-z0-9-]+\.html")


@dataclass
class BuildReport:
    """What one build did."""

    version: int = 0
    new_version: bool = False
    articles: int = 0
    files: int = 0  # deprecated (`files` in --json): the files the manifest lists
    bytes: int = 0  # deprecated (`bytes` in --json): ... and their bytes
    # the files in the edition: every file a mirror holds but the pointers (what a first
    # publish uploads): the manifest's files, their signatures, the manifests and parts
    files_in_edition: int = 0
    bytes_in_edition: int = 0
    written: list[str] = field(default_factory=list)  # pointers included
    removed: list[str] = field(default_factory=list)
    largest: list[tuple[str, int]] = field(default_factory=list)
    over_budget: list[str] = field(default_factory=list)
    images_dropped: int = 0
    feed_bodies_dropped: int = 0  # feed entries left with a summary only, to fit feed_max_bytes
    foreign: int = 0  # files in the folder no build wrote: left alone
    daily_articles_dropped: int = 0  # oldest articles left out of a daily file to fit
    daily_images_dropped: int = 0  # images left out of a daily file to fit
    daily_too_large: list[str] = field(default_factory=list)  # daily files not written

    def to_json(self) -> dict[str, Any]:
        """The build `--json` document (and sync's `build`): the counts in the publish
        document's words, then the deprecated keys kept one release (README)."""
        return {
            "version": self.version,
            "new_version": self.new_version,
            "articles": self.articles,
            "files_in_edition": self.files_in_edition,
            "bytes_in_edition": self.bytes_in_edition,
            "files_written": self.files_written,
            "files_deleted": len(self.removed),
            "pointers_written": self.pointers_written,
            "largest": [{"path": path, "bytes": size} for path, size in self.largest],
            "over_budget": self.over_budget,
            "images_dropped": self.images_dropped,
            "daily": {
                "articles_dropped": self.daily_articles_dropped,
                "images_dropped": self.daily_images_dropped,
                "too_large": self.daily_too_large,
            },
            "feed_bodies_dropped": self.feed_bodies_dropped,
            **self.deprecated_json(),
        }

    def deprecated_json(self) -> dict[str, int]:
        """Keys scripts may still read, kept one release: `removed` is `files_deleted`;
        `written` counts the pointers too; `files`/`bytes` leave out the manifests."""
        return {
            "files": self.files,
            "bytes": self.bytes,
            "written": len(self.written),
            "removed": len(self.removed),
        }

    @property
    def complete(self) -> bool:
        """Every file the edition should hold was made (a daily file that cannot fit
        its limit is reported and left out: the run was partial)."""
        return not self.daily_too_large

    @property
    def files_written(self) -> int:
        """Files this build wrote to the folder, the `current`/`pending` pointers apart."""
        return sum(path not in POINTERS for path in self.written)

    @property
    def pointers_written(self) -> int:
        """The `current`/`pending` pointers this build wrote to the folder."""
        return len(self.written) - self.files_written

    def summary(self) -> str:
        """One line whose counts say what they count, in the publish line's words: the
        files in the edition (what a mirror holds but the pointers), then the files this
        build wrote to and deleted from the folder, and the pointers it wrote."""
        state = "new version" if self.new_version else "no change, version"
        return (
            f"build: {state} {self.version}: {self.articles} articles, "
            f"{self.files_in_edition} files in the edition ({megabytes(self.bytes_in_edition)}), "
            f"{counted(self.files_written, 'file')} written, "
            f"{counted(len(self.removed), 'file')} deleted, "
            f"{counted(self.pointers_written, 'pointer')} written"
        )


def megabytes(size: int) -> str:
    """A size for a human line: `2.1 MB` (one decimal; exact bytes are in --json)."""
    return f"{size / 1_000_000:.1f} MB"


@dataclass(frozen=True)
class BuildInputs:
    """What a build needs besides the store and config."""

    key: minisign.SecretKey
    keys_files: tuple[bytes, bytes] | None = None  # keys.json and its root signature
    epoch: int = 0  # from keys.json: the root raises it to reset versions
    mirrors: tuple[render.MirrorLink, ...] = ()  # listed mirrors, for mirrors.html/json
    live_version: int = 0  # the highest version live on any mirror
    root_key_line: str = ""  # the offline root's public key "RW...", when there is one


class EditionFolder:
    """The local edition folder, holding a whole edition that verifies at every instant.

    A build stages what is new or changed in `.mirror-build-<n>` files at the folder's
    top, then moves them into place in the publishing order (manifests, `pending`, the
    files, `current`): an exception before that leaves the previous edition as it was.
    Only files the store records as written by an earlier build are ever deleted.
    """

    def __init__(self, root: Path, known: dict[str, EditionFile], version: int | None) -> None:
        self.root = root
        self.known = known
        self.produced: dict[str, EditionFile] = {}
        self.written: list[str] = []
        self.staged: dict[str, Path] = {}
        self.pointers = {name: read_pointer(root / name) for name in POINTERS}
        # the folder is as the store last left it; else (a build died between moving its
        # files and recording them) every file is checked by its hash, not just its size
        self.trusted = self.pointers == {"current": version, "pending": None}

    def reusable(self, path: str, render_key: str) -> bool:
        """The file was made from the same inputs and is still on disk, whole."""
        known = self.known.get(path)
        if known is None or known.render_key != render_key or not self.on_disk(known):
            return False
        self.produced[path] = known
        return True

    def on_disk(self, entry: EditionFile) -> bool:
        """The file is on disk as recorded (its size; its hash too when not trusted)."""
        target = self.root / entry.path
        if target.is_symlink() or not target.is_file() or target.stat().st_size != entry.size:
            return False
        return self.trusted or hashlib.sha256(target.read_bytes()).hexdigest() == entry.sha256

    def write(self, path: str, data: bytes, render_key: str | None = None) -> EditionFile:
        """Stage `data` for `path` unless the folder holds these very bytes already."""
        digest = hashlib.sha256(data).hexdigest()
        entry = EditionFile(path, digest, len(data), render_key)
        known = self.known.get(path)
        if known is None or known.sha256 != digest or not self.on_disk(known):
            staged = self.staged.get(path) or self.root / f"{STAGE_PREFIX}{len(self.staged)}"
            write_atomic(staged, data)
            self.staged[path] = staged
            self.written.append(path)
            detail.debug("file %s: written, %d bytes", path, len(data))
        self.produced[path] = entry
        return entry

    def intact(self) -> bool:
        """Every file of the last edition not produced again is still there, whole."""
        return all(
            self.on_disk(entry) for path, entry in self.known.items() if path not in self.produced
        )

    def commit(self, version: int) -> None:
        """Move the staged files into place, in the order that keeps the folder verifying."""
        self._move([path for path in self.staged if path.startswith(manifest.UNCOVERED_PREFIX)])
        write_atomic(self.root / "pending", manifest.pointer_bytes(version))
        self._move([path for path in self.staged if path != "current"])
        self._move(list(self.staged))
        (self.root / "pending").unlink(missing_ok=True)

    def _move(self, paths: list[str]) -> None:
        for path in paths:
            target = self.root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.staged.pop(path), target)

    def discard(self) -> None:
        """Remove what is still staged, and what a killed build left staged."""
        self.staged.clear()
        for pattern in (f"{STAGE_PREFIX}*", f".{STAGE_PREFIX}*.tmp"):  # and write_atomic's
            for leftover in self.root.glob(pattern):
                if not leftover.is_dir():
                    leftover.unlink(missing_ok=True)

    def remove_stale(self) -> list[str]:
        """Delete the files an earlier build wrote that this one did not produce."""
        removed = sorted(path for path in self.known if path not in self.produced)
        for path in removed:
            self._remove(path)
        return removed

    def _remove(self, path: str) -> None:
        target = self.root / path
        if not target.parent.resolve().is_relative_to(self.root.resolve()):
            log.warning("not removing %s: it lies outside %s", target, self.root)
            return
        target.unlink(missing_ok=True)
        for folder in target.parents:
            if folder == self.root or not folder.is_dir() or any(folder.iterdir()):
                break
            folder.rmdir()

    def foreign(self) -> int:
        """How many files here no build wrote (left alone), counted up to a limit."""
        count = 0
        for folder, _dirs, names in os.walk(self.root):
            base = Path(folder).relative_to(self.root).as_posix()
            paths = (name if base == "." else f"{base}/{name}" for name in names)
            count += sum(path not in self.produced and path not in POINTERS for path in paths)
            if count >= MAX_FOREIGN_COUNTED:
                break
        return count


def read_pointer(path: Path) -> int | None:
    """The version a local `current` or `pending` file names; None when absent or garbled."""
    try:
        with path.open("rb") as handle:
            return manifest.parse_pointer(handle.read(manifest.MAX_POINTER_BYTES + 1))
    except (OSError, ManifestError):
        return None


def render_key(**parts: Any) -> str:
    """A hash of everything a file is made from."""
    material = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def template_fingerprint() -> str:
    """Changes whenever the templates, the catalogue or mirror's version change."""
    versions = [__version__, PIL.__version__, babel.__version__, pictures.WEBP_METHOD]
    digest = hashlib.sha256(repr(versions).encode())  # encoders change bytes too
    for name, data in sorted(_template_files(template_root(), "")):
        digest.update(name.encode() + b"\0" + data)
    for name, data in sorted(_template_files(catalogue.locale_root(), "locale/")):
        digest.update(name.encode() + b"\0" + data)  # a changed translation rewords pages
    return digest.hexdigest()[:16]


def _template_files(folder: Traversable, prefix: str) -> Iterator[tuple[str, bytes]]:
    for item in folder.iterdir():
        if item.is_dir():
            yield from _template_files(item, f"{prefix}{item.name}/")
        elif not item.name.endswith((".py", ".pyc")):
            yield f"{prefix}{item.name}", item.read_bytes()


def is_index_path(path: str) -> bool:
    """index.html or a language's index-<lang>.html."""
    return path == render.index_path() or bool(INDEX_PAGE.fullmatch(path))


async def build_edition(
    config: Config,
    store: Store,
    inputs: BuildInputs,
    *,
    now: datetime,
    progress: Progress | None = None,
) -> BuildReport:
    """Render, sign and write the edition; a new version only when something changed.
    Should it stop half-way, the folder keeps the previous edition, whole."""
    config.edition.output_dir.mkdir(parents=True, exist_ok=True)
    with ParserPool(config.source.workers) as pool:
        builder = Builder(config, store, inputs, now, pool, progress or NoProgress())
        builder.folder.discard()  # what a killed build left staged
        try:
            return await builder.run()
        finally:
            builder.folder.discard()


class Builder:
    """One build run."""

    def __init__(
        self,
        config: Config,
        store: Store,
        inputs: BuildInputs,
        now: datetime,
        pool: ParserPool,
        progress: Progress,
    ) -> None:
        self.config = config
        self.edition = config.edition
        self.store = store
        self.inputs = inputs
        self.now = now
        self.pool = pool
        self.progress = progress
        self.previous = store.latest_edition()
        self.folder = EditionFolder(
            self.edition.output_dir,
            store.edition_files(),
            self.previous.version if self.previous else None,
        )
        self.report = BuildReport()
        self.fingerprint = template_fingerprint()
        self.pages_reused = 0

    async def run(self) -> BuildReport:
        found = self.store.edition_articles(self.edition.keeps_gone)
        articles = with_own_canonicals(self.assign_paths(found))
        site = self.site(articles)
        links = link_map(articles)
        self.progress.add_total(len(articles))
        await self.article_pages(articles, site, links)
        detail.info("article pages: %d rendered, %d reused (same inputs)",
                    self.report.articles - self.pages_reused, self.pages_reused)  # fmt: skip
        bodies = await self.feed_bodies(articles, site, links)
        self.shared_pages(articles, site, bodies)
        await self.daily_editions(articles, site)
        previous = self.previous
        why = self.why_new_version(previous)
        if not why:
            assert previous is not None
            detail.info("no new version: nothing changed since version %d", previous.version)
            return self.unchanged(previous)
        detail.info("new version: %s", why)
        return self.new_version(articles, site, previous)

    def assign_paths(self, articles: list[EditionArticle]) -> list[EditionArticle]:
        """Give each new article its edition path, once and forever."""
        taken = set(self.store.article_paths().values())
        result = []
        for article in sorted(articles, key=lambda a: a.id):
            path = article.path
            if path is None:
                revision = article.revision
                path = article_path(revision.title, revision.published_at, article.url, taken)
                self.store.set_article_path(article.id, path)
                taken.add(path)
            result.append(replace(article, path=path))
        order = {article.id: index for index, article in enumerate(articles)}
        return sorted(result, key=lambda a: order[a.id])

    def site(self, articles: list[EditionArticle]) -> render.Site:
        publication = self.config.publication
        languages = sorted({a.revision.language.split("-")[0] for a in articles}) or [
            publication.language
        ]
        return render.Site(
            name=publication.name,
            language=publication.language,
            home_url=publication.home_url,
            public_key_line=self.inputs.key.public.line(),
            key_id=self.inputs.key.public.key_id_hex,
            languages=tuple(languages),
            root_key_line=self.inputs.root_key_line,
        )

    # article pages

    async def article_pages(
        self, articles: list[EditionArticle], site: render.Site, links: dict[str, str]
    ) -> None:
        """Every article page, several at once so image work keeps every worker busy."""
        slots = asyncio.Semaphore(self.pool.workers * 4)

        async def one(article: EditionArticle) -> None:
            async with slots:
                await self.article_page(article, site, links)
            self.progress.advance()

        await asyncio.gather(*(one(article) for article in articles))

    async def article_page(
        self, article: EditionArticle, site: render.Site, links: dict[str, str]
    ) -> None:
        assert article.path is not None
        path = article.path
        used = {
            href: links[href] for href in HREF.findall(article.revision.body_html) if href in links
        }
        key = render_key(
            kind="article",
            templates=self.fingerprint,
            site=site,
            path=path,
            content=article.revision.content_hash,
            revision=article.revision_number,
            original=article.revision.canonical_url,
            gone=article.gone,
            links=used,
            images=self.image_hashes(article),
            budget=self.edition.page_budget_bytes,
            width=self.edition.image_max_width,
        )
        self.report.articles += 1
        if self.folder.reusable(path, key) and self.folder.reusable(path + ".minisig", key):
            self.pages_reused += 1
            detail.debug("page %s: reused (same inputs)", path)
            return
        detail.debug("page %s: rendered (revision %d)", path, article.revision_number)
        page = await self.fitted_page(article, site, links)
        self.folder.write(path, page, key)
        comment = manifest.page_comment(path, article.revision_number, article.url)
        self.folder.write(path + ".minisig", minisign.sign(self.inputs.key, page, comment), key)

    def image_hashes(self, article: EditionArticle) -> list[str | None]:
        found = (self.store.image_for_url(url) for url in article.revision.images)
        return [image.sha256 if image else None for image in found]

    async def fitted_page(
        self, article: EditionArticle, site: render.Site, links: dict[str, str]
    ) -> bytes:
        """The article page under the byte budget: images smaller first, then dropped."""
        budget = self.edition.page_budget_bytes
        page = b""
        for divisor, quality in IMAGE_STEPS:
            width = max(1, self.edition.image_max_width // divisor)
            images = await self.article_images(article, width, quality)
            page = render.render_article(self.view(article, images), site, links=links)
            if len(page) <= budget or not article.revision.images:
                return page
        self.report.images_dropped += len(article.revision.images)
        dropped = dict.fromkeys(article.revision.images)
        page = render.render_article(self.view(article, dropped), site, links=links)
        if len(page) > budget:
            self.report.over_budget.append(article.path or "")
        return page

    def view(self, article: EditionArticle, images: dict[str, str | None]) -> render.ArticleView:
        revision = article.revision
        assert article.path is not None
        return render.ArticleView(
            path=article.path,
            title=revision.title,
            authors=revision.authors,
            published=revision.published_at,
            updated=revision.updated_at,
            lead=revision.lead,
            language=revision.language,
            body_html=revision.body_html,
            canonical_url=revision.canonical_url,
            url=article.url,
            revision=article.revision_number,
            images=images,
        )

    async def article_images(
        self, article: EditionArticle, width: int, quality: int
    ) -> dict[str, str | None]:
        """Origin image URL -> data: URI at this size (None: no usable image)."""
        images: dict[str, str | None] = {}
        for url in article.revision.images:
            stored = self.store.image_for_url(url)
            images[url] = await self.rendition(stored.sha256, width, quality) if stored else None
        return images

    async def rendition(self, sha256: str, width: int, quality: int) -> str | None:
        """An image downscaled and re-encoded, as a data: URI."""
        found = await self.rendition_bytes(sha256, width, quality)
        return data_uri(found[1], found[0]) if found else None

    async def rendition_bytes(
        self, sha256: str, width: int, quality: int
    ) -> tuple[str, bytes] | None:
        """An image downscaled and re-encoded (MIME type, bytes), cached in the store by
        content hash."""
        cached = self.store.rendition(sha256, width, quality)
        if cached is None:
            original = self.store.image_data(sha256)
            if original is None:
                return None
            shrink = partial(shrink_image, max_width=width, quality=quality, fmt=RENDITION_FORMAT)
            try:
                data = await self.pool.run(shrink, original)
            except ContentError as exc:
                log.warning("image %s dropped: %s", sha256[:12], exc)
                return None
            cached = (mime_of(RENDITION_FORMAT), data)
            self.store.save_rendition(sha256, width, quality, *cached)
        return cached[0], cached[1]

    # the pages every edition has

    async def feed_bodies(
        self, articles: list[EditionArticle], site: render.Site, links: dict[str, str]
    ) -> dict[str, str]:
        """Edition path -> the full body a feed entry carries, for every article in a feed:
        its images at the smallest step, as many as fit `feed_entry_image_bytes`."""
        in_feeds = {
            summary.path
            for language in (None, *site.page_languages)
            for summary in in_language(self.summaries(articles), language)[:FEED_ENTRIES]
        }
        divisor, quality = IMAGE_STEPS[-1]
        width = max(1, self.edition.image_max_width // divisor)
        bodies: dict[str, str] = {}
        for article in articles:
            if article.path in in_feeds:
                found = await self.article_images(article, width, quality)
                images = render.entry_images(found, self.edition.feed_entry_image_bytes)
                bodies[article.path] = render.feed_content(self.view(article, images), links)
        return bodies

    def shared_pages(
        self, articles: list[EditionArticle], site: render.Site, bodies: dict[str, str]
    ) -> None:
        """Archive months, feeds, mirror lists, verify pages, keys: written when changed;
        the main language's and, when the site has several, each language's own."""
        summaries = self.summaries(articles)
        mirrors = self.inputs.mirrors
        for language in (None, *site.page_languages):
            self.archive_months(in_language(summaries, language), site, language)
            chosen = in_language(summaries, language)[:FEED_ENTRIES]
            feed = render.fit_feed(
                chosen,
                site,
                bodies=bodies,
                max_bytes=self.edition.feed_max_bytes,
                updated=newest_time(chosen),
                language=language,
            )
            self.report.feed_bodies_dropped += feed.entries - feed.full
            self.folder.write(render.feed_path(language), feed.xml)
            page = render.render_mirrors_html(mirrors, site, language=language)
            self.folder.write(render.mirrors_path(language), page)
            page = render.render_verify_page(site, language=language)
            self.folder.write(render.verify_path(language), page)
        self.folder.write(render.MIRRORS_JSON, render.render_mirrors_json(mirrors, site))
        if self.inputs.keys_files:
            self.folder.write(certificate.KEYS_FILE, self.inputs.keys_files[0])
            self.folder.write(certificate.KEYS_SIGNATURE_FILE, self.inputs.keys_files[1])

    def archive_months(
        self, summaries: list[render.ArticleSummary], site: render.Site, language: str | None
    ) -> None:
        """One archive page per month of `summaries` (all, or one language's)."""
        for month, entries in sorted(self.by_month(summaries).items()):
            page = render.render_archive_month(month, entries, site, language=language)
            self.folder.write(render.archive_path(month, language), page)

    def summaries(self, articles: list[EditionArticle]) -> list[render.ArticleSummary]:
        return [self.view(article, {}).summary() for article in articles]

    @staticmethod
    def by_month(
        summaries: list[render.ArticleSummary],
    ) -> dict[str, list[render.ArticleSummary]]:
        months: dict[str, list[render.ArticleSummary]] = {}
        for summary in summaries:
            month = render.month_of(summary.path)
            if month:
                months.setdefault(month, []).append(summary)
        return months

    # daily single-file editions: an HTML file and an EPUB per day and language

    async def daily_editions(self, articles: list[EditionArticle], site: render.Site) -> None:
        """Today's files in each language, and each earlier day's kept for
        `daily_keep_days`, made from the store's articles of that day (so a hidden or gone
        article leaves them too; unchanged inputs reuse the files); then the lists of
        them, editions/index.html and index-<lang>.html."""
        today = daily.local_day(self.now, site.timezone)
        summaries = self.summaries(articles)
        by_path = {article.path: article for article in articles}
        elsewhere = self.mirror_pages(articles)
        for day, language in self.daily_days(today, site):
            chosen = daily.daily_articles(
                summaries, day, language, self.edition.daily_articles, site.timezone
            )
            picked = [by_path[s.path] for s in chosen]
            await self.daily_pair(day, language, picked, site, elsewhere)
        files = [
            (found, entry.size)
            for path, entry in self.folder.produced.items()
            if (found := daily.parse_daily_path(path)) is not None
        ]
        for chrome in (None, *site.page_languages):
            listing = render.render_editions_index(files, site, language=chrome)
            self.folder.write(daily.editions_index_path(chrome), listing)

    def daily_days(self, today: date, site: render.Site) -> list[tuple[date, str]]:
        """(day, language) of today's files, then of the earlier days' still kept."""
        known = set(daily.kept_daily_files(self.folder.known, today, self.edition.daily_keep_days))
        days = {found.day for path in known if (found := daily.parse_daily_path(path))}
        pairs = [(today, language) for language in site.languages]
        for day in sorted(days - {today}, reverse=True):
            pairs += [
                (day, language)
                for language in site.languages
                if known & {daily.daily_path(day, language), daily.daily_epub_path(day, language)}
            ]
        return pairs

    def mirror_pages(self, articles: list[EditionArticle]) -> dict[str, str]:
        """Each article's origin addresses -> its page on the first listed mirror ({}
        when none is listed): where a daily file links an article it does not hold."""
        if not self.inputs.mirrors:
            return {}
        base = with_slash(self.inputs.mirrors[0].url)
        return {
            address: base + article.path
            for article in articles
            if article.path
            for address in (article.url, article.revision.canonical_url)
            if address
        }

    async def daily_pair(
        self,
        day: date,
        language: str,
        chosen: list[EditionArticle],
        site: render.Site,
        elsewhere: dict[str, str],
    ) -> None:
        """The day's HTML file and EPUB with their signatures, holding the same articles
        (the oldest dropped until both fit `daily_max_bytes`); made again only when their
        inputs changed. A file that cannot be made is reported, and its previous version
        leaves the edition: never a stale file under its name."""
        paths = (daily.daily_path(day, language), daily.daily_epub_path(day, language))
        links = links_out(chosen, elsewhere)
        key = self.daily_key(day, language, chosen, site, links)
        if all(self.folder.reusable(p, key) for path in paths for p in (path, path + ".minisig")):
            return
        made = await self.fitted_pair(day, language, chosen, site, links)
        for path, fitted in zip(paths, made, strict=True):
            if fitted is None:
                self.report.daily_too_large.append(path)
                self.folder.produced.pop(path, None)
                self.folder.produced.pop(path + ".minisig", None)
                continue
            self.report.daily_articles_dropped += len(chosen) - fitted.kept
            self.report.daily_images_dropped += fitted.images_dropped
            self.folder.write(path, fitted.data, key)
            comment = manifest.daily_comment(path, day, language)
            signature = minisign.sign(self.inputs.key, fitted.data, comment)
            self.folder.write(path + ".minisig", signature, key)

    def daily_key(
        self,
        day: date,
        language: str,
        chosen: list[EditionArticle],
        site: render.Site,
        links: dict[str, str],
    ) -> str:
        """Everything the day's two files are made from."""
        return render_key(
            kind="daily",
            templates=self.fingerprint,
            ebooklib=EBOOKLIB_VERSION,
            writer=EPUB_WRITER,
            site=site,
            path=daily.daily_path(day, language),
            articles=[
                (a.path, a.url, a.revision.content_hash, a.revision_number, self.image_hashes(a))
                for a in chosen
            ],
            mirrors=self.inputs.mirrors,
            links=links,
            # the EPUB's check page is made here, not in epub.py (EPUB_WRITER): its words too
            footer=epub_footer(
                site, language, daily.daily_epub_path(day, language), self.inputs.mirrors
            ),
            max_bytes=self.edition.daily_max_bytes,
            width=self.edition.image_max_width,
        )

    async def fitted_pair(
        self,
        day: date,
        language: str,
        chosen: list[EditionArticle],
        site: render.Site,
        links: dict[str, str],
    ) -> tuple[Fitted | None, Fitted | None]:
        """The HTML file and the EPUB (None for one that cannot fit), cut to the same
        newest articles: the book gets those the file kept, and the file is made again
        should the book keep fewer."""
        total = len(chosen)
        page = await fitted_or_none(
            daily.daily_path(day, language), self.fitted_daily(day, language, chosen, site, links)
        )
        kept = chosen[: page.kept] if page else chosen
        book = await fitted_or_none(
            daily.daily_epub_path(day, language),
            self.fitted_book(day, language, kept, site, links, total),
        )
        if page and book and book.kept < page.kept:
            page = await fitted_or_none(
                daily.daily_path(day, language),
                self.fitted_daily(day, language, chosen, site, links, book.kept),
            )
        return page, book

    async def fitted_daily(
        self,
        day: date,
        language: str,
        chosen: list[EditionArticle],
        site: render.Site,
        links: dict[str, str],
        most: int | None = None,
    ) -> Fitted:
        """The day's file (of at most the `most` newest articles) under `daily_max_bytes`:
        images smaller, then none, then the oldest articles dropped
        (EditionTooLargeError when even none fit)."""
        max_bytes = self.edition.daily_max_bytes
        offered = chosen[:most] if most is not None else chosen

        def rendering(images: dict[int, dict[str, str | None]]) -> Callable[..., bytes]:
            def render_some(some: Sequence[EditionArticle]) -> bytes:
                views = [self.view(a, images.get(a.id, {})) for a in some]
                return render.render_daily(
                    day, language, views, site, mirrors=self.inputs.mirrors,
                    dropped=len(chosen) - len(some), elsewhere=links,
                )  # fmt: skip

            return render_some

        with_images = [a for a in offered if a.revision.images]
        for divisor, quality in IMAGE_STEPS if with_images else ():
            width = max(1, self.edition.image_max_width // divisor)
            images = {a.id: await self.article_images(a, width, quality) for a in with_images}
            page = rendering(images)(offered)
            if len(page) <= max_bytes:
                return Fitted(page, len(offered))
        page, dropped = daily.fit_articles(rendering({}), offered, max_bytes)
        kept = len(offered) - dropped
        return Fitted(page, kept, sum(len(a.revision.images) for a in with_images))

    async def fitted_book(
        self,
        day: date,
        language: str,
        chosen: list[EditionArticle],
        site: render.Site,
        links: dict[str, str],
        total: int,
    ) -> Fitted:
        """The day's EPUB under `daily_max_bytes`: images left out, largest first, then
        the oldest articles dropped (EditionTooLargeError when even none fit); `total`
        is how many articles the day offered."""
        max_bytes = self.edition.daily_max_bytes
        chapters = [await self.epub_chapter(article, site) for article in chosen]

        def render_some(some: Sequence[epub.Chapter]) -> bytes:
            book = self.epub_book(day, language, some, site, links, total - len(some))
            try:
                return epub.make_epub(book, max_bytes=max_bytes)
            except EditionTooLargeError:
                return epub.make_epub(book, max_bytes=UNBOUNDED_BYTES)  # over: does not fit

        data, dropped = daily.fit_articles(render_some, chapters, max_bytes)
        return Fitted(data, len(chapters) - dropped)

    def epub_book(
        self,
        day: date,
        language: str,
        chapters: Sequence[epub.Chapter],
        site: render.Site,
        links: dict[str, str],
        dropped: int,
    ) -> epub.Book:
        """The day's chapters as an `epub.Book`, titled and checked as the HTML file is."""
        words = catalogue.wording(render.MESSAGES, language)
        day_words = date_words(day_start(day), language, "UTC")
        path = daily.daily_epub_path(day, language)
        footer = epub_footer(site, language, path, self.inputs.mirrors)
        note = render.dropped_note(dropped, language)
        return epub.Book(
            identifier=uuid.uuid5(EPUB_NAMESPACE, f"{site.home_url} {day} {language}").urn,
            title=words["daily_title"].format(name=site.name, date=day_words),
            language=language,
            day=day,
            publisher=site.name,
            chapters=tuple(chapters),
            footer_html=(f"<p>{html.escape(note)}</p>" if note else "") + footer,
            elsewhere=links,
        )

    async def epub_chapter(self, article: EditionArticle, site: render.Site) -> epub.Chapter:
        revision = article.revision
        words = catalogue.wording(render.MESSAGES, revision.language)
        images: dict[str, tuple[str, bytes] | None] = {}
        epub_step = (self.edition.image_max_width, IMAGE_STEPS[0][1])
        for url in revision.images:
            stored = self.store.image_for_url(url)
            images[url] = await self.rendition_bytes(stored.sha256, *epub_step) if stored else None
        published = revision.published_at
        return epub.Chapter(
            anchor=daily.section_id(article.path or f"a{article.id}"),
            title=revision.title,
            byline=byline(list(revision.authors), revision.language, words),
            date_words=date_words(published, revision.language, site.timezone) if published else "",
            language=revision.language,
            body_html=revision.body_html,
            images=images,
            addresses=(article.url, revision.canonical_url),
        )

    # versions

    def why_new_version(self, previous: EditionRecord | None) -> str:
        """Why this build makes a new version ("" when it need not), for -v."""
        if previous is None:
            return "the first edition"
        if self.folder.written:
            return f"{len(self.folder.written)} files changed (first: {self.folder.written[0]})"
        if self.inputs.live_version > previous.version:
            return f"a mirror serves version {self.inputs.live_version}, past ours"
        if not (self.folder.trusted and self.folder.intact()):
            return "the folder is not as the last build left it: repairing it"
        if any(self.dropped(path) for path in self.folder.known):
            return "an article was hidden or taken down"
        half_life = (previous.expires - previous.created) / 2
        if self.now >= previous.created + half_life:
            return "the last version is past half its lifetime"
        return ""

    def dropped(self, path: str) -> bool:
        """A file of the last edition that this build has not produced (so far)."""
        return (
            path not in self.folder.produced
            and manifest.is_listed(path)
            and not is_index_path(path)
        )

    def unchanged(self, previous: EditionRecord) -> BuildReport:
        """Nothing new: keep the version, its index pages and manifest as they are."""
        for path, known in self.folder.known.items():
            self.folder.produced.setdefault(path, known)
        return self.finish(previous.version, new=False)

    def new_version(
        self,
        articles: list[EditionArticle],
        site: render.Site,
        previous: EditionRecord | None,
    ) -> BuildReport:
        on_disk = [v for v in self.folder.pointers.values() if v is not None]
        version = max(previous.version if previous else 0, self.inputs.live_version, *on_disk) + 1
        expires = self.now + timedelta(days=self.config.signing.expires_days)
        summaries = self.summaries(articles)
        for language in (None, *site.page_languages):
            chosen = in_language(summaries, language)
            page = render.render_index(
                chosen[:INDEX_ENTRIES],
                site,
                edition_date=self.now,
                expires=expires,
                language=language,
                months=sorted(self.by_month(chosen), reverse=True),
            )
            self.folder.write(render.index_path(language), page)
        listed = [
            manifest.FileEntry(entry.path, entry.size, entry.sha256)
            for entry in self.folder.produced.values()
        ]
        built = manifest.make_manifest(
            listed,
            version=version,
            epoch=self.inputs.epoch,
            created=self.now,
            expires=expires,
            key_id=self.inputs.key.public.key_id,
        )
        for path, data in built.parts.items():
            self.folder.write(path, data)
        manifest_path = manifest.manifest_path(version)
        self.folder.write(manifest_path, built.manifest)
        comment = manifest.manifest_comment(version, expires, self.inputs.epoch)
        self.folder.write(
            manifest_path + ".minisig", minisign.sign(self.inputs.key, built.manifest, comment)
        )
        self.folder.write("current", manifest.pointer_bytes(version))
        self.folder.commit(version)
        record = EditionRecord(
            version=version,
            created=self.now,
            expires=expires,
            manifest_sha256=hashlib.sha256(built.manifest).hexdigest(),
            epoch=self.inputs.epoch,
            files=len(listed),
        )
        with self.store.transaction():
            self.store.mark_published(version, [(a.id, a.revision_number) for a in articles])
            self.store.save_edition(record)
            return self.finish(version, new=True)

    def finish(self, version: int, *, new: bool) -> BuildReport:
        report = self.report
        report.removed = self.folder.remove_stale()
        report.written = list(self.folder.written)
        report.foreign = self.folder.foreign()
        self.store.save_edition_files(list(self.folder.produced.values()), report.removed)
        listed = [e for e in self.folder.produced.values() if manifest.is_listed(e.path)]
        report.version, report.new_version = version, new
        report.files = len(listed)
        report.bytes = sum(entry.size for entry in listed)
        held = [e for e in self.folder.produced.values() if e.path not in POINTERS]
        report.files_in_edition = len(held)
        report.bytes_in_edition = sum(entry.size for entry in held)
        report.largest = sorted(
            ((e.path, e.size) for e in listed if e.path.endswith(".html")),
            key=lambda item: (-item[1], item[0]),
        )[:LARGEST]
        return report


RENDITION_FORMAT = "webp"
EPUB_NAMESPACE = uuid.UUID("0b7e3f44-8d2a-4c1e-b5f9-6a3d2e1c4f70")  # the EPUBs' identifiers
EBOOKLIB_VERSION = importlib.metadata.version("ebooklib")  # its writer's bytes
# our own EPUB code (style sheet, link and note handling): a change re-renders the books
EPUB_WRITER = hashlib.sha256(Path(epub.__file__).read_bytes()).hexdigest()
UNBOUNDED_BYTES = 1 << 40  # make_epub with no limit: the book as it is, to measure it
NO_ARTICLES_TIME = datetime(2000, 1, 1, tzinfo=UTC)  # a feed with no entries: a fixed date
FEED_ENTRIES = 50
INDEX_ENTRIES = 100
LARGEST = 10


def in_language(
    summaries: list[render.ArticleSummary], language: str | None
) -> list[render.ArticleSummary]:
    """The articles in one language (primary subtag), or all of them."""
    if language is None:
        return summaries
    return [s for s in summaries if s.language.split("-")[0].lower() == language]


def newest_time(summaries: list[render.ArticleSummary]) -> datetime:
    """The latest publication or update among the articles: the feed's `updated`."""
    times = [t for s in summaries for t in (s.published, s.updated) if t is not None]
    return max(times, default=NO_ARTICLES_TIME)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def epub_footer(
    site: render.Site, language: str, path: str, mirrors: Sequence[render.MirrorLink]
) -> str:
    """The book's check page, in the daily file's words: who signs it, the stock minisign
    command naming this very file and its .minisig, how to download it whole, the
    root-key route, the trusted comment and the mirrors."""
    words = catalogue.wording(render.MESSAGES, language)
    file_name = path.rsplit("/", 1)[-1]
    command = f"minisign -Vm {file_name} -P {site.public_key_line}"
    address = render.daily_download_url(mirrors, path)
    download = f"curl --compressed -O {address}\nwget --compression=auto {address}"
    parts = [
        paragraph(words["signed"].format(name=site.name)),
        paragraph(words["daily_check"].format(signature=f"{file_name}.minisig")),
        code_block(command),
        paragraph(words["daily_download"]),
        code_block(download),
    ]
    if site.root_key_line:
        root = f"minisign -Vm keys.json -P {site.root_key_line}\n{command}"
        parts += [paragraph(words["daily_check_root"]), code_block(root)]
    parts.append(paragraph(words["daily_comment"]))
    if mirrors:
        rows = "".join(
            f"<li>{html.escape(name)}: <a href={quoteattr(url)}>{html.escape(url)}</a></li>"
            for name, url in render.mirror_rows(mirrors, site.page_language(language))
        )
        parts += [paragraph(words["daily_mirrors"]), f"<ul>{rows}</ul>"]
    return "".join(parts)


def code_block(text: str) -> str:
    return f"<pre><code>{html.escape(text)}</code></pre>"


def paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


@dataclass(frozen=True)
class Fitted:
    """A daily file made to fit: its bytes, how many of the articles offered it holds
    (the newest), and how many of their images were left out."""

    data: bytes
    kept: int
    images_dropped: int = 0


async def fitted_or_none(path: str, making: Awaitable[Fitted]) -> Fitted | None:
    """The file `making` gives, or None (logged) when it cannot fit its limit."""
    try:
        return await making
    except EditionTooLargeError as exc:
        log.warning("daily edition %s not written: %s", path, exc)
        return None


def links_out(chosen: Sequence[EditionArticle], elsewhere: dict[str, str]) -> dict[str, str]:
    """Of `elsewhere` (origin address -> page on a mirror), the articles that `chosen`
    bodies link but that are not among them: what a day's file links on a mirror."""
    inside = {address for a in chosen for address in (a.url, a.revision.canonical_url)}
    bodies = [a.revision.body_html for a in chosen]
    return {
        address: target
        for address, target in elsewhere.items()
        if address not in inside
        and any(address in body or html.escape(address) in body for body in bodies)
    }
