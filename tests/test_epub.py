"""The EPUB writer (mirror.build.epub): the package checked against the EPUB 3 structure
by unzipping it, its determinism, its size limit and its words in the book's language."""

from __future__ import annotations

import random
import subprocess
from datetime import date
from pathlib import Path

import pytest
from conftest import NOW
from lxml import etree

from mirror.build.builder import Builder, BuildInputs
from mirror.build.catalogue import wording
from mirror.build.daily import section_id
from mirror.build.epub import Book, Chapter, make_epub
from mirror.build.render import MESSAGES
from mirror.config import load_config
from mirror.errors import BuildError, EditionTooLargeError
from mirror.progress import NoProgress
from mirror.store import Store
from mirror.trust import minisign
from mirror.workers import ParserPool

from epub_check import OPF, XHTML, assert_valid_epub3, opened, package
from stock_minisign import minisign_binary

PICTURE = "https://static.example.org/a.webp"
OTHER_PICTURE = "https://static.example.org/b.webp"
GONE_PICTURE = "https://static.example.org/gone.jpg"


def picture(size: int, seed: int = 0) -> tuple[str, bytes]:
    """Bytes that do not compress, as real image data does not."""
    return ("image/webp", b"RIFF" + random.Random(seed).randbytes(size - 4))


def chapter(anchor: str = "first", **changes: object) -> Chapter:
    fields: dict[str, object] = {
        "anchor": anchor,
        "title": "Город без света",
        "byline": "Автор: Иван Петров",
        "date_words": "28 ноября 2026 г.",
        "language": "ru",
        "body_html": (
            f'<p>Первый абзац <a href="https://example.org/x">ссылка</a> '
            f'<a href="/relative">мёртвая</a> <a href="javascript:alert(1)">ещё</a></p>'
            f'<figure><img src="{PICTURE}" alt="Улица"><figcaption>Улица</figcaption></figure>'
            f'<p onclick="x()" style="color:red">Второй<script>alert(1)</script></p>'
            f'<img src="{GONE_PICTURE}" alt="Потеряно"><iframe src="https://evil/"></iframe>'
            f"<custom-tag>сохранённый текст</custom-tag>"
        ),
        "images": {PICTURE: picture(2000), GONE_PICTURE: None},
    }
    fields.update(changes)
    return Chapter(**fields)  # type: ignore[arg-type]


def book(*chapters: Chapter, language: str = "ru") -> Book:
    return Book(
        identifier="urn:uuid:6f1c7a52-3d1e-4f0e-9a57-2b8f1d3c9e41",
        title="Пример, 28 ноября 2026 г.",
        language=language,
        day=date(2026, 11, 28),
        publisher="Пример",
        chapters=chapters or (chapter(),),
        footer_html="<p>Проверьте: <code>minisign -Vm file.epub -P RW...</code></p>",
    )


def chapter_text(data: bytes, name: str = "EPUB/text/c001.xhtml") -> str:
    return opened(data).read(name).decode("utf-8")


def test_the_package_has_the_epub3_structure() -> None:
    data = make_epub(book(chapter("first"), chapter("second", title="Второй")), max_bytes=10**6)
    assert_valid_epub3(data)
    archive = opened(data)
    _path, opf = package(archive)
    metadata = opf.find(f"{OPF}metadata")
    assert metadata is not None
    dc = "{http://purl.org/dc/elements/1.1/}"
    assert metadata.findtext(f"{dc}identifier") == book().identifier
    assert metadata.findtext(f"{dc}title") == "Пример, 28 ноября 2026 г."
    assert metadata.findtext(f"{dc}language") == "ru"
    assert metadata.findtext(f"{dc}date") == "2026-11-28"
    modified = metadata.find(f"{OPF}meta[@property='dcterms:modified']")
    assert modified is not None and modified.text == "2026-11-28T00:00:00Z"  # the day, no clock
    assert {info.date_time for info in archive.infolist()} == {(2026, 11, 28, 0, 0, 0)}


def test_the_table_of_contents_lists_every_chapter_in_russian() -> None:
    data = make_epub(book(chapter("first"), chapter("second", title="Второй")), max_bytes=10**6)
    nav = etree.fromstring(opened(data).read("EPUB/nav.xhtml"))
    heading = nav.find(f".//{XHTML}nav/{XHTML}h2")
    assert heading is not None and heading.text == wording(MESSAGES, "ru")["contents"]
    links = [(a.get("href"), a.text) for a in nav.iter(f"{XHTML}a")]
    assert links == [
        ("text/c001.xhtml", "Город без света"),
        ("text/c002.xhtml", "Второй"),
        ("text/check.xhtml", wording(MESSAGES, "ru")["verify"]),
    ]
    assert 'id="second"' in chapter_text(data, "EPUB/text/c002.xhtml")


def test_a_chapter_keeps_its_words_and_loses_what_is_not_allowed() -> None:
    text = chapter_text(make_epub(book(), max_bytes=10**6))
    assert "Город без света" in text and "Автор: Иван Петров · 28 ноября 2026 г." in text
    assert 'lang="ru"' in text and "сохранённый текст" in text
    for gone in ("script", "iframe", "onclick", "style=", "javascript:", "/relative", "custom"):
        assert gone not in text
    assert '<a href="https://example.org/x">ссылка</a>' in text
    assert "<a>мёртвая</a>" in text  # a link with nowhere to go is plain text


def test_images_are_files_in_the_zip_and_a_missing_one_shows_the_note() -> None:
    data = make_epub(book(), max_bytes=10**6)
    archive = opened(data)
    images = [name for name in archive.namelist() if name.startswith("EPUB/images/")]
    assert len(images) == 1 and archive.read(images[0]) == picture(2000)[1]
    text = chapter_text(data)
    assert f'src="../{images[0].removeprefix("EPUB/")}"' in text
    assert f"[{wording(MESSAGES, 'ru')['image_dropped']}: Потеряно]" in text
    assert "static.example.org" not in text


def test_an_alt_text_the_caption_repeats_is_not_read_twice() -> None:
    body = (
        f'<figure><img src="{PICTURE}" alt="Улица ночью"><figcaption>Улица ночью.'
        f'</figcaption></figure><figure><img src="{OTHER_PICTURE}" alt="Фонарь">'
        f"<figcaption>Снимок автора</figcaption></figure>"
    )
    images = {PICTURE: picture(2000), OTHER_PICTURE: picture(2000, 1)}
    text = chapter_text(make_epub(book(chapter(body_html=body, images=images)), max_bytes=10**6))
    assert 'alt="Улица ночью"' not in text and text.count('alt=""') == 1
    assert 'alt="Фонарь"' in text  # a caption that says something else: alt kept


def test_the_same_book_gives_the_same_bytes() -> None:
    assert make_epub(book(), max_bytes=10**6) == make_epub(book(), max_bytes=10**6)
    assert make_epub(book(), max_bytes=10**6) != make_epub(
        book(chapter(title="Другой")), max_bytes=10**6
    )


def test_over_the_limit_the_largest_images_go_first() -> None:
    big, small = picture(60_000, 1), picture(6_000, 2)
    body = f'<p>Текст</p><img src="{PICTURE}" alt="большая"><img src="{OTHER_PICTURE}">'
    two = book(chapter(body_html=body, images={PICTURE: big, OTHER_PICTURE: small}))
    whole = make_epub(two, max_bytes=10**6)
    fitted = make_epub(two, max_bytes=len(whole) - 1_000)
    assert len(fitted) <= len(whole) - 1_000
    assert_valid_epub3(fitted)
    kept = [name for name in opened(fitted).namelist() if name.startswith("EPUB/images/")]
    assert [opened(fitted).read(name) for name in kept] == [small[1]]
    assert f"[{wording(MESSAGES, 'ru')['image_dropped']}: большая]" in chapter_text(fitted)
    no_images = make_epub(two, max_bytes=len(whole) - 62_000)
    assert not [n for n in opened(no_images).namelist() if n.startswith("EPUB/images/")]


def test_still_too_large_without_images_is_a_named_error() -> None:
    with pytest.raises(EditionTooLargeError, match="over its limit of 2000") as caught:
        make_epub(book(), max_bytes=2_000)
    assert isinstance(caught.value, BuildError)


def test_english_book_has_english_words() -> None:
    english = chapter(language="en", title="City", byline="", date_words="")
    data = make_epub(book(english, language="en"), max_bytes=10**6)
    assert_valid_epub3(data)
    nav = opened(data).read("EPUB/nav.xhtml").decode()
    assert wording(MESSAGES, "en")["contents"] in nav and wording(MESSAGES, "en")["verify"] in nav
    assert 'class="meta"' not in chapter_text(data)


def test_control_characters_and_a_bad_anchor_still_give_well_formed_xhtml() -> None:
    odd = chapter("1 not an id", title="Bad\x00title\x0b", body_html="<p>a\x01b</p><p>c")
    data = make_epub(book(odd), max_bytes=10**6)
    assert_valid_epub3(data)
    text = chapter_text(data)
    assert 'id="c001"' in text and "Badtitle" in text and "ab" in text


# --- the builder's hook, on a store fetched from the sample newsroom ---------------


async def test_the_builder_writes_a_signed_epub_that_stock_minisign_accepts(
    tmp_path: Path, built: Path
) -> None:
    config = load_config(built)
    key = minisign.load_secret_key(config.signing.secret_key_file, None)
    with Store(config.state.path) as store, ParserPool(1) as pool:
        builder = Builder(config, store, BuildInputs(key=key), NOW, pool, NoProgress())
        articles = store.edition_articles(config.edition.keeps_gone)
        site = builder.site(articles)
        russian = [a for a in articles if a.revision.language.startswith("ru")]
        assert russian and any(a.revision.images for a in russian)
        day = NOW.date()
        path = f"editions/{day.isoformat()}-ru.epub"
        await builder.daily_pair(day, "ru", russian, site, {})
        staged = {p: builder.folder.staged[p].read_bytes() for p in (path, path + ".minisig")}
        chapters = [await builder.epub_chapter(article, site) for article in russian]
        book = builder.epub_book(day, "ru", chapters, site, {}, 0)
        builder.folder.discard()
    data = staged[path]
    assert_valid_epub3(data)
    assert data == make_epub(
        book, max_bytes=config.edition.daily_max_bytes
    )  # the hook adds nothing of its own
    archive = opened(data)
    assert [n for n in archive.namelist() if n.startswith("EPUB/images/")]
    nav = archive.read("EPUB/nav.xhtml").decode()
    assert all(a.revision.title in nav for a in russian)
    assert f'id="{section_id(russian[0].path or "")}"' in chapter_text(data)
    (tmp_path / "day.epub").write_bytes(data)
    (tmp_path / "day.epub.minisig").write_bytes(staged[path + ".minisig"])
    checked = stock_check(tmp_path / "day.epub", key.public.line())
    assert checked.returncode == 0, checked.stderr
    assert f"mirror-daily path:{path} date:{day.isoformat()} language:ru" in checked.stdout


def stock_check(signed: Path, key_line: str) -> subprocess.CompletedProcess[str]:
    """Debian's minisign checks `signed` against its `.minisig` beside it."""
    return subprocess.run(
        [minisign_binary(), "-Vm", signed.name, "-P", key_line],
        cwd=signed.parent, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_link_to_another_chapter_stays_in_the_book_and_video_is_worded() -> None:
    other = "https://example.org/ru/other/"
    first = chapter(
        "first",
        body_html=(
            f'<p><a href="{other}#part">Другая</a> <a href="https://example.org/away">прочь</a></p>'
            '<p class="note">Video: <a href="https://v.example/1">https://v.example/1</a></p>'
        ),
    )
    second = chapter("second", title="Другая", addresses=(other, ""))
    data = make_epub(book(first, second), max_bytes=10**6)
    assert_valid_epub3(data)
    text = chapter_text(data)
    assert 'href="c002.xhtml#second"' in text
    assert 'href="https://example.org/away"' in text
    assert "Video:" not in text and wording(MESSAGES, "ru")["video"] in text
