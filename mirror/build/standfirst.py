"""Whether a standfirst (feed description, og:description, the page's lead) merely
repeats the opening of the body, in which case pages and digests show it once.

Pure text in, a yes or no out: both sides are compared as normalised word tokens
(case folded, punctuation and ellipses gone), so "Mayor resigns…" repeats a body
that opens "Mayor resigns after a vote."
"""

from __future__ import annotations

import re

import lxml.html
from lxml.etree import ParserError

_WORD = re.compile(r"\w+")
OPENING_SLACK_WORDS = 40  # the opening compared: the standfirst's length plus this many words
MOSTLY_CONTAINED = 0.8  # share of the standfirst's words found in the opening


def words(text: str) -> list[str]:
    """The case-folded word tokens of `text`."""
    return [word.casefold() for word in _WORD.findall(text)]


def repeats_opening(standfirst: str, body_text: str) -> bool:
    """Whether `standfirst` is the body's opening: equal to it, a prefix of it, or mostly
    contained in it (then it is not shown). An empty standfirst repeats everything."""
    lead = words(standfirst)
    if not lead:
        return True
    opening = words(body_text)[: len(lead) + OPENING_SLACK_WORDS]
    if opening[: len(lead)] == lead:
        return True
    found = _bag(opening)
    shared = 0
    for word in lead:
        if found.get(word, 0) > 0:
            found[word] -= 1
            shared += 1
    return shared >= MOSTLY_CONTAINED * len(lead)


def body_text(body_html: str) -> str:
    """The text of a sanitised body fragment ("" if it does not parse)."""
    if not body_html.strip():
        return ""
    try:
        return str(lxml.html.fragment_fromstring(body_html, create_parent="div").text_content())
    except (ParserError, ValueError):
        return ""


def _bag(tokens: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for token in tokens:
        counts[token] = counts.get(token, 0) + 1
    return counts
