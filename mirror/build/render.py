"""The edition's pages, rendered from plain data: views in, bytes out.

No store, no files, no clock: the build gathers `Site`, `ArticleView`,
`ArticleSummary` and `MirrorLink` values and writes what these functions return.
The same inputs always give byte-identical output, and article pages hold no build
time, so an unchanged article keeps its hash.

Paths inside an edition (all relative, "/"-separated, see the `*_path` functions):

    index.html, index-<lang>.html     newest articles (all languages / one language)
    archive/YYYY-MM.html              one month (all languages)
    archive/YYYY-MM-<lang>.html       one month, one language's articles, in its words
    articles/YYYY/MM/<slug>.html      one article (`mirror.build.slugs.article_path`)
    feed.xml, feed-<lang>.xml         Atom feed of whole articles (all / one language)
    mirrors.html, mirrors-<lang>.html the listed mirrors (main language / one language)
    mirrors.json
    verify.html, verify-<lang>.html   how to check the signatures
    editions/YYYY-MM-DD-<lang>.html   a day's articles in one file (`mirror.build.daily`)
    editions/index.html               the daily files kept (index-<lang>.html: in its words)

The `-<lang>` pages exist for every language of `Site.page_languages` (all of the
site's languages when it has several); a page in one of those languages links that
language's index, mirrors, verify and archive pages; an article in the main language
links the unsuffixed ones.

Every page is self-contained (CSS inline, images as data: URIs, no script, no font),
carries a Content-Security-Policy that forbids every request, and links only
relatively, except an article's optional link to its original and the external links
of its body.

Page budget: `render_article` renders the images it is given. `fit_article` renders
with the best image candidates that keep the page under a byte budget, then drops
images (largest first, each replaced by a visible note) until it fits. `fit_feed`
keeps a feed under its byte limit the same way: the oldest entries lose their body
first (`feed_content`, images chosen by `entry_images`), then the oldest entries go.
"""

from __future__ import annotations

import functools
import json
import posixpath
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import jinja2
import lxml.html
from lxml.etree import ParserError
from markupsafe import Markup

from mirror.build import catalogue
from mirror.build.captions import drop_repeated_alts
from mirror.build.catalogue import N_, NC_, NP_, InContext, Plural
from mirror.build.daily import DailyFile, daily_path, editions_index_path, section_id
from mirror.build.locale import (
    aware,
    babel_locale,
    base_language,
    byline,
    date_time_words,
    date_words,
    month_name,
)
from mirror.build.standfirst import body_text, repeats_opening
from mirror.build.templating import TemplateLoader, template_root
from mirror.errors import FeedTooLargeError
from mirror.fetch.sanitise import NOTE_CLASS, NOTE_PREFIX
from mirror.fetch.urls import with_slash

INDEX_HTML = "index.html"
FEED_XML = "feed.xml"
MIRRORS_HTML = "mirrors.html"
MIRRORS_JSON = "mirrors.json"
VERIFY_HTML = "verify.html"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# form-action and base-uri do not fall back to default-src: an injected <form> or <base>
# must be refused by name.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "form-action 'none'; base-uri 'none'"
)
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})*")
_LANGUAGE_INDEX = re.compile(r"index-[a-z]{2,3}(?:-[a-z0-9]{2,8})*\.html")
_MONTH = re.compile(r"\d{4}-(?:0[1-9]|1[0-2])")
_ARTICLE_MONTH = re.compile(r"articles/(\d{4})/(\d{2})/")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
TEMPLATE_FOLDER = "edition"  # in mirror.templates; the digest's templates sit beside it
ACTIVE_TAGS = ("script", "style", "iframe", "object", "embed", "link", "meta", "base", "form")
_FEED_NAMESPACE = uuid.UUID("6f1c7a52-3d1e-4f0e-9a57-2b8f1d3c9e40")  # this project's own


@dataclass(frozen=True)
class Site:
    """The publication as every page shows it."""

    name: str
    language: str  # the outlet's main language: chrome of index, archive and feed
    home_url: str  # the origin's front page (shown as text on the verify page only)
    public_key_line: str  # the signing key, minisign's base64 line "RW..."
    key_id: str  # its key id in hex, as minisign prints it
    languages: tuple[str, ...] = ()  # several: per-language index and feed too
    root_key_line: str = ""  # the offline root key "RW...", if the outlet has one
    timezone: str = "UTC"  # IANA name: dates are shown in this zone

    @property
    def page_languages(self) -> tuple[str, ...]:
        """Languages that get their own `-<lang>` pages: all, when there are several."""
        return self.languages if len(self.languages) > 1 else ()

    def page_language(self, language: str) -> str | None:
        """The `-<lang>` pages an article in `language` links: None (the unsuffixed
        ones) for the site's main language or a language without its own pages."""
        base = base_language(language)
        if base == base_language(self.language) or base not in self.page_languages:
            return None
        return base


class Listed(Protocol):
    """What lists and feeds read of an article: an `ArticleSummary` or `ArticleView`."""

    @property
    def path(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def authors(self) -> tuple[str, ...]: ...
    @property
    def published(self) -> datetime | None: ...
    @property
    def updated(self) -> datetime | None: ...
    @property
    def lead(self) -> str: ...
    @property
    def language(self) -> str: ...
    @property
    def canonical_url(self) -> str: ...
    @property
    def url(self) -> str: ...


@dataclass(frozen=True)
class ArticleSummary:
    """One article as lists and feeds show it."""

    path: str  # its edition path, articles/YYYY/MM/<slug>.html
    title: str
    authors: tuple[str, ...]
    published: datetime | None
    updated: datetime | None
    lead: str
    language: str
    canonical_url: str
    url: str = ""  # the fetched origin URL: the article's identity (its feed entry id)


@dataclass(frozen=True)
class ArticleView:
    """One article page's content.

    `body_html` is sanitised (`mirror.fetch.sanitise`) with absolute origin URLs; `images`
    maps each image URL of the body to its data: URI, or to None to leave it out with
    a visible note (an image missing from the map is left out the same way).
    """

    path: str
    title: str
    authors: tuple[str, ...]
    published: datetime | None
    updated: datetime | None
    lead: str
    language: str
    body_html: str
    canonical_url: str  # "" for no "original" link
    revision: int
    images: Mapping[str, str | None] = field(default_factory=dict)
    url: str = ""  # the fetched origin URL: the article's identity (its feed entry id)

    def summary(self) -> ArticleSummary:
        """This article as lists and feeds show it."""
        return ArticleSummary(
            path=self.path,
            title=self.title,
            authors=self.authors,
            published=self.published,
            updated=self.updated,
            lead=self.lead,
            language=self.language,
            canonical_url=self.canonical_url,
            url=self.url,
        )


@dataclass(frozen=True)
class MirrorLink:
    """A listed mirror: its name and the public URL of the edition's folder."""

    name: str
    url: str


@dataclass(frozen=True)
class FittedPage:
    """An article page fitted to a byte budget."""

    html: bytes
    level: int  # which candidate of each image was used (0: the first, best)
    dropped: tuple[str, ...]  # image URLs left out (with a visible note)
    fits: bool  # False: over budget even with every image dropped


@dataclass(frozen=True)
class FittedFeed:
    """A feed fitted to its byte limit: the newest `entries` articles, the newest `full`
    of them with their whole body (the older ones with title, summary and link only)."""

    xml: bytes
    entries: int
    full: int


# --- paths -------------------------------------------------------------------------


def index_path(language: str | None = None) -> str:
    """`index.html`, or `index-<lang>.html` for one language's index."""
    return INDEX_HTML if language is None else f"index-{_path_language(language)}.html"


def feed_path(language: str | None = None) -> str:
    """`feed.xml`, or `feed-<lang>.xml` for one language's feed."""
    return FEED_XML if language is None else f"feed-{_path_language(language)}.xml"


def mirrors_path(language: str | None = None) -> str:
    """`mirrors.html`, or `mirrors-<lang>.html` for one language's mirror list."""
    return MIRRORS_HTML if language is None else f"mirrors-{_path_language(language)}.html"


def verify_path(language: str | None = None) -> str:
    """`verify.html`, or `verify-<lang>.html` for one language's verify page."""
    return VERIFY_HTML if language is None else f"verify-{_path_language(language)}.html"


def archive_path(month: str, language: str | None = None) -> str:
    """`archive/YYYY-MM.html` for `month` "YYYY-MM", or `archive/YYYY-MM-<lang>.html`."""
    if not _MONTH.fullmatch(month):
        raise ValueError(f"month must be YYYY-MM, not {month!r}")
    suffix = "" if language is None else f"-{_path_language(language)}"
    return f"archive/{month}{suffix}.html"


def site_paths(language: str | None = None) -> dict[str, str]:
    """The pages every page links (index, mirrors, verify, feed), in one language's
    `-<lang>` form or the unsuffixed one, and the daily files' index in the same way."""
    return {
        "index": index_path(language),
        "mirrors": mirrors_path(language),
        "verify": verify_path(language),
        "feed": feed_path(language),
        "editions": editions_index_path(language),
    }


def month_of(path: str) -> str | None:
    """ "YYYY-MM" of an article path `articles/YYYY/MM/...`; None for an undated one."""
    found = _ARTICLE_MONTH.match(path)
    return f"{found[1]}-{found[2]}" if found else None


def is_index_path(path: str) -> bool:
    """Whether `path` is `index.html` or a language's `index-<lang>.html`."""
    return path == INDEX_HTML or bool(_LANGUAGE_INDEX.fullmatch(path))


def relative_url(page: str, target: str) -> str:
    """The link from the page at edition path `page` to the edition path `target`."""
    return posixpath.relpath(target, posixpath.dirname(page) or ".")


def _path_language(language: str) -> str:
    tag = language.replace("_", "-").lower()
    if not _LANGUAGE.fullmatch(tag):
        raise ValueError(f"not a language tag: {language!r}")
    return tag


# --- pages -------------------------------------------------------------------------


def render_article(
    article: ArticleView, site: Site, *, links: Mapping[str, str] | None = None
) -> bytes:
    """The article page at `article.path`.

    `links` maps origin URLs of mirrored articles (fetch and canonical URLs alike) to
    their edition paths: body links to them become relative links; other links stay
    absolute. Images come from `article.images`. The page's size grows with its images:
    to keep it under a budget, call again with smaller images or use `fit_article`.
    """
    body = rewrite_body(article.body_html, article, links or {})
    month = month_of(article.path)
    pages = site.page_language(article.language)
    return _render(
        "article.html",
        article.path,
        site,
        article.language,
        pages=pages,
        article=article,
        body=Markup(body),  # noqa: S704 -- sanitised upstream, re-serialised by lxml
        show_lead=not repeats_opening(article.lead, body_text(article.body_html)),
        byline=_byline(article.authors, article.language),
        published=_moment(article.published, article.language, site),
        updated=_moment(_later(article.updated, article.published), article.language, site),
        archive=archive_path(month, pages) if month else None,
        archive_name=month_name(month, article.language) if month else "",
    )


def fit_article(
    article: ArticleView,
    site: Site,
    *,
    links: Mapping[str, str] | None = None,
    candidates: Mapping[str, Sequence[str]],
    budget_bytes: int,
) -> FittedPage:
    """The article page with the best images that keep it within `budget_bytes`.

    `candidates` maps each image URL to its data: URIs, best (largest) first. Every
    image takes its candidate at the same level, level after level; if even the last
    level is too large, images are dropped, largest first, until the page fits.
    """
    levels = max((len(uris) for uris in candidates.values()), default=1)
    images: dict[str, str | None] = {}
    for level in range(max(levels, 1)):
        images = {url: _at_level(uris, level) for url, uris in candidates.items()}
        page = render_article(replace(article, images=images), site, links=links)
        if len(page) <= budget_bytes:
            return FittedPage(page, level, (), True)
    dropped: list[str] = []
    for url in sorted(images, key=lambda u: (-len(images[u] or ""), u)):
        if images[url] is None:
            continue
        images[url] = None
        dropped.append(url)
        page = render_article(replace(article, images=images), site, links=links)
        if len(page) <= budget_bytes:
            break
    return FittedPage(page, max(levels - 1, 0), tuple(dropped), len(page) <= budget_bytes)


def render_index(
    articles: Sequence[Listed],
    site: Site,
    *,
    edition_date: datetime,
    expires: datetime,
    language: str | None = None,
    months: Sequence[str] = (),
) -> bytes:
    """The front page (`index_path(language)`): `articles` newest first, the edition's
    date and expiry in words, links to the archive `months` ("YYYY-MM", newest first)
    and to the other languages' indexes when the site has several."""
    chrome = language or site.language
    return _render(
        "index.html",
        index_path(language),
        site,
        chrome,
        pages=language,
        articles=[_listed(item, site) for item in articles],
        edition_date=_when(edition_date, chrome, site),
        expires=_when(expires, chrome, site),
        months=[(archive_path(month, language), month_name(month, chrome)) for month in months],
        languages=_language_links(site, language),
        feed=feed_path(language),
    )


def render_archive_month(
    month: str, articles: Sequence[Listed], site: Site, *, language: str | None = None
) -> bytes:
    """The archive page of `month` ("YYYY-MM", `archive_path(month, language)`): its
    `articles`, in the order given, with the words of `language` (else the site's)."""
    chrome = language or site.language
    return _render(
        "archive.html",
        archive_path(month, language),
        site,
        chrome,
        pages=language,
        month_name=month_name(month, chrome),
        articles=[_listed(item, site) for item in articles],
    )


def render_mirrors_html(
    mirrors: Sequence[MirrorLink], site: Site, *, language: str | None = None
) -> bytes:
    """`mirrors_path(language)`: every mirror given (the caller passes the listed ones
    only), with the words of `language` (else the site's)."""
    rows = [(mirror.name, mirror_index_url(mirror.url, language)) for mirror in mirrors]
    chrome = language or site.language
    page = mirrors_path(language)
    return _render("mirrors.html", page, site, chrome, pages=language, mirrors=rows)


def render_mirrors_json(mirrors: Sequence[MirrorLink], site: Site) -> bytes:
    """`mirrors.json`: {"publication", "mirrors": [{"name", "url", "index", "indexes"}]},
    canonical: `index` is the mirror's `index.html`, `indexes` maps each language with
    pages of its own (`Site.page_languages`; none: {}) to its `index-<lang>.html`."""
    document = {
        "publication": site.name,
        "mirrors": [
            {
                "name": mirror.name,
                "url": mirror.url,
                "index": mirror_index_url(mirror.url),
                "indexes": {
                    language: mirror_index_url(mirror.url, language)
                    for language in site.page_languages
                },
            }
            for mirror in mirrors
        ],
    }
    text = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True)
    return (text + "\n").encode("utf-8")


def render_verify_page(site: Site, *, language: str | None = None) -> bytes:
    """`verify_path(language)`: the public key(s) and the minisign commands that check
    this copy (with the root key alone too, when there is one), in `language`'s words."""
    chrome = language or site.language
    return _render("verify.html", verify_path(language), site, chrome, pages=language)


def render_feed(
    articles: Sequence[Listed],
    site: Site,
    *,
    updated: datetime | None = None,
    language: str | None = None,
    bodies: Mapping[str, str] | None = None,
) -> bytes:
    """The Atom feed (`feed_path(language)`) of `articles`, newest first; `bodies` maps
    an article's edition path to its full content (`feed_content`), else only a summary.

    `updated` defaults to the newest date among the entries (1970 for an empty feed),
    so an unchanged list of articles gives an unchanged feed.

    Every link is relative to the feed's own location, so a reader resolves it inside
    whichever mirror served the feed. Entry ids are stable URNs made from the
    article's fetched URL (unique, unlike the canonical URL a page claims), so the
    origin's address is not a link in the feed.
    """
    chrome = language or site.language
    updated = updated or _newest(articles)
    contents = bodies or {}
    return _render(
        "feed.xml",
        feed_path(language),
        site,
        chrome,
        pages=language,
        feed_id=_urn(f"{site.home_url} {language or ''}"),
        updated=_rfc3339(updated),
        entries=[_entry(item, updated, contents.get(item.path, "")) for item in articles],
        index=index_path(language),
    )


def render_daily(
    day: date,
    language: str,
    articles: Sequence[ArticleView],
    site: Site,
    *,
    mirrors: Sequence[MirrorLink] = (),
    dropped: int = 0,
    elsewhere: Mapping[str, str] | None = None,
) -> bytes:
    """The single-file edition of `day` in `language` (`daily_path(day, language)`):
    a table of contents, then each of `articles` (in the order given) in its own section
    with its images as given; links between them stay inside the file, and a link to
    another article goes where `elsewhere` says (origin address -> its page on a
    mirror), else to the origin. No build time: the same inputs give the same bytes.
    `dropped` older articles are said to be left out."""
    page = daily_path(day, language)
    anchors = dict(elsewhere or {})
    for article in articles:
        for address in (article.url, article.canonical_url):
            if address:
                anchors[address] = "#" + section_id(article.path)
    sections = [_daily_section(article, page, anchors, site) for article in articles]
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    return _render(
        "daily.html",
        page,
        site,
        language,
        pages=site.page_language(language),
        sections=sections,
        day=_Moment(day.isoformat(), date_words(noon, language, "UTC")),
        dropped=dropped_note(dropped, language),
        file_name=posixpath.basename(page),
        signature=posixpath.basename(page) + ".minisig",
        mirrors=mirror_rows(mirrors, site.page_language(language)),
        download=daily_download_url(mirrors, page),
    )


def mirror_rows(mirrors: Sequence[MirrorLink], pages: str | None) -> list[tuple[str, str]]:
    """(name, address of its front page in the `pages` language) of each mirror, as a
    daily file lists them."""
    return [(mirror.name, mirror_index_url(mirror.url, pages)) for mirror in mirrors]


def daily_download_url(mirrors: Sequence[MirrorLink], path: str) -> str:
    """The daily file at edition path `path` on the first listed mirror ("URL" with none)."""
    return with_slash(mirrors[0].url) + path if mirrors else "URL"


def dropped_note(dropped: int, language: str) -> str:
    """ "{n} older articles were left out ..." in `language` (its plural form), or ""."""
    if not dropped:
        return ""
    return catalogue.count_words(_plural("daily_dropped"), dropped, language)


def _plural(key: str) -> Plural:
    message = MESSAGES[key]
    assert isinstance(message, Plural), key
    return message


@dataclass(frozen=True)
class _DailySection:
    id: str
    listed: _Listed
    show_lead: bool
    body: Markup


def _daily_section(
    article: ArticleView, page: str, anchors: Mapping[str, str], site: Site
) -> _DailySection:
    body = rewrite_body(article.body_html, replace(article, path=page), anchors)
    return _DailySection(
        section_id(article.path),
        _listed(article, site),
        not repeats_opening(article.lead, body_text(article.body_html)),
        Markup(body),  # noqa: S704 -- sanitised upstream, re-serialised by lxml
    )


def render_editions_index(
    files: Sequence[tuple[DailyFile, int]], site: Site, *, language: str | None = None
) -> bytes:
    """`editions_index_path(language)`: the daily `files` (HTML and EPUB) with their
    sizes in bytes, one row per day and language, newest day first; the words of
    `language` (else the site's), linking that language's pages."""
    chrome = language or site.language
    words = _messages(chrome)
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for found, size in files:
        row = rows.setdefault(
            (found.day.isoformat(), found.language),
            {"day": found.day.isoformat(), "language": _language_name(found.language),
             "code": found.language, "html": None, "epub": None},
        )  # fmt: skip
        row[found.kind] = (found.path, words["kilobytes"].format(n=-(-size // 1000)))
    ordered = [rows[key] for key in sorted(rows, reverse=True)]
    page = editions_index_path(language)
    return _render("editions.html", page, site, chrome, pages=language, rows=ordered)


def _language_name(language: str) -> str:
    locale = babel_locale(language)
    return locale.get_display_name(locale) or language


def fit_feed(
    articles: Sequence[Listed],
    site: Site,
    *,
    bodies: Mapping[str, str],
    max_bytes: int,
    updated: datetime | None = None,
    language: str | None = None,
) -> FittedFeed:
    """The feed of `articles` (newest first) with their `bodies` (edition path -> the
    `feed_content` HTML), never over `max_bytes`: the oldest entries lose their body
    first (keeping title, summary and link), then the oldest entries go.

    Raises FeedTooLargeError when even a feed with no entry is over `max_bytes`.
    """
    updated = updated or _newest(articles)

    def feed(entries: int, full: int) -> bytes:
        kept = articles[:entries]
        chosen = {item.path: bodies[item.path] for item in kept[:full] if item.path in bodies}
        return render_feed(kept, site, updated=updated, language=language, bodies=chosen)

    count = len(articles)
    full = _most(count, lambda n: len(feed(count, n)) <= max_bytes)
    if full is not None:
        return FittedFeed(feed(count, full), count, full)
    entries = _most(count, lambda n: len(feed(n, 0)) <= max_bytes)
    if entries is None:
        raise FeedTooLargeError(f"{feed_path(language)}: over {max_bytes} bytes with no entry")
    return FittedFeed(feed(entries, 0), entries, 0)


def _most(upper: int, fits: Callable[[int], bool]) -> int | None:
    """The largest n in 0..upper for which `fits(n)` (true up to some n, false after)."""
    if not fits(0):
        return None
    low, high = 0, upper
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low


def feed_content(article: ArticleView, links: Mapping[str, str]) -> str:
    """The article's body as its feed entry carries it: as on its page (links relative to
    the page, which the entry's content names as its xml:base), images from
    `article.images` (see `entry_images`), the others left out with a visible note."""
    return rewrite_body(article.body_html, article, links, note="feed_image_dropped")


def entry_images(images: Mapping[str, str | None], budget_bytes: int) -> dict[str, str | None]:
    """`images` (URL -> data: URI, in the body's order) that fit one feed entry's byte
    budget, taken in order; each one that does not fit maps to None (a visible note)."""
    kept: dict[str, str | None] = {}
    left = budget_bytes
    for url, uri in images.items():
        fits = uri is not None and len(uri) <= left
        kept[url] = uri if fits else None
        left -= len(uri) if fits and uri is not None else 0
    return kept


# --- body rewriting ----------------------------------------------------------------


def rewrite_body(
    body_html: str,
    article: ArticleView,
    links: Mapping[str, str],
    *,
    note: str = "image_dropped",
) -> str:
    """`body_html` with mirrored links made relative and images inlined or noted (the
    note's words: MESSAGES[`note`])."""
    if not body_html.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    except (ParserError, ValueError):
        return ""
    words = _messages(article.language)
    word_notes(root, words["video"])
    note_words = words[note]
    for anchor in list(root.iter("a")):
        _rewrite_link(anchor, article.path, links)
    drop_repeated_alts(root)
    for image in list(root.iter("img")):
        _inline_image(image, article.images, note_words)
    _strip_active_content(root)
    html: str = lxml.html.tostring(root, encoding="unicode")
    return html[len("<div>") : -len("</div>")]


def word_notes(root: lxml.html.HtmlElement, video_label: str) -> None:
    """Our own "Video: <url>" lines (stored in English, `mirror.fetch.sanitise`) worded
    with `video_label`, the page's word for "Video:"."""
    prefix = NOTE_PREFIX.rstrip()
    for note in root.find_class(NOTE_CLASS):
        if note.text and note.text.startswith(prefix):
            note.text = video_label + note.text[len(prefix) :]


def worded_notes(body_html: str, video_label: str) -> str:
    """`body_html` with our "Video: <url>" lines worded with `video_label` (the digest's
    way to `word_notes`); unchanged when it has none."""
    if NOTE_PREFIX not in body_html:
        return body_html
    try:
        root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    except (ParserError, ValueError):
        return body_html
    word_notes(root, video_label)
    html: str = lxml.html.tostring(root, encoding="unicode")
    return html[len("<div>") : -len("</div>")]


def _strip_active_content(root: lxml.html.HtmlElement) -> None:
    """Remove what the sanitiser never lets through, should it reach here anyway."""
    for element in list(root.iter(*ACTIVE_TAGS)):
        element.drop_tree()
    for element in root.iter():
        for attribute in list(element.attrib):
            if attribute.startswith("on") or attribute in ("srcset", "style"):
                del element.attrib[attribute]


def _rewrite_link(anchor: lxml.html.HtmlElement, page: str, links: Mapping[str, str]) -> None:
    """Mirrored links made relative, external ones kept; a link that goes nowhere (its
    target removed by the sanitiser, or a fragment of a page whose ids are gone) becomes
    its plain text."""
    href = (anchor.get("href") or "").strip()
    address, _, fragment = href.partition("#")
    target = links.get(href) or links.get(address)
    if target is not None and urlsplit(target).scheme in ("http", "https"):
        anchor.set("href", f"{target}#{fragment}" if fragment else target)  # on a mirror
        anchor.set("rel", "noreferrer")
    elif target is not None and not (fragment and target == page):
        relative = target if target.startswith("#") else relative_url(page, target)
        anchor.set("href", f"{relative}#{fragment}" if fragment else relative)
    elif target is None and urlsplit(href).scheme in ("http", "https"):
        anchor.set("rel", "noreferrer")
    else:
        anchor.drop_tag()


def _inline_image(
    image: lxml.html.HtmlElement, images: Mapping[str, str | None], note: str
) -> None:
    uri = images.get(image.get("src") or "")
    if uri is not None and uri.startswith("data:image/"):
        image.set("src", uri)
        return
    alt = (image.get("alt") or "").strip()
    replacement = lxml.html.Element("span", {"class": "noimage"})
    replacement.text = f"[{note}: {alt}]" if alt else f"[{note}]"
    replacement.tail = image.tail
    parent = image.getparent()
    if parent is not None:
        parent.replace(image, replacement)


def _at_level(uris: Sequence[str], level: int) -> str | None:
    return uris[min(level, len(uris) - 1)] if uris else None


# --- words: dates, bylines, chrome ---------------------------------------------------


# The words of the pages, in English; the catalogue (`mirror.build.catalogue`) holds
# their translations. A new key: add it here with N_(), then to every .po (README).
MESSAGES: dict[str, str | InContext | Plural] = {
    "home": N_("Front page"),
    "mirrors": N_("Mirrors"),
    "verify": N_("Check signatures"),
    "archive": N_("Archive"),
    "feed": N_("Feed (Atom)"),
    "latest": N_("Latest articles"),
    "by": N_("By {names}"),
    "by_one": NC_("one author", "By {names}"),
    "updated": N_("updated"),
    "original": N_("Original"),
    "revision": N_("revision {n}"),
    "image_dropped": N_("Image left out to keep this page small"),
    "feed_image_dropped": N_("Image left out to keep this feed small: the article page has it"),
    "video": N_("Video:"),
    "edition": N_("This edition was made on {date}."),
    "expires": N_(
        "It is valid until {date}. Later than that, this copy may be stale or frozen: "
        "look for a fresh one on another mirror."
    ),
    "languages": N_("Other languages"),
    "all_languages": N_("All languages"),
    "no_articles": N_("No articles yet."),
    "signed": N_("Every page of this copy is signed by {name}."),
    "editions": N_("Daily editions in one file"),
    "editions_intro": N_(
        "Each file holds one day's articles in one page: save it, forward it, read it "
        "offline. Beside each file is its signature (.minisig)."
    ),
    "daily_title": N_("{name}, {date}"),
    "contents": N_("Contents"),
    "to_contents": N_("Back to contents"),
    "daily_dropped": NP_(
        "{n} older article was left out to keep this file small.",
        "{n} older articles were left out to keep this file small.",
    ),
    "daily_check": N_(
        "To check this file, save it with its signature {signature} (on any mirror, next to "
        "it) and run:"
    ),
    "daily_download": N_(
        "A mirror may send this file gzip-compressed whatever the program asks, and a copy "
        "saved still compressed fails the check: a browser undoes the compression; on a "
        "command line ask for it:"
    ),
    "daily_check_root": N_(
        "With only the outlet's root key: check keys.json (and keys.json.minisig) from a "
        "mirror with it first, then this file with the signing key keys.json lists:"
    ),
    "daily_comment": N_("The trusted comment names this file's path, its date and its language."),
    "daily_mirrors": N_("This edition's mirrors:"),
    "date": N_("Date"),
    "language": N_("Language"),
    "kilobytes": N_("{n} KB"),
}
RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur", "ps", "sd", "ug", "yi", "ckb", "dv"})


def _messages(language: str) -> dict[str, str]:
    return catalogue.wording(MESSAGES, language)


def _lang_attribute(language: str) -> str:
    tag = language.replace("_", "-")
    return tag if _LANGUAGE.fullmatch(tag.lower()) else "und"


def _direction(language: str) -> str:
    return "rtl" if base_language(language) in RTL_LANGUAGES else "ltr"


@dataclass(frozen=True)
class _Moment:
    iso: str  # for <time datetime>
    words: str  # in the page's language


def _moment(moment: datetime | None, language: str, site: Site) -> _Moment | None:
    """A date in words ("25 ноября 2026 г.") in `language`, in the site's time zone."""
    if moment is None:
        return None
    return _Moment(_rfc3339(moment), date_words(moment, language, site.timezone))


def _when(moment: datetime, language: str, site: Site) -> _Moment:
    """A date and time in words, with the zone's name."""
    return _Moment(_rfc3339(moment), date_time_words(moment, language, site.timezone))


def _later(updated: datetime | None, published: datetime | None) -> datetime | None:
    """`updated` when it is a later day than `published` (else no "updated" line)."""
    if updated is None or published is None:
        return updated if published is None else None
    return updated if aware(updated).date() > aware(published).date() else None


def _byline(authors: Sequence[str], language: str) -> str:
    return byline([name.strip() for name in authors], language, _messages(language))


def _rfc3339(moment: datetime) -> str:
    return aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Listed:
    summary: Listed
    lang: str
    dir: str
    byline: str
    published: _Moment | None


def _listed(item: Listed, site: Site) -> _Listed:
    return _Listed(
        item,
        _lang_attribute(item.language),
        _direction(item.language),
        _byline(item.authors, item.language),
        _moment(item.published, item.language, site),
    )


def _language_links(site: Site, current: str | None) -> list[tuple[str, str, str]]:
    """(path, name, lang) of the other indexes, when the site has several languages."""
    if len(site.languages) < 2:
        return []
    links = []
    if current is not None:
        chrome = _messages(current)["all_languages"]
        links.append((INDEX_HTML, chrome, _lang_attribute(current)))
    for language in site.languages:
        if language != current:
            name = babel_locale(language).get_display_name(babel_locale(language)) or language
            links.append((index_path(language), name, _lang_attribute(language)))
    return links


def mirror_index_url(url: str, language: str | None = None) -> str:
    """The address of the index a reader of `language` opens on the mirror at `url`:
    `index_path(language)` there (None: the main language's `index.html`)."""
    return with_slash(url) + index_path(language)


# --- feed ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    summary: Listed
    id: str
    lang: str
    published: str | None
    updated: str
    content: str  # the full body's HTML; "" for a summary-only entry


def _entry(item: Listed, fallback: datetime, content: str) -> _Entry:
    newest = item.updated or item.published or fallback
    return _Entry(
        item,
        _urn(item.url or item.path),  # never the canonical URL: a page may claim another's
        _lang_attribute(item.language),
        _rfc3339(item.published) if item.published else None,
        _rfc3339(newest),
        content,
    )


def _newest(articles: Sequence[Listed]) -> datetime:
    moments = [aware(m) for item in articles for m in (item.updated, item.published) if m]
    return max(moments, default=EPOCH)


def _urn(name: str) -> str:
    return uuid.uuid5(_FEED_NAMESPACE, name).urn


def _xml_text(value: object) -> str:
    """`value` as text XML 1.0 can hold (no C0 controls but tab and newlines)."""
    return _NOT_XML.sub("", str(value))


# --- templates -----------------------------------------------------------------------


def _render(
    template: str, page: str, site: Site, language: str, *, pages: str | None, **context: Any
) -> bytes:
    """`template` rendered for the page at edition path `page`, chrome in `language`,
    linking the `-<pages>` forms of the shared pages (the unsuffixed ones for None)."""
    words = catalogue.translations(language)
    rendered = (
        _environment()
        .get_template(template)
        .render(
            site=site,
            page=page,
            url=functools.partial(relative_url, page),
            gettext=words.gettext,  # {% trans %} in `language`
            ngettext=words.ngettext,
            t=_messages(language),
            lang=_lang_attribute(language),
            base=base_language(language),
            dir=_direction(language),
            csp=Markup(CONTENT_SECURITY_POLICY),  # noqa: S704 -- a constant, no quote or tag
            paths=site_paths(pages),
            **context,
        )
    )
    return rendered.encode("utf-8")


def template_sources() -> dict[str, bytes]:
    """Every edition template's bytes by name: a build's cache key for its pages."""
    folder = template_root().joinpath(TEMPLATE_FOLDER)
    return {item.name: item.read_bytes() for item in folder.iterdir() if item.is_file()}


@functools.cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=TemplateLoader(TEMPLATE_FOLDER),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],  # {% trans %}: gettext comes with each page's context
    )
    environment.filters["xml"] = _xml_text
    return environment
