"""Alt text a caption already says: a figure's image then gets alt="".

A reader (of the page, of w3m's "[alt]", of a "left out" note, of the digest's
"[image: alt]") should meet the caption's words once, not twice.
"""

from __future__ import annotations

import re

import lxml.html

_WORD = re.compile(r"\w+")


def drop_repeated_alts(root: lxml.html.HtmlElement) -> None:
    """alt="" on each figure's image whose caption says what its alt text says: the same
    words, or the words of one inside the other (case and punctuation ignored)."""
    for figure in root.iter("figure"):
        caption = words(" ".join(c.text_content() for c in figure.iter("figcaption")))
        if not caption:
            continue
        for image in figure.iter("img"):
            alt = words(image.get("alt") or "")
            if alt and (f" {alt} " in f" {caption} " or f" {caption} " in f" {alt} "):
                image.set("alt", "")


def words(text: str) -> str:
    """`text` as compared: its words, case folded, one space apart."""
    return " ".join(_WORD.findall(text.casefold()))
