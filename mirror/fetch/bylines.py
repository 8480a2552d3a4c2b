"""Byline and date lines taken out of an article body: the page shows both from the
article's metadata, so the body must not repeat them.

`strip_meta_lines(body_html, authors, published)` looks at the body's first two and
last short blocks; a block made only of byline words ("By", "Автор:"), the authors'
names and date words ("12 March 2026, 10:15", "12.03.2026", "Опубликовано 12 марта")
is dropped. It returns the body and the names a dropped "By X" line gave, for pages
whose metadata names no author.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import lxml.html
from lxml.etree import ParserError

MAX_LINE_CHARS = 160  # a longer block is prose, never a byline
MAX_LINE_WORDS = 24
LEADING_BLOCKS = 2  # a byline, then a date line
TRAILING_BLOCKS = 1
KEPT_TAGS = frozenset({"figure", "img", "blockquote", "table", "ul", "ol", "pre", "dl", "hr"})
_WORD = re.compile(r"\w+")
_NUMERIC_DATE = re.compile(r"\b\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b")
_BY = re.compile(r"^(?:by|written by|авторы?|текст)\b[:\s]*(.+)$", re.I)
_NAME_SEPARATOR = re.compile(r"\s*(?:,|;|&|\band\b|\bи\b)\s*", re.I)


def _vocabulary(*lines: str) -> frozenset[str]:
    return frozenset(" ".join(lines).split())


BYLINE_WORDS = _vocabulary(
    "by and written text author authors with from for on at in of the et al",
    "published updated posted last modified reporting",
    "и автор авторы текст опубликовано обновлено от в во года г",
)
MONTHS = _vocabulary(
    "january february march april may june july august september october november december",
    "jan feb mar apr jun jul aug sep sept oct nov dec",
    "января февраля марта апреля мая июня июля августа сентября октября ноября декабря",
    "январь февраль март апрель май июнь июль август сентябрь октябрь ноябрь декабрь",
)
DATE_WORDS = MONTHS | _vocabulary(
    "monday tuesday wednesday thursday friday saturday sunday mon tue wed thu fri sat sun",
    "am pm gmt utc bst cet cest edt est pst pdt msk мск today yesterday сегодня вчера",
    "понедельник вторник среда среду четверг пятница пятницу суббота субботу воскресенье",
)


@dataclass(frozen=True)
class StrippedBody:
    """A body without its byline and date lines."""

    body_html: str
    names: tuple[str, ...]  # authors a dropped "By X" line named


def strip_meta_lines(
    body_html: str, authors: tuple[str, ...], published: datetime | None
) -> StrippedBody:
    """`body_html` less the byline and date lines at its start and end."""
    try:
        root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    except (ParserError, ValueError):
        return StrippedBody(body_html, ())
    known = frozenset(word.casefold() for name in authors for word in _WORD.findall(name))
    names: list[str] = []
    dropped = _drop_edge(root, known, names, first=True, count=LEADING_BLOCKS)
    dropped += _drop_edge(root, known, names, first=False, count=TRAILING_BLOCKS)
    if not dropped:
        return StrippedBody(body_html, ())
    return StrippedBody(_inner_html(root), tuple(dict.fromkeys(names)))


def _drop_edge(
    root: lxml.html.HtmlElement, known: frozenset[str], names: list[str], *, first: bool, count: int
) -> int:
    dropped = 0
    for _ in range(count):
        text, remove = _edge_block(root, first)
        if remove is None or not is_meta_line(text, known) or _blocks(root) < 2:
            break
        names += byline_names(text)
        remove()
        dropped += 1
    return dropped


def _edge_block(
    root: lxml.html.HtmlElement, first: bool
) -> tuple[str, Callable[[], object] | None]:
    """The first (or last) block's text and how to remove it; (..., None) if none fits."""
    children = list(root)
    if first and _clean(root.text):
        return _clean(root.text), lambda: setattr(root, "text", None)
    if not first and children and _clean(children[-1].tail):
        last = children[-1]
        return _clean(last.tail), lambda: setattr(last, "tail", None)
    pictures = [child for child in children if not _is_picture(child)]  # skipped over
    if not pictures:
        return "", None
    element = pictures[0] if first else pictures[-1]
    if element.tag in KEPT_TAGS:
        return "", None
    if first and element is not children[0] and _clean(children[0].tail):
        return "", None  # text sits between the picture and this block
    return _clean(element.text_content()), element.drop_tree


def _is_picture(element: lxml.html.HtmlElement) -> bool:
    has_image = next(element.iter("img"), None) is not None
    return element.tag in ("img", "figure") or (has_image and not _clean(element.text_content()))


def _blocks(root: lxml.html.HtmlElement) -> int:
    return len(root) + bool(_clean(root.text))


def is_meta_line(text: str, known_names: frozenset[str] = frozenset()) -> bool:
    """Whether `text` is only a byline and/or a date line."""
    if not text or len(text) > MAX_LINE_CHARS:
        return False
    tokens = [word.casefold() for word in _WORD.findall(text)]
    if not tokens or len(tokens) > MAX_LINE_WORDS:
        return False
    if byline_names(text):
        return True
    rest = [t for t in tokens if t not in BYLINE_WORDS | DATE_WORDS | known_names]
    has_author = any(token in known_names for token in tokens)
    return not [t for t in rest if not t.isdigit()] and (has_author or _has_date(text, tokens))


def _has_date(text: str, tokens: list[str]) -> bool:
    has_digit = any(token.isdigit() for token in tokens)
    return bool(_NUMERIC_DATE.search(text)) or (has_digit and any(t in MONTHS for t in tokens))


def byline_names(text: str) -> tuple[str, ...]:
    """The names of a "By A, B and C" / "Автор: А" line; () if `text` is not one."""
    found = _BY.match(text.strip())
    if not found:
        return ()
    names = [part.strip(" .") for part in _NAME_SEPARATOR.split(found.group(1))]
    names = [name for name in names if name]
    if not names or not all(_looks_like_name(name) for name in names):
        return ()
    return tuple(names)


def _looks_like_name(name: str) -> bool:
    parts = name.split()
    return 1 <= len(parts) <= 4 and all(part[:1].isupper() for part in parts)


def _inner_html(root: lxml.html.HtmlElement) -> str:
    html = str(lxml.html.tostring(root, encoding="unicode"))
    return html.removeprefix("<div>").removesuffix("</div>").strip()


def _clean(text: str | None) -> str:
    return " ".join(text.split()) if text else ""
