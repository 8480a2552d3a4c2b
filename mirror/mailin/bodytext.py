"""The reader's words from a mail body: bytes in any charset to text, HTML to text (quotes
kept as "> " lines, nothing fetched), and the first line the reader wrote themselves."""

from __future__ import annotations

import re

import lxml.etree
import lxml.html

# Tried in order when the declared charset is missing, unknown or wrong: UTF-8 first
# (RFC 6532 mail), then the Cyrillic legacy charset most mail clients in Russia send.
FALLBACK_CHARSETS = ("utf-8", "windows-1251")

_SPACES = re.compile(r"\s+")
_BLOCK_TAGS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset"),
        *("figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6"),
        *("header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "td"),
        *("th", "tr", "ul"),
    }
)
_SKIPPED_TAGS = frozenset({"head", "script", "style", "template", "title", "noscript"})

_ATTRIBUTION = re.compile(
    r"^(?:on\s.*\swrote|.*<[^<>\s]+@[^<>\s]+>|.*\s(?:wrote|писал|писала|писал\(а\)|написал|написала|написал\(а\)))"
    r"\s*:\s*$",
    re.IGNORECASE,
)
_ATTRIBUTION_START = re.compile(r"^(?:on|\d{1,2}[./]\d{1,2}[./]\d{2,4}|\w+,\s+\d)\s", re.I)
# Where the reader's own text ends: a signature ("-- "), or a forwarded / original message.
_END_OF_OWN_TEXT = re.compile(
    r"^(?:--|_{5,}|-{2,}\s*(?:original message|forwarded message|исходное сообщение|"
    r"пересылаемое сообщение|пересланное сообщение)\b.*)$",
    re.IGNORECASE,
)
MAX_SCANNED_LINES = 200


def decode_bytes(raw: bytes, charset: str | None) -> str:
    """Text of `raw` in its declared charset, else UTF-8, else windows-1251; never raises."""
    for name in ((charset,) if charset else ()) + FALLBACK_CHARSETS:
        try:
            return raw.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return raw.decode("utf-8", errors="replace")  # unreachable: windows-1251 rarely fails


def html_to_text(html: str, *, max_chars: int) -> str:
    """Readable text of an HTML body: block elements on their own lines, blockquotes as
    "> " lines, scripts and styles dropped. Nothing is fetched or run."""
    if not html.strip():
        return ""
    try:
        root = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return ""
    writer = _LineWriter(max_chars)
    _walk(root, writer)
    return writer.text()


class _LineWriter:
    """Collects text into lines, each prefixed by its quote depth; stops at max_chars."""

    def __init__(self, max_chars: int) -> None:
        self.lines: list[tuple[int, list[str]]] = [(0, [])]
        self.depth = 0
        self.chars = 0
        self.max_chars = max_chars

    def add(self, text: str | None) -> None:
        if text and self.chars < self.max_chars:
            text = _SPACES.sub(" ", text)
            self.lines[-1][1].append(text)
            self.chars += len(text)

    def newline(self) -> None:
        if self.lines[-1][1]:
            self.lines.append((self.depth, []))
        else:
            self.lines[-1] = (self.depth, [])

    def text(self) -> str:
        out = []
        for depth, parts in self.lines:
            line = "".join(parts).strip()
            out.append(("> " * depth + line) if line else "")
        return "\n".join(out).strip("\n")[: self.max_chars]


def _walk(root: lxml.html.HtmlElement, writer: _LineWriter) -> None:
    walker = lxml.etree.iterwalk(root, events=("start", "end", "comment", "pi"))
    for event, element in walker:
        tag = element.tag if isinstance(element.tag, str) else ""
        if event in ("comment", "pi"):
            writer.add(element.tail)
        elif event == "start":
            _start(walker, tag, element, writer)
        else:
            if tag == "blockquote":
                writer.depth -= 1
            if tag in _BLOCK_TAGS:
                writer.newline()
            writer.add(element.tail)


def _start(
    walker: lxml.etree.iterwalk, tag: str, element: lxml.html.HtmlElement, writer: _LineWriter
) -> None:
    if tag in _SKIPPED_TAGS:
        walker.skip_subtree()  # its "end" event still comes, and adds the tail
        return
    if tag == "blockquote":
        writer.depth += 1
    if tag in _BLOCK_TAGS or tag == "br":
        writer.newline()
    writer.add(element.text)


def first_line(text: str) -> str:
    """The first line the reader wrote: not empty, not quoted ('>'), not an attribution
    ("On ... wrote:", "... писал(а):"); "" when a signature or a forwarded message comes
    first."""
    lines = [line.strip() for line in text.splitlines()[:MAX_SCANNED_LINES]]
    index = 0
    while index < len(lines):
        line = lines[index]
        if _END_OF_OWN_TEXT.match(line):
            return ""
        attribution = _attribution_lines(lines, index)
        if attribution:
            index += attribution
        elif not line or line.startswith(">"):
            index += 1
        else:
            return line[:998]
    return ""


def _attribution_lines(lines: list[str], index: int) -> int:
    """How many lines from `index` form an attribution ("On ... wrote:"), 0 if none;
    clients wrap long ones: "On Mon, 1 Jan 2024, Name <" / "addr> wrote:"."""
    if _ATTRIBUTION.match(lines[index]):
        return 1
    if not _ATTRIBUTION_START.match(lines[index]):
        return 0
    joined = lines[index]
    for count, extra in enumerate(lines[index + 1 : index + 3], start=2):
        joined += " " + extra
        if _ATTRIBUTION.match(joined):
            return count
    return 0
