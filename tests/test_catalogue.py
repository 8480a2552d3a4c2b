"""The translation catalogue: every text we add to a page or a mail is a msgid that
babel's extraction finds (templates and Python alike), every msgid has a Russian
translation, and the Russian pages and digest show those translations, "Video:" too."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from mirror.build import builder, catalogue, render
from mirror.build.catalogue import Plural
from mirror.build.render import (
    ArticleView,
    MirrorLink,
    Site,
    render_archive_month,
    render_article,
    render_index,
    render_mirrors_html,
    render_verify_page,
    worded_notes,
)
from mirror.digest import compose

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ("ru",)
PLACEHOLDER = re.compile(r"\{[a-z_]+\}|%\([a-z_]+\)s")
SITE = Site(
    name="Example",
    language="en",
    home_url="https://www.example.org/",
    public_key_line="RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3",
    key_id="E3A3B1C2D4F5A6B7",
    languages=("en", "ru"),
    root_key_line="RWRoot0000000000000000000000000000000000000000000000000000",
)
VIDEO = '<p class="note">Video: <a href="https://video.example.org/v/1">https://video.example.org/v/1</a></p>'
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def extracted() -> dict[tuple[str | None, str | tuple[str, ...]], list[str]]:
    """Every msgid in the templates and the code, as `pybabel extract -F babel.cfg`
    finds it with the catalogue's keywords: {(context, msgid): [file, ...]}."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as mapping:
        method_map, options_map = parse_mapping_cfg(mapping)
    found: dict[tuple[str | None, str | tuple[str, ...]], list[str]] = {}
    for name, _, message, _, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=catalogue.KEYWORDS
    ):
        found.setdefault((context, message), []).append(name)
    return found


def po(language: str) -> Catalog:
    with catalogue.catalogue_path(language).open("rb") as source:
        return read_po(source, locale=language)


def test_extraction_finds_the_words_of_templates_and_code() -> None:
    found = extracted()
    files = {name for names in found.values() for name in names}
    assert "templates/edition/verify.html" in files  # {% trans %}
    assert "mirror/build/render.py" in files and "mirror/digest/compose.py" in files
    assert (None, "Confirm your subscription") in found  # mail-in's replies
    assert (None, "Video:") in found and ("one author", "By {names}") in found
    assert (None, ("{n} new article", "{n} new articles")) in found


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_msgid_has_a_translation_and_none_is_stale(language: str) -> None:
    found = extracted()
    entries = {(m.context, m.id): m for m in po(language) if m.id}
    untranslated = [
        key
        for key in found
        if key not in entries
        or entries[key].fuzzy
        or not all(entries[key].string if isinstance(key[1], tuple) else [entries[key].string])
    ]
    assert untranslated == [], f"untranslated for {language}: {untranslated}"
    stale = sorted(str(key) for key in set(entries) - set(found))
    assert stale == [], f"stale entries in {language}'s .po: {stale}"
    for key, entry in entries.items():
        ids = key[1] if isinstance(key[1], tuple) else (key[1],)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        wanted = {p for msgid in ids for p in PLACEHOLDER.findall(msgid)}
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) == wanted, (key, string)


def test_a_fuzzy_entry_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = catalogue.catalogue_path("ru").read_text(encoding="utf-8")
    fuzzy = text.replace('msgid "Mirrors"\n', '#, fuzzy\nmsgid "Mirrors"\n', 1)
    assert fuzzy != text
    folder = tmp_path / "locale" / "ru" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "mirror.po").write_text(fuzzy, encoding="utf-8")
    monkeypatch.setattr(catalogue, "catalogue_path", lambda language: folder / "mirror.po")
    catalogue.translations.cache_clear()
    try:
        assert catalogue.translate("Mirrors", "ru") == "Mirrors"
        assert catalogue.translate("Archive", "ru") == "Архив"
    finally:
        catalogue.translations.cache_clear()


def test_the_catalogue_ships_in_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["mirror"]
    shipped = {p for pattern in patterns for p in (ROOT / "mirror").glob(pattern)}
    assert set((ROOT / "mirror" / "locale").rglob("*.po")) <= shipped
    assert catalogue.has_catalogue("ru-RU") and catalogue.has_catalogue("en")
    assert not catalogue.has_catalogue("xx")


def russian_article(body: str) -> ArticleView:
    return ArticleView(
        path="articles/2026/11/novosti.html",
        title="Новости",
        authors=("Дарья Волкова",),
        published=NOW,
        updated=datetime(2026, 11, 28, tzinfo=UTC),
        lead="",
        language="ru",
        body_html=body,
        canonical_url="https://www.example.org/ru/novosti/",
        revision=2,
        images={"https://www.example.org/a.jpg": None},
    )


def english_words() -> set[str]:
    """The English texts of the pages' table (those a translation changes)."""
    words: set[str] = set()
    for m in render.MESSAGES.values():
        if isinstance(m, Plural):
            words |= {m.singular, m.plural}
        else:
            words.add(m if isinstance(m, str) else m.message)
    return {w.split("{")[0].strip() for w in words if w.split("{")[0].strip()}


def russian_pages() -> dict[str, bytes]:
    body = f'<p>Текст.</p><p><img src="https://www.example.org/a.jpg" alt="Площадь"></p>{VIDEO}'
    page = russian_article(body)
    return {
        "article": render_article(page, SITE),
        "index": render_index(
            [page.summary()], SITE, edition_date=NOW, expires=NOW, language="ru", months=["2026-11"]
        ),
        "empty index": render_index([], SITE, edition_date=NOW, expires=NOW, language="ru"),
        "archive": render_archive_month("2026-11", [page.summary()], SITE, language="ru"),
        "mirrors": render_mirrors_html(
            [MirrorLink("a", "https://a.example/")], SITE, language="ru"
        ),
        "verify": render_verify_page(SITE, language="ru"),
    }


@pytest.mark.parametrize(
    "kind", ["article", "index", "empty index", "archive", "mirrors", "verify"]
)
def test_a_russian_page_has_no_english_label(kind: str) -> None:
    root = lxml.html.document_fromstring(russian_pages()[kind])
    text = root.find("body").text_content() + root.findtext(".//title")
    words = english_words() | {m[1] for m in extracted() if isinstance(m[1], str)}
    english = [word for word in words if re.search(rf"\b{re.escape(word)}(?!\w)", text)]
    assert english == [], (kind, english)
    assert "Зеркала" in text and "Проверка подписей" in text


def test_the_russian_verify_page_names_one_file_in_its_text_and_commands() -> None:
    text = lxml.html.document_fromstring(russian_pages()["verify"]).text_content()
    assert "articles/ГГГГ/ММ/название.html.minisig" in text
    assert "minisign -Vm название.html -P" in text and "name.html" not in text
    assert "Где взять minisign: apt install minisign" in text


def test_the_dropped_articles_note_takes_each_russian_plural_form() -> None:
    forms = {n: render.dropped_note(n, "ru").split(" не ")[0] for n in (1, 3, 5, 21, 12)}
    assert forms == {
        1: "1 более старая статья",
        3: "3 более старые статьи",
        5: "5 более старых статей",
        21: "21 более старая статья",
        12: "12 более старых статей",
    }
    assert render.dropped_note(1, "en") == "1 older article was left out to keep this file small."
    assert render.dropped_note(0, "ru") == ""


def test_russian_labels_on_an_article() -> None:
    text = lxml.html.document_fromstring(russian_pages()["article"]).text_content()
    assert "Автор: Дарья Волкова" in text
    assert "обновлено" in text and "редакция 2" in text and "Оригинал" in text
    assert "[Изображение не включено, чтобы страница оставалась лёгкой: Площадь]" in text
    assert "Видео: https://video.example.org/v/1" in text


def test_the_video_label_is_worded_in_the_page_language() -> None:
    english = render_article(
        ArticleView(
            path="articles/2026/11/news.html",
            title="News",
            authors=(),
            published=NOW,
            updated=None,
            lead="",
            language="en",
            body_html=f"<p>Text.</p>{VIDEO}",
            canonical_url="",
            revision=1,
        ),
        SITE,
    )
    assert b">Video: <a " in english
    russian = russian_pages()["article"]
    assert "Видео: <a ".encode() in russian and b"Video:" not in russian
    assert worded_notes(VIDEO, "Видео:").startswith('<p class="note">Видео: <a ')
    assert worded_notes("<p>Video: not ours</p>", "Видео:") == "<p>Video: not ours</p>"


def test_the_russian_digest_words_come_from_the_catalogue() -> None:
    words = compose._messages("ru")
    assert words["read_on"] == "Читать на зеркале:" and words["video"] == "Видео:"
    assert words["by_one"] == "Автор: {names}" and words["by"] == "Авторы: {names}"
    counts = [compose._count_words(n, "ru") for n in (1, 3, 5, 21, 111)]
    assert counts == [
        "1 новая статья",
        "3 новые статьи",
        "5 новых статей",
        "21 новая статья",
        "111 новых статей",
    ]
    assert compose._count_words(1, "en") == "1 new article"
    assert compose._count_words(2, "de") == "2 new articles"


def test_a_changed_translation_changes_the_pages_cache_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = builder.template_fingerprint()
    folder = tmp_path / "locale" / "ru" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    text = catalogue.catalogue_path("ru").read_text(encoding="utf-8")
    (folder / "mirror.po").write_text(text.replace("Архив", "Архивы"), encoding="utf-8")
    monkeypatch.setattr(catalogue, "locale_root", lambda: tmp_path / "locale")
    assert builder.template_fingerprint() != before
