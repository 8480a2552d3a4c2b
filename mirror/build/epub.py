"""A day's articles as an EPUB 3 book, for e-readers: data in, the file's bytes out.

No store, no files, no clock. `make_epub(book, max_bytes=...)` gives an EPUB 3 package
(ebooklib writes it): a nav document (the table of contents), one XHTML file per
chapter and a last one saying how to check the file, a small style sheet, and the
chapters' images as files in the zip (never data: URIs, never remote URLs: an image
not given is replaced by a visible note). Every body is parsed with lxml and written
back with an allow-list of elements and attributes, so each XHTML file is well-formed.

Deterministic: dc:date and dcterms:modified come from the book's day, and the zip is
written again with fixed timestamps, order and compression (ebooklib stamps the
clock), so the same `Book` gives the same bytes. Over `max_bytes`, images are left
out, largest first; if the book is still too large, `EditionTooLargeError`.

Package layout (paths inside the zip):

    mimetype                    first, stored: "application/epub+zip"
    META-INF/container.xml      points at EPUB/content.opf
    EPUB/content.opf            metadata, manifest, spine
    EPUB/nav.xhtml, toc.ncx     table of contents (EPUB 3, and EPUB 2 readers)
    EPUB/style.css
    EPUB/text/cNNN.xhtml        one chapter; EPUB/text/check.xhtml how to check
    EPUB/images/<sha256>.<ext>  one file per distinct image
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from urllib.parse import urlsplit

import lxml.html
from ebooklib import epub
from lxml.etree import ParserError

from mirror.build.captions import drop_repeated_alts
from mirror.build.catalogue import wording
from mirror.build.render import MESSAGES, word_notes
from mirror.errors import EditionTooLargeError

MIMETYPE = b"application/epub+zip"
IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}
ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dfn", "div",
    "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span",
    "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u",
    "ul",
})  # fmt: skip
ALLOWED_ATTRIBUTES = frozenset({
    "href", "src", "alt", "title", "class", "lang", "dir", "colspan", "rowspan", "datetime",
    "cite",
})  # fmt: skip
LINK_SCHEMES = ("http", "https", "mailto")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ANCHOR = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
ZIP_LEVEL = 9
STYLE_CSS = (
    "body{margin:0 .5em;font-family:serif;line-height:1.5;overflow-wrap:break-word}\n"
    "h1{font-size:1.5em;line-height:1.25;margin:1em 0 .25em}\n"
    "h2,h3,h4{line-height:1.25}\n"
    ".meta,.note,figcaption,.noimage{font-family:sans-serif;font-size:.875em;color:#5a5a5a}\n"
    ".noimage{display:block;padding:.5em;border:1px dashed #5a5a5a}\n"
    "img{max-width:100%;height:auto}\n"
    "figure{margin:1em 0}\n"
    "blockquote{margin:1em 0;padding-left:1em;border-left:3px solid #d6d6d6}\n"
    "pre{white-space:pre-wrap;overflow-wrap:anywhere}\n"
    "a,code,td,th{overflow-wrap:anywhere}\n"
    "table{display:block;max-width:100%;overflow-x:auto;border-collapse:collapse}\n"
    "td,th{border:1px solid #d6d6d6;padding:.25em .5em;vertical-align:top}\n"
).encode("ascii")


@dataclass(frozen=True)
class Chapter:
    """One article as the book shows it."""

    anchor: str  # its id inside the book (the daily HTML file's section id)
    title: str
    byline: str  # "By …" in the article's language, or ""
    date_words: str  # its date in words, in its language, or ""
    language: str
    body_html: str  # the sanitised body; <img src> holds origin image URLs
    images: Mapping[str, tuple[str, bytes] | None]  # origin URL -> (MIME type, bytes)
    addresses: tuple[str, ...] = ()  # its own origin URLs: links to it stay in the book


@dataclass(frozen=True)
class Book:
    """One day's edition in one language."""

    identifier: str  # a URN, stable for the same day and language
    title: str
    language: str
    day: date
    publisher: str
    chapters: tuple[Chapter, ...]
    footer_html: str  # how to check this file (our own words, links allowed)
    # origin address -> that article's page on a mirror: links to articles not in the book
    elsewhere: Mapping[str, str] = field(default_factory=dict)


def make_epub(book: Book, *, max_bytes: int) -> bytes:
    """The book as EPUB 3 bytes of at most `max_bytes`: images left out, largest first,
    until it fits; `EditionTooLargeError` when it does not fit even without images."""
    data = _package(book)
    while len(data) > max_bytes:
        images = _distinct_images(book)
        if not images:
            raise EditionTooLargeError(
                f"EPUB of {book.day.isoformat()} ({book.language}) is {len(data)} bytes "
                f"with no image, over its limit of {max_bytes}"
            )
        book = _without(book, _largest_first(images, len(data) - max_bytes))
        data = _package(book)
    return data


def _distinct_images(book: Book) -> dict[str, int]:
    """sha256 -> size of every usable image the book holds."""
    return {
        hashlib.sha256(given[1]).hexdigest(): len(given[1])
        for chapter in book.chapters
        for given in chapter.images.values()
        if given is not None and given[0] in IMAGE_TYPES
    }


def _largest_first(images: Mapping[str, int], excess_bytes: int) -> set[str]:
    """The largest images whose sizes add up to the excess (at least one)."""
    chosen: set[str] = set()
    saved = 0
    for digest, size in sorted(images.items(), key=lambda item: (-item[1], item[0])):
        chosen.add(digest)
        saved += size
        if saved >= excess_bytes:
            break
    return chosen


def _without(book: Book, dropped: set[str]) -> Book:
    def kept(given: tuple[str, bytes] | None) -> tuple[str, bytes] | None:
        if given is None or hashlib.sha256(given[1]).hexdigest() in dropped:
            return None
        return given

    chapters = tuple(
        replace(c, images={url: kept(given) for url, given in c.images.items()})
        for c in book.chapters
    )
    return replace(book, chapters=chapters)


# --- the package ------------------------------------------------------------------


def _package(book: Book) -> bytes:
    """The EPUB (ebooklib's writer), then its zip made deterministic."""
    words = wording(MESSAGES, book.language)
    document = _document(book)
    style = epub.EpubItem(
        uid="style", file_name="style.css", media_type="text/css", content=STYLE_CSS
    )
    document.add_item(style)
    files: dict[str, tuple[str, bytes]] = {}
    inside = {**book.elsewhere, **_chapter_targets(book)}
    chapters = [
        _chapter_item(book, index, c, files, style, inside) for index, c in enumerate(book.chapters)
    ]
    check = _xhtml_item("check", "text/check.xhtml", words["verify"], book.language, style)
    check.content = _clean_fragment(book.footer_html, {}, words, files, {})
    for name, (mime, data) in sorted(files.items()):
        uid = "image-" + name.split("/")[-1].split(".")[0][:16]
        document.add_item(epub.EpubImage(uid=uid, file_name=name, media_type=mime, content=data))
    for item in (*chapters, check):
        document.add_item(item)
    nav = epub.EpubNav(uid="nav", file_name="nav.xhtml", title=words["contents"])
    nav.add_item(style)
    document.add_item(nav)
    document.add_item(epub.EpubNcx(uid="ncx"))
    document.toc = [*chapters, check]
    document.spine = [nav, *chapters, check]
    return _deterministic_zip(_written(document, book.day), book.day)


def _chapter_name(index: int) -> str:
    return f"c{index + 1:03d}"


def _chapter_anchor(index: int, chapter: Chapter) -> str:
    return chapter.anchor if _ANCHOR.fullmatch(chapter.anchor) else _chapter_name(index)


def _chapter_targets(book: Book) -> dict[str, str]:
    """Each chapter's origin addresses -> its place in the book, relative to text/."""
    return {
        address: f"{_chapter_name(index)}.xhtml#{_chapter_anchor(index, chapter)}"
        for index, chapter in enumerate(book.chapters)
        for address in chapter.addresses
        if address
    }


def _document(book: Book) -> epub.EpubBook:
    document = epub.EpubBook()
    document.set_identifier(book.identifier)
    document.set_title(book.title)
    document.set_language(_language(book.language))
    document.add_metadata("DC", "date", book.day.isoformat())
    document.add_metadata("DC", "publisher", book.publisher)
    return document


def _chapter_item(
    book: Book,
    index: int,
    chapter: Chapter,
    files: dict[str, tuple[str, bytes]],
    style: epub.EpubItem,
    inside: Mapping[str, str],
) -> epub.EpubHtml:
    name = _chapter_name(index)
    language = _language(chapter.language or book.language)
    item = _xhtml_item(name, f"text/{name}.xhtml", chapter.title, language, style)
    words = wording(MESSAGES, language)
    anchor = _chapter_anchor(index, chapter)
    heading = lxml.html.Element("h1", {"id": anchor})
    heading.text = _text(chapter.title)
    meta = lxml.html.Element("p", {"class": "meta"})
    meta.text = _text(" · ".join(part for part in (chapter.byline, chapter.date_words) if part))
    head = lxml.html.tostring(heading, encoding="unicode")
    if meta.text:
        head += lxml.html.tostring(meta, encoding="unicode")
    item.content = head + _clean_fragment(chapter.body_html, chapter.images, words, files, inside)
    return item


def _xhtml_item(
    uid: str, file_name: str, title: str, language: str, style: epub.EpubItem
) -> epub.EpubHtml:
    item = epub.EpubHtml(uid=uid, file_name=file_name, title=_text(title), lang=language)
    item.add_link(href="../style.css", rel="stylesheet", type="text/css")
    return item


def _language(language: str) -> str:
    tag = language.replace("_", "-")
    return tag if _LANGUAGE.fullmatch(tag) else "und"


def _text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _written(document: epub.EpubBook, day: date) -> bytes:
    out = io.BytesIO()
    midnight = datetime.combine(day, time(0, 0), tzinfo=UTC)
    options = {"mtime": midnight, "epub3_pages": False, "raise_exceptions": True}
    epub.write_epub(out, document, options)
    return out.getvalue()


def _deterministic_zip(data: bytes, day: date) -> bytes:
    """The same entries, in the same order, with the day as every timestamp: mimetype
    first and stored, the rest deflated at a fixed level."""
    stamp = (max(day.year, 1980), day.month, day.day, 0, 0, 0)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        names = source.namelist()
        for name in ["mimetype", *(n for n in names if n != "mimetype")]:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            stored = name == "mimetype"
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            content = MIMETYPE if stored else source.read(name)
            target.writestr(info, content, compresslevel=None if stored else ZIP_LEVEL)
    return out.getvalue()


# --- bodies -----------------------------------------------------------------------


def _clean_fragment(
    html: str,
    images: Mapping[str, tuple[str, bytes] | None],
    words: Mapping[str, str],
    files: dict[str, tuple[str, bytes]],
    inside: Mapping[str, str],
) -> str:
    """`html` with only allowed elements and attributes, links to another chapter
    (`inside`: origin URL -> place in the book) kept in the book, other links external
    only, our "Video:" notes in `words`, and each image a file of the book (added to
    `files`) or the visible note."""
    html = _text(html)
    if not html.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (ParserError, ValueError):
        return ""
    for element in list(root.iterdescendants()):
        if not isinstance(element.tag, str):
            element.drop_tree()  # comments, processing instructions
        elif element.tag not in ALLOWED_TAGS:
            _drop_element(element)
    for element in root.iterdescendants():
        _clean_attributes(element)
    for link in root.iter("a"):
        _keep_inside(link, inside)
    word_notes(root, words["video"])
    drop_repeated_alts(root)  # a caption that says it already: no second reading
    for image in list(root.iter("img")):
        _place_image(image, images, words["image_dropped"], files)
    inner: str = lxml.html.tostring(root, encoding="unicode")
    return inner[len("<div>") : -len("</div>")]


def _drop_element(element: lxml.html.HtmlElement) -> None:
    if element.tag in ("script", "style", "iframe", "object", "embed", "form", "svg", "math"):
        element.drop_tree()
    else:
        element.drop_tag()  # unknown markup: keep its text


def _clean_attributes(element: lxml.html.HtmlElement) -> None:
    for attribute in list(element.attrib):
        if attribute not in ALLOWED_ATTRIBUTES:
            del element.attrib[attribute]
    href = element.get("href")
    if href is not None and urlsplit(href.strip()).scheme.lower() not in LINK_SCHEMES:
        del element.attrib["href"]  # a target outside this book: plain text
    if element.tag != "img":
        element.attrib.pop("src", None)


def _keep_inside(link: lxml.html.HtmlElement, inside: Mapping[str, str]) -> None:
    """A link to another chapter's article goes to that chapter, one to an article not
    in the book to its page on a mirror (when `inside` has it), not to the origin."""
    href = (link.get("href") or "").strip()
    target = inside.get(href) or inside.get(href.partition("#")[0])
    if target is not None:
        link.set("href", target)


def _place_image(
    image: lxml.html.HtmlElement,
    images: Mapping[str, tuple[str, bytes] | None],
    note: str,
    files: dict[str, tuple[str, bytes]],
) -> None:
    given = images.get(image.get("src") or "")
    if given is not None and given[0] in IMAGE_TYPES:
        mime, data = given
        name = f"images/{hashlib.sha256(data).hexdigest()}.{IMAGE_TYPES[mime]}"
        files[name] = (mime, data)
        image.set("src", f"../{name}")
        image.set("alt", image.get("alt") or "")
        return
    alt = (image.get("alt") or "").strip()
    replacement = lxml.html.Element("span", {"class": "noimage"})
    replacement.text = f"[{note}: {alt}]" if alt else f"[{note}]"
    replacement.tail = image.tail
    parent = image.getparent()
    if parent is not None:
        parent.replace(image, replacement)
