"""Article bodies made safe to publish: an allow-list of tags and attributes.

`sanitise_body(html, base_url)` returns a fragment that holds only plain text
markup, links (http/https, tracking parameters removed) and images, every URL made
absolute against `base_url` so later stages can rewrite them. Embedded players (iframe, video,
embed, object) become a paragraph with a link: a static mirror plays no video. That
paragraph (or span, inside a paragraph) is our note, not the article's text: it keeps
class="note" (NOTE_CLASS), the one class value the allow-list lets through, so the built
page shows it as a note and a scorer can leave it out. Other spans lose their tags.
The same input always gives the same output.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import lxml.html
import nh3
from lxml import etree
from lxml.etree import ParserError

from mirror.fetch.urls import without_trackers

ALLOWED_TAGS = frozenset(
    {
        "p", "h2", "h3", "h4", "h5", "h6", "blockquote", "ul", "ol", "li",
        "figure", "figcaption", "img", "a", "em", "strong", "b", "i", "u", "s",
        "sub", "sup", "br", "hr", "pre", "code", "table", "thead", "tbody", "tr",
        "th", "td", "dl", "dt", "dd", "abbr", "cite", "q", "time", "small",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "abbr": {"title"},
    "time": {"datetime"},
    "th": {"colspan", "rowspan"},
    "td": {"colspan", "rowspan"},
    "p": {"class"},
    "span": {"class"},
}
NOTE_CLASS = "note"  # our own lines ("Video: <url>"); the only class value kept
NOTE_TAGS = frozenset({"p", "span"})
NOTE_PREFIX = "Video: "  # stored in English; the pages and the digest word it (catalogue)
# Removed together with everything inside them.
DROPPED_WITH_CONTENT = frozenset(
    {
        "script", "style", "noscript", "template", "iframe", "object", "embed",
        "svg", "math", "form", "input", "button", "select", "textarea", "video",
        "audio", "canvas", "frameset", "frame", "title", "head", "dialog",
    }
)  # fmt: skip
EMBED_TAGS = ("iframe", "video", "embed", "object")
VOID_IN_HTML5 = frozenset({"embed"})  # ...but not to libxml2's HTML 4 parser
URL_SCHEMES = frozenset({"http", "https"})
_PLAYER_PAGES = (
    (
        re.compile(r"https?://(?:www\.)?youtube(?:-nocookie)?\.com/embed/([\w-]{6,20})"),
        "https://www.youtube.com/watch?v={}",
    ),
    (re.compile(r"https?://player\.vimeo\.com/video/(\d+)"), "https://vimeo.com/{}"),
)
TRACKER_MAX_SIDE = 2  # pixels: an <img> this small in either dimension is a tracker


def sanitise_body(html: str, base_url: str) -> str:
    """Return `html` reduced to the allow-list, with absolute http(s) URLs only."""
    prepared = _prepare(html, base_url)
    cleaned: str = nh3.clean(
        prepared,
        tags=set(ALLOWED_TAGS | {"span"}),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=set(URL_SCHEMES),
        url_relative=("rewrite_with_base", base_url),
        link_rel=None,
        strip_comments=True,
        attribute_filter=_untracked_links,
    )
    return cleaned.strip()


def _untracked_links(tag: str, attribute: str, value: str) -> str | None:
    """Links lose their tracking parameters (utm_*, fbclid, yclid, ...); notes keep their class.

    A class survives only as exactly NOTE_CLASS on a p or span; any other is dropped.
    """
    if attribute == "class":
        return value if tag in NOTE_TAGS and value == NOTE_CLASS else None
    return without_trackers(value) if (tag, attribute) == ("a", "href") else value


def _prepare(html: str, base_url: str) -> str:
    """Turn embeds into links and drop tracker or sourceless images (lxml pass)."""
    if not html.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (ParserError, ValueError):
        return html
    replace_embeds(root, base_url)
    mark_notes(root)
    drop_unusable_images(root, base_url)
    unwrap_dead_links(root, base_url)
    unwrap_plain_spans(root)
    for heading in root.iter("h1"):
        heading.tag = "h2"  # the page's own title is the only h1
    return str(lxml.html.tostring(root, encoding="unicode"))


def replace_embeds(root: lxml.html.HtmlElement, base_url: str) -> None:
    """Replace each embedded player under `root` with "Video: <url>", the URL a link.

    That is a paragraph of its own, or inline text when the player sat inside a
    paragraph (a paragraph cannot hold another).
    """
    for element in list(root.iter(*EMBED_TAGS)):
        if _inside_embed(element):
            continue
        url = embed_url(element, base_url)
        link = _video_link(url, element) if url else None
        if element.tag in VOID_IN_HTML5:
            element.drop_tag()  # libxml2 nests what follows an <embed> inside it
        else:
            element.drop_tree()
        if link is not None and link.tag == "p":
            _lift_out_of_wrappers(link, root)


def _video_link(url: str, element: lxml.html.HtmlElement) -> etree._Element:
    """Put "Video: <url>" before `element`: a <p>, or a <span> inside a paragraph."""
    in_paragraph = any(parent.tag == "p" for parent in element.iterancestors())
    link = etree.Element("span" if in_paragraph else "p", {"class": NOTE_CLASS})
    link.text = NOTE_PREFIX
    etree.SubElement(link, "a", href=url).text = url
    element.addprevious(link)
    return link


def mark_notes(root: lxml.html.HtmlElement) -> None:
    """Mark each unmarked "Video: <url>" line under `root` as a note again.

    Automatic extraction rebuilds the body and drops every class, ours too; the line
    itself (NOTE_PREFIX, then a link showing its own URL) says what it is.
    """
    for link in list(root.iter("a")):
        parent = link.getparent()
        if parent is None or parent.tag != "p" or parent.get("class") == NOTE_CLASS:
            continue
        if (link.text or "").strip() != (link.get("href") or "").strip() or len(link):
            continue
        previous = link.getprevious()
        before = (parent.text if previous is None else previous.tail) or ""
        if not before.endswith(NOTE_PREFIX):
            continue
        if (
            previous is None
            and not before.removesuffix(NOTE_PREFIX).strip()
            and (len(parent) == 1 and not (link.tail or "").strip())
        ):
            parent.set("class", NOTE_CLASS)
        else:
            _wrap_in_note(link, previous, before.removesuffix(NOTE_PREFIX))


def _wrap_in_note(
    link: lxml.html.HtmlElement, previous: lxml.html.HtmlElement | None, before: str
) -> None:
    """Put NOTE_PREFIX and `link` into a span.note where they stand."""
    if previous is None:
        link.getparent().text = before
    else:
        previous.tail = before
    note = etree.Element("span", {"class": NOTE_CLASS})
    note.text = NOTE_PREFIX
    link.addprevious(note)
    note.tail, link.tail = link.tail, None
    note.append(link)


def unwrap_plain_spans(root: lxml.html.HtmlElement) -> None:
    """Drop the tags (not the text) of every span but our notes: spans carry no meaning."""
    for span in list(root.iter("span")):
        if span.get("class") != NOTE_CLASS:
            span.drop_tag()


def _lift_out_of_wrappers(paragraph: etree._Element, root: etree._Element) -> None:
    """Replace the embed's wrapper boxes, which now hold only `paragraph`, by it.

    Wrappers are often classed "video"/"embed", which automatic extraction drops.
    """
    parent = paragraph.getparent()
    while (
        parent is not None
        and parent is not root
        and parent.tag in ("div", "span", "section", "figure")
        and len(parent) == 1
        and not (parent.text or "").strip()
        and not (paragraph.tail or "").strip()
    ):
        paragraph.tail = parent.tail
        parent.addprevious(paragraph)
        parent.getparent().remove(parent)  # type: ignore[union-attr]
        parent = paragraph.getparent()


def embed_url(element: lxml.html.HtmlElement, base_url: str) -> str:
    """The absolute http(s) URL an embed plays, or "" when it has none."""
    candidates = [element.get("src"), element.get("data-src"), element.get("data")]
    candidates += [source.get("src") for source in element.iter("source")]
    candidates += [param.get("value") for param in element.iter("param")]
    for candidate in candidates:
        url = absolute_http_url(candidate or "", base_url)
        if url:
            return watch_url(url)
    return ""


def watch_url(url: str) -> str:
    """The page a reader can open for a player URL (YouTube, Vimeo); else `url`."""
    for pattern, template in _PLAYER_PAGES:
        match = pattern.match(url)
        if match:
            return template.format(match.group(1))
    return url


def drop_unusable_images(root: lxml.html.HtmlElement, base_url: str) -> None:
    """Remove tracker pixels and images whose src is not an http(s) URL."""
    for image in list(root.iter("img")):
        if is_tracker(image) or not absolute_http_url(image.get("src") or "", base_url):
            image.drop_tree()


def unwrap_dead_links(root: lxml.html.HtmlElement, base_url: str) -> None:
    """Keep only the text of each link that goes nowhere a reader can follow: no href,
    an empty one, a fragment (the allow-list keeps no ids to land on), or a scheme other
    than http(s) (javascript:, data:, vbscript:, ...)."""
    for anchor in list(root.iter("a")):
        href = (anchor.get("href") or "").strip()
        if href.startswith("#") or not absolute_http_url(href, base_url):
            anchor.drop_tag()


def is_tracker(image: lxml.html.HtmlElement) -> bool:
    """Whether an <img> declares itself a tracking pixel (1×1, 0×0, ...)."""
    for side in ("width", "height"):
        value = (image.get(side) or "").strip().removesuffix("px")
        if value.isdigit() and int(value) <= TRACKER_MAX_SIDE:
            return True
    return False


def absolute_http_url(url: str, base_url: str) -> str:
    """`url` resolved against `base_url` if it is http(s), else ""."""
    url = url.strip()
    if not url:
        return ""
    try:
        resolved = urljoin(base_url, url)
        scheme = urlsplit(resolved).scheme.lower()
    except ValueError:
        return ""
    return resolved if scheme in URL_SCHEMES else ""


def _inside_embed(element: lxml.html.HtmlElement) -> bool:
    return any(ancestor.tag in EMBED_TAGS for ancestor in element.iterancestors())
