"""Article extraction (selector and automatic), metadata, lazy images and sanitising."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest

from mirror.errors import ExtractError
from mirror.fetch.extract import (
    ExtractedArticle,
    ImageRef,
    extract_article,
    largest_candidate,
    parse_datetime,
)
from mirror.fetch.sanitise import sanitise_body
from mirror.newsroom.articles import Article, build_articles
from mirror.newsroom.pages import (
    CHARSETS,
    CHROME_MARKERS,
    IN_BODY_JUNK_MARKERS,
    STYLE_SELECTORS,
    STYLES,
    PageContext,
    render_article_page,
)

FIXTURES = Path(__file__).parent / "fixtures"
EN_URL = "https://www.example.org/news/2024/05/court-dredging?utm_source=rss"
RU_URL = "https://vestnik.example.ru/2024/06/02/poliklinika/"
EN_DROP = (".share-bar", ".donate-popup", ".related")
RU_DROP = (".sharedaddy", ".donation-popup", ".related-posts")

EN_PARAGRAPHS = (
    "The regional appeals court on Tuesday upheld a ban on dredging",
    "Residents of three villages had argued that removing gravel",
    "The company behind the project, Riverstone Aggregates, said it would study",
    "This is a victory for every family that depends on a well",
    "Environmental groups welcomed the decision but warned",
    "The ministry of environment did not respond to a request for comment",
)
EN_CHROME = (
    "We use cookies",
    "Accept all cookies",
    "Politics",
    "Share on",
    "Support independent journalism",
    "Donate",
    "Related stories",
    "Parliament debates new water code",
    "All rights reserved",
    "Subscribe to our newsletter",
    "Example Times",
    "tracker.example.net",
    "trackArticleView",
    "dataLayer",
    "<svg",
)
RU_PARAGRAPHS = (
    "С понедельника ночная поликлиника на Садовой улице больше не принимает пациентов.",
    "По словам представителя департамента, в поликлинике не хватает врачей",
    "Жители соседних кварталов собрали больше трёх тысяч подписей против закрытия.",
    "Содержание поликлиники обходилось городу примерно в 40 миллионов рублей в год.",
    "В мэрии на вопросы «Речного вестника» не ответили.",
)
RU_CHROME = (
    "файлы cookie",
    "Согласен",
    "Экология",
    "Поделиться",
    "ВКонтакте",
    "пожертвования",
    "Поддержать",
    "Читайте также",
    "Больница осталась без лифта",
    "Популярное",
    "Все права защищены",
    "facebook.com/tr",
    "fbq(",
    "Логотип",
    "медицина",
)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def body_text(body_html: str) -> str:
    text = lxml.html.fragment_fromstring(body_html, create_parent="div").text_content()
    return " ".join(text.split())


# The sample pages, both ways


@pytest.mark.parametrize("selector", ["", ".story-body"])
def test_english_page_body(selector: str) -> None:
    article = extract_article(
        fixture("article_en.html"), EN_URL, selector=selector, drop_selectors=EN_DROP
    )
    text = body_text(article.body_html)
    for paragraph in EN_PARAGRAPHS:
        assert paragraph in text
    for marker in EN_CHROME:
        assert marker not in article.body_html
    assert "<strong>The judges agreed</strong>" in article.body_html
    assert 'href="https://www.example.org/news/2022/03/riverstone-permit"' in article.body_html
    assert "Video: " in text and "https://www.youtube.com/watch?v=dQw4w9WgXcQ" in text
    assert article.extractor == ("selector" if selector else "automatic")


@pytest.mark.parametrize("selector", ["", ".entry-content"])
def test_russian_page_body(selector: str) -> None:
    article = extract_article(
        fixture("article_ru.html"), RU_URL, selector=selector, drop_selectors=RU_DROP
    )
    text = body_text(article.body_html)
    for paragraph in RU_PARAGRAPHS:
        assert paragraph in text
    for marker in RU_CHROME:
        assert marker not in article.body_html
    assert "<table>" in article.body_html and "Пациентов за ночь" in text
    assert "https://vimeo.com/76979871" in text


def test_english_metadata() -> None:
    article = extract_article(fixture("article_en.html"), EN_URL, drop_selectors=EN_DROP)
    assert article.url == EN_URL
    assert article.canonical_url == "https://www.example.org/news/2024/05/court-dredging"
    assert article.title == "Court upholds ban on river dredging"
    assert article.authors == ("Maria Lopez", "Tom Becker")
    assert article.published == datetime(2024, 5, 14, 6, 30, tzinfo=UTC)
    assert article.updated == datetime(2024, 5, 14, 9, 5, tzinfo=UTC)
    assert article.lead.startswith("Judges ruled that the dredging permit broke the water code")
    assert article.language == "en-GB"
    assert len(article.content_hash) == 64


def test_russian_metadata() -> None:
    article = extract_article(fixture("article_ru.html"), RU_URL, default_language="en")
    assert article.title == "В Зареченске закрыли ночную поликлинику"
    assert article.authors == ("Дарья Волкова",)
    assert article.published == datetime(2024, 6, 2, 13, 45, tzinfo=UTC)
    assert article.updated == datetime(2024, 6, 3, 3, 0, tzinfo=UTC)
    assert article.lead == "Горздрав объяснил закрытие нехваткой врачей."
    assert article.language == "ru"


@pytest.mark.parametrize("selector", ["", ".story-body"])
def test_lazy_images_are_resolved(selector: str) -> None:
    article = extract_article(
        fixture("article_en.html"), EN_URL, selector=selector, drop_selectors=EN_DROP
    )
    assert article.images == (
        ImageRef(
            "https://www.example.org/img/2024/05/river-bank-1600.jpg",
            "Fishing boats on the river bank",
        ),
        ImageRef(
            "https://static.example.org/img/2024/05/protest.jpg",
            "Residents protesting outside the court",
        ),
    )
    assert "data:" not in article.body_html
    assert "placeholder" not in article.body_html


def test_picture_source_srcset_is_used() -> None:
    article = extract_article(fixture("article_ru.html"), RU_URL, selector=".entry-content")
    assert [image.url for image in article.images] == [
        "https://vestnik.example.ru/wp-content/uploads/2024/06/klinika-1536.webp"
    ]


def test_the_same_page_gives_the_same_article() -> None:
    first = extract_article(fixture("article_en.html"), EN_URL)
    second = extract_article(fixture("article_en.html"), EN_URL)
    assert first == second


@pytest.mark.parametrize("selector", ["", ".story-body"])
def test_chrome_changes_keep_the_content_hash(selector: str) -> None:
    page = fixture("article_en.html")
    rechromed = (
        page.replace("Related stories", "You may also like")
        .replace("gtag('js', new Date());", "gtag('js', new Date()); gtag('config', 'G-2');")
        .replace('<li><a href="/culture">Culture</a></li>', '<li><a href="/sport">Sport</a></li>')
        .replace("© 2024", "© 2025")
    )
    before = extract_article(page, EN_URL, selector=selector, drop_selectors=EN_DROP)
    after = extract_article(rechromed, EN_URL, selector=selector, drop_selectors=EN_DROP)
    assert before.content_hash == after.content_hash


def test_an_edit_changes_the_content_hash() -> None:
    page = fixture("article_en.html")
    edited = page.replace("by the time of publication", "by Wednesday evening")
    before = extract_article(page, EN_URL, selector=".story-body")
    after = extract_article(edited, EN_URL, selector=".story-body")
    assert before.content_hash != after.content_hash


# Failures


@pytest.mark.parametrize("html", ["", "   ", "<?xml version='1.0' encoding='utf-8'?>"])
def test_empty_page(html: str) -> None:
    with pytest.raises(ExtractError):
        extract_article(html, EN_URL)


def test_page_with_no_article_text() -> None:
    page = "<html><head><title>Home</title></head><body><nav><a href='/'>Go</a></nav></body></html>"
    with pytest.raises(ExtractError, match="no article text"):
        extract_article(page, EN_URL)
    with pytest.raises(ExtractError, match="no article text"):
        extract_article(page, EN_URL, selector=".story-body")


def test_invalid_selector() -> None:
    with pytest.raises(ExtractError, match="invalid CSS selector"):
        extract_article(fixture("article_en.html"), EN_URL, selector="div[[")


def test_selector_that_matches_nothing_falls_back_to_automatic() -> None:
    article = extract_article(fixture("article_en.html"), EN_URL, selector=".no-such-class")
    assert article.extractor == "automatic"
    assert EN_PARAGRAPHS[0] in body_text(article.body_html)


def test_xml_declared_page_is_read() -> None:
    page = "<?xml version='1.0' encoding='utf-8'?>\n" + fixture("article_en.html")
    article = extract_article(page, EN_URL, selector=".story-body")
    assert article.title == "Court upholds ban on river dredging"


# Metadata details


def test_metadata_fallbacks() -> None:
    page = """<html><head><title>Page title | Site</title>
    <meta name="author" content="Ivan Ivanov"><meta name="description" content="  Short   lead. ">
    </head><body><article><h1>Real headline</h1><time datetime="2024-03-01T10:00:00">1 March</time>
    <p>First paragraph of the article, long enough to count as the body text.</p></article>
    </body></html>"""
    article = extract_article(page, "https://www.example.org/a", selector="article")
    assert article.title == "Real headline"
    assert article.authors == ("Ivan Ivanov",)
    assert article.published == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)  # naive taken as UTC
    assert article.updated is None
    assert article.lead == "Short lead."
    assert article.language == "en"
    assert article.canonical_url == "https://www.example.org/a"
    assert "Real headline" not in article.body_html  # the title is not repeated in the body


def test_lead_falls_back_to_the_first_paragraph() -> None:
    page = """<html lang="de"><head><title>T</title></head><body><div class="b">
    <p>  </p><p>Erster Absatz.</p><p>Zweiter.</p></div></body></html>"""
    article = extract_article(page, "https://www.example.org/a", selector=".b")
    assert article.lead == "Erster Absatz."
    assert article.language == "de"


def test_base_href_and_nested_selector_matches() -> None:
    page = """<html><head><title>T</title><base href="https://cdn.example.org/site/"></head>
    <body><div class="part"><p>One <a href="x.html">x</a></p>
    <div class="part"><p>Two</p></div></div>
    <div class="part"><p>Three <img src="i.jpg" alt=""></p></div></body></html>"""
    article = extract_article(page, "https://www.example.org/a", selector=".part")
    assert body_text(article.body_html) == "One x Two Three"
    assert 'href="https://cdn.example.org/site/x.html"' in article.body_html
    assert article.images == (ImageRef("https://cdn.example.org/site/i.jpg", ""),)


def test_page_without_a_title() -> None:
    with pytest.raises(ExtractError, match="no title"):
        extract_article("<html><body><p>Text only.</p></body></html>", EN_URL)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-14T09:30:00+03:00", datetime(2024, 5, 14, 6, 30, tzinfo=UTC)),
        ("2024-05-14T09:30:00Z", datetime(2024, 5, 14, 9, 30, tzinfo=UTC)),
        ("2024-05-14 09:30:00", datetime(2024, 5, 14, 9, 30, tzinfo=UTC)),
        ("2024-05-14", datetime(2024, 5, 14, tzinfo=UTC)),
        ("Tue, 14 May 2024 09:30:00 +0300", datetime(2024, 5, 14, 6, 30, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
    ],
)
def test_parse_datetime(text: str, expected: datetime | None) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize(
    ("srcset", "expected"),
    [
        ("a.jpg 640w, b.jpg 1600w, c.jpg 1024w", "b.jpg"),
        ("a.jpg 1x, b.jpg 2x", "b.jpg"),
        ("a.jpg", "a.jpg"),
        ("https://cdn.example.org/w_640,h_480/a.jpg 640w, https://cdn.example.org/b.jpg 900w",
         "https://cdn.example.org/b.jpg"),
        ("a.jpg 300w,b.jpg 600w", "b.jpg"),
        ("", ""),
    ],
)  # fmt: skip
def test_largest_candidate(srcset: str, expected: str) -> None:
    assert largest_candidate(srcset) == expected


# Sanitising

HOSTILE = """
<p onclick="steal()" style="color:red" class="lead" id="p1">Safe text
<script>alert('script')</script><style>p{color:red}</style>
<a href="javascript:alert('js')">js link</a>
<a href="JaVaScRiPt&#58;alert(1)">entity js</a>
<a href="vbscript:msgbox(1)">vb</a>
<a href="data:text/html;base64,PHNjcmlwdD4=">data link</a>
<a href="/relative/page" target="_blank" rel="nofollow">relative</a>
<a href="mailto:x@example.org">mail</a>
<img src="/img/a.jpg" onerror="alert('onerror')" alt="A" width="10" height="20" loading="lazy">
<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline">
</p>
<iframe src="https://evil.example/frame"><p>iframe body</p></iframe>
<object data="https://evil.example/x.swf"></object><embed src="/movie.swf">
<svg><script>alert('svg')</script><text>svg text</text></svg>
<form action="/x"><input value="form input"><button>Press</button></form>
<math><mi>x</mi></math>
<table style="width:100%"><tr><td style="color:red" colspan="2">cell</td></tr></table>
<h1>Heading one</h1><h2 class="x">Heading two</h2>
<div><span>span text</span></div>
<!-- a comment -->
"""


def test_sanitise_removes_everything_dangerous() -> None:
    body = sanitise_body(HOSTILE, "https://www.example.org/news/a.html")
    lowered = body.lower()
    for bad in (
        "<script", "alert", "<style", "color:red", "style=", "onclick", "onerror",
        "javascript", "vbscript", "data:", "<iframe", "iframe body", "<object", "<embed",
        "<svg", "svg text", "<form", "<input", "form input", "press", "id=",
        "target=", "rel=", "loading=", "<math", "a comment", "<div", "<span",
    ):  # fmt: skip
        assert bad not in lowered, bad
    assert lowered.count("class=") == lowered.count('class="note"') == body.count("Video: ")
    assert "Safe text" in body
    assert '<a href="https://www.example.org/relative/page">relative</a>' in body
    assert '<img src="https://www.example.org/img/a.jpg" alt="A" width="10" height="20">' in body
    assert '<td colspan="2">cell</td>' in body
    assert "<h2>Heading one</h2>" in body and "<h2>Heading two</h2>" in body
    assert "span text" in body


def test_sanitise_strips_tracking_parameters_from_links() -> None:
    html = (
        '<p><a href="https://other.example/r?id=7&utm_source=news&fbclid=X1">one</a> '
        '<a href="/p?yclid=55#part">two</a> <a href="https://other.example/q?page=2">three</a></p>'
    )
    body = sanitise_body(html, "https://www.example.org/news/a.html")
    assert '<a href="https://other.example/r?id=7">one</a>' in body
    assert '<a href="https://www.example.org/p#part">two</a>' in body
    assert '<a href="https://other.example/q?page=2">three</a>' in body


@pytest.mark.parametrize(
    "href",
    ["javascript:alert(1)", "JaVaScRiPt:void(0)", "data:text/html,x", "vbscript:msgbox", "",
     "  ", "#nowhere", "#", "mailto:x@example.org", None],
)  # fmt: skip
def test_sanitise_turns_a_link_that_goes_nowhere_into_its_text(href: str | None) -> None:
    attribute = "" if href is None else f' href="{href}"'
    body = sanitise_body(f"<p>Read <a{attribute}>the <b>notice</b></a> now.</p>", EN_URL)
    assert body == "<p>Read the <b>notice</b> now.</p>"


def test_sanitise_keeps_links_that_lead_somewhere() -> None:
    html = '<p><a href="/other">a</a> <a href="other#part">b</a> <a href="https://x.example/">c</a></p>'
    body = sanitise_body(html, "https://www.example.org/news/a.html")
    assert lxml.html.fragment_fromstring(body).xpath("//a/@href") == [
        "https://www.example.org/other",
        "https://www.example.org/news/other#part",
        "https://x.example/",
    ]


def test_sanitise_turns_embeds_into_video_links() -> None:
    body = sanitise_body(HOSTILE, "https://www.example.org/news/a.html")
    assert (
        '<p class="note">Video: <a href="https://evil.example/frame">https://evil.example/frame</a></p>'
        in body
    )
    assert 'Video: <a href="https://www.example.org/movie.swf">' in body


@pytest.mark.parametrize(
    ("embed", "url"),
    [
        ('<iframe src="//www.youtube.com/embed/dQw4w9WgXcQ?rel=0"></iframe>',
         "https://www.youtube.com/watch?v=dQw4w9WgXcQ"),
        ('<iframe src="https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"></iframe>',
         "https://www.youtube.com/watch?v=dQw4w9WgXcQ"),
        ('<iframe src="https://player.vimeo.com/video/76979871?h=1"></iframe>',
         "https://vimeo.com/76979871"),
        ('<video controls poster="p.jpg"><source src="/media/clip.mp4" type="video/mp4"></video>',
         "https://www.example.org/media/clip.mp4"),
        ('<div class="embed"><div><iframe src="https://video.example.net/v/9"></iframe></div></div>',
         "https://video.example.net/v/9"),
    ],
)  # fmt: skip
def test_video_embeds(embed: str, url: str) -> None:
    body = sanitise_body(f"<p>Before.</p>{embed}<p>After.</p>", "https://www.example.org/n/a")
    assert body.count("Video: ") == 1
    assert f'<a href="{url}">{url}</a>' in body
    assert "<p>Before.</p>" in body and "<p>After.</p>" in body


def test_embed_inside_a_paragraph_stays_inline() -> None:
    body = sanitise_body(
        '<p>Watch <iframe src="https://player.vimeo.com/video/1"></iframe> now.</p>',
        "https://www.example.org/",
    )
    assert body == (
        '<p>Watch <span class="note">Video: <a href="https://vimeo.com/1">https://vimeo.com/1</a>'
        "</span> now.</p>"
    )


def test_embed_with_no_url_disappears() -> None:
    body = sanitise_body('<p>A</p><iframe src="javascript:alert(1)"></iframe><p>B</p>', EN_URL)
    assert body == "<p>A</p><p>B</p>"


def test_tracker_pixels_and_sourceless_images_are_dropped() -> None:
    body = sanitise_body(
        '<p>x<img src="https://t.example/p.gif" width="1" height="1">'
        '<img src="https://t.example/q.gif" width="0">'
        '<img alt="no source"><img src="data:image/gif;base64,R0lGOD=">'
        '<img src="/ok.jpg" width="640"></p>',
        "https://www.example.org/",
    )
    assert body == '<p>x<img src="https://www.example.org/ok.jpg" width="640"></p>'


def test_sanitise_is_deterministic() -> None:
    first = sanitise_body(HOSTILE, "https://www.example.org/news/a.html")
    assert all(
        sanitise_body(HOSTILE, "https://www.example.org/news/a.html") == first for _ in range(5)
    )


def test_sanitise_keeps_the_allowed_structure() -> None:
    html = (
        "<figure><img src='a.jpg' alt='A'><figcaption>Cap</figcaption></figure>"
        "<blockquote><p>Quote <q>inner</q> <cite>Source</cite></p></blockquote>"
        "<ul><li><em>e</em> <strong>s</strong> <b>b</b> <i>i</i> <u>u</u> <s>s</s></li></ul>"
        "<ol><li>H<sub>2</sub>O, x<sup>2</sup><br>line</li></ol><hr>"
        "<pre><code>code</code></pre><dl><dt>T</dt><dd>D</dd></dl>"
        "<p><abbr title='World Health Organization'>WHO</abbr> "
        "<time datetime='2024-05-14'>14 May</time></p>"
        "<table><thead><tr><th>h</th></tr></thead><tbody><tr><td>d</td></tr></tbody></table>"
    )
    body = sanitise_body(html, "https://www.example.org/")
    expected = html.replace("'", '"').replace('src="a.jpg"', 'src="https://www.example.org/a.jpg"')
    assert body == expected


def test_sanitise_empty() -> None:
    assert sanitise_body("", EN_URL) == ""
    assert sanitise_body("<script>x</script>", EN_URL) == ""


def test_extracted_body_is_sanitised() -> None:
    page = (
        "<html><head><title>T</title></head><body><div class='body'>"
        + HOSTILE
        + "<p>The article text itself goes on here for a while.</p></div></body></html>"
    )
    for selector in ("", ".body"):
        article = extract_article(page, "https://www.example.org/news/a.html", selector=selector)
        lowered = article.body_html.lower()
        for bad in ("<script", "onerror", "onclick", "javascript:", "style=", "<iframe", "data:"):
            assert bad not in lowered, (selector, bad)


# The sample newsroom: every style, both languages, both ways

NEWSROOM_BASE = "http://127.0.0.1:8080/"
NEWSROOM = build_articles(12, 7, datetime(2026, 11, 24, tzinfo=UTC))


def newsroom_article(
    article: Article, style: str, context: PageContext, with_selector: bool
) -> ExtractedArticle:
    selectors = STYLE_SELECTORS[style]
    page = render_article_page(article, style, context).decode(CHARSETS[style])
    return extract_article(
        page,
        context.url(article),
        selector=selectors.article_selector if with_selector else "",
        drop_selectors=selectors.drop_selectors,
    )


@pytest.mark.parametrize("with_selector", [True, False], ids=["selector", "automatic"])
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("index", [0, 1, 6, 9])  # English and Russian, hand-written and generated
def test_newsroom_page(index: int, style: str, with_selector: bool) -> None:
    article = NEWSROOM[index]
    context = PageContext(
        NEWSROOM_BASE, inline_links=NEWSROOM[2:4], related=NEWSROOM[4:7], chrome_version=3
    )
    extracted = newsroom_article(article, style, context, with_selector)
    assert extracted.extractor == ("selector" if with_selector else "automatic")
    text = body_text(extracted.body_html)
    for paragraph in article.paragraphs:
        assert " ".join(paragraph.split()) in text
    for marker in CHROME_MARKERS + IN_BODY_JUNK_MARKERS:
        assert marker not in text
    lowered = extracted.body_html.lower()
    for bad in ("<script", "onerror", "onclick", "javascript:", "style=", "<iframe", "<svg"):
        assert bad not in lowered
    assert "Video: https://www.youtube.com/watch?v=" in text
    assert extracted.title == article.title
    assert extracted.authors == article.authors
    assert extracted.published == article.published
    assert extracted.language == article.lang
    assert extracted.images == (
        ImageRef(f"{NEWSROOM_BASE}media/{article.image}.jpg", extracted.images[0].alt),
    )


@pytest.mark.parametrize("style", STYLES)
def test_newsroom_chrome_changes_keep_the_content_hash(style: str) -> None:
    hashes = set()
    for chrome_version, related in ((0, NEWSROOM[4:7]), (5, NEWSROOM[7:9])):
        context = PageContext(
            NEWSROOM_BASE,
            inline_links=NEWSROOM[2:4],
            related=related,
            chrome_version=chrome_version,
        )
        for with_selector in (True, False):
            extracted = newsroom_article(NEWSROOM[0], style, context, with_selector)
            hashes.add((with_selector, extracted.content_hash))
    assert len(hashes) == 2  # one per extractor, whatever the chrome
