"""Choosing the article body among candidates, by agreement with the page's own witness.

Pure: takes the parsed page (already stripped of chrome) and returns the chosen body
element, or None. The candidates come from two well-kept extractors, trafilatura and
readability-lxml; schema.org `articleBody` (JSON-LD) is the witness when it is plausible:
long enough, found in the page's visible text, and not a teaser much shorter than the
candidates. With no witness, trafilatura's body is kept unless it found nothing or only
a fragment of what readability found. The chosen body then loses its short blocks that
the other extractor did not find (`confirmed`): boilerplate more often than not; and
its short blocks of links, found or not (`without_teasers`), each block that repeats the
one before it (`without_repeats`), a first block that only repeats the page's title
(`without_headline`) and a first line that is only the page's own address, perhaps with a
date (`without_own_address`: a print header or share line), and the blocks of links that
end it, whatever their length (`without_link_tail`: a tag list, related cards), and each
run of links side by side inside a paragraph (`without_link_runs`: a hover card). A
block that reads as an image's caption left behind (ending in a photo credit, opening
with its image's alt text, or holding its opening twice, a "more" toggle) becomes a
`<figcaption>` (`with_image_captions`): kept, but not the article's text. A row of
short cards, each under a link without text, goes (`without_cards`: a "more" rail). An
embedded social post (a quote ending in "— Name (@handle) date") is the article's, and
never pruned.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

import lxml.html
import trafilatura
from lxml import etree
from readability import Document  # type: ignore[import-untyped]
from readability.readability import Unparseable  # type: ignore[import-untyped]

MIN_WITNESS_WORDS = 50  # a shorter articleBody says too little to judge by
MIN_WITNESS_ON_PAGE = 0.8  # share of its shingles the visible page must hold
MIN_WITNESS_SHARE = 0.6  # a witness shorter than this share of the longest candidate is a teaser
# trafilatura's body shorter than this share of readability's is a fragment (measured: 0.3
# kept half-bodies of long articles; 0.7 takes them whole, 0.8 takes in more chrome)
MIN_FRAGMENT_SHARE = 0.7
MAX_LINK_DENSITY = 0.5  # a body or block with more link text than this is a list, not prose
# Confirmation of blocks by the other extractor's body (`confirmed`):
MIN_CONFIRMING_AGREEMENT = 0.5  # the two bodies must agree this much (F1 of shingles)
MIN_BLOCK_SHARED = 0.5  # share of a block's shingles the other body must hold to confirm it
MIN_LONE_BLOCK_WORDS = 35  # an unconfirmed block this long is prose, and kept
MIN_BOX_BLOCKS = 4  # this many unconfirmed short blocks in a row are a box, even mid-article
MAX_TEASER_LINK_DENSITY = 0.8  # a shorter block with more link text than this is a teaser
MIN_LINK_RUN = 3  # links side by side, nothing but spaces between them, inside a paragraph
MIN_LINK_RUN_WORDS = 12  # fewer words are prose linked word by word ("other users")
MIN_ROW_CARDS = 2  # short boxes under links without text, side by side: a "more" rail
MIN_REPEAT_WORDS = 5  # a block this long repeating the one before it is a gallery's caption
MAX_CAPTION_WORDS = 80  # a block ending in a photo credit shorter than this is a caption
MIN_TOGGLED_WORDS = 8  # a block holding its first this many words twice is a toggled caption
# Leaf blocks (no block inside) that go whole when unconfirmed; never one holding an image,
# a figure or a table (captions and credits are kept).
PRUNED_BLOCKS = frozenset(
    {"p", "li", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "dd", "dt", "div"}
)
BLOCK_TAGS = PRUNED_BLOCKS | frozenset(
    {
        "h1",
        "ul",
        "ol",
        "dl",
        "table",
        "tr",
        "td",
        "th",
        "figure",
        "figcaption",
        "section",
        "article",
        "header",
        "footer",
        "aside",
        "nav",
        "main",
        "caption",
    }
)
KEPT_INSIDE = frozenset(
    {"img", "picture", "video", "audio", "iframe", "figure", "figcaption", "table"}
)
SHINGLE_WORDS = 4
_WORD = re.compile(r"\w+")
# The last line of an embedded social post (a quoted tweet): "— Name (@handle) Month D, YYYY".
# Such a post is part of the article even when one extractor left it out, and its short
# lines of links are not teasers.
_POST_ATTRIBUTION = re.compile(r"\(@\w{1,30}\)\s+\w+\.?\s+\d{1,2},\s+\d{4}\s*$")
# A photo credit in parentheses at the end of a block: "(AP Photo/Jane Roe)", "(Photo: Getty
# Images)", "(Image credit: NASA)"; the agencies' names are matched in their own case.
_PHOTO_CREDIT = re.compile(
    r"\((?:[^()]{0,40}\b(?i:photo|photograph|image|picture|credit)s?\b[^()]{0,80}"
    r"|[^()]{0,60}\b(?:Getty Images|Reuters|AFP|AP|Shutterstock|EPA)\b[^()]{0,20})\)$"
)
# A site's name after the headline in <title>: "Headline | Site", "Headline - Site".
_TITLE_SUFFIX = re.compile(r"\s+[|\u2013\u2014-]\s+[^|\u2013\u2014-]{1,60}$")
_URL = re.compile(r"\bhttps?://([^/\s?#:]+)[^\s]*", re.IGNORECASE)
# The words a date or time may hold around a printed address: numbers, month names.
_DATE_WORDS = re.compile(
    r"\d{1,4}|am|pm|at|jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february"
    r"|march|april|june|july|august|september|october|november|december",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Candidate:
    """One extractor's body and the shingles of its text."""

    name: str  # "trafilatura" or "readability"
    element: lxml.html.HtmlElement
    shingles: Counter[tuple[str, ...]]
    words: int


def choose_body(
    doc: lxml.html.HtmlElement,
    base_url: str,
    article_body: str,
    title: str = "",
    canonical_url: str = "",
) -> lxml.html.HtmlElement | None:
    """The best-supported body of `doc`; None if no extractor found one.

    `title` is the page's headline: a first block repeating it goes. A first line that is
    only an address on the host of `base_url` or of `canonical_url` goes too.
    """
    first = _trafilatura_candidate(doc, base_url)
    second = _readability_candidate(doc)
    candidates = [found for found in (first, second) if found is not None]
    if not candidates:
        return None
    witness = _plausible_witness(doc, article_body)
    if witness is not None and witness.total() >= MIN_WITNESS_SHARE * max(
        found.shingles.total() for found in candidates
    ):
        chosen = max(candidates, key=lambda found: agreement(found.shingles, witness))
    else:
        chosen = _without_witness(first, second)
    others = [found for found in candidates if found is not chosen]
    body = without_cards(confirmed(chosen, others[0]) if others else chosen.element)
    pruned = without_link_tail(
        without_link_runs(without_repeats(without_teasers(with_image_captions(body))))
    )
    return without_own_address(without_headline(pruned, title), base_url, canonical_url)


def confirmed(chosen: Candidate, other: Candidate) -> lxml.html.HtmlElement:
    """`chosen`'s body less its short blocks that `other` did not find, when the two agree.

    A block only one extractor kept is boilerplate more often than not (a share line, a
    "related" teaser, a sign-up box, a tag list) unless it is a paragraph of prose; two
    bodies that disagree overall confirm nothing, and `chosen` is kept whole.
    """
    if agreement(chosen.shingles, other.shingles) < MIN_CONFIRMING_AGREEMENT:
        return chosen.element
    other_words = " ".join(_WORD.findall(" ".join(other.element.itertext()).lower()))
    for block in _lone_short_blocks(chosen.element, other.shingles, other_words):
        block.drop_tree()
    return chosen.element


def without_cards(root: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    """`root` less its rows of cards: short boxes, side by side, each under a link without text.

    A "more stories" rail lays an empty link over each card (kicker, headline, thumbnail)
    to make the whole box clickable; the article's own text is never covered so. Two or
    more such cards under one parent are a row and go; a lone one stays.
    """
    rows: dict[lxml.html.HtmlElement, set[lxml.html.HtmlElement]] = {}
    for link in root.iter("a"):
        card = _covered_card(link, root)
        if card is not None:
            rows.setdefault(card.getparent(), set()).add(card)
    for row in rows.values():
        if len(row) >= MIN_ROW_CARDS:
            for card in row:
                card.drop_tree()
    return root


def _covered_card(
    link: lxml.html.HtmlElement, root: lxml.html.HtmlElement
) -> lxml.html.HtmlElement | None:
    """The short box that `link` covers, if it is a link without text or image."""
    if not link.get("href") or len(link) or _WORD.search(link.text_content()):
        return None
    card = next(link.iterancestors("div", "li", "article", "section"), None)
    if card is None or card is root or card.getparent() is None:
        return None
    return card if len(_WORD.findall(card.text_content())) < MIN_LONE_BLOCK_WORDS else None


def with_image_captions(root: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    """`root` with each block that reads as an image's caption made a `<figcaption>`.

    An image's caption often reaches the body as a paragraph of its own, the image gone:
    a short block ending in a photo credit ("... in Hialeah, Fla. (AP Photo/Jane Roe)"),
    one that opens with the alt text of its own image, or one that holds its own opening
    twice (the caption's collapsed and expanded copies, "Dockers at dawn ... more"), which
    prose never does. It is the image's text, not the article's; it stays, with its
    credit and its image, as a `<figure>`'s `<figcaption>`.
    """
    leaves = set(_prunable_leaves(root))
    for block in list(root.iterdescendants(*PRUNED_BLOCKS)):
        if not (block in leaves or _is_card(block)):
            continue
        alts = [image.get("alt") or "" for image in block.iter("img")]
        if _is_caption(" ".join(block.text_content().split()), alts):
            _make_figure(block)
    return root


def _is_caption(text: str, alts: list[str]) -> bool:
    """Whether a block's `text` is an image's caption (its images' `alts` are known)."""
    words = _WORD.findall(text.lower())
    if len(words) < MAX_CAPTION_WORDS and _PHOTO_CREDIT.search(text):
        return True
    if len(words) >= 2 * MAX_CAPTION_WORDS or len(words) <= MIN_TOGGLED_WORDS:
        return False
    opening = " ".join(words[:MIN_TOGGLED_WORDS])
    if any(_normalised(alt).startswith(opening) for alt in alts):
        return True
    return " ".join(words).find(opening, 1) > 0


def _make_figure(block: lxml.html.HtmlElement) -> None:
    """Make `block` a `<figure>`: its images stay, its text and links go in a figcaption."""
    caption = lxml.html.Element("figcaption")
    caption.text, block.text = block.text, None
    for child in list(block):
        tail, child.tail = child.tail, None
        if child.tag not in ("img", "picture"):
            caption.append(child)
        _add_text(caption, tail)
    figure = block if block.tag in ("p", "div") else lxml.html.Element("figure")
    if figure is not block:
        figure.extend(list(block))
        block.append(figure)
    figure.tag = "figure"
    figure.attrib.clear()
    figure.append(caption)


def _add_text(element: lxml.html.HtmlElement, text: str | None) -> None:
    """Append `text` at the end of `element`'s content."""
    if not text:
        return
    last = element[-1] if len(element) else None
    if last is None:
        element.text = (element.text or "") + text
    else:
        last.tail = (last.tail or "") + text


def without_teasers(root: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    """`root` less its short blocks that are nearly all link text: teasers.

    Such a block points elsewhere ("Related: ...", "Read more: ...", a list of other
    stories); both extractors keep them when they sit among the paragraphs. A link that
    shows its own address (a cited URL, an embedded video's "Video: <url>") is no teaser.
    """
    leaves = _prunable_leaves(root)
    for block in leaves:
        if _is_teaser(block):
            block.drop_tree()
    return root


def without_repeats(root: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    """`root` less each block that repeats the block just before it word for word.

    A gallery or slideshow repeats its caption under every slide; the same sentence twice
    in a row is never the article's. A repeat further away (a recipe's step, a refrain)
    stays.
    """
    previous = ""
    for block in _prunable_leaves(root):
        words = " ".join(_WORD.findall(block.text_content().lower()))
        if not words:
            continue
        if words == previous and words.count(" ") + 1 >= MIN_REPEAT_WORDS:
            block.drop_tree()
        previous = words
    return root


def without_link_runs(root: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    """`root` less each run of links side by side inside a paragraph of prose.

    Three or more links with nothing but spaces (or a thumbnail) between them are a box
    of other stories (a name's hover card, "more on this"), not a sentence: prose puts
    words or commas between the links it cites.
    """
    for paragraph in list(root.iter("p", "li", "dd", "blockquote")):
        for run in _link_runs(paragraph):
            for element in run:
                element.drop_tree()
    return root


def _link_runs(paragraph: lxml.html.HtmlElement) -> list[list[lxml.html.HtmlElement]]:
    """The runs of at least MIN_LINK_RUN links among `paragraph`'s children, each with the
    images between them; none if the paragraph is nothing but links."""
    runs: list[list[lxml.html.HtmlElement]] = [[]]
    for child in paragraph:
        if child.tag in ("a", "img") and not (child.tail or "").strip():
            runs[-1].append(child)
        elif child.tag == "a":
            runs[-1].append(child)
            runs.append([])
        else:
            runs.append([])
    found = [
        run
        for run in runs
        if sum(element.tag == "a" for element in run) >= MIN_LINK_RUN
        and sum(len(_WORD.findall(element.text_content())) for element in run) >= MIN_LINK_RUN_WORDS
    ]
    linked = sum(len(run) for run in found)
    return found if linked < len(paragraph) or (paragraph.text or "").strip() else []


def without_link_tail(root: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    """`root` less the blocks of links that end it, whatever their length.

    Nothing of the article follows a tag list, a "related stories" list or a row of
    teaser cards (a list item may hold its thumbnail); a block mostly of links at the
    very end points elsewhere even when it is too long for a teaser (over half its text
    for a short block, "Tag: example.org"; over MAX_TEASER_LINK_DENSITY for a longer
    one). A link that shows its own address (a source cited at the end) stops the
    trimming.
    """
    for block in reversed(_tail_blocks(root)):
        if _WORD.search(block.text_content()) and not _is_link_block(block):
            break
        block.drop_tree()
    return root


def _tail_blocks(root: lxml.html.HtmlElement) -> list[lxml.html.HtmlElement]:
    """The leaf blocks under `root`, and its list items whose only inner parts are images."""
    leaves = set(_prunable_leaves(root))
    return [
        block
        for block in root.iterdescendants(*PRUNED_BLOCKS)
        if block in leaves or (block.tag == "li" and _is_card(block))
    ]


def _is_card(item: lxml.html.HtmlElement) -> bool:
    return not any(
        isinstance(inner.tag, str)
        and (inner.tag in BLOCK_TAGS or inner.tag in KEPT_INSIDE)
        and inner.tag not in ("img", "picture", "source")
        for inner in item.iterdescendants()
    )


def _is_link_block(block: lxml.html.HtmlElement) -> bool:
    if any(link.text_content().strip() == link.get("href", "") for link in block.iter("a")):
        return False
    short = len(_WORD.findall(block.text_content())) < MIN_LONE_BLOCK_WORDS
    return link_density(block) > (MAX_LINK_DENSITY if short else MAX_TEASER_LINK_DENSITY)


def without_headline(root: lxml.html.HtmlElement, title: str) -> lxml.html.HtmlElement:
    """`root` less its first block when that block only repeats `title`.

    The headline printed again as the body's first line (a heading, a bold paragraph) is
    the page's title, which the reader sees already. `title` may end in the site's name
    (" | Site", " - Site"): the block may equal the title with or without it.
    """
    headlines = {_normalised(title), _normalised(_TITLE_SUFFIX.sub("", title.strip()))} - {""}
    first = _first_block(root)
    if first is not None and _normalised(first.text_content()) in headlines:
        first.drop_tree()
    return root


def without_own_address(root: lxml.html.HtmlElement, *page_urls: str) -> lxml.html.HtmlElement:
    """`root` less a first line of loose text that is only an address on the page's own host.

    The page's own hosts are those of `page_urls` (where it was fetched from, its canonical
    address).
    A print header or share line ("https://news.example.org/2026/11/story", perhaps with
    the date) is no part of the article. Only the first text of the body is looked at, and
    only text outside links: a link that shows its address is a citation.
    """
    own_hosts = {_bare_host(urlsplit(url).hostname or "") for url in page_urls} - {""}
    for element, slot, text in _text_nodes(root):
        if not _WORD.search(text):
            continue
        if element.tag != "a" and _is_own_address(text, own_hosts):
            setattr(element, slot, None)
            if slot == "text" and element is not root and _is_bare_leaf(element):
                element.drop_tree()
        break
    return root


def _is_own_address(text: str, own_hosts: set[str]) -> bool:
    found = _URL.search(text)
    if found is None or _bare_host(found.group(1)) not in own_hosts:
        return False
    rest = text[: found.start()] + " " + text[found.end() :]
    return all(_DATE_WORDS.fullmatch(word) for word in _WORD.findall(rest))


def _bare_host(host: str) -> str:
    host = host.lower().rstrip(".")
    return host.removeprefix("www.")


def _is_bare_leaf(element: lxml.html.HtmlElement) -> bool:
    return (
        element.tag in PRUNED_BLOCKS
        and _is_leaf_block(element)
        and not _WORD.search(element.text_content())
    )


def _text_nodes(
    root: lxml.html.HtmlElement,
) -> list[tuple[lxml.html.HtmlElement, str, str]]:
    """Each text of `root` in reading order: (element, "text" or "tail", the text)."""
    found = []
    for event, element in etree.iterwalk(root, events=("start", "end")):
        if not isinstance(element.tag, str):
            if event == "end" and element.tail:
                found.append((element, "tail", element.tail))
            continue
        if event == "start" and element.text:
            found.append((element, "text", element.text))
        elif event == "end" and element.tail and element is not root:
            found.append((element, "tail", element.tail))
    return found


def _first_block(root: lxml.html.HtmlElement) -> lxml.html.HtmlElement | None:
    """The first leaf block with words under `root`, if no text comes before it."""
    body = _normalised(root.text_content())
    for block in root.iterdescendants(*BLOCK_TAGS):
        if not _is_leaf_block(block):
            continue
        words = _normalised(block.text_content())
        if words:
            return block if body.startswith(words) else None
    return None


def _normalised(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _prunable_leaves(root: lxml.html.HtmlElement) -> list[lxml.html.HtmlElement]:
    """The leaf blocks under `root` that may go: not those of an embedded social post."""
    posts = [quote for quote in root.iter("blockquote") if _is_embedded_post(quote)]
    return [
        block
        for block in root.iterdescendants(*PRUNED_BLOCKS)
        if _is_leaf_block(block)
        and block not in posts
        and not any(outer in posts for outer in block.iterancestors("blockquote"))
    ]


def _is_embedded_post(quote: lxml.html.HtmlElement) -> bool:
    return bool(_POST_ATTRIBUTION.search(" ".join(quote.text_content().split())))


def _is_teaser(block: lxml.html.HtmlElement) -> bool:
    words = _WORD.findall(block.text_content())
    if not words or len(words) >= MIN_LONE_BLOCK_WORDS:
        return False
    if any(link.text_content().strip() == link.get("href", "") for link in block.iter("a")):
        return False
    return link_density(block) > MAX_TEASER_LINK_DENSITY


def _lone_short_blocks(
    root: lxml.html.HtmlElement, other: Counter[tuple[str, ...]], other_words: str
) -> list[lxml.html.HtmlElement]:
    """The leaf blocks under `root` that are short and not in `other`.

    Around the first and the last block the two extractors share, such a block goes.
    Between them (inside the article) it goes only when it is mostly links or one of a
    run of such blocks (a box: sign-up, "more on this", a product card); a lone short
    block among confirmed ones is a subheading or a short paragraph, and stays.
    """
    leaves = _prunable_leaves(root)
    lone = [_lone_and_short(block, other, other_words) for block in leaves]
    kept = [
        n for n, block in enumerate(leaves) if not lone[n] and _WORD.search(block.text_content())
    ]
    if not kept:
        return []
    boxed = _in_runs(lone, MIN_BOX_BLOCKS)
    return [
        block
        for n, block in enumerate(leaves)
        if lone[n]
        and (not kept[0] < n < kept[-1] or boxed[n] or link_density(block) > MAX_LINK_DENSITY)
    ]


def _in_runs(flags: list[bool], length: int) -> list[bool]:
    """Which of `flags` are True within a run of at least `length` consecutive Trues."""
    marked = [False] * len(flags)
    start = 0
    for end in range(len(flags) + 1):
        if end == len(flags) or not flags[end]:
            if end - start >= length:
                marked[start:end] = [True] * (end - start)
            start = end + 1
    return marked


def _is_leaf_block(block: lxml.html.HtmlElement) -> bool:
    return not any(
        isinstance(inner.tag, str) and (inner.tag in BLOCK_TAGS or inner.tag in KEPT_INSIDE)
        for inner in block.iterdescendants()
    )


def _lone_and_short(
    block: lxml.html.HtmlElement, other: Counter[tuple[str, ...]], other_words: str
) -> bool:
    words = _WORD.findall(block.text_content().lower())
    if not words or len(words) >= MIN_LONE_BLOCK_WORDS:
        return False
    if len(words) < SHINGLE_WORDS:
        return f" {' '.join(words)} " not in f" {other_words} "
    own = shingles(" ".join(words))
    return (own & other).total() < MIN_BLOCK_SHARED * own.total()


def _without_witness(first: Candidate | None, second: Candidate | None) -> Candidate:
    if first is None:
        assert second is not None
        return second
    if second is None or link_density(second.element) > MAX_LINK_DENSITY:
        return first
    return second if first.words < MIN_FRAGMENT_SHARE * second.words else first


def _plausible_witness(
    doc: lxml.html.HtmlElement, article_body: str
) -> Counter[tuple[str, ...]] | None:
    witness = shingles(article_body)
    if witness.total() < MIN_WITNESS_WORDS:
        return None
    page = shingles(" ".join(doc.itertext()))
    on_page = (witness & page).total() / witness.total()
    return witness if on_page >= MIN_WITNESS_ON_PAGE else None


def _trafilatura_candidate(doc: lxml.html.HtmlElement, base_url: str) -> Candidate | None:
    found = trafilatura.extract(
        doc,
        url=base_url,
        output_format="html",
        include_images=True,
        include_links=True,
        include_formatting=True,
        include_tables=True,
        include_comments=False,
        favor_precision=True,  # measured: F1 +0.002 once readability covers its fragments
        fast=False,
        deduplicate=False,
        with_metadata=False,
    )
    if not found:
        return None
    parsed = lxml.html.document_fromstring(found)
    body = parsed.find("body")
    return _candidate("trafilatura", body if body is not None else parsed)


def _readability_candidate(doc: lxml.html.HtmlElement) -> Candidate | None:
    try:
        summary = Document(lxml.html.tostring(doc, encoding="unicode")).summary(html_partial=True)
        element = lxml.html.fragment_fromstring(summary, create_parent="div")
    except (Unparseable, etree.ParserError, ValueError):
        return None
    return _candidate("readability", element)


def _candidate(name: str, element: lxml.html.HtmlElement) -> Candidate | None:
    text = " ".join(element.itertext())
    found = shingles(text)
    return Candidate(name, element, found, len(_WORD.findall(text))) if found else None


def shingles(text: str) -> Counter[tuple[str, ...]]:
    """The multiset of overlapping word 4-grams of `text` (lower-cased)."""
    words = _WORD.findall(text.lower())
    if len(words) < SHINGLE_WORDS:
        return Counter([tuple(words)]) if words else Counter()
    return Counter(
        tuple(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)
    )


def agreement(found: Counter[tuple[str, ...]], witness: Counter[tuple[str, ...]]) -> float:
    """F1 of `found`'s shingles against the witness's."""
    shared = (found & witness).total()
    if not shared:
        return 0.0
    return 2 * shared / (found.total() + witness.total())


def link_density(element: lxml.html.HtmlElement) -> float:
    """Share of the element's text that sits inside links."""
    text = len(" ".join(element.text_content().split()))
    linked = sum(len(" ".join(link.text_content().split())) for link in element.iter("a"))
    return linked / text if text else 1.0
