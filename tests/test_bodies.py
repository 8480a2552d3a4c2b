"""The automatic body: extractors picked by agreement, articleBody as a witness."""

from __future__ import annotations

import json

import lxml.html
import pytest

from mirror.fetch import bodies
from mirror.fetch.extract import extract_article

URL = "https://news.example.org/2026/11/harbour"
STORY = [
    f"Paragraph {n} of the harbour story: the dockers of pier {n} met the council on "
    f"Tuesday morning and argued for {n + 3} hours about wages, cranes and the tide tables."
    for n in range(1, 9)
]


def page(body: str, *, ld: dict[str, object] | None = None, extra: str = "") -> str:
    script = f'<script type="application/ld+json">{json.dumps(ld)}</script>' if ld else ""
    return (
        f"<html><head><title>Harbour</title>{script}</head><body>"
        f"<header><a href='/'>Home</a></header>{body}{extra}"
        "<footer>© Example</footer></body></html>"
    )


def article(paragraphs: list[str]) -> str:
    inner = "".join(f"<p>{text}</p>" for text in paragraphs)
    return f"<article><h1>Harbour</h1>{inner}</article>"


def body_text(html: str) -> str:
    return " ".join(extract_article(html, URL).body_html.split())


def comments(count: int) -> str:
    items = "".join(
        f"<li class='comment'><p>Reader {n} wrote: I disagree with the council about the cranes "
        f"and the tide tables, and I have said so for {n} years at every meeting.</p></li>"
        for n in range(count)
    )
    return f"<section id='comments' class='comments'><h2>Comments</h2><ol>{items}</ol></section>"


def test_comments_are_not_in_the_body() -> None:
    text = body_text(page(article(STORY), extra=comments(40)))
    assert all(paragraph in text for paragraph in STORY)
    assert "Reader" not in text


def test_the_article_wins_over_a_related_list() -> None:
    related = "".join(
        f"<li><a href='/story/{n}'>Related story number {n} about something else entirely</a></li>"
        for n in range(30)
    )
    html = page(f"<div class='related'><h3>Related</h3><ul>{related}</ul></div>{article(STORY)}")
    text = body_text(html)
    assert all(paragraph in text for paragraph in STORY)
    assert "Related story number" not in text


def test_a_lying_article_body_is_not_trusted() -> None:
    lie = " ".join(
        f"Invented sentence {n} that the page never shows to its readers." for n in range(40)
    )
    html = page(article(STORY), ld={"@type": "NewsArticle", "articleBody": lie})
    text = body_text(html)
    assert all(paragraph in text for paragraph in STORY)
    assert "Invented" not in text


def test_a_witness_must_be_on_the_page_and_long_enough() -> None:
    doc = lxml.html.document_fromstring(page(article(STORY)))
    assert bodies._plausible_witness(doc, " ".join(STORY)) is not None
    assert bodies._plausible_witness(doc, STORY[0]) is None  # too short to judge by
    assert bodies._plausible_witness(doc, "Made up words. " * 60) is None  # not on the page


def test_a_teaser_article_body_does_not_cut_the_body() -> None:
    teaser = " ".join(STORY[:2])  # on the page, but a quarter of the article
    html = page(article(STORY), ld={"@type": "NewsArticle", "articleBody": teaser})
    text = body_text(html)
    assert all(paragraph in text for paragraph in STORY)


def test_a_truthful_article_body_picks_the_candidate_that_agrees() -> None:
    witness = bodies.shingles(" ".join(STORY))
    whole = bodies.shingles(" ".join(STORY))
    half = bodies.shingles(" ".join(STORY[:4]))
    assert bodies.agreement(whole, witness) > bodies.agreement(half, witness)
    assert bodies.agreement(bodies.shingles("nothing in common here at all"), witness) == 0.0


def test_readability_is_asked_when_trafilatura_finds_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bodies, "_trafilatura_candidate", lambda doc, url: None)
    text = body_text(page(article(STORY), extra=comments(5)))
    assert all(paragraph in text for paragraph in STORY)


def test_a_fragment_from_trafilatura_gives_way_to_readability() -> None:
    first = bodies._candidate("trafilatura", lxml.html.fragment_fromstring(f"<p>{STORY[0]}</p>"))
    whole = "".join(f"<p>{text}</p>" for text in STORY)
    second = bodies._candidate("readability", lxml.html.fragment_fromstring(f"<div>{whole}</div>"))
    assert first is not None and second is not None
    assert bodies._without_witness(first, second) is second
    links = "".join(f"<p><a href='/{n}'>{text}</a></p>" for n, text in enumerate(STORY))
    listing = bodies._candidate("readability", lxml.html.fragment_fromstring(f"<div>{links}</div>"))
    assert listing is not None
    assert bodies._without_witness(first, listing) is first  # a list of links is no article


def candidate(name: str, html: str) -> bodies.Candidate:
    found = bodies._candidate(name, lxml.html.fragment_fromstring(html, create_parent="div"))
    assert found is not None
    return found


def paragraphs(texts: list[str]) -> str:
    return "".join(f"<p>{text}</p>" for text in texts)


TRAILER = (
    "<p>Share this story on social media</p>"
    "<p>Sign up for our newsletter and get the harbour news every morning.</p>"
    "<ul><li><a href='/a'>Related: the cranes of pier nine are sold</a></li>"
    "<li><a href='/b'>Related: a new ferry for the islands</a></li></ul>"
    "<p>Copyright 2026 Example News. All rights reserved.</p>"
)


def test_short_blocks_the_other_extractor_did_not_find_are_dropped() -> None:
    chosen = candidate("trafilatura", paragraphs(STORY) + TRAILER)
    other = candidate("readability", paragraphs(STORY))
    text = " ".join(bodies.confirmed(chosen, other).text_content().split())
    assert all(paragraph in text for paragraph in STORY)
    for boilerplate in ("Share this", "newsletter", "Related", "Copyright"):
        assert boilerplate not in text


def test_an_unconfirmed_paragraph_of_prose_is_kept() -> None:
    prose = " ".join(f"The tide came in at {n} and the dockers waited for it." for n in range(5))
    chosen = candidate("trafilatura", paragraphs([*STORY, prose]) + TRAILER)
    other = candidate("readability", paragraphs(STORY))
    text = " ".join(bodies.confirmed(chosen, other).text_content().split())
    assert prose in text
    assert "newsletter" not in text


def test_a_short_block_inside_the_article_goes_only_if_it_is_links() -> None:
    heading = "<h2>What the council said</h2>"
    links = "<p><a href='/more'>Read more about the council</a></p>"
    chosen = candidate(
        "trafilatura", paragraphs(STORY[:4]) + heading + links + paragraphs(STORY[4:])
    )
    other = candidate("readability", paragraphs(STORY))
    text = " ".join(bodies.confirmed(chosen, other).text_content().split())
    assert "What the council said" in text  # a subheading the other extractor left out
    assert "Read more" not in text


def test_a_block_with_an_image_is_never_dropped() -> None:
    figure = "<p><img src='/crane.jpg' alt=''>Photo: Harbour Press</p>"
    chosen = candidate("trafilatura", paragraphs(STORY) + figure)
    other = candidate("readability", paragraphs(STORY))
    kept = bodies.confirmed(chosen, other)
    assert kept.find(".//img") is not None
    assert "Harbour Press" in kept.text_content()


def test_bodies_that_disagree_confirm_nothing() -> None:
    elsewhere = [
        f"Unrelated sentence number {n} about the weather in the hills." for n in range(30)
    ]
    chosen = candidate("trafilatura", paragraphs(STORY) + TRAILER)
    other = candidate("readability", paragraphs(elsewhere))
    text = " ".join(bodies.confirmed(chosen, other).text_content().split())
    assert "newsletter" in text  # nothing to judge by: the chosen body is kept whole


def test_half_a_body_from_trafilatura_gives_way_to_readability() -> None:
    half = candidate("trafilatura", paragraphs(STORY[:4]))
    whole = candidate("readability", paragraphs(STORY))
    assert bodies._without_witness(half, whole) is whole
    most = candidate("trafilatura", paragraphs(STORY[:7]))
    assert bodies._without_witness(most, whole) is most


def test_short_blocks_of_links_leave_the_body_even_when_both_extractors_kept_them() -> None:
    teaser = "<p>Related: <a href='/cranes'>The cranes of pier nine are sold to a museum</a></p>"
    aside = "<p>The council will <a href='/minutes'>publish the minutes</a> on Friday.</p>"
    video = "https://video.example.net/watch/harbour-council"
    cited = f"<p>Video: <a href='{video}'>{video}</a></p>"  # an embed, replaced by its link
    html = paragraphs(STORY[:4]) + teaser + aside + cited + paragraphs(STORY[4:])
    text = " ".join(
        bodies.without_teasers(lxml.html.fragment_fromstring(html, create_parent="div"))
        .text_content()
        .split()
    )
    assert all(paragraph in text for paragraph in STORY)
    assert "cranes of pier nine" not in text
    assert "publish the minutes" in text  # a sentence with a link in it is prose
    assert video in text  # a link that shows its own address is no teaser


def test_a_related_link_inside_an_article_leaves_the_extracted_body() -> None:
    link = "<a href='/story/cranes'>The cranes of pier nine are sold to the harbour museum</a>"
    teaser = f"<p>Read more: {link}</p>"
    html = page(article([*STORY[:4], teaser, *STORY[4:]]).replace(f"<p>{teaser}</p>", teaser))
    text = body_text(html)
    assert all(paragraph in text for paragraph in STORY)
    assert "cranes of pier nine" not in text


def test_a_box_of_unconfirmed_short_blocks_inside_the_article_goes() -> None:
    box = (
        "<p>Get the harbour newsletter</p><p>Every morning at seven</p>"
        "<p>Free for readers</p><p>Sign up now</p>"
    )
    subheading = "<h2>What the council said</h2>"
    chosen = candidate(
        "trafilatura",
        paragraphs(STORY[:3]) + box + paragraphs(STORY[3:5]) + subheading + paragraphs(STORY[5:]),
    )
    other = candidate("readability", paragraphs(STORY))
    text = " ".join(bodies.confirmed(chosen, other).text_content().split())
    assert all(paragraph in text for paragraph in STORY)
    assert "newsletter" not in text and "Sign up" not in text
    assert "What the council said" in text  # alone among confirmed paragraphs: a subheading


def test_three_unconfirmed_short_lines_inside_the_article_stay() -> None:
    steps = "<p>Close the gate.</p><p>Lower the crane.</p><p>Wait for the tide.</p>"
    chosen = candidate("trafilatura", paragraphs(STORY[:4]) + steps + paragraphs(STORY[4:]))
    other = candidate("readability", paragraphs(STORY))
    text = " ".join(bodies.confirmed(chosen, other).text_content().split())
    assert "Lower the crane" in text  # fewer than MIN_BOX_BLOCKS: a short list, not a box


# An embedded social post as the extractors leave it: a quote ending in its attribution.
POST = (
    "<blockquote><p>Watch: <a href='https://social.example/v/1'>the cranes are going to the "
    "museum</a></p><p>— Harbour Board (@harbourboard) <a href='https://social.example/s/1'>"
    "November 4, 2026</a></p></blockquote>"
)


def test_an_embedded_post_the_other_extractor_left_out_is_kept() -> None:
    chosen = candidate("trafilatura", paragraphs(STORY) + POST)
    other = candidate("readability", paragraphs(STORY))
    text = " ".join(bodies.confirmed(chosen, other).text_content().split())
    assert "the cranes are going to the museum" in text
    assert "(@harbourboard) November 4, 2026" in text


def test_an_embedded_post_is_no_teaser() -> None:
    root = lxml.html.fragment_fromstring(paragraphs(STORY) + POST, create_parent="div")
    text = " ".join(bodies.without_teasers(root).text_content().split())
    assert "the cranes are going to the museum" in text


def test_a_quote_without_an_attribution_is_pruned_as_before() -> None:
    quote = "<blockquote><p><a href='/cranes'>The cranes of pier nine</a></p></blockquote>"
    root = lxml.html.fragment_fromstring(paragraphs(STORY) + quote, create_parent="div")
    assert "cranes of pier nine" not in bodies.without_teasers(root).text_content()


def test_runs_of_flags() -> None:
    flags = [True, False, True, True, True, False, True, True]
    assert bodies._in_runs(flags, 3) == [False, False, True, True, True, False, False, False]
    assert bodies._in_runs(flags, 2) == [False, False, True, True, True, False, True, True]
    assert bodies._in_runs([], 3) == []


def test_a_block_repeating_the_one_before_it_goes() -> None:
    caption = "<p>The cranes of pier nine at dawn, before the museum took them</p>"
    html = paragraphs(STORY[:4]) + caption * 3 + paragraphs(STORY[4:])
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    text = " ".join(bodies.without_repeats(root).text_content().split())
    assert text.count("The cranes of pier nine at dawn") == 1
    assert all(paragraph in text for paragraph in STORY)


def test_a_repeat_further_away_or_short_stays() -> None:
    refrain = "<p>Stir the pot and wait for the tide.</p>"
    short = "<p>Stir.</p>"
    html = refrain + paragraphs(STORY[:2]) + refrain + short + short
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    text = " ".join(bodies.without_repeats(root).text_content().split())
    assert text.count("Stir the pot") == 2
    assert text.count("Stir.") == 2  # shorter than MIN_REPEAT_WORDS: a list's "Yes", "No"


def fragment(html: str) -> lxml.html.HtmlElement:
    return lxml.html.fragment_fromstring(html, create_parent="div")


def words_of(root: lxml.html.HtmlElement) -> str:
    return " ".join(root.text_content().split())


@pytest.mark.parametrize(
    "title",
    [
        "Dockers end the harbour strike",
        "Dockers end the harbour strike | Example News",
        "Dockers end the harbour strike - Example News",
        "Dockers End the Harbour Strike!",
    ],
)
def test_a_first_block_repeating_the_title_goes(title: str) -> None:
    root = fragment("<h2>Dockers end the harbour strike</h2>" + paragraphs(STORY))
    text = words_of(bodies.without_headline(root, title))
    assert "Dockers end" not in text
    assert all(paragraph in text for paragraph in STORY)


def test_the_title_later_in_the_body_or_a_longer_first_block_stays() -> None:
    title = "Dockers end the harbour strike"
    later = fragment(paragraphs(STORY[:1]) + f"<p>{title}</p>" + paragraphs(STORY[1:]))
    assert title in words_of(bodies.without_headline(later, title))
    longer = fragment(f"<p>{title} after nine weeks</p>" + paragraphs(STORY))
    assert f"{title} after nine weeks" in words_of(bodies.without_headline(longer, title))
    loose = fragment(f"Intro words first<p>{title}</p>" + paragraphs(STORY))
    assert title in words_of(bodies.without_headline(loose, title))
    untitled = fragment(paragraphs(STORY))
    assert words_of(bodies.without_headline(untitled, "")) == words_of(fragment(paragraphs(STORY)))


@pytest.mark.parametrize(
    "line",
    [
        f"{URL}",
        "http://www.news.example.org/2026/11/harbour?print=1",
        f"{URL} 28/11/2026",
        f"November 28, 2026 at 9:15 am {URL}",
    ],
)
def test_a_first_line_that_is_only_the_pages_own_address_goes(line: str) -> None:
    loose = fragment(line + paragraphs(STORY))
    assert words_of(bodies.without_own_address(loose, URL)).startswith(STORY[0])
    boxed = fragment(f"<p>{line}</p>" + paragraphs(STORY))
    root = bodies.without_own_address(boxed, "http://127.0.0.1:8080/harbour.html", URL)
    assert words_of(root).startswith(STORY[0])
    assert len(root.findall("p")) == len(STORY)


@pytest.mark.parametrize(
    "html",
    [
        "<p>See https://other.example.com/report for the figures</p>",  # another host
        f"<p>Source: {URL}</p>",  # words besides the address
        f"<p><a href='{URL}'>{URL}</a></p>",  # a link is a citation
        paragraphs(STORY[:1]) + f"<p>{URL}</p>",  # not the first line
    ],
)
def test_other_addresses_stay(html: str) -> None:
    before = words_of(fragment(html + paragraphs(STORY)))
    assert words_of(bodies.without_own_address(fragment(html + paragraphs(STORY)), URL)) == before


@pytest.mark.parametrize("fetched_from", [URL, "http://127.0.0.1:8080/harbour.html"])
def test_the_headline_and_print_header_leave_the_extracted_body(fetched_from: str) -> None:
    html = (
        "<html><head><title>Dockers end the harbour strike | Example News</title>"
        f"<link rel='canonical' href='{URL}'></head>"
        "<body><header><a href='/'>Home</a></header><article>"
        f"<div class='print-header'>{URL}</div>"
        "<p><strong>Dockers end the harbour strike</strong></p>"
        f"{paragraphs(STORY)}</article><footer>© Example</footer></body></html>"
    )
    text = " ".join(extract_article(html, fetched_from).body_html.split())
    assert "Dockers end" not in text
    assert "news.example.org" not in text
    assert all(paragraph in text for paragraph in STORY)


def test_the_canonical_address_is_the_pages_own_too(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, ...]] = []

    def recording(root: lxml.html.HtmlElement, *page_urls: str) -> lxml.html.HtmlElement:
        seen.append(page_urls)
        return root

    monkeypatch.setattr(bodies, "without_own_address", recording)
    html = page(article(STORY)).replace("</head>", f"<link rel='canonical' href='{URL}'></head>")
    extract_article(html, "http://127.0.0.1:8080/harbour.html")
    assert seen and URL in seen[0] and "http://127.0.0.1:8080/harbour.html" in seen[0]


TAG_LIST = (
    "<p><strong>Tags</strong> "
    + ", ".join(f"<a href='/tag/{n}'>harbour strike day {n} pier cranes tide</a>" for n in range(8))
    + "</p>"
)
CARDS = (
    "<ul>"
    + "".join(
        f"<li><img src='/thumb/{n}.jpg'><a href='/story/{n}'>Another story {n} of the coast "
        f"and its ferries</a></li>"
        for n in range(5)
    )
    + "</ul>"
)


@pytest.mark.parametrize("tail", [TAG_LIST, CARDS, TAG_LIST + CARDS])
def test_blocks_of_links_at_the_end_go_whatever_their_length(tail: str) -> None:
    root = bodies.without_link_tail(fragment(paragraphs(STORY) + tail))
    text = words_of(root)
    assert all(paragraph in text for paragraph in STORY)
    assert "harbour strike day" not in text
    assert "Another story" not in text
    assert root.find(".//img") is None  # a card's thumbnail goes with it


def test_links_before_the_end_or_a_cited_source_at_the_end_stay() -> None:
    inside = fragment(paragraphs(STORY[:4]) + TAG_LIST + paragraphs(STORY[4:]))
    assert "harbour strike day 7" in words_of(bodies.without_link_tail(inside))
    cited = "<p><a href='https://data.example.net/tides'>https://data.example.net/tides</a></p>"
    source = fragment(paragraphs(STORY) + cited)
    assert "data.example.net" in words_of(bodies.without_link_tail(source))
    plain = fragment(paragraphs(STORY) + "<p>Reporting by the harbour desk.</p>")
    assert "harbour desk" in words_of(bodies.without_link_tail(plain))


HOVER_CARD = (
    "<a href='/people/ada-quay'>Ada Quay</a><img src='/thumb/ada.jpg'>"
    "<a href='/people/ada-quay'>Ada Lovelace Quay</a> "
    "<a href='/news/1'>Harbour master warns of a winter without ferries</a> "
    "<a href='/news/2'>Council votes to sell the old crane yard</a> "
    "<a href='/people/ada-quay'>MORE</a>"
)


def test_a_run_of_links_inside_a_paragraph_goes() -> None:
    html = f"<p>The harbour master {HOVER_CARD} said on Tuesday that the cranes stay.</p>"
    text = words_of(bodies.without_link_runs(fragment(html + paragraphs(STORY))))
    assert "The harbour master said on Tuesday that the cranes stay." in text
    assert "winter without ferries" not in text
    assert all(paragraph in text for paragraph in STORY)


def test_links_in_prose_or_a_paragraph_of_links_stay() -> None:
    cited = (
        "<p>Other <a href='/a'>dockers</a> <a href='/b'>and</a> <a href='/c'>pilots</a> "
        "disagreed, as <a href='/d'>the minutes</a>, <a href='/e'>the letters</a> and "
        "<a href='/f'>the tide tables</a> show.</p>"
    )
    assert words_of(fragment(cited)) == words_of(bodies.without_link_runs(fragment(cited)))
    links = "<p>" + " ".join(f"<a href='/s/{n}'>Story {n} of the long winter</a>" for n in range(4))
    only = fragment(links + "</p>")
    assert "Story 3 of the long winter" in words_of(bodies.without_link_runs(only))


@pytest.mark.parametrize(
    "caption",
    [
        "Dockers walk past the idle cranes of pier nine on Tuesday. (AP Photo/Jane Roe)",
        "The harbour at dawn (Photo: Getty Images)",
        "A ferry leaves the old pier.(Image credit: Example Port Authority)",
        "Ada Quay, the harbour master (Credit: Reuters)",
    ],
)
def test_a_block_ending_in_a_photo_credit_becomes_a_caption(caption: str) -> None:
    root = bodies.with_image_captions(fragment(paragraphs([*STORY[:2], caption, *STORY[2:]])))
    figure = root.find(".//figure/figcaption")
    assert figure is not None
    assert " ".join(figure.text_content().split()) == caption  # the credit is kept
    assert [" ".join(p.text_content().split()) for p in root.iter("p")] == STORY


def test_prose_with_parentheses_is_no_caption() -> None:
    texts = [
        "The union (which the dockers founded in 1911) met on Tuesday.",
        "The records are kept in the electronic port file (ePA)",
        "Ada Quay named the new pier after her father (a photographer)",
        " ".join(STORY[:3]) + " (AP Photo/Jane Roe)",  # too long for a caption
    ]
    root = bodies.with_image_captions(fragment(paragraphs(texts)))
    assert root.find(".//figcaption") is None


def test_a_caption_left_as_a_paragraph_leaves_the_article_text() -> None:
    caption = "Dockers walk past the idle cranes of pier nine. (AP Photo/Jane Roe)"
    html = page(
        f"<article><h1>Harbour</h1>{paragraphs([*STORY[:3], caption, *STORY[3:]])}</article>"
    )
    body = lxml.html.fragment_fromstring(extract_article(html, URL).body_html, create_parent="div")
    captions = [" ".join(c.text_content().split()) for c in body.iter("figcaption")]
    assert captions == [caption]
    assert all(paragraph in body.text_content() for paragraph in STORY)


def card(n: int) -> str:
    return (
        f"<div class='slide'><h3>KICKER {n}</h3><span>Another harbour story number {n}</span>"
        f"<p><a href='/news/{n}' class='anchor'></a></p></div>"
    )


def test_a_row_of_cards_under_links_without_text_goes() -> None:
    rail = "<div class='rail'>" + "".join(card(n) for n in range(3)) + "</div>"
    root = bodies.without_cards(fragment(paragraphs(STORY[:4]) + rail + paragraphs(STORY[4:])))
    text = words_of(root)
    assert "KICKER" not in text
    assert "Another harbour story" not in text
    assert all(paragraph in text for paragraph in STORY)


def test_a_lone_card_or_a_long_box_under_an_empty_link_stays() -> None:
    lone = fragment(paragraphs(STORY[:4]) + card(1) + paragraphs(STORY[4:]))
    assert "KICKER 1" in words_of(bodies.without_cards(lone))
    long_boxes = "".join(
        f"<div>{paragraphs(STORY[n : n + 2])}<a href='/x/{n}'></a></div>" for n in range(0, 8, 2)
    )
    kept = bodies.without_cards(fragment(long_boxes))
    assert all(paragraph in words_of(kept) for paragraph in STORY)


CAPTION = "Dockers walk past the idle cranes of pier nine on a grey Tuesday morning"


@pytest.mark.parametrize(
    "block",
    [
        f"<ul><li><img src='/c.jpg' alt='{CAPTION}. Photo: Port'> {CAPTION}.</li></ul>",
        f"<p>{CAPTION}. <a href=''>less</a>{CAPTION[:52]}<a href=''>... more</a></p>",
        f"<div><img src='/c.jpg' alt=''>{CAPTION}. <a href=''>less</a>{CAPTION}</div>",
    ],
)
def test_an_images_caption_or_a_toggled_one_becomes_a_figcaption(block: str) -> None:
    root = bodies.with_image_captions(
        fragment(paragraphs(STORY[:2]) + block + paragraphs(STORY[2:]))
    )
    captions = [words_of(caption) for caption in root.iter("figcaption")]
    assert len(captions) == 1
    assert captions[0].startswith(CAPTION)
    assert [words_of(p) for p in root.iter("p")] == STORY
    assert all(figure.find("figcaption") is not None for figure in root.iter("figure"))
    images = list(root.iter("img"))
    assert all(image.getparent().tag == "figure" for image in images)


def test_prose_next_to_an_image_stays_prose() -> None:
    html = f"<p><img src='/c.jpg' alt='The cranes'>{STORY[0]}</p>" + paragraphs(STORY[1:])
    root = bodies.with_image_captions(fragment(html))
    assert root.find(".//figcaption") is None
    assert [words_of(p) for p in root.iter("p")] == STORY


def test_short_labelled_links_at_the_end_go_but_a_linked_sentence_of_prose_stays() -> None:
    labels = (
        "<p>Tag: <a href='/tag/cranes'>harbour cranes</a></p>"
        "<p>Guide: <a href='/g'>Piers of the bay</a></p>"
    )
    root = bodies.without_link_tail(fragment(paragraphs(STORY) + labels))
    assert "harbour cranes" not in words_of(root)
    assert "Piers" not in words_of(root)
    prose = (
        f"<p>{STORY[0]} The council's <a href='/minutes'>minutes of the meeting on Tuesday "
        "morning</a> say the same.</p>"
    )
    kept = bodies.without_link_tail(fragment(paragraphs(STORY[1:]) + prose))
    assert "minutes of the meeting" in words_of(kept)
