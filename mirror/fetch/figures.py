"""Figures with their captions and credits, and the article's lead image.

Automatic extraction keeps a figure's image but drops its caption and its credit
("Фото: ТАСС", "© Reuters"), which the outlet must keep. `page_figures` reads every
figure of the page first; `restore_captions` gives each image of the body its caption
and credit back; `lead_figure` is the page's lead image (the first figure before the
body, else og:image / JSON-LD `image`) when the body does not already open with one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import lxml.html
from lxml.etree import ParserError

from mirror.fetch.sanitise import absolute_http_url

MAX_FIGURES = 200  # figures read per page
MAX_CAPTION_CHARS = 1_000
_CREDIT_CLASS = re.compile(r"credit|copyright|author|photographer|byline|source", re.I)
_CREDIT_TEXT = re.compile(
    r"(?:^|\s)((?:photo(?:graph)?|image|picture|credit|фото|фотография|источник)\s*:\s*\S.*"
    r"|©\s*\S.*)$",
    re.I,
)
_NOT_A_PHOTO = re.compile(r"logo|placeholder|default|favicon|sprite", re.I)


@dataclass(frozen=True)
class Figure:
    """An image with what the page says about it."""

    src: str  # absolute http(s)
    alt: str
    caption: str
    credit: str

    def html(self) -> str:
        """The figure as a small HTML fragment (text escaped)."""
        figure = lxml.html.Element("figure")
        figure.append(lxml.html.Element("img", src=self.src, alt=self.alt))
        if self.caption or self.credit:
            caption = lxml.html.Element("figcaption")
            caption.text = self.caption + (" " if self.caption and self.credit else "")
            if self.credit:
                credit = lxml.html.Element("small")
                credit.text = self.credit
                caption.append(credit)
            figure.append(caption)
        return str(lxml.html.tostring(figure, encoding="unicode"))


def page_figures(doc: lxml.html.HtmlElement, base_url: str) -> dict[str, Figure]:
    """Every <figure> of the page that shows an image, by image URL, in page order."""
    found: dict[str, Figure] = {}
    for element in list(doc.iter("figure"))[:MAX_FIGURES]:
        image = next(element.iter("img"), None)
        src = absolute_http_url(image.get("src") or "", base_url) if image is not None else ""
        if src and src not in found and image is not None:
            caption, credit = caption_and_credit(element)
            found[src] = Figure(src, _clean(image.get("alt")), caption, credit)
    return found


def caption_and_credit(figure: lxml.html.HtmlElement) -> tuple[str, str]:
    """A figure's caption and its credit (a credit element, or "Фото: X" / "© X" text)."""
    credits = [
        element
        for element in figure.iter()
        if isinstance(element.tag, str)
        and element is not figure
        and _CREDIT_CLASS.search(f"{element.get('class', '')} {element.get('itemprop', '')}")
    ]
    credit = " ".join(_clean(element.text_content()) for element in credits[:3])
    captions = list(figure.iter("figcaption"))
    caption = _clean(captions[0].text_content()) if captions else ""
    if credit:
        caption = _clean(caption.replace(credit, ""))
    else:
        found = _CREDIT_TEXT.search(caption)
        if found:
            credit, caption = found.group(1).strip(), caption[: found.start(1)].strip()
    return caption[:MAX_CAPTION_CHARS], credit[:MAX_CAPTION_CHARS]


def restore_captions(body_html: str, figures: dict[str, Figure]) -> str:
    """`body_html` with each of its images shown as its page figure: caption and credit."""
    if not figures or "<img" not in body_html:
        return body_html
    try:
        root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    except (ParserError, ValueError):
        return body_html
    for image in list(root.iter("img")):
        figure = figures.get(image.get("src") or "")
        if figure is None or not (figure.caption or figure.credit):
            continue
        old = next(image.iterancestors("figure"), image)
        new = lxml.html.fragment_fromstring(figure.html())
        new.tail = old.tail
        old.getparent().replace(old, new)
    html = str(lxml.html.tostring(root, encoding="unicode"))
    return html.removeprefix("<div>").removesuffix("</div>")


def lead_figure(
    doc: lxml.html.HtmlElement,
    named: Figure | None,
    figures: dict[str, Figure],
    body_html: str,
) -> Figure | None:
    """The lead image to show above the body, or None (none, or the body opens with it).

    `named` is the image the page's metadata names (`named_image`), read before the
    page's <meta> and <script> elements were removed."""
    try:
        body = lxml.html.fragment_fromstring(body_html, create_parent="div")
    except (ParserError, ValueError):
        return None
    if _opens_with_image(body):
        return None
    in_body = {image.get("src") for image in body.iter("img")}
    first = _first_figure_before_body(doc, figures, body)
    if first is not None:
        return None if first.src in in_body else first
    if named is None or in_body or _NOT_A_PHOTO.search(named.src):
        return None  # og:image is often another rendition of a body image: never twice
    return named


def _opens_with_image(body: lxml.html.HtmlElement) -> bool:
    """Whether the body's first block is an image (a figure, or a block of an image alone)."""
    if _clean(body.text) or not len(body):
        return False
    first = body[0]
    return next(first.iter("img"), None) is not None and (
        first.tag == "figure" or not _clean(first.text_content())
    )


def _first_figure_before_body(
    doc: lxml.html.HtmlElement, figures: dict[str, Figure], body: lxml.html.HtmlElement
) -> Figure | None:
    """The first figure of the article (or main) element that comes before the body's
    first paragraph on the page."""
    scopes = doc.xpath("//article | //main | //*[@itemprop='articleBody']")
    if not scopes:
        return None
    opening = next(
        (_clean(p.text_content()) for p in body.iter("p") if _clean(p.text_content())), ""
    )
    for element in scopes[0].iter("figure", "p"):
        if element.tag == "p" and opening and _clean(element.text_content()) == opening:
            return None
        image = next(element.iter("img"), None) if element.tag == "figure" else None
        if image is not None:
            return figures.get(image.get("src") or "")
    return None


def named_image(metas: dict[str, str], linked: dict[str, Any], base_url: str) -> Figure | None:
    """og:image, else JSON-LD `image` (with its caption and credit when it has them)."""
    image = linked.get("image")
    if isinstance(image, list):
        image = image[0] if image else None
    data = image if isinstance(image, dict) else {}
    url = metas.get("og:image") or metas.get("og:image:url") or metas.get("twitter:image")
    url = url or (image if isinstance(image, str) else _text(data.get("url")))
    src = absolute_http_url(url or "", base_url)
    if not src:
        return None
    credit = _text(data.get("creditText")) or _text(data.get("copyrightHolder"))
    caption = _text(data.get("caption")) or metas.get("og:image:alt", "")
    return Figure(src, _clean(metas.get("og:image:alt")), _clean(caption), _clean(credit))


def _text(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("name")
    return value if isinstance(value, str) else ""


def _clean(text: str | None) -> str:
    return " ".join(text.split()) if text else ""
