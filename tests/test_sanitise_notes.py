"""Our own "Video: <url>" lines carry class="note" through sanitising, and only they do."""

from __future__ import annotations

import re

import lxml.html

from mirror.build.render import ArticleView, render_article
from mirror.digest.text import html_to_text
from mirror.fetch.extract import extract_article
from mirror.fetch.sanitise import sanitise_body
from tests.test_render import SITE, article

BASE = "https://www.example.org/news/a.html"
WATCH = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
EMBED = '<iframe src="https://www.youtube.com/embed/dQw4w9WgXcQ"></iframe>'


def notes(body_html: str) -> list[str]:
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    return [f"{e.tag}:{e.text_content()}" for e in root.iter() if e.get("class") is not None]


def test_a_player_becomes_a_note_paragraph() -> None:
    body = sanitise_body(f"<p>Before.</p><div class='embed'>{EMBED}</div><p>After.</p>", BASE)
    assert body == (
        f'<p>Before.</p><p class="note">Video: <a href="{WATCH}">{WATCH}</a></p><p>After.</p>'
    )


def test_a_player_inside_a_paragraph_becomes_a_note_span() -> None:
    body = sanitise_body(f"<p>Watch {EMBED} now.</p>", BASE)
    assert notes(body) == [f"span:Video: {WATCH}"]
    assert body.startswith('<p>Watch <span class="note">Video: ')


def test_the_pages_own_classes_are_dropped_even_note_elsewhere() -> None:
    html = (
        '<p class="lead">Lead.</p><p class="note extra">Two.</p><p class="Note">Three.</p>'
        '<p class=" note">Four.</p><blockquote class="note">Quote.</blockquote>'
        '<h2 class="note">Head</h2><em class="note">em</em><li class="note">item</li>'
        '<span class="notes">five</span><span class="note-x">six</span><span>seven</span>'
    )
    body = sanitise_body(html, BASE)
    assert "class=" not in body
    assert "<span" not in body  # spans other than notes lose their tags, keep their text
    for text in ("Lead.", "Two.", "Three.", "Four.", "Quote.", "Head", "em", "five", "seven"):
        assert text in body


def test_notes_survive_sanitising_twice() -> None:
    once = sanitise_body(f"<p>One.</p>{EMBED}<p>Two {EMBED} more.</p>", BASE)
    assert sanitise_body(once, BASE) == once
    assert notes(once) == [f"p:Video: {WATCH}", f"span:Video: {WATCH}"]


def test_automatic_extraction_keeps_the_note() -> None:
    paragraphs = [
        f"<p>Paragraph {n} of the story tells of the river, the council and the town's "
        f"long argument about the new bridge and its cost.</p>"
        for n in range(8)
    ]
    before, after = "".join(paragraphs[:4]), "".join(paragraphs[4:])
    page = (
        "<html><head><title>Bridge</title></head><body><nav><a href='/'>Home</a></nav>"
        f"<article><h1>Bridge</h1>{before}{EMBED}{after}</article>"
        "</body></html>"
    )
    extracted = extract_article(page, BASE)
    assert notes(extracted.body_html) == [f"p:Video: {WATCH}"]
    assert len(re.findall(r"class=", extracted.body_html)) == 1


def test_the_built_page_shows_a_note_and_the_digest_its_url() -> None:
    body = sanitise_body(f"<p>Story.</p>{EMBED}", BASE)
    view: ArticleView = article(body_html=body, images={})
    page = render_article(view, SITE).decode()
    assert f'<p class="note">Video: <a href="{WATCH}" rel="noreferrer">{WATCH}</a></p>' in page
    assert f"Video: {WATCH}" in " ".join(html_to_text(body).split())


def test_a_video_line_that_lost_its_class_is_marked_again() -> None:
    link = f'<a href="{WATCH}">{WATCH}</a>'
    body = sanitise_body(f"<p>Video: {link}</p><p>Watch <b>it</b> Video: {link} now.</p>", BASE)
    assert body == (
        f'<p class="note">Video: {link}</p>'
        f'<p>Watch <b>it</b> <span class="note">Video: {link}</span> now.</p>'
    )


def test_the_pages_own_video_mentions_are_not_notes() -> None:
    html = (
        f'<p>Video: <a href="{WATCH}">the speech</a></p><p>Video: the speech.</p>'
        f'<p>See <a href="{WATCH}">{WATCH}</a></p>'
        f'<p>Video: <a href="{WATCH}"><b>{WATCH}</b></a></p>'
    )
    assert "class=" not in sanitise_body(html, BASE)
