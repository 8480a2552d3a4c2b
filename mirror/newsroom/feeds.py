"""Pure renderers of the newsroom's feeds (RSS 2.0, RSS 1.0, Atom) and sitemaps
(index, monthly, Google News). Articles in, UTF-8 XML bytes out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime

from mirror.newsroom.articles import Article
from mirror.newsroom.chrome import CHROME_TEXT, esc

SITE_NAME = CHROME_TEXT["en"].site_name
DESCRIPTION = "Independent news from Zarechensk and the Tikhaya valley"
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_XML = '<?xml version="1.0" encoding="utf-8"?>\n'


def _url(base_url: str, article: Article) -> str:
    return esc(base_url.rstrip("/") + article.path)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def last_modified(articles: Sequence[Article]) -> datetime:
    """The newest `modified` among the articles (a fixed old date for none)."""
    return max((a.modified for a in articles), default=_EPOCH)


def render_rss2(articles: Sequence[Article], base_url: str) -> bytes:
    """RSS 2.0 with guid, pubDate, dc:creator, category and description."""
    items = "".join(_rss2_item(a, base_url) for a in articles)
    return (
        f'{_XML}<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
        f"<title>{esc(SITE_NAME)}</title><link>{esc(base_url)}</link>"
        f"<description>{esc(DESCRIPTION)}</description><language>en</language>"
        f'<atom:link href="{esc(base_url)}rss.xml" rel="self" type="application/rss+xml"/>'
        f"<lastBuildDate>{format_datetime(last_modified(articles), usegmt=True)}</lastBuildDate>"
        f"{items}</channel></rss>\n"
    ).encode()


def _rss2_item(article: Article, base_url: str) -> str:
    url = _url(base_url, article)
    creators = "".join(f"<dc:creator>{esc(a)}</dc:creator>" for a in article.authors)
    return (
        f"<item><title>{esc(article.title)}</title><link>{url}</link>"
        f'<guid isPermaLink="true">{url}</guid>'
        f"<pubDate>{format_datetime(article.published, usegmt=True)}</pubDate>"
        f"{creators}<category>{esc(article.section)}</category>"
        f"<description>{esc(article.lead)}</description></item>"
    )


def render_atom(articles: Sequence[Article], base_url: str) -> bytes:
    """Atom 1.0 with published, updated, authors and summary."""
    entries = "".join(_atom_entry(a, base_url) for a in articles)
    return (
        f'{_XML}<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">'
        f"<title>{esc(SITE_NAME)}</title><subtitle>{esc(DESCRIPTION)}</subtitle>"
        f"<id>{esc(base_url)}</id><updated>{_iso(last_modified(articles))}</updated>"
        f'<link rel="self" type="application/atom+xml" href="{esc(base_url)}atom.xml"/>'
        f'<link rel="alternate" type="text/html" href="{esc(base_url)}"/>'
        f"{entries}</feed>\n"
    ).encode()


def _atom_entry(article: Article, base_url: str) -> str:
    url = _url(base_url, article)
    authors = "".join(f"<author><name>{esc(a)}</name></author>" for a in article.authors)
    return (
        f'<entry xml:lang="{article.lang}"><title>{esc(article.title)}</title>'
        f'<link rel="alternate" type="text/html" href="{url}"/><id>{url}</id>'
        f"<published>{_iso(article.published)}</published>"
        f"<updated>{_iso(article.modified)}</updated>{authors}"
        f'<category term="{esc(article.section)}"/>'
        f'<summary type="text">{esc(article.lead)}</summary></entry>'
    )


def render_rss1(articles: Sequence[Article], base_url: str) -> bytes:
    """RSS 1.0 (RDF) with Dublin Core dates and creators."""
    seq = "".join(f'<rdf:li rdf:resource="{_url(base_url, a)}"/>' for a in articles)
    items = "".join(_rss1_item(a, base_url) for a in articles)
    return (
        f'{_XML}<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<channel rdf:about="{esc(base_url)}rss1.xml"><title>{esc(SITE_NAME)}</title>'
        f"<link>{esc(base_url)}</link><description>{esc(DESCRIPTION)}</description>"
        f"<items><rdf:Seq>{seq}</rdf:Seq></items></channel>{items}</rdf:RDF>\n"
    ).encode()


def _rss1_item(article: Article, base_url: str) -> str:
    url = _url(base_url, article)
    return (
        f'<item rdf:about="{url}"><title>{esc(article.title)}</title><link>{url}</link>'
        f"<description>{esc(article.lead)}</description>"
        f"<dc:date>{_iso(article.published)}</dc:date>"
        f"<dc:creator>{esc(', '.join(article.authors))}</dc:creator>"
        f"<dc:language>{article.lang}</dc:language></item>"
    )


def render_sitemap_index(months: Sequence[tuple[str, datetime]], base_url: str) -> bytes:
    """A sitemap index of monthly sitemaps: (YYYY-MM, lastmod) pairs."""
    entries = "".join(
        f"<sitemap><loc>{esc(base_url)}sitemaps/{month}.xml</loc>"
        f"<lastmod>{_iso(lastmod)}</lastmod></sitemap>"
        for month, lastmod in months
    )
    return (
        f'{_XML}<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"{entries}</sitemapindex>\n"
    ).encode()


def render_sitemap_month(articles: Sequence[Article], base_url: str) -> bytes:
    """One month's sitemap: every article URL with its lastmod."""
    entries = "".join(
        f"<url><loc>{_url(base_url, a)}</loc><lastmod>{_iso(a.modified)}</lastmod></url>"
        for a in articles
    )
    return (
        f'{_XML}<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>\n'
    ).encode()


def render_news_sitemap(articles: Sequence[Article], base_url: str) -> bytes:
    """A Google News sitemap of the given (newest) articles."""
    entries = "".join(
        f"<url><loc>{_url(base_url, a)}</loc><news:news><news:publication>"
        f"<news:name>{esc(CHROME_TEXT[a.lang].site_name)}</news:name>"
        f"<news:language>{a.lang}</news:language></news:publication>"
        f"<news:publication_date>{_iso(a.published)}</news:publication_date>"
        f"<news:title>{esc(a.title)}</news:title></news:news></url>"
        for a in articles
    )
    return (
        f'{_XML}<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
        f"{entries}</urlset>\n"
    ).encode()
