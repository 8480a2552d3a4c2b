"""Plain-text layout for the digest: sanitised article HTML as wrapped text, and the
line rules of the message (one-line values, wrapping, underlined headings, tidying).

Pure: strings in, strings out. URLs and keys are never broken across lines.
"""

from __future__ import annotations

import functools
import itertools
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import lxml.html
from lxml.etree import ParserError

from mirror.build.captions import drop_repeated_alts
from mirror.fetch.urls import without_trackers

WIDTH = 72  # columns of wrapped text (URLs and keys are never broken)
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
SPACES = re.compile(r"[ \t\n\r\f\v]+")  # not \xa0: a non-breaking space keeps words together
_BLANK_LINES = re.compile(r"\n{3,}")


def tidy(text: str) -> str:
    """No trailing spaces (but the signature's "-- "), no runs of blank lines."""
    lines = ["-- " if line == "--" else line.rstrip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n") + "\n"


def one_line(text: str) -> str:
    """`text` on one line: no control character, CR or LF; runs of spaces squeezed."""
    return " ".join(CONTROLS.sub(" ", text).split())


@functools.lru_cache(maxsize=4096)
def wrap(text: str, indent: str = "", first: str | None = None, width: int = WIDTH) -> str:
    """`text` wrapped to `width` columns; words longer than a line (URLs) kept whole."""
    wrapper = textwrap.TextWrapper(
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return "\n".join(wrapper.wrap(text))


def heading(text: str, underline: str, width: int = WIDTH) -> str:
    """`text` wrapped, then underlined with `underline` as wide as its longest line."""
    wrapped = wrap(text, width=width)
    longest = max((len(line) for line in wrapped.split("\n")), default=0)
    return f"{wrapped}\n{underline * min(longest, width)}"


_BLOCKS = frozenset(
    {
        "p", "div", "section", "article", "header", "footer", "aside", "main", "nav",
        "figure", "figcaption", "blockquote", "ul", "ol", "li", "dl", "dt", "dd", "table",
        "thead", "tbody", "tfoot", "tr", "caption", "pre", "hr", "h1", "h2", "h3", "h4",
        "h5", "h6", "address", "details", "summary", "center",
    }
)  # fmt: skip
_SKIPPED = frozenset(
    {
        "script", "style", "template", "head", "title", "iframe", "object", "embed",
        "noscript", "svg", "math", "button", "form", "input", "select", "textarea", "audio",
        "video", "source", "track", "picture",
    }
)  # fmt: skip
_HEADINGS = {"h1": "=", "h2": "-", "h3": "-", "h4": "", "h5": "", "h6": ""}
_LINK_SCHEMES = ("http", "https", "mailto")


@dataclass(frozen=True)
class _Paragraph:
    text: str  # inline text; "\n" is a hard line break
    first: str  # prefix of its first line
    rest: str  # prefix of the lines after
    group: int = 0  # a list or table: no blank line between paragraphs of one group
    underline: str = ""  # a heading's underline character
    preformatted: bool = False


class _Where:
    """Where the next paragraph goes: its prefixes, and whether a bullet is spent."""

    def __init__(self, first: str, rest: str, *, group: int = 0) -> None:
        self.first, self.rest, self.group = first, rest, group
        self.used = False

    def prefix(self) -> str:
        return self.rest if self.used else self.first

    def nested(self, first: str, rest: str, *, group: int | None = None) -> _Where:
        group = self.group if group is None else group
        return _Where(self.prefix() + first, self.rest + rest, group=group)


class _TextWriter:
    """Walks a sanitised HTML fragment into paragraphs and a numbered list of links."""

    def __init__(self, image_label: str) -> None:
        self.paragraphs: list[_Paragraph] = []
        self.links: dict[str, int] = {}
        self.buffer: list[str] = []
        self.image_label = image_label
        self.groups = itertools.count(1)

    def walk(self, element: lxml.html.HtmlElement, where: _Where) -> None:
        self.inline_text(element.text)
        for child in element:
            tag = child.tag if isinstance(child.tag, str) else ""
            if tag in _BLOCKS:
                self.flush(where)
                self.block(child, tag, where)
            elif tag and tag not in _SKIPPED:
                self.inline(child)
            self.inline_text(child.tail)

    def block(self, element: lxml.html.HtmlElement, tag: str, where: _Where) -> None:
        if tag in ("ul", "ol"):
            self.list(element, tag, where)
        elif tag == "blockquote":
            self.nested(element, where.nested("> ", "> "), where)
        elif tag in _HEADINGS:
            self.add(self.collect(element), where, underline=_HEADINGS[tag])
        elif tag == "pre":
            self.add(element.text_content().expandtabs(), where, preformatted=True)
        elif tag == "hr":
            self.add("* * *", where)
        elif tag == "table":
            self.nested(element, where.nested("", "", group=self.group(where)), where)
        elif tag == "tr":
            cells = [self.collect(cell) for cell in element if cell.tag in ("td", "th")]
            self.add(" | ".join(cell for cell in cells if cell), where)
        elif tag in ("dd", "li"):
            self.nested(element, where.nested("    ", "    "), where)
        else:
            self.walk(element, where)
            self.flush(where)

    def nested(self, element: lxml.html.HtmlElement, inner: _Where, outer: _Where) -> None:
        self.walk(element, inner)
        self.flush(inner)
        outer.used = outer.used or inner.used

    def list(self, element: lxml.html.HtmlElement, tag: str, where: _Where) -> None:
        number, group = _int(element.get("start"), 1), self.group(where)
        for item in element:
            if not isinstance(item.tag, str) or item.tag in _SKIPPED:
                continue
            bullet = f"{number}. " if tag == "ol" else "- "
            self.nested(item, where.nested(bullet, " " * len(bullet), group=group), where)
            number += 1

    def group(self, where: _Where) -> int:
        """The group of a new list or table: its parent's when nested in one."""
        return where.group or next(self.groups)

    def inline(self, element: lxml.html.HtmlElement) -> None:
        tag = element.tag
        if tag == "br":
            self.buffer.append("\n")
        elif tag == "img":
            alt = one_line(element.get("alt") or "")
            self.buffer.append(
                f" [{self.image_label}: {alt}] " if alt else f" [{self.image_label}] "
            )
        elif tag == "a":
            self.anchor(element)
        elif tag not in _SKIPPED:
            self.inline_text(element.text)
            for child in element:
                if isinstance(child.tag, str):
                    self.inline(child)
                self.inline_text(child.tail)

    def anchor(self, element: lxml.html.HtmlElement) -> None:
        text = self.collect(element)
        href = _link_target(element.get("href") or "")
        if not href or _same_link(text, href):
            self.buffer.append(text if text else href)
            return
        number = self.links.setdefault(href, len(self.links) + 1)
        self.buffer.append(f"{text} [{number}]" if text else f"[{number}]")

    def collect(self, element: lxml.html.HtmlElement) -> str:
        """The inline text of `element`, as one string (hard breaks kept)."""
        saved, self.buffer = self.buffer, []
        self.inline_text(element.text)
        for child in element:
            if isinstance(child.tag, str):
                self.inline(child)
            self.inline_text(child.tail)
        text, self.buffer = "".join(self.buffer), saved
        return "\n".join(SPACES.sub(" ", line).strip(" ") for line in text.split("\n")).strip()

    def inline_text(self, text: str | None) -> None:
        if text:
            self.buffer.append(SPACES.sub(" ", text))

    def flush(self, where: _Where) -> None:
        text = "".join(self.buffer)
        self.buffer = []
        self.add(text, where)

    def add(self, text: str, where: _Where, **kind: Any) -> None:
        if not text.strip():
            return
        paragraph = _Paragraph(text, where.prefix(), where.rest, where.group, **kind)
        self.paragraphs.append(paragraph)
        where.used = True


def html_to_text(body_html: str, width: int = WIDTH, *, image_label: str = "image") -> str:
    """Sanitised article HTML as wrapped plain text, with no markup left.

    Paragraphs wrapped to `width` (URLs never broken); headings underlined; list items
    "- " or "1. "; blockquotes "> "; images "[image: alt]"; table rows "a | b"; links
    "text [n]" with the numbered list of their URLs at the end ("[n] URL").
    """
    return _html_to_text(body_html, width, image_label)


@functools.lru_cache(maxsize=256)
def _html_to_text(body_html: str, width: int, image_label: str) -> str:
    cleaned = CONTROLS.sub(" ", body_html.replace("\r\n", "\n"))
    if not cleaned.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(cleaned, create_parent="div")
    except (ParserError, ValueError):
        return ""
    drop_repeated_alts(root)
    writer = _TextWriter(image_label)
    top = _Where("", "")
    writer.walk(root, top)
    writer.flush(top)
    text = _layout(writer.paragraphs, width)
    if writer.links:
        text += "\n\n" + "\n".join(f"[{n}] {url}" for url, n in writer.links.items())
    return text


def _layout(paragraphs: Sequence[_Paragraph], width: int) -> str:
    lines: list[str] = []
    previous: _Paragraph | None = None
    for paragraph in paragraphs:
        if previous is not None and not (previous.group == paragraph.group != 0):
            lines.append(_common_prefix(previous.rest, paragraph.rest).rstrip())
        lines.extend(_paragraph_lines(paragraph, width))
        previous = paragraph
    return "\n".join(lines)


def _common_prefix(one: str, other: str) -> str:
    """The prefixes both lines share ("> " inside a quote): a blank line keeps them."""
    size = 0
    while size < min(len(one), len(other)) and one[size] == other[size]:
        size += 1
    return one[:size]


def _paragraph_lines(paragraph: _Paragraph, width: int) -> list[str]:
    if paragraph.preformatted:
        raw = paragraph.text.strip("\n").split("\n")
        return [paragraph.first + raw[0], *(paragraph.rest + line for line in raw[1:])]
    lines: list[str] = []
    first = paragraph.first
    for part in paragraph.text.split("\n"):
        wrapped = wrap(SPACES.sub(" ", part).strip(" "), paragraph.rest, first, width)
        lines.extend(wrapped.split("\n") if wrapped else [])
        first = paragraph.rest
    if paragraph.underline and lines:
        longest = max(len(line) - len(paragraph.rest) for line in lines)
        lines.append(paragraph.rest + paragraph.underline * min(longest, width))
    return lines


def _link_target(href: str) -> str:
    """A link's URL as the text shows it; "" for a scheme we do not show."""
    href = CONTROLS.sub("", href).strip()
    if urlsplit(href).scheme.lower() not in _LINK_SCHEMES:
        return ""
    return SPACES.sub("%20", without_trackers(href))


def _same_link(text: str, href: str) -> bool:
    def bare(url: str) -> str:
        return re.sub(r"^(?:https?://|mailto:)", "", url.strip()).rstrip("/")

    return bare(text) == bare(href)


def _int(text: str | None, default: int) -> int:
    try:
        return max(0, min(int(text or ""), 1_000_000))
    except ValueError:
        return default
