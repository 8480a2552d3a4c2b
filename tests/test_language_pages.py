"""Every reader-facing page per language: index, archive, feed, mirrors and verify pages
in `-<lang>` form, each linking its own language's pages, all listed and verified."""

from __future__ import annotations

import json
import posixpath
from datetime import date
from pathlib import Path

import lxml.html
import pytest

from mirror.build.render import (
    MirrorLink,
    Site,
    archive_path,
    mirror_index_url,
    mirrors_path,
    render_archive_month,
    render_daily,
    render_mirrors_html,
    render_mirrors_json,
    render_verify_page,
    site_paths,
    verify_path,
)
from mirror.cli import run
from mirror.trust import manifest

SITE = Site(
    name="The Example Times",
    language="en",
    home_url="https://www.example.org/",
    public_key_line="RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3",
    key_id="E3A3B1C2D4F5A6B7",
    languages=("en", "ru"),
    root_key_line="RWRoot0000000000000000000000000000000000000000000000000000",
)
MIRRORS = [MirrorLink("a", "https://a.example.net/m/")]


def links(page: bytes, path: str) -> set[str]:
    """The edition paths `page` (at `path`) links to."""
    root = lxml.html.document_fromstring(page)
    folder = posixpath.dirname(path)
    return {
        posixpath.normpath(posixpath.join(folder, href))
        for href in root.xpath("//a/@href")
        if ":" not in href
    }


def test_paths_per_language() -> None:
    assert mirrors_path() == "mirrors.html" and mirrors_path("ru") == "mirrors-ru.html"
    assert verify_path() == "verify.html" and verify_path("pt_BR") == "verify-pt-br.html"
    assert archive_path("2026-11", "ru") == "archive/2026-11-ru.html"
    assert site_paths("ru") == {
        "index": "index-ru.html",
        "mirrors": "mirrors-ru.html",
        "verify": "verify-ru.html",
        "feed": "feed-ru.xml",
        "editions": "editions/index-ru.html",
    }
    assert site_paths()["editions"] == "editions/index.html"
    with pytest.raises(ValueError):
        mirrors_path("../x")


def test_main_language_articles_link_the_unsuffixed_pages() -> None:
    assert SITE.page_language("en-GB") is None
    assert SITE.page_language("ru-RU") == "ru"
    assert SITE.page_language("de") is None  # no pages of its own
    from dataclasses import replace

    assert replace(SITE, languages=("ru",)).page_language("ru") is None


@pytest.mark.parametrize(
    ("path", "page"),
    [
        ("mirrors-ru.html", lambda: render_mirrors_html(MIRRORS, SITE, language="ru")),
        ("verify-ru.html", lambda: render_verify_page(SITE, language="ru")),
        (
            "archive/2026-11-ru.html",
            lambda: render_archive_month("2026-11", [], SITE, language="ru"),
        ),
    ],
)
def test_russian_pages_are_russian_and_link_russian_pages(path: str, page) -> None:  # type: ignore[no-untyped-def]
    rendered = page()
    root = lxml.html.document_fromstring(rendered)
    assert root.get("lang") == "ru"
    assert {"index-ru.html", "mirrors-ru.html", "verify-ru.html"} <= links(rendered, path)
    assert not {"index.html", "mirrors.html", "verify.html"} & links(rendered, path)
    assert "Зеркала" in root.text_content() and "Проверка подписей" in root.text_content()


def test_mirror_addresses_on_a_language_s_pages_open_that_language_s_index() -> None:
    assert mirror_index_url("https://a.example.net/m") == "https://a.example.net/m/index.html"
    assert mirror_index_url("https://a.example.net/m/", "ru") == (
        "https://a.example.net/m/index-ru.html"
    )
    russian = "https://a.example.net/m/index-ru.html"
    pages = {
        "ru": render_mirrors_html(MIRRORS, SITE, language="ru"),
        "daily-ru": render_daily(date(2026, 11, 28), "ru", [], SITE, mirrors=MIRRORS),
    }
    for name, page in pages.items():
        hrefs = lxml.html.document_fromstring(page).xpath("//a/@href")
        assert russian in hrefs and "https://a.example.net/m/index.html" not in hrefs, name
    english = render_mirrors_html(MIRRORS, SITE)
    assert "https://a.example.net/m/index.html" in english.decode()
    assert russian not in english.decode()
    daily_en = render_daily(date(2026, 11, 28), "en", [], SITE, mirrors=MIRRORS).decode()
    assert "https://a.example.net/m/index.html" in daily_en  # the main language's pages
    document = json.loads(render_mirrors_json(MIRRORS, SITE))
    assert document["mirrors"] == [
        {
            "name": "a",
            "url": "https://a.example.net/m/",
            "index": "https://a.example.net/m/index.html",
            "indexes": {"en": "https://a.example.net/m/index-en.html", "ru": russian},
        }
    ]


def test_verify_pages_and_daily_files_say_to_download_with_compression() -> None:
    """A compressed S3 mirror sends gzip whatever the client asks (test_stock_minisign
    shows plain curl saving gzip): every verify page and daily file gives the commands
    that undo it, in the page's words."""
    for language, words in ((None, "A browser undoes"), ("ru", "Браузер распаковывает")):
        root = lxml.html.document_fromstring(render_verify_page(SITE, language=language))
        (command,) = root.xpath("//pre[@id='download']/code/text()")
        assert command == "curl --compressed -O URL\nwget --compression=auto URL"
        assert words in root.text_content()
    for language, words in (("en", "a browser undoes"), ("ru", "браузер распаковывает")):
        page = render_daily(date(2026, 11, 28), language, [], SITE, mirrors=MIRRORS)
        root = lxml.html.document_fromstring(page)
        address = f"https://a.example.net/m/editions/2026-11-28-{language}.html"
        codes = [code.text_content() for code in root.iter("code")]
        assert f"curl --compressed -O {address}\nwget --compression=auto {address}" in codes
        assert words in root.text_content()


def test_russian_verify_page_shows_the_root_key_commands_in_russian() -> None:
    root = lxml.html.document_fromstring(render_verify_page(SITE, language="ru"))
    commands = [code.text_content() for code in root.iter("code")]
    assert f"minisign -Vm keys.json -P {SITE.root_key_line}" in commands
    assert f"minisign -Vm название.html -P {SITE.public_key_line}" in commands
    text = root.text_content()
    assert "проверьте их\nкорневым ключом" in text
    assert "Check the whole copy" not in text


@pytest.mark.slow
def test_a_two_language_build_has_every_page_per_language(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edition = built.parent / "edition"
    files = {p.relative_to(edition).as_posix() for p in edition.rglob("*") if p.is_file()}
    for language in ("en", "ru"):
        for name in ("index", "mirrors", "verify"):
            assert f"{name}-{language}.html" in files
        assert f"feed-{language}.xml" in files
        assert any(f.startswith("archive/") and f.endswith(f"-{language}.html") for f in files)
    listed = json.loads((edition / "manifests" / "1.json").read_text())
    assert listed["version"] == 1
    russian = [
        path
        for path in files
        if manifest.is_article_page(path)
        and lxml.html.parse(str(edition / path)).getroot().get("lang") == "ru"
    ]
    assert russian
    for path in [*russian, "index-ru.html", "mirrors-ru.html", "verify-ru.html"]:
        targets = links((edition / path).read_bytes(), path)
        assert {"index-ru.html", "mirrors-ru.html", "verify-ru.html"} <= targets, path
        assert all(target in files for target in targets), path  # no dead end
    archives = {t for t in links((edition / "index-ru.html").read_bytes(), "index-ru.html")}
    assert {t for t in archives if t.startswith("archive/")} == {
        f for f in files if f.startswith("archive/") and f.endswith("-ru.html")
    }

    key = str(built.parent / "keys" / "mirror.pub")
    assert run(["verify", str(edition), "--key", key, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
