"""Pure renderers of the sample newsroom's HTML pages, in four CMS-like styles.

    wordpress  <article class="post"><div class="entry-content">, lazy data-src images
    drupal     <div class="node__content"><div class="field--name-body">, <picture>/webp
    newsapp    React-style app: JSON-LD NewsArticle, itemprop="articleBody",
               the image only inside <noscript>
    legacy     an old table-layout CMS in windows-1251 (charset only in <meta>)

Every page carries real chrome (see `chrome.py`) and, inside the body, things a
sanitiser must remove: a <script>, an onerror= attribute and a javascript: link.
Feed and sitemap renderers live in `feeds.py` and are re-exported here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from mirror.newsroom.articles import Article
from mirror.newsroom.chrome import (
    CHROME_MARKERS,
    CHROME_TEXT,
    IN_BODY_JUNK_MARKERS,
    OUTER_CHROME_MARKERS,
    RelatedLink,
    esc,
    related_block,
    site_footer,
    site_header,
)
from mirror.newsroom.feeds import (
    render_atom,
    render_news_sitemap,
    render_rss1,
    render_rss2,
    render_sitemap_index,
    render_sitemap_month,
)

__all__ = [
    "CHARSETS",
    "CHROME_MARKERS",
    "IN_BODY_JUNK_MARKERS",
    "OUTER_CHROME_MARKERS",
    "STYLES",
    "STYLE_SELECTORS",
    "PageContext",
    "StyleSelectors",
    "content_type_for",
    "render_article_page",
    "render_atom",
    "render_home_page",
    "render_news_sitemap",
    "render_rss1",
    "render_rss2",
    "render_sitemap_index",
    "render_sitemap_month",
]

STYLES: tuple[str, ...] = ("wordpress", "drupal", "newsapp", "legacy")
CHARSETS = {"wordpress": "utf-8", "drupal": "utf-8", "newsapp": "utf-8", "legacy": "windows-1251"}
PLACEHOLDER_GIF = "/static/placeholder.gif"


class StyleSelectors(NamedTuple):
    """Where the body is in a style's pages, and the junk inside it to drop."""

    article_selector: str
    drop_selectors: tuple[str, ...]


STYLE_SELECTORS: dict[str, StyleSelectors] = {
    "wordpress": StyleSelectors(
        "article.post div.entry-content",
        ("div.sharedaddy", "div.jp-relatedposts", "div.code-block"),
    ),
    "drupal": StyleSelectors(
        "div.node__content div.field--name-body",
        ("div.social-media-links", "aside.inline-related", "div.block-ad"),
    ),
    "newsapp": StyleSelectors(
        'div[itemprop="articleBody"]',
        (
            'div[data-component="ShareBar"]',
            'aside[data-component="ReadMore"]',
            'div[data-component="AdSlot"]',
        ),
    ),
    "legacy": StyleSelectors(
        "div.news-detail div.detail_text",
        ("div.share42init", "div.read-also", "div.banner-inline"),
    ),
}


@dataclass(frozen=True)
class PageContext:
    """What a page needs besides its article."""

    base_url: str  # "http://127.0.0.1:8080/"
    inline_links: tuple[Article, ...] = ()  # linked from inside the body (stable)
    related: tuple[Article, ...] = ()  # the related-links block (chrome; may change)
    chrome_version: int = 0
    image_size: tuple[int, int] = (1200, 800)  # pixels

    def url(self, article: Article) -> str:
        """The absolute URL of an article."""
        return self.base_url.rstrip("/") + article.path


def content_type_for(style: str) -> str:
    """The Content-Type header of a style's pages: legacy pages name no charset."""
    return "text/html" if style == "legacy" else "text/html; charset=utf-8"


def render_article_page(article: Article, style: str, context: PageContext) -> bytes:
    """The full HTML page of one article in `style`, encoded in the style's charset."""
    body = _BODY_RENDERERS[style](article, context)
    head = _HEAD_RENDERERS[style](article, context)
    home = context.base_url
    page_id = hashlib.sha256(article.path.encode()).hexdigest()[:10]
    links = tuple(RelatedLink(a.title, context.url(a)) for a in context.related)
    document = (
        f'<!DOCTYPE html>\n<html lang="{article.lang}"><head>{head}</head>'
        f'<body class="{_BODY_CLASS[style]}">{site_header(article.lang, home)}'
        f'<main id="main">{body}</main>{related_block(article.lang, links, home)}'
        f"{site_footer(article.lang, home, context.chrome_version, page_id)}</body></html>\n"
    )
    return document.encode(CHARSETS[style], errors="xmlcharrefreplace")


def render_home_page(articles: tuple[Article, ...], context: PageContext) -> bytes:
    """The front page: the newest articles, newest first, with the English chrome."""
    home = context.base_url
    items = "".join(
        f'<li class="teaser" lang="{a.lang}"><a href="{esc(context.url(a))}">{esc(a.title)}</a>'
        f"<p>{esc(a.lead)}</p></li>"
        for a in articles
    )
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(CHROME_TEXT['en'].site_name)}</title>"
        f'<link rel="canonical" href="{home}">'
        f'<link rel="alternate" type="application/rss+xml" href="{home}rss.xml">'
        f'<link rel="alternate" type="application/atom+xml" href="{home}atom.xml"></head>'
        f'<body class="home">{site_header("en", home)}<main><ul class="river">{items}</ul></main>'
        f"{site_footer('en', home, context.chrome_version, 'home')}</body></html>\n"
    )
    return document.encode()


# ---- pieces shared by the styles -------------------------------------------------


def _linked(paragraph: str, href: str, words: int = 3, attrs: str = "") -> str:
    """The paragraph's text with its first words wrapped in a link (text unchanged)."""
    parts = paragraph.split(" ", words)
    head, tail = " ".join(parts[:words]), " ".join(parts[words:])
    return f'<a href="{esc(href)}"{attrs}>{esc(head)}</a> {esc(tail)}'.rstrip()


def _paragraphs_html(article: Article, context: PageContext, tag: str = "p") -> list[str]:
    """Each paragraph as HTML: #2 links absolutely, #3 relatively, #4 via javascript:."""
    targets = [context.url(a) for a in context.inline_links[:1]]
    targets += [a.path for a in context.inline_links[1:2]]
    out = []
    for i, text in enumerate(article.paragraphs):
        if 1 <= i <= len(targets):
            inner = _linked(text, targets[i - 1])
        elif i == 3:
            inner = _linked(text, "javascript:void(0)", 2, ' onclick="courier.track(this)"')
        else:
            inner = esc(text)
        out.append(f"<{tag}>{inner}</{tag}>")
    return out


def _video(article: Article) -> str:
    """An embedded YouTube player."""
    video_id = hashlib.sha256(f"video:{article.id}".encode()).hexdigest()[:11]
    return (
        f'<iframe width="560" height="315" src="https://www.youtube.com/embed/{video_id}" '
        'title="YouTube video player" frameborder="0" allowfullscreen '
        "onerror=\"this.style.display='none'\"></iframe>"
    )


def _chart(article: Article) -> str:
    """An inline SVG bar chart (every third article), else nothing."""
    if article.id % 3:
        return ""
    digest = hashlib.sha256(f"chart:{article.id}".encode()).digest()
    bars = "".join(
        f'<rect x="{10 + i * 30}" y="{100 - b % 90}" width="20" height="{b % 90}" fill="#2a6"/>'
        for i, b in enumerate(digest[:8])
    )
    return (
        '<figure class="chart"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 260 110" '
        f'width="260" height="110" role="img"><title>Chart {article.id}</title>{bars}</svg>'
        "</figure>"
    )


def _inline_script(article: Article) -> str:
    """A script planted inside the body, as ad and analytics plugins do."""
    return (
        "<script>window.dataLayer=window.dataLayer||[];"
        f'dataLayer.push({{"event":"scroll","article":{article.id}}});</script>'
    )


def _media(context: PageContext, article: Article, ext: str = "jpg") -> str:
    return f"{context.base_url}media/{article.image}.{ext}"


def _image_size(context: PageContext) -> str:
    width, height = context.image_size
    return f'width="{width}" height="{height}"'


def _assemble(
    article: Article, context: PageContext, figure: str, junk: tuple[str, str, str]
) -> str:
    """Body HTML: figure, paragraphs, and between them ad, script, video, read-also, chart."""
    share, read_also, advert = junk
    after = {0: [advert], 1: [_inline_script(article)], 2: [_video(article), read_also]}
    after[3] = [_chart(article)]
    parts = [figure]
    paragraphs = _paragraphs_html(article, context)
    for i, paragraph in enumerate(paragraphs):
        parts += [paragraph, *after.pop(i, [])]
    for leftover in after.values():  # a short article still gets every piece
        parts += leftover
    return "".join([*parts, share])


def _read_also_link(article: Article, context: PageContext) -> tuple[str, str]:
    """(url, title) of the in-body "read also" link: stable, unlike the related block."""
    target = context.inline_links[-1] if context.inline_links else article
    return context.url(target), target.title


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _og_meta(article: Article, context: PageContext) -> str:
    """Canonical link, Open Graph and article:* meta tags shared by the modern styles."""
    url = esc(context.url(article))
    image = f'<meta property="og:image" content="{_media(context, article)}">'
    return (
        f'<link rel="canonical" href="{url}">'
        f'<meta property="og:type" content="article"><meta property="og:url" content="{url}">'
        f'<meta property="og:title" content="{esc(article.title)}">'
        f'<meta property="og:description" content="{esc(article.lead)}">'
        f"{image if article.image else ''}"
        f'<meta property="article:published_time" content="{_iso(article.published)}">'
        f'<meta property="article:modified_time" content="{_iso(article.modified)}">'
        f'<meta property="article:section" content="{esc(article.section)}">'
        f'<meta name="author" content="{esc(", ".join(article.authors))}">'
    )


# ---- wordpress ------------------------------------------------------------------


def _wordpress_head(article: Article, context: PageContext) -> str:
    return (
        '<meta charset="UTF-8"><meta name="viewport" content="width=device-width">'
        f"<title>{esc(article.title)} – {esc(CHROME_TEXT[article.lang].site_name)}</title>"
        f"{_og_meta(article, context)}"
        '<meta name="generator" content="WordPress 6.6.2">'
        f'<link rel="stylesheet" href="{context.base_url}wp-content/themes/courier/style.css">'
        f'<script src="{context.base_url}wp-includes/js/jquery/jquery.min.js"></script>'
    )


def _wordpress_body(article: Article, context: PageContext) -> str:
    text = CHROME_TEXT[article.lang]
    byline = "".join(
        f'<span class="author vcard"><a class="url fn n" href="{context.base_url}author/'
        f'{i}/">{esc(name)}</a></span>'
        for i, name in enumerate(article.authors)
    )
    url, title = _read_also_link(article, context)
    junk = (
        f'<div class="sharedaddy sd-sharing-enabled"><h3 class="sd-title">{esc(text.share)}</h3>'
        f'<a class="share-telegram" href="https://t.me/share/url?url={esc(context.url(article))}">'
        "Telegram</a></div>",
        f'<div class="jp-relatedposts"><em>{esc(text.read_also)}</em> '
        f'<a href="{esc(url)}">{esc(title)}</a></div>',
        f'<div class="code-block code-block-2"><span>{esc(text.advert)}</span>'
        '<ins class="adsbygoogle" data-ad-slot="4455"></ins></div>',
    )
    return (
        f'<article id="post-{article.id}" class="post type-post status-publish format-standard '
        f'category-{article.section.lower()}"><header class="entry-header">'
        f'<span class="cat-links">{esc(article.section)}</span>'
        f'<h1 class="entry-title">{esc(article.title)}</h1>'
        f'<p class="standfirst">{esc(article.lead)}</p><div class="entry-meta">'
        f'<span class="byline">{byline}</span> <span class="posted-on">'
        f'<time class="entry-date published" datetime="{_iso(article.published)}">'
        f"{article.published:%B %d, %Y}</time>"
        f'<time class="updated" datetime="{_iso(article.modified)}">'
        f"{article.modified:%B %d, %Y}</time></span></div></header>"
        f'<div class="entry-content">'
        f"{_assemble(article, context, _wordpress_figure(article, context), junk)}</div>"
        '<footer class="entry-footer"><span class="tags-links">'
        f"{esc(article.section)}</span></footer></article>"
    )


def _wordpress_figure(article: Article, context: PageContext) -> str:
    """A lazy image: placeholder src, real URL in data-src/data-srcset, <noscript> copy."""
    if not article.image:
        return ""
    jpg, webp = _media(context, article), _media(context, article, "webp")
    width = context.image_size[0]
    return (
        '<figure class="wp-block-image size-large">'
        f'<img src="{PLACEHOLDER_GIF}" data-src="{jpg}" '
        f'data-srcset="{jpg} {width}w, {webp} {width}w" data-sizes="auto" '
        f'class="lazyload wp-image-{article.id}" alt="{esc(article.section)}" '
        f"{_image_size(context)} onerror=\"this.src='{PLACEHOLDER_GIF}'\">"
        f'<noscript><img src="{jpg}" alt="{esc(article.section)}"></noscript>'
        f'<figcaption class="wp-element-caption">{esc(article.section)}</figcaption></figure>'
    )


# ---- drupal ---------------------------------------------------------------------


def _drupal_head(article: Article, context: PageContext) -> str:
    return (
        '<meta charset="utf-8"><meta name="Generator" content="Drupal 10 (https://www.drupal.org)">'
        f"<title>{esc(article.title)} | {esc(CHROME_TEXT[article.lang].site_name)}</title>"
        f"{_og_meta(article, context)}"
        f'<link rel="shortlink" href="{context.base_url}node/{article.id}">'
        f'<link rel="stylesheet" media="all" href="{context.base_url}sites/default/files/css/'
        'css_a1b2.css">'
    )


def _drupal_body(article: Article, context: PageContext) -> str:
    text = CHROME_TEXT[article.lang]
    authors = ", ".join(esc(a) for a in article.authors)
    url, title = _read_also_link(article, context)
    junk = (
        f'<div class="social-media-links"><span>{esc(text.share)}</span>'
        '<a href="https://t.me/share">tg</a><a href="https://vk.com/share.php">vk</a></div>',
        f'<aside class="inline-related"><strong>{esc(text.read_also)}</strong> '
        f'<a href="{esc(url)}">{esc(title)}</a></aside>',
        f'<div class="block-ad"><p>{esc(text.advert)}</p></div>',
    )
    return (
        f'<article data-history-node-id="{article.id}" class="node node--type-article '
        'node--view-mode-full">'
        f'<h1 class="page-title"><span class="field--name-title">{esc(article.title)}</span></h1>'
        f'<div class="node__meta"><span class="field--name-uid">{authors}</span> '
        f'<span class="field--name-created">{article.published:%d.%m.%Y %H:%M}</span></div>'
        '<div class="node__content"><div class="field field--name-field-lead">'
        f"{esc(article.lead)}</div>"
        '<div class="clearfix text-formatted field field--name-body '
        'field--type-text-with-summary field--label-hidden field__item">'
        f"{_assemble(article, context, _drupal_figure(article, context), junk)}</div>"
        f'<div class="field field--name-field-tags"><a href="{context.base_url}taxonomy/term/'
        f'{article.id % 9}">{esc(article.section)}</a></div></div></article>'
    )


def _drupal_figure(article: Article, context: PageContext) -> str:
    """A <picture> with a webp source and a natively lazy, root-relative <img>."""
    if not article.image:
        return ""
    path = f"/media/{article.image}"
    return (
        '<figure class="media media--type-image"><picture>'
        f'<source type="image/webp" srcset="{path}.webp">'
        f'<img loading="lazy" src="{path}.jpg" srcset="{path}.jpg 1x" {_image_size(context)} '
        f'alt="{esc(article.section)}" onerror="this.parentNode.hidden=true"></picture>'
        f"<figcaption>{esc(article.section)}</figcaption></figure>"
    )


# ---- newsapp --------------------------------------------------------------------


def _newsapp_head(article: Article, context: PageContext) -> str:
    data = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.title,
        "description": article.lead,
        "inLanguage": article.lang,
        "datePublished": _iso(article.published),
        "dateModified": _iso(article.modified),
        "articleSection": article.section,
        "author": [{"@type": "Person", "name": a} for a in article.authors],
        "image": [_media(context, article)] if article.image else [],
        "mainEntityOfPage": context.url(article),
        "publisher": {"@type": "NewsMediaOrganization", "name": "Zarechensk Courier"},
    }
    ld = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return (
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<title data-rh="true">{esc(article.title)}</title>{_og_meta(article, context)}'
        f'<script type="application/ld+json">{ld}</script>'
        f'<link rel="preload" as="script" href="{context.base_url}_next/static/chunks/main.js">'
    )


def _newsapp_body(article: Article, context: PageContext) -> str:
    text = CHROME_TEXT[article.lang]
    authors = "".join(
        f'<a rel="author" itemprop="author" href="/authors/{i}">{esc(a)}</a>'
        for i, a in enumerate(article.authors)
    )
    url, title = _read_also_link(article, context)
    junk = (
        f'<div data-component="ShareBar" class="ShareBar_root"><span>{esc(text.share)}</span>'
        '<button aria-label="copy link">⧉</button></div>',
        f'<aside data-component="ReadMore" class="ReadMore_root"><p>{esc(text.read_also)}</p>'
        f'<a href="{esc(url)}">{esc(title)}</a></aside>',
        '<div data-component="AdSlot" class="AdSlot_root" data-slot="mid">'
        f"{esc(text.advert)}</div>",
    )
    next_data = json.dumps({"props": {"pageProps": {"id": article.id}}, "page": "/[...slug]"})
    return (
        '<div id="__next"><article class="Article_root" itemscope '
        'itemtype="https://schema.org/NewsArticle">'
        f'<div class="Article_rubric">{esc(article.section)}</div>'
        f'<h1 itemprop="headline" class="Article_title">{esc(article.title)}</h1>'
        f'<p class="Article_lead" itemprop="description">{esc(article.lead)}</p>'
        f'<div class="Article_meta">{authors}'
        f'<time itemprop="datePublished" datetime="{_iso(article.published)}">'
        f"{article.published:%d.%m.%Y}</time>"
        f'<meta itemprop="dateModified" content="{_iso(article.modified)}"></div>'
        f'<div itemprop="articleBody" class="Article_body">'
        f"{_assemble(article, context, _newsapp_figure(article, context), junk)}</div>"
        f'</article></div><script id="__NEXT_DATA__" type="application/json">{next_data}</script>'
        f'<script src="{context.base_url}_next/static/chunks/main.js" defer></script>'
    )


def _newsapp_figure(article: Article, context: PageContext) -> str:
    """A JS-rendered image: an empty placeholder, the only real <img> inside <noscript>."""
    if not article.image:
        return ""
    return (
        '<figure data-component="Image" class="Image_root">'
        '<div class="Image_placeholder" style="padding-bottom:66.6%"></div>'
        f'<noscript><img src="{_media(context, article)}" alt="{esc(article.section)}" '
        f"{_image_size(context)}></noscript>"
        f'<figcaption class="Image_caption">{esc(article.section)}</figcaption></figure>'
    )


# ---- legacy (windows-1251) ------------------------------------------------------


def _legacy_head(article: Article, context: PageContext) -> str:
    return (
        '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
        f"<title>{esc(article.title)}</title>"
        f'<link rel="canonical" href="{esc(context.url(article))}">'
        f'<meta name="author" content="{esc(", ".join(article.authors))}">'
        f'<meta name="date" content="{_iso(article.published)}">'
        f'<meta name="last-modified" content="{_iso(article.modified)}">'
        f'<meta name="description" content="{esc(article.lead)}">'
    )


def _legacy_body(article: Article, context: PageContext) -> str:
    text = CHROME_TEXT[article.lang]
    url, title = _read_also_link(article, context)
    junk = (
        f'<div class="share42init" data-title="{esc(article.title)}">{esc(text.share)}</div>',
        f'<div class="read-also">{esc(text.read_also)} <a href="{esc(url)}">{esc(title)}</a></div>',
        f'<div class="banner-inline"><a href="/bitrix/rk.php?id=12">{esc(text.advert)}</a></div>',
    )
    figure = (
        f'<img src="/media/{article.image}.jpg" border="0" align="left" '
        f'{_image_size(context)} alt="" onerror="this.style.display=\'none\'">'
        if article.image
        else ""
    )
    return (
        '<table width="100%" cellpadding="0" cellspacing="0"><tr><td valign="top">'
        f'<div class="news-detail"><span class="news-date-time">'
        f"{article.published:%d.%m.%Y %H:%M}</span>"
        f"<h3>{esc(article.title)}</h3>"
        f'<div class="news-author">{esc(", ".join(article.authors))}</div>'
        f'<div class="preview_text"><b>{esc(article.lead)}</b></div>'
        f'<div class="detail_text">{_assemble(article, context, figure, junk)}</div>'
        "</div></td></tr></table>"
    )


_HEAD_RENDERERS = {
    "wordpress": _wordpress_head,
    "drupal": _drupal_head,
    "newsapp": _newsapp_head,
    "legacy": _legacy_head,
}
_BODY_RENDERERS = {
    "wordpress": _wordpress_body,
    "drupal": _drupal_body,
    "newsapp": _newsapp_body,
    "legacy": _legacy_body,
}
_BODY_CLASS = {
    "wordpress": "post-template-default single single-post",
    "drupal": "path-node page-node-type-article",
    "newsapp": "app",
    "legacy": "bx-core",
}
