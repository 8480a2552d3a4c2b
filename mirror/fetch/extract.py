"""One article out of one origin page: metadata, a sanitised body and its images.

`extract_article(html, url, ...)` takes the page's text and returns a frozen
`ExtractedArticle`. The body comes from the configured CSS selector when there is
one, else from trafilatura's automatic extraction; either way it goes through
`mirror.fetch.sanitise`. A page with no article text is an `ExtractError`.

`content_hash` covers what a reader sees (title, authors, dates, lead, language,
body), never the raw page, so a change in the origin's chrome changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import lxml.html
from cssselect import SelectorError
from lxml import etree
from lxml.cssselect import CSSSelector

from mirror.errors import ExtractError
from mirror.fetch.bodies import choose_body
from mirror.fetch.bylines import strip_meta_lines
from mirror.fetch.figures import (
    Figure,
    lead_figure,
    named_image,
    page_figures,
    restore_captions,
)
from mirror.fetch.records import ExtractedArticle, ImageRef
from mirror.fetch.sanitise import (
    absolute_http_url,
    drop_unusable_images,
    replace_embeds,
    sanitise_body,
)


@dataclass(frozen=True)
class PageMetadata:
    """What the page says about its article outside the body."""

    canonical_url: str
    title: str
    authors: tuple[str, ...]
    published: datetime | None
    updated: datetime | None
    description: str
    language: str


# Removed from a page before its body is taken, whatever the selector. Not <form>: ASP.NET
# and many CMS pages wrap the whole page, article included, in one.
JUNK_TAGS = (
    "script", "style", "noscript", "template", "nav", "aside", "button",
    "input", "select", "textarea", "dialog", "svg", "link", "meta",
)  # fmt: skip
_HIDDEN = (
    "//*[@hidden] | //*[contains(translate(@style, ' ', ''), 'display:none')]"
    " | //*[contains(translate(@style, ' ', ''), 'visibility:hidden')]"
)
LAZY_SRC_ATTRIBUTES = ("data-src", "data-lazy-src", "data-original", "data-url")
SRCSET_ATTRIBUTES = ("data-srcset", "data-lazy-srcset", "srcset")
LAZY_ATTRIBUTES = (*LAZY_SRC_ATTRIBUTES, *SRCSET_ATTRIBUTES, "sizes", "data-sizes", "loading")
ARTICLE_TYPES = frozenset(
    {"Article", "NewsArticle", "BlogPosting", "ReportageNewsArticle", "AnalysisNewsArticle",
     "OpinionNewsArticle", "BackgroundNewsArticle", "LiveBlogPosting", "Report"}
)  # fmt: skip
PUBLISHED_META = (
    "article:published_time", "datepublished", "pubdate", "publishdate", "date",
    "dc.date", "dc.date.issued", "dcterms.created", "parsely-pub-date", "sailthru.date",
)  # fmt: skip
UPDATED_META = ("article:modified_time", "og:updated_time", "datemodified", "dcterms.modified")
MAX_DATE_CHARS = 64
_SRCSET_SPLIT = re.compile(r",\s+|(?<=\d[wx]),")
_AUTHOR_SEPARATOR = re.compile(r"\s*[,;]\s*")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*>", re.I)


def extract_article(
    html: str,
    url: str,
    *,
    selector: str = "",
    drop_selectors: tuple[str, ...] = (),
    default_language: str = "en",
) -> ExtractedArticle:
    """Extract the article of the page `html` that was fetched from `url`."""
    doc = parse_page(html)
    base_url = page_base_url(doc, url)
    resolve_lazy_images(doc, base_url)
    meta = read_metadata(doc, url, default_language)
    linked = json_ld_article(doc)  # read before remove_chrome drops scripts and metas
    witness = linked.get("articleBody")
    named = named_image(meta_values(doc), linked, base_url)
    remove_chrome(doc, drop_selectors, base_url)
    figures = page_figures(doc, base_url)
    body_html, extractor = extract_body(
        doc,
        base_url,
        selector,
        meta.title,
        witness if isinstance(witness, str) else "",
        canonical_url=meta.canonical_url,
    )
    stripped = strip_meta_lines(body_html, meta.authors, meta.published)
    body_html = with_figures(doc, stripped.body_html, figures, named, base_url)
    if not meta.authors and stripped.names:
        meta = replace(meta, authors=stripped.names)
    fragment = lxml.html.fragment_fromstring(body_html, create_parent="div")
    lead = meta.description or first_paragraph(fragment)
    return _article(url, meta, body_html, extractor, lead, body_images(fragment))


def _article(
    url: str,
    meta: PageMetadata,
    body_html: str,
    extractor: str,
    lead: str,
    images: tuple[ImageRef, ...],
) -> ExtractedArticle:
    fields = {
        "title": meta.title,
        "authors": list(meta.authors),
        "published": _iso(meta.published),
        "updated": _iso(meta.updated),
        "lead": lead,
        "language": meta.language,
        "body_html": body_html,
    }
    return ExtractedArticle(
        url=url,
        canonical_url=meta.canonical_url,
        title=meta.title,
        authors=meta.authors,
        published=meta.published,
        updated=meta.updated,
        lead=lead,
        language=meta.language,
        body_html=body_html,
        images=images,
        content_hash=content_hash(fields),
        extractor=extractor,
    )


def content_hash(fields: dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of the reader-visible fields."""
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# The page


def parse_page(html: str) -> lxml.html.HtmlElement:
    """The page as an lxml document; `ExtractError` if it is empty or not HTML."""
    html = _XML_DECLARATION.sub("", html, count=1)
    if not html.strip():
        raise ExtractError("empty page")
    try:
        doc = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError) as exc:
        raise ExtractError(f"page is not HTML: {exc}") from exc
    if not isinstance(doc, lxml.html.HtmlElement):
        raise ExtractError("page is not HTML")
    return doc


def page_base_url(doc: lxml.html.HtmlElement, url: str) -> str:
    """The URL relative links resolve against: <base href> if usable, else `url`."""
    for base in doc.iter("base"):
        resolved = absolute_http_url(base.get("href") or "", url)
        if resolved:
            return resolved
    return url


def resolve_lazy_images(doc: lxml.html.HtmlElement, base_url: str) -> None:
    """Give each <img> its real source: noscript copies, data-src, largest srcset."""
    for noscript in list(doc.iter("noscript")):
        _unwrap_noscript_image(noscript)
    for image in doc.iter("img"):
        source = _real_source(image)
        if source:
            image.set("src", source)
        for attribute in LAZY_ATTRIBUTES:
            image.attrib.pop(attribute, None)


def _unwrap_noscript_image(noscript: lxml.html.HtmlElement) -> None:
    """Put a <noscript>'s image in its place, dropping the lazy placeholder before it."""
    if next(noscript.iter("img"), None) is None:
        return
    previous = noscript.getprevious()
    if previous is not None and previous.tag == "img" and _is_placeholder(previous):
        previous.drop_tree()
    noscript.drop_tag()


def _is_placeholder(image: lxml.html.HtmlElement) -> bool:
    src = (image.get("src") or "").strip()
    lazy = any(image.get(name) for name in (*LAZY_SRC_ATTRIBUTES, *SRCSET_ATTRIBUTES))
    return lazy or not src or src.startswith("data:") or "lazy" in (image.get("class") or "")


def _real_source(image: lxml.html.HtmlElement) -> str:
    """The best source an <img> names, or "" to keep its src."""
    srcsets = [image.get(name) for name in SRCSET_ATTRIBUTES]
    picture = next(image.iterancestors("picture"), None)  # libxml2 may nest img in source
    if picture is not None:
        for source in picture.iter("source"):
            srcsets += [source.get(name) for name in SRCSET_ATTRIBUTES]
    for srcset in srcsets:
        largest = largest_candidate(srcset or "")
        if largest:
            return largest
    for name in LAZY_SRC_ATTRIBUTES:
        value = (image.get(name) or "").strip()
        if value and not value.startswith("data:"):
            return value
    return ""


def largest_candidate(srcset: str) -> str:
    """The URL of the widest (or densest) candidate of a srcset, "" if none."""
    best, best_size = "", -1.0
    for candidate in _SRCSET_SPLIT.split(srcset.strip()):
        parts = candidate.split()
        if not parts or parts[0].startswith("data:"):
            continue
        size = _descriptor_size(parts[1] if len(parts) > 1 else "1x")
        if size > best_size:
            best, best_size = parts[0].rstrip(","), size
    return best


def _descriptor_size(descriptor: str) -> float:
    try:
        value = float(descriptor[:-1])
    except ValueError:
        return 0.0
    return value if descriptor.endswith("w") else value * 1000  # 2x of ~1000 px


def remove_chrome(doc: lxml.html.HtmlElement, drop_selectors: Iterable[str], base_url: str) -> None:
    """Remove junk tags, hidden elements, tracker pixels and what drop selectors match."""
    doomed = [*doc.iter(*JUNK_TAGS), *doc.xpath(_HIDDEN)]
    for selector in drop_selectors:
        doomed += select(doc, selector)
    for element in doomed:
        if element.getparent() is not None and element is not doc:
            element.drop_tree()
    drop_unusable_images(doc, base_url)


@lru_cache(maxsize=64)
def compiled_selector(selector: str) -> CSSSelector:
    """A CSS selector compiled once per process; `ExtractError` if it is invalid."""
    try:
        return CSSSelector(selector)
    except (SelectorError, SyntaxError, etree.XPathError) as exc:
        raise ExtractError(f"invalid CSS selector {selector!r}: {exc}") from exc


def select(doc: lxml.html.HtmlElement, selector: str) -> list[lxml.html.HtmlElement]:
    """The elements of `doc` that the CSS `selector` matches, in document order."""
    found = compiled_selector(selector)(doc)
    if not isinstance(found, list):
        return []
    return [item for item in found if isinstance(item, lxml.html.HtmlElement)]


# Metadata


def read_metadata(doc: lxml.html.HtmlElement, url: str, default_language: str) -> PageMetadata:
    """Canonical URL, title, authors, dates, description and language of the page."""
    metas = meta_values(doc)
    linked = json_ld_article(doc)
    title = _title(doc, metas, linked)
    if not title:
        raise ExtractError("page has no title")
    return PageMetadata(
        canonical_url=_canonical_url(doc, metas, url),
        title=title,
        authors=_authors(doc, metas, linked),
        published=_first_date([linked.get("datePublished"), *_metas(metas, PUBLISHED_META)])
        or _time_element(doc),
        updated=_first_date([linked.get("dateModified"), *_metas(metas, UPDATED_META)]),
        description=_clean(metas.get("og:description") or metas.get("description")),
        language=_language(doc, metas, linked, default_language),
    )


def meta_values(doc: lxml.html.HtmlElement) -> dict[str, str]:
    """The first content of each <meta> by lower-cased property, name or itemprop."""
    values: dict[str, str] = {}
    for meta in doc.iter("meta"):
        key = meta.get("property") or meta.get("name") or meta.get("itemprop")
        content = meta.get("content")
        if key and content and content.strip():
            values.setdefault(key.strip().lower(), content.strip())
    return values


def _metas(metas: dict[str, str], keys: Iterable[str]) -> list[str]:
    return [metas[key] for key in keys if key in metas]


def json_ld_article(doc: lxml.html.HtmlElement) -> dict[str, Any]:
    """The first Article-like JSON-LD object of the page, or {}."""
    for script in doc.xpath("//script[@type='application/ld+json']"):
        try:
            data = json.loads(script.text or "")
        except (ValueError, RecursionError):
            continue
        for item in _json_ld_objects(data):
            types = item.get("@type")
            type_names = types if isinstance(types, list) else [types]
            if any(isinstance(name, str) and name in ARTICLE_TYPES for name in type_names):
                return item
    return {}


def _json_ld_objects(data: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every object of a JSON-LD document, top level and @graph members."""
    if depth > 4:
        return
    if isinstance(data, list):
        for item in data:
            yield from _json_ld_objects(item, depth + 1)
    elif isinstance(data, dict):
        yield data
        yield from _json_ld_objects(data.get("@graph"), depth + 1)


def _title(doc: lxml.html.HtmlElement, metas: dict[str, str], linked: dict[str, Any]) -> str:
    headline = linked.get("headline")
    candidates = [headline if isinstance(headline, str) else "", metas.get("og:title")]
    candidates += [h1.text_content() for h1 in doc.iter("h1")][:1]
    candidates += [title.text_content() for title in doc.iter("title")][:1]
    return next((_clean(text) for text in candidates if _clean(text)), "")


def _canonical_url(doc: lxml.html.HtmlElement, metas: dict[str, str], url: str) -> str:
    for link in doc.xpath("//link[@href]"):
        if "canonical" in (link.get("rel") or "").lower().split():
            resolved = absolute_http_url(link.get("href") or "", url)
            if resolved:
                return resolved
    return absolute_http_url(metas.get("og:url", ""), url) or url


def _authors(
    doc: lxml.html.HtmlElement, metas: dict[str, str], linked: dict[str, Any]
) -> tuple[str, ...]:
    names = _json_ld_names(linked.get("author") or linked.get("creator"))
    if not names:
        names = [
            name
            for value in _metas(metas, ("author", "article:author", "dc.creator"))
            if not value.startswith(("http://", "https://"))
            for name in _AUTHOR_SEPARATOR.split(value)  # "A, B" names two people
        ]
    if not names:
        names = [link.text_content() for link in doc.xpath("//a[@rel='author']")]
    return tuple(dict.fromkeys(name for name in map(_clean, names) if name))


def _json_ld_names(value: Any) -> list[str]:
    """Names of a JSON-LD author value: a string, a Person, or a list of them."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        name = value.get("name")
        return [name] if isinstance(name, str) else []
    if isinstance(value, list):
        return [name for item in value[:50] for name in _json_ld_names(item)]
    return []


def _language(
    doc: lxml.html.HtmlElement, metas: dict[str, str], linked: dict[str, Any], default: str
) -> str:
    in_language = linked.get("inLanguage")
    if isinstance(in_language, dict):
        in_language = in_language.get("alternateName") or in_language.get("name")
    candidates = [in_language, doc.get("lang"), doc.get("xml:lang")]
    candidates += [metas.get("og:locale"), default]
    for candidate in candidates:
        tag = language_tag(candidate if isinstance(candidate, str) else "")
        if tag:
            return tag
    return default


def language_tag(value: str) -> str:
    """`value` as a tidy BCP 47 tag ("en_gb" → "en-GB"), or "" if it is not one."""
    parts = value.strip().replace("_", "-").split("-")
    if not re.fullmatch(r"[A-Za-z]{2,3}", parts[0]):
        return ""
    tidy = [parts[0].lower()]
    for part in parts[1:]:
        if not re.fullmatch(r"[A-Za-z0-9]{1,8}", part):
            break
        tidy.append(part.upper() if len(part) == 2 else part.title() if len(part) == 4 else part)
    return "-".join(tidy)


def _time_element(doc: lxml.html.HtmlElement) -> datetime | None:
    scoped = doc.xpath("//article//time[@datetime] | //main//time[@datetime]")
    elements = scoped or doc.xpath("//time[@datetime]")
    return _first_date([element.get("datetime") for element in elements[:5]])


def _first_date(values: Iterable[Any]) -> datetime | None:
    for value in values:
        parsed = parse_datetime(value if isinstance(value, str) else "")
        if parsed is not None:
            return parsed
    return None


def parse_datetime(text: str) -> datetime | None:
    """ISO 8601 or RFC 2822 text as an aware UTC datetime (naive taken as UTC)."""
    text = text.strip()
    if not text or len(text) > MAX_DATE_CHARS:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        try:
            value = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# The body


def extract_body(
    doc: lxml.html.HtmlElement,
    base_url: str,
    selector: str,
    title: str,
    article_body: str = "",
    *,
    canonical_url: str = "",
) -> tuple[str, str]:
    """The sanitised body and which extractor found it; `ExtractError` if none did.

    `article_body` is the page's schema.org articleBody (plain text), a witness only;
    `canonical_url` the page's canonical address (its host is the page's own, too).
    """
    if selector:
        body = _finish_body(selected_body(doc, selector), base_url, title)
        if body:
            return body, "selector"
    found = automatic_body(doc, base_url, article_body, title, canonical_url)
    body = _finish_body(found, base_url, title)
    if body:
        return body, "automatic"
    raise ExtractError("no article text found on the page")


def selected_body(doc: lxml.html.HtmlElement, selector: str) -> lxml.html.HtmlElement | None:
    """Every outermost element `selector` matches, in one wrapper; None if none."""
    matches = select(doc, selector)
    matched = set(matches)
    outermost = [
        element
        for element in matches
        if not any(ancestor in matched for ancestor in element.iterancestors())
    ]
    if not outermost:
        return None
    wrapper = lxml.html.Element("div")
    wrapper.extend(outermost)
    return wrapper


def automatic_body(
    doc: lxml.html.HtmlElement,
    base_url: str,
    article_body: str = "",
    title: str = "",
    canonical_url: str = "",
) -> lxml.html.HtmlElement | None:
    """The best-supported article body of the extractors (`mirror.fetch.bodies`); None if none."""
    replace_embeds(doc, base_url)
    return choose_body(doc, base_url, article_body, title, canonical_url)


def _finish_body(element: lxml.html.HtmlElement | None, base_url: str, title: str) -> str:
    """Sanitised HTML of `element` less its title heading; "" if it holds no text."""
    if element is None:
        return ""
    for heading in list(element.iter("h1")):
        if _clean(heading.text_content()) == title:
            heading.drop_tree()
    if not _clean(element.text_content()):
        return ""
    html = lxml.html.tostring(element, encoding="unicode", with_tail=False)
    body = sanitise_body(html, base_url)
    return body if _has_text(body) else ""


def _has_text(body_html: str) -> bool:
    return bool(body_html) and bool(
        _clean(lxml.html.fragment_fromstring(body_html, create_parent="div").text_content())
    )


def with_figures(
    doc: lxml.html.HtmlElement,
    body_html: str,
    figures: dict[str, Figure],
    named: Figure | None,
    base_url: str,
) -> str:
    """The body with its figures' captions and credits, led by the page's lead image."""
    body_html = restore_captions(body_html, figures)
    lead = lead_figure(doc, named, figures, body_html)
    return sanitise_body((lead.html() if lead else "") + body_html, base_url)


def first_paragraph(fragment: lxml.html.HtmlElement) -> str:
    """Text of the body's first non-empty paragraph."""
    for paragraph in fragment.iter("p"):
        text = _clean(paragraph.text_content())
        if text:
            return text
    return ""


def body_images(fragment: lxml.html.HtmlElement) -> tuple[ImageRef, ...]:
    """Each distinct image of the sanitised body, in order."""
    images: dict[str, ImageRef] = {}
    for image in fragment.iter("img"):
        src = image.get("src") or ""
        if src and src not in images:
            images[src] = ImageRef(url=src, alt=_clean(image.get("alt")))
    return tuple(images.values())


def _clean(text: str | None) -> str:
    return " ".join(text.split()) if text else ""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
