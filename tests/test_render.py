"""Edition pages from plain data: escaping, self-containment, relative links, words."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import feedparser
import lxml.html
import pytest

from mirror.build.render import (
    CONTENT_SECURITY_POLICY,
    ArticleView,
    MirrorLink,
    Site,
    archive_path,
    feed_path,
    fit_article,
    index_path,
    is_index_path,
    month_of,
    relative_url,
    render_archive_month,
    render_article,
    render_feed,
    render_index,
    render_mirrors_html,
    render_mirrors_json,
    render_verify_page,
    template_sources,
)

KEY = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"
SITE = Site(
    name="The Example <Times>",
    language="en",
    home_url="https://www.example.org/",
    public_key_line=KEY,
    key_id="E3A3B1C2D4F5A6B7",
    languages=("en", "ru"),
)
ORIGIN = "https://www.example.org"
PIXEL = (
    "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"  # a 1×1 GIF
)
BODY = (
    f'<p>See <a href="{ORIGIN}/2026/10/other/">the other story</a>, '
    f'<a href="{ORIGIN}/2026/10/other/#part">its second part</a>, '
    f'<a href="{ORIGIN}/not-mirrored/">an unmirrored one</a> and '
    '<a href="https://elsewhere.example.net/report">a report</a>.</p>'
    f'<figure><img src="{ORIGIN}/img/a.jpg" alt="The square" width="1600" height="1067">'
    "<figcaption>The square at noon.</figcaption></figure>"
    f'<p><img src="{ORIGIN}/img/b.jpg" alt="A chart"></p>'
    "<p>Body text <script>alert(1)</script>.</p>"
)
LINKS = {f"{ORIGIN}/2026/10/other/": "articles/2026/10/other.html"}
EXTERNAL = {f"{ORIGIN}/not-mirrored/", "https://elsewhere.example.net/report"}


def article(**changes: object) -> ArticleView:
    base = ArticleView(
        path="articles/2026/11/city-hall.html",
        title="City hall <script>alert('x')</script> & more",
        authors=("Daria Volkova", "Ivan Petrov"),
        published=datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
        updated=None,
        lead="The council met at noon.",
        language="en",
        body_html=BODY,
        canonical_url=f"{ORIGIN}/2026/11/city-hall/",
        revision=3,
        images={f"{ORIGIN}/img/a.jpg": PIXEL, f"{ORIGIN}/img/b.jpg": None},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


RUSSIAN = article(
    path="articles/2026/11/zasedanie.html",
    title="Заседание горсовета",
    authors=("Дарья Волкова",),
    language="ru",
    lead="Совет собрался в полдень.",
    canonical_url="",
)
EDITION = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
EXPIRES = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SUMMARIES = [article().summary(), RUSSIAN.summary()]
MIRRORS = [
    MirrorLink("aws-frankfurt", "https://s3.eu-central-1.amazonaws.com/example-mirror-1/"),
    MirrorLink("own", "https://mirror.example.net"),
]

# (edition path, renderer) of every HTML page kind
PAGES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "article": (article().path, lambda: render_article(article(), SITE, links=LINKS)),
    "article-ru": (RUSSIAN.path, lambda: render_article(RUSSIAN, SITE, links=LINKS)),
    "index": (
        "index.html",
        lambda: render_index(
            SUMMARIES, SITE, edition_date=EDITION, expires=EXPIRES, months=["2026-11"]
        ),
    ),
    "index-ru": (
        "index-ru.html",
        lambda: render_index(
            [RUSSIAN.summary()], SITE, edition_date=EDITION, expires=EXPIRES, language="ru"
        ),
    ),
    "archive": ("archive/2026-11.html", lambda: render_archive_month("2026-11", SUMMARIES, SITE)),
    "mirrors": ("mirrors.html", lambda: render_mirrors_html(MIRRORS, SITE)),
    "verify": ("verify.html", lambda: render_verify_page(SITE)),
}


def parsed(page: bytes) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(page)


def addresses(page: bytes) -> list[str]:
    root = parsed(page)
    return [value for element in root.iter() for name, value in element.items()
            if name in ("href", "src")]  # fmt: skip


@pytest.mark.parametrize("kind", PAGES)
def test_every_page_forbids_forms_and_base_urls(kind: str) -> None:
    _, render = PAGES[kind]
    (csp,) = parsed(render()).head.xpath('meta[@http-equiv="Content-Security-Policy"]/@content')
    directives = {part.strip() for part in csp.split(";")}
    assert {"form-action 'none'", "base-uri 'none'", "default-src 'none'"} <= directives


@pytest.mark.parametrize("kind", PAGES)
def test_every_page_forbids_requests_and_referrers(kind: str) -> None:
    _, render = PAGES[kind]
    page = render()
    head = parsed(page).head
    csp = head.xpath('meta[@http-equiv="Content-Security-Policy"]/@content')
    assert csp == [CONTENT_SECURITY_POLICY]
    assert f'content="{CONTENT_SECURITY_POLICY}"'.encode() in page  # literally, for grep
    assert head.xpath('meta[@name="referrer"]/@content') == ["no-referrer"]
    assert head.xpath('meta[@name="viewport"]')
    assert head.xpath("meta/@charset") == ["utf-8"]
    assert b"<script" not in page.lower()
    assert len(parsed(page).xpath("//style")) == 1
    assert not parsed(page).xpath("//link[@rel='stylesheet'] | //iframe | //object")


@pytest.mark.parametrize("kind", PAGES)
def test_every_page_links_to_mirrors_and_verify(kind: str) -> None:
    path, render = PAGES[kind]
    folder = posixpath.dirname(path)
    targets = {posixpath.normpath(posixpath.join(folder, href))
               for href in addresses(render()) if ":" not in href}  # fmt: skip
    suffix = "-ru" if kind.endswith("-ru") else ""  # Russian pages link the Russian ones
    assert {f"mirrors{suffix}.html", f"verify{suffix}.html", f"index{suffix}.html"} <= targets


@pytest.mark.parametrize("kind", PAGES)
def test_no_absolute_address_but_original_external_and_mirrors(kind: str) -> None:
    _, render = PAGES[kind]
    allowed = {*EXTERNAL, article().canonical_url}
    allowed |= {f"{mirror.url.rstrip('/')}/index.html" for mirror in MIRRORS}
    for address in addresses(render()):
        if urlsplit(address).scheme in ("http", "https"):
            assert address in allowed, (kind, address)
        else:
            assert urlsplit(address).scheme in ("", "data"), (kind, address)
            assert not address.startswith("/"), (kind, address)


@pytest.mark.parametrize("kind", PAGES)
def test_relative_links_stay_inside_any_mirror_prefix(kind: str) -> None:
    path, render = PAGES[kind]
    base = "https://bucket.example.com/some/prefix/"
    for address in addresses(render()):
        if urlsplit(address).scheme == "":
            assert urljoin(base + path, address).startswith(base), (kind, address)


def test_article_links_resolve_from_nested_folders() -> None:
    page = article()
    root = parsed(render_article(page, SITE, links=LINKS))
    hrefs = root.xpath("//article//a/@href")
    assert "../10/other.html" in hrefs
    assert "../10/other.html#part" in hrefs
    assert f"{ORIGIN}/not-mirrored/" in hrefs  # not mirrored: stays absolute
    footer = root.xpath("//footer//a/@href")
    assert "../../../index.html" in footer
    assert "../../../mirrors.html" in footer
    assert "../../../verify.html" in footer
    assert "../../../archive/2026-11.html" in footer
    assert page.canonical_url in footer
    assert relative_url("articles/2026/11/a.html", "articles/2025/01/b.html") == (
        "../../2025/01/b.html"
    )
    assert relative_url("archive/2026-11.html", "articles/2026/11/a.html") == (
        "../articles/2026/11/a.html"
    )
    assert relative_url("index.html", "mirrors.html") == "mirrors.html"


def test_titles_and_body_are_escaped() -> None:
    for kind, (_, render) in PAGES.items():
        assert b"<script>alert" not in render(), kind
    page = render_article(article(), SITE, links=LINKS)
    assert b"City hall &lt;script&gt;alert(" in page
    assert b"The Example &lt;Times&gt;" in page
    assert b"alert(1)" not in page  # a script left in the body is removed with its text
    hostile = '<p onclick="x()">a</p><iframe src="https://x.example/"></iframe><style>p{}</style>'
    page = render_article(article(body_html=hostile), SITE)
    assert b"onclick" not in page and b"iframe" not in page and b"p{}" not in page


def test_images_inlined_or_noted() -> None:
    root = parsed(render_article(article(), SITE, links=LINKS))
    assert root.xpath("//article//img/@src") == [PIXEL]
    notes = root.xpath("//article//*[@class='noimage']/text()")
    assert notes == ["[Image left out to keep this page small: A chart]"]
    missing = article(images={})
    root = parsed(render_article(missing, SITE))
    assert not root.xpath("//img")
    assert len(root.xpath("//*[@class='noimage']")) == 2


def test_russian_article_words() -> None:
    page = render_article(RUSSIAN, SITE, links=LINKS).decode()
    root = parsed(page.encode())
    assert root.get("lang") == "ru" and root.get("dir") == "ltr"
    assert "25 ноября 2026" in page
    assert "Автор: Дарья Волкова" in page
    assert "Изображение не включено" in page
    assert "Оригинал" not in page  # no canonical URL given: no "original" link


def test_english_article_words() -> None:
    page = render_article(article(), SITE, links=LINKS).decode()
    assert "November 25, 2026" in page
    assert "By Daria Volkova and Ivan Petrov" in page
    assert 'datetime="2026-11-25T09:30:00Z"' in page
    assert "revision 3" in page


def test_updated_date_shown_when_a_later_day() -> None:
    later = article(updated=datetime(2026, 11, 27, 8, 0, tzinfo=UTC))
    assert "updated <time" in render_article(later, SITE).decode()
    same_day = article(updated=datetime(2026, 11, 25, 18, 0, tzinfo=UTC))
    assert "updated" not in render_article(same_day, SITE).decode()


def test_site_time_zone_moves_the_date() -> None:
    late = article(published=datetime(2026, 11, 25, 22, 30, tzinfo=UTC))
    moscow = replace(SITE, timezone="Europe/Moscow")
    assert "November 26, 2026" in render_article(late, moscow).decode()
    assert "November 25, 2026" in render_article(late, SITE).decode()


@pytest.mark.parametrize("language", ["ar", "fa", "he", "ur"])
def test_right_to_left_languages(language: str) -> None:
    root = parsed(render_article(article(language=language), SITE))
    assert root.get("dir") == "rtl"
    assert root.get("lang") == language


def test_strange_language_falls_back() -> None:
    root = parsed(render_article(article(language='x"><b>'), SITE))
    assert root.get("lang") == "und"
    assert "November 25, 2026" in render_article(article(language="zz"), SITE).decode()


def test_lead_not_repeated_when_the_body_opens_with_it() -> None:
    opening = article(body_html="<p>The council met at noon.</p><p>More.</p>")
    assert render_article(opening, SITE).decode().count("The council met at noon.") == 1
    assert render_article(article(), SITE).decode().count("The council met at noon.") == 1


def test_links_that_go_nowhere_become_their_text() -> None:
    own = article().canonical_url
    body = (
        '<p><a href="javascript:alert(1)">x</a><a href="/relative">y</a><a>z</a>'
        f'<a href="">e</a><a href="{own}#gone">f</a><a href="data:text/html,1">d</a>.</p>'
    )
    root = parsed(render_article(article(body_html=body), SITE, links={own: article().path}))
    assert root.xpath("//article//a") == []
    assert "xyzefd." in root.xpath("string(//article//p[last()])")


def test_mirrored_and_external_links_stay_links() -> None:
    root = parsed(render_article(article(), SITE, links=LINKS))
    assert root.xpath("//article//a/@href") == [
        "../10/other.html",
        "../10/other.html#part",
        f"{ORIGIN}/not-mirrored/",
        "https://elsewhere.example.net/report",
    ]


@pytest.mark.parametrize(
    ("alt", "caption", "kept"),
    [
        ("The square", "The square at noon.", ""),
        ("the SQUARE, at noon", "The square at noon.", ""),
        ("The square at noon, from the roof", "The square at noon", ""),
        ("A crowd", "The square at noon.", "A crowd"),
        ("square", "The squares at noon", "square"),  # words, not letters
    ],
)
def test_alt_text_the_caption_repeats_is_left_empty(alt: str, caption: str, kept: str) -> None:
    body = (
        f'<figure><img src="{ORIGIN}/img/a.jpg" alt="{alt}"><figcaption>{caption}</figcaption>'
        f'</figure><p><img src="{ORIGIN}/img/b.jpg" alt="{alt}"></p>'
    )
    root = parsed(render_article(article(body_html=body, images={}), SITE))
    notes = [" ".join(n.text_content().split()) for n in root.xpath("//span[@class='noimage']")]
    note = "Image left out to keep this page small"
    assert notes == [f"[{note}: {kept}]" if kept else f"[{note}]", f"[{note}: {alt}]"]
    shown = article(body_html=body, images={f"{ORIGIN}/img/a.jpg": PIXEL})
    assert parsed(render_article(shown, SITE)).xpath("//figure/img/@alt") == [kept]


def test_article_is_deterministic() -> None:
    first = render_article(article(), SITE, links=LINKS)
    reordered = article(images=dict(reversed(list(article().images.items()))))
    assert render_article(reordered, SITE, links=dict(LINKS)) == first
    assert render_article(article(), SITE, links=LINKS) == first


def test_index_states_edition_and_expiry() -> None:
    _, render = PAGES["index"]
    text = " ".join(parsed(render()).text_content().split())  # babel's narrow spaces too
    assert "November 26, 2026, 12:00 PM UTC" in text
    assert "December 3, 2026, 12:00 PM UTC" in text
    root = parsed(render())
    assert "index-ru.html" in root.xpath("//a/@href")
    assert "archive/2026-11.html" in root.xpath("//a/@href")
    assert root.xpath("//li[@lang='ru']")  # each article keeps its own language
    assert root.xpath("//link[@rel='alternate']/@href") == ["feed.xml"]


def test_language_index_in_its_language() -> None:
    _, render = PAGES["index-ru"]
    page = render().decode()
    assert "26 ноября 2026" in page and "Последние статьи" in page
    root = parsed(render())
    assert root.get("lang") == "ru"
    assert "index.html" in root.xpath("//a/@href")
    assert "index-en.html" in root.xpath("//a/@href")
    assert root.xpath("//link[@rel='alternate']/@href") == ["feed-ru.xml"]


def test_single_language_site_has_no_language_links() -> None:
    one = replace(SITE, languages=("en",))
    page = render_index(SUMMARIES, one, edition_date=EDITION, expires=EXPIRES)
    assert b"index-" not in page


def test_archive_month() -> None:
    root = parsed(render_archive_month("2026-11", SUMMARIES, SITE))
    assert "November 2026" in root.findtext(".//h1")
    assert root.xpath("//ol[@class='articles']//a/@href") == [
        "../articles/2026/11/city-hall.html",
        "../articles/2026/11/zasedanie.html",
    ]


def test_paths() -> None:
    assert index_path() == "index.html"
    assert index_path("ru") == "index-ru.html"
    assert index_path("pt_BR") == "index-pt-br.html"
    assert feed_path() == "feed.xml"
    assert feed_path("ru") == "feed-ru.xml"
    assert archive_path("2026-11") == "archive/2026-11.html"
    assert month_of("articles/2026/11/x.html") == "2026-11"
    assert month_of("articles/undated/x.html") is None
    assert is_index_path("index.html") and is_index_path("index-ru.html")
    assert not is_index_path("archive/index.html") and not is_index_path("index-../x.html")
    for bad in ("../x", "", "r u"):
        with pytest.raises(ValueError):
            index_path(bad)
    for bad in ("2026-13", "2026/11", "../2026-11"):
        with pytest.raises(ValueError):
            archive_path(bad)


def test_feed_is_valid_atom_with_relative_links() -> None:
    feed = render_feed(SUMMARIES, SITE, updated=EDITION)
    parsed_feed = feedparser.parse(feed)
    assert parsed_feed.bozo == 0, parsed_feed.get("bozo_exception")
    assert parsed_feed.version == "atom10"
    assert parsed_feed.feed.title == "The Example <Times>"
    hrefs = [entry.link for entry in parsed_feed.entries]
    assert hrefs == ["articles/2026/11/city-hall.html", "articles/2026/11/zasedanie.html"]
    assert parsed_feed.entries[0].title == "City hall <script>alert('x')</script> & more"
    assert parsed_feed.entries[1].get("language", "ru") == "ru"
    assert parsed_feed.entries[0].id.startswith("urn:uuid:")
    assert b'href="http' not in feed
    assert {link.href for link in parsed_feed.feed.links} == {"feed.xml", "index.html"}
    assert render_feed(SUMMARIES, SITE, updated=EDITION) == feed


def test_feed_resolves_inside_the_mirror() -> None:
    base = "https://s3.example.com/bucket/feed-ru.xml"
    feed = render_feed([RUSSIAN.summary()], SITE, updated=EDITION, language="ru")
    parsed_feed = feedparser.parse(
        feed, response_headers={"content-location": base, "content-type": "application/atom+xml"}
    )
    assert parsed_feed.bozo == 0
    assert (
        parsed_feed.entries[0].link
        == "https://s3.example.com/bucket/articles/2026/11/zasedanie.html"
    )


def test_feed_survives_control_characters_and_no_dates() -> None:
    odd = replace(RUSSIAN.summary(), title="bell\x07 and nul\x00", published=None, authors=())
    parsed_feed = feedparser.parse(render_feed([odd], SITE, updated=EDITION))
    assert parsed_feed.bozo == 0
    assert parsed_feed.entries[0].title == "bell and nul"


def test_mirrors_pages() -> None:
    root = parsed(render_mirrors_html(MIRRORS, SITE))
    assert root.xpath("//main//a/@href") == [
        "https://s3.eu-central-1.amazonaws.com/example-mirror-1/index.html",
        "https://mirror.example.net/index.html",
    ]
    document = json.loads(render_mirrors_json(MIRRORS, SITE))
    assert document["publication"] == SITE.name
    assert [mirror["name"] for mirror in document["mirrors"]] == ["aws-frankfurt", "own"]
    assert document["mirrors"][1]["index"] == "https://mirror.example.net/index.html"


def test_verify_page_shows_key_and_commands() -> None:
    text = parsed(render_verify_page(SITE)).text_content()
    assert KEY in text
    assert f"minisign -Vm manifests/N.json -P {KEY}" in text
    assert f"minisign -Vm name.html -P {KEY}" in text
    assert "keys.json" not in text and "revocation" not in text
    rooted = replace(SITE, root_key_line="RWROOTKEY", language="ru")
    text = parsed(render_verify_page(rooted)).text_content()
    assert "minisign -Vm keys.json -P RWROOTKEY" in text
    assert "Проверить одну страницу" in text
    assert "Что даёт отзыв ключа и чего не даёт" in text
    text = parsed(render_verify_page(replace(SITE, root_key_line="RWROOTKEY"))).text_content()
    steps = (
        text.index("minisign -Vm keys.json -P RWROOTKEY"),
        text.rindex(f"minisign -Vm name.html -P {KEY}"),
    )
    assert steps[0] < steps[1]  # keys.json with the root key first, then a page
    assert "What revocation does, and does not do" in text
    assert "knows no serial can be fooled until" in text
    assert "--min-serial N" in text


def test_fit_article_shrinks_then_drops_images() -> None:
    small, large = PIXEL, "data:image/gif;base64," + "A" * 20_000
    candidates = {f"{ORIGIN}/img/a.jpg": [large, small], f"{ORIGIN}/img/b.jpg": [large]}
    roomy = fit_article(article(), SITE, candidates=candidates, budget_bytes=100_000)
    assert roomy.fits and roomy.level == 0 and not roomy.dropped
    tighter = fit_article(article(), SITE, candidates=candidates, budget_bytes=15_000)
    assert tighter.fits and tighter.level == 1 and tighter.dropped == (f"{ORIGIN}/img/b.jpg",)
    assert len(tighter.html) <= 15_000
    assert b"Image left out" in tighter.html
    hopeless = fit_article(article(), SITE, candidates=candidates, budget_bytes=100)
    assert not hopeless.fits and len(hopeless.dropped) == 2


def test_feed_date_defaults_to_its_newest_entry() -> None:
    feed = render_feed(SUMMARIES, SITE)
    assert b"<updated>2026-11-25T09:30:00Z</updated>" in feed
    assert feedparser.parse(feed).bozo == 0
    assert b"<updated>1970-01-01T00:00:00Z</updated>" in render_feed([], SITE)


def test_lists_take_article_views_too() -> None:
    views = [article(), RUSSIAN]
    assert render_archive_month("2026-11", views, SITE) == PAGES["archive"][1]()
    assert render_feed(views, SITE) == render_feed(SUMMARIES, SITE)


def test_template_sources_name_every_template() -> None:
    sources = template_sources()
    assert {"article.html", "base.html", "style.css", "feed.xml"} <= set(sources)
    assert all(isinstance(data, bytes) and data for data in sources.values())
