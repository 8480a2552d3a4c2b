"""The daily single-file edition: which articles, the byte limit, signatures, manifest,
verify, the editions index, and the digest's link and attachment."""

from __future__ import annotations

import asyncio
import html
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from mirror.build import builder, daily
from mirror.build.builder import BuildReport, build_edition
from mirror.build.catalogue import wording
from mirror.build.render import MESSAGES, MirrorLink, Site
from mirror.cli import run
from mirror.config import Config, attachment_message_bytes, load_config
from mirror.errors import EditionTooLargeError, ManifestError
from mirror.newsroom.state import DEFAULT_REFERENCE
from mirror.store import Store
from mirror.trust import manifest
from mirror.trust.keyfiles import build_inputs
from mirror.verify.run import verify_target

from cli_configs import keyed_config
from digest_rig import parse, send, subscribe, with_smtp
from epub_check import XHTML, assert_valid_epub3
from mailin_rig import EXTRA_MIRRORS, MAILIN, Rig, mail
from smtp_servers import Recorder, smtp_server
from stock_minisign import minisign_binary

NOW = DEFAULT_REFERENCE + timedelta(hours=6)
TODAY = NOW.date()


# --- pure: selection, paths, fitting ------------------------------------------------


@dataclass(frozen=True)
class Item:
    path: str
    published: datetime | None
    language: str = "en"


DAY_EN = "editions/2026-11-20-en.html"


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def test_the_days_articles_then_the_newest_earlier_up_to_the_limit() -> None:
    items = [
        Item("a/today-1", at(20, 8)),
        Item("a/today-2", at(20, 20)),
        Item("a/yesterday", at(19)),
        Item("a/older", at(10)),
        Item("a/tomorrow", at(21)),
        Item("a/undated", None),
        Item("a/russian", at(20), "ru-RU"),
    ]
    chosen = daily.daily_articles(items, date(2026, 11, 20), "en", limit=3)
    assert [i.path for i in chosen] == ["a/today-2", "a/today-1", "a/yesterday"]
    # every article of the day, even past the limit
    assert len(daily.daily_articles(items, date(2026, 11, 20), "en", limit=1)) == 2
    assert [i.path for i in daily.daily_articles(items, date(2026, 11, 20), "ru", 5)] == [
        "a/russian"
    ]


def test_the_day_is_the_sites_time_zone_day() -> None:
    late = Item("a/late", datetime(2026, 11, 20, 22, 30, tzinfo=UTC))  # 21 Nov in Moscow
    assert daily.daily_articles([late], date(2026, 11, 20), "en", 0, "UTC") == [late]
    assert daily.daily_articles([late], date(2026, 11, 20), "en", 0, "Europe/Moscow") == []
    assert daily.daily_articles([late], date(2026, 11, 21), "en", 0, "Europe/Moscow") == [late]


def test_paths_parse_back_and_other_paths_are_not_daily() -> None:
    day = date(2026, 11, 28)
    assert daily.daily_path(day, "ru") == "editions/2026-11-28-ru.html"
    assert daily.daily_epub_path(day, "en_GB") == "editions/2026-11-28-en-gb.epub"
    found = daily.parse_daily_path("editions/2026-11-28-ru.html")
    assert found == daily.DailyFile("editions/2026-11-28-ru.html", day, "ru", "html")
    for other in ("editions/index.html", "editions/2026-13-40-ru.html", "index.html"):
        assert daily.parse_daily_path(other) is None
    assert manifest.is_daily_page("editions/2026-11-28-ru.html")
    assert manifest.is_daily_page("editions/2026-11-28-ru.epub")  # its signature is checked too
    kept = daily.kept_daily_files(
        [
            "editions/2026-11-28-ru.html",
            "editions/2026-11-28-ru.html.minisig",
            "editions/2026-11-13-ru.html",
            "editions/2026-11-14-en.html",
            "editions/2026-11-29-en.html",
            "editions/index.html",
        ],
        day,
        keep_days=14,
    )
    assert kept == [
        "editions/2026-11-14-en.html",
        "editions/2026-11-28-ru.html",
        "editions/2026-11-28-ru.html.minisig",
    ]


def test_fit_drops_the_oldest_articles_and_never_goes_over() -> None:
    def render(some: object) -> bytes:
        return b"x" * (100 + 50 * len(some))  # type: ignore[arg-type]

    page, dropped = daily.fit_articles(render, list(range(10)), 400)
    assert len(page) <= 400 and dropped == 4
    assert daily.fit_articles(render, list(range(3)), 400) == (b"x" * 250, 0)
    with pytest.raises(EditionTooLargeError):
        daily.fit_articles(render, list(range(3)), 99)


def test_daily_comment_names_path_date_and_language() -> None:
    comment = manifest.daily_comment("editions/2026-11-28-ru.html", date(2026, 11, 28), "ru")
    assert comment == "mirror-daily path:editions/2026-11-28-ru.html date:2026-11-28 language:ru"
    stated = manifest.parse_daily_comment(comment)
    assert (stated.path, stated.day, stated.language) == (
        "editions/2026-11-28-ru.html",
        date(2026, 11, 28),
        "ru",
    )
    assert manifest.signed_path(comment) == "editions/2026-11-28-ru.html"
    with pytest.raises(ManifestError):
        manifest.daily_comment("editions/x.html", date(2026, 11, 28), "r u")
    with pytest.raises(ManifestError):
        manifest.parse_daily_comment("mirror-page path:a revision:1 url:")


# --- built from the sample newsroom --------------------------------------------------


@pytest.fixture
def config(fetched_store: Path, tmp_path: Path) -> Config:
    return keyed_config(fetched_store, tmp_path)


def build(config: Config, now: datetime = NOW) -> BuildReport:
    inputs = build_inputs(config, now=now)
    with Store(config.state.path) as store:
        return asyncio.run(build_edition(config, store, inputs, now=now))


def limited(config: Config, **edition: int) -> Config:
    return replace(config, edition=replace(config.edition, **edition))


def daily_files(out: Path) -> list[str]:
    return sorted(
        p.relative_to(out).as_posix()
        for p in (out / "editions").glob("*.html")
        if daily.is_daily_file(p.relative_to(out).as_posix())
    )


def test_a_build_writes_each_languages_daily_file_signed_and_in_the_manifest(
    config: Config,
) -> None:
    report = build(config)
    out = config.edition.output_dir
    assert daily_files(out) == ["editions/2026-11-20-en.html", "editions/2026-11-20-ru.html"]
    document = manifest.parse_manifest((out / "manifests/1.json").read_bytes())
    listed = set()
    for part in document.parts:
        listed |= {e.path for e in manifest.parse_part((out / part.path).read_bytes()).files}
    for path in daily_files(out):
        assert {path, path + ".minisig"} <= listed
    assert "editions/index.html" in listed
    english = (out / "editions/2026-11-20-en.html").read_text()
    assert 'lang="en"' in english and "Contents" in english
    russian = (out / "editions/2026-11-20-ru.html").read_text()
    assert "Содержание" in russian and "minisign -Vm 2026-11-20-ru.html -P RW" in russian
    assert report.daily_too_large == []


def test_the_daily_file_is_self_contained_and_its_contents_links_resolve(
    config: Config,
) -> None:
    build(config)
    html = (config.edition.output_dir / "editions/2026-11-20-en.html").read_text()
    ids = set(re.findall(r'id="([^"]+)"', html))
    anchors = re.findall(r'href="#([^"]+)"', html)
    sections = re.findall(r'<article id="([^"]+)"', html)
    assert len(sections) >= 4 and set(sections) <= set(anchors)
    assert all(anchor in ids for anchor in anchors)
    assert "default-src 'none'" in html
    assert not re.search(r'(?:src|href)="(?!#|data:|https?://)', html)  # no relative link
    assert not re.search(r'src="(?!data:)', html)  # images inline or left out


def test_stock_minisign_verifies_the_daily_file(config: Config) -> None:
    binary = minisign_binary()
    build(config)
    out = config.edition.output_dir
    public = str(config.signing.public_key_file)
    for path in daily_files(out):
        result = subprocess.run(
            [binary, "-Vm", str(out / path), "-p", public], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        language = path[-7:-5]
        assert f"mirror-daily path:{path} date:2026-11-20 language:{language}" in result.stdout
    victim = out / daily_files(out)[0]
    victim.write_bytes(victim.read_bytes().replace(b"Contents", b"Kontents"))
    forged = subprocess.run([binary, "-Vm", str(victim), "-p", public], capture_output=True)
    assert forged.returncode != 0


def test_mirror_verify_accepts_the_edition_and_refuses_a_swapped_signature(
    config: Config,
) -> None:
    build(config)
    out = config.edition.output_dir
    key = str(config.signing.public_key_file)
    report = asyncio.run(verify_target(str(out), key, now=NOW, state_dir=config.path.parent / "r"))
    assert report.ok, (report.missing, report.tampered, report.extra, report.errors)
    # a daily file's signature carried over to the other language's file: refused
    english, russian = daily_files(out)
    shutil.copy(out / (english + ".minisig"), out / (russian + ".minisig"))
    shutil.copy(out / english, out / russian)
    swapped = asyncio.run(
        verify_target(str(out), key, now=NOW, state_dir=config.path.parent / "r2")
    )
    assert not swapped.ok and russian in swapped.tampered


def test_over_the_limit_images_go_then_the_oldest_articles(config: Config) -> None:
    report = build(limited(config, daily_max_bytes=22_000))
    out = config.edition.output_dir
    for path in daily_files(out):
        assert (out / path).stat().st_size <= 22_000
    assert report.daily_images_dropped > 0
    english = (out / "editions/2026-11-20-en.html").read_text()
    assert "Image left out to keep this page small" in english
    small = build(limited(config, daily_max_bytes=12_000), NOW + timedelta(hours=1))
    assert small.daily_articles_dropped > 0
    for path in daily_files(out):
        assert (out / path).stat().st_size <= 12_000
    assert re.search(r"\d+ older articles? (?:was|were) left out", (out / DAY_EN).read_text())


def html_titles(path: Path) -> list[str]:
    found = re.findall(r'<article id="[^"]+"[^>]*>\n<h2>(.*?)</h2>', path.read_text())
    return [html.unescape(title) for title in found]


def epub_titles(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as book:
        names = sorted(n for n in book.namelist() if re.fullmatch(r"EPUB/text/c\d+\.xhtml", n))
        return [etree.fromstring(book.read(n)).findtext(f".//{XHTML}h1") or "" for n in names]


def listed_paths(out: Path) -> set[str]:
    version = (out / "current").read_text().strip()
    document = manifest.parse_manifest((out / f"manifests/{version}.json").read_bytes())
    listed: set[str] = set()
    for part in document.parts:
        listed |= {e.path for e in manifest.parse_part((out / part.path).read_bytes()).files}
    return listed


def test_the_epub_drops_the_oldest_articles_as_the_html_does_and_holds_the_same(
    config: Config,
) -> None:
    build(config)
    out = config.edition.output_dir
    small = build(limited(config, daily_max_bytes=12_000), NOW + timedelta(hours=1))
    assert small.daily_too_large == [] and small.daily_articles_dropped > 0
    for language in ("en", "ru"):
        page = out / f"editions/2026-11-20-{language}.html"
        book = page.with_suffix(".epub")
        assert book.stat().st_size <= 12_000 and epub_titles(book) == html_titles(page)
        assert html_titles(page)  # some, not all
        assert_valid_epub3(book.read_bytes())
    check = zipfile.ZipFile(out / "editions/2026-11-20-ru.epub").read("EPUB/text/check.xhtml")
    assert re.search(r"\d+ более стар\w+ стат\w+ не вошл", check.decode())


def test_a_file_that_no_longer_fits_leaves_the_folder_and_the_manifest(config: Config) -> None:
    build(config)
    out = config.edition.output_dir
    assert {"editions/2026-11-20-ru.epub", "editions/2026-11-20-ru.html"} <= listed_paths(out)
    report = build(limited(config, daily_max_bytes=2_000), NOW + timedelta(hours=1))
    assert len(report.daily_too_large) == 4
    assert not list((out / "editions").glob("2026-*"))  # no stale file under today's name
    assert not {p for p in listed_paths(out) if daily.is_daily_file(p.removesuffix(".minisig"))}
    assert "2026-11-20" not in (out / "editions/index.html").read_text()


def test_a_hidden_article_leaves_the_earlier_days_kept_files(config: Config) -> None:
    kept = limited(config, daily_keep_days=3)
    build(kept)
    out = config.edition.output_dir
    ru = out / "editions/2026-11-20-ru.html"
    victim_title = html_titles(ru)[0]
    with Store(config.state.path) as store:
        victim = next(a for a in store.list_articles() if a["title"] == victim_title)
        store.hide_article(str(victim["id"]), NOW)
    build(kept, NOW + timedelta(days=1))
    assert ru.exists() and victim_title not in html_titles(ru)
    assert html_titles(ru) and victim_title not in epub_titles(ru.with_suffix(".epub"))
    assert html_titles(out / "editions/2026-11-21-ru.html")  # today's file too, without it
    assert victim_title not in html_titles(out / "editions/2026-11-21-ru.html")


NAME = "The Zarechensk Courier"
MIRROR = MirrorLink("first", "https://mirror.example/copy")


def build_with_mirror(config: Config, now: datetime = NOW) -> BuildReport:
    inputs = replace(build_inputs(config, now=now), mirrors=(MIRROR,))
    with Store(config.state.path) as store:
        return asyncio.run(build_edition(config, store, inputs, now=now))


def hrefs(text: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]+)"', text)]


def test_a_link_to_an_article_not_in_the_file_goes_to_the_first_listed_mirror(
    config: Config,
) -> None:
    one = limited(config, daily_articles=1)  # the others are not in the file
    with Store(config.state.path) as store:
        origin = {a["url"] for a in store.list_articles()}
    build(one)
    out = config.edition.output_dir
    assert origin & set(hrefs((out / DAY_EN).read_text()))  # no mirror listed: the origin
    build_with_mirror(one, NOW + timedelta(hours=1))
    for language in ("en", "ru"):
        page = out / f"editions/2026-11-20-{language}.html"
        links = hrefs(page.read_text())
        on_mirror = [h for h in links if h.startswith("https://mirror.example/copy/articles/")]
        assert on_mirror and not origin & set(links)
        mirrored = [out / h.removeprefix("https://mirror.example/copy/") for h in on_mirror]
        assert all(path.is_file() for path in mirrored)
        with zipfile.ZipFile(page.with_suffix(".epub")) as book:
            chapter = hrefs(book.read("EPUB/text/c001.xhtml").decode())
        assert set(on_mirror) <= set(chapter) and not origin & set(chapter)


def test_the_epub_check_page_names_the_file_its_signature_and_the_mirrors(
    config: Config,
) -> None:
    build_with_mirror(config)
    out = config.edition.output_dir
    with zipfile.ZipFile(out / "editions/2026-11-20-ru.epub") as book:
        check = book.read("EPUB/text/check.xhtml").decode()
        title = etree.fromstring(book.read("EPUB/content.opf")).findtext(
            ".//{http://purl.org/dc/elements/1.1/}title"
        )
    words = wording(MESSAGES, "ru")
    assert "minisign -Vm 2026-11-20-ru.epub -P RW" in check and "*" not in check
    assert html.escape(words["daily_check"].format(signature="2026-11-20-ru.epub.minisig")) in check
    assert html.escape(words["daily_comment"]) in check
    assert words["daily_mirrors"] in check
    assert 'href="https://mirror.example/copy/index-ru.html"' in check  # the reader's language
    address = "https://mirror.example/copy/editions/2026-11-20-ru.epub"
    assert f"curl --compressed -O {address}" in check
    assert html.escape(words["daily_download"]) in check
    assert title == words["daily_title"].format(name=NAME, date="20 ноября 2026\u202fг.")


def test_the_epub_check_page_gives_the_root_key_route() -> None:
    site = Site("Пример", "ru", "https://example.org/", "RWkey", "AB", root_key_line="RWroot")
    words = wording(MESSAGES, "ru")
    page = builder.epub_footer(site, "ru", "editions/2026-11-20-ru.epub", [MIRROR])
    assert html.escape(words["daily_check_root"]) in page
    assert "minisign -Vm keys.json -P RWroot\nminisign -Vm 2026-11-20-ru.epub -P RWkey" in page


def test_the_epub_title_comes_from_the_daily_title_message(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(MESSAGES, "daily_title", "{date} | {name}")  # no translation: as is
    build(config)
    with zipfile.ZipFile(config.edition.output_dir / "editions/2026-11-20-en.epub") as book:
        opf = etree.fromstring(book.read("EPUB/content.opf"))
    title = opf.findtext(".//{http://purl.org/dc/elements/1.1/}title")
    assert title == f"November 20, 2026 | {NAME}"


def test_each_page_language_has_its_editions_list_in_its_words(config: Config) -> None:
    build(config)
    out = config.edition.output_dir
    listing = (out / "editions/index-ru.html").read_text()
    words = wording(MESSAGES, "ru")
    assert 'lang="ru"' in listing and f"<h1>{words['editions']}</h1>" in listing
    assert 'href="../index-ru.html"' in listing and 'href="../verify-ru.html"' in listing
    assert 'href="2026-11-20-ru.epub"' in listing and 'href="2026-11-20-en.html"' in listing
    assert 'href="editions/index-ru.html"' in (out / "index-ru.html").read_text()
    assert {"editions/index-ru.html", "editions/index-en.html"} <= listed_paths(out)
    assert 'href="editions/index.html"' in (out / "index.html").read_text()


def test_build_exits_1_when_a_daily_file_cannot_be_made(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(["-c", str(config.path), "build"]) == 0  # the clock's day
    out = config.edition.output_dir
    assert len(list(out.glob("editions/*-ru.epub"))) == 1

    def too_large(*args: object) -> object:
        raise EditionTooLargeError("over the limit even with no article in it")

    monkeypatch.setattr(daily, "fit_articles", too_large)  # every EPUB is fitted
    monkeypatch.setattr(builder, "EPUB_WRITER", "a new writer")  # so the day is made again
    assert run(["-c", str(config.path), "build", "--json"]) == 1  # partial
    assert not list(out.glob("editions/*.epub*"))
    assert len(list(out.glob("editions/2*-ru.html"))) == 1  # the rest goes on


def test_too_small_a_limit_writes_no_file_and_says_so(config: Config) -> None:
    report = build(limited(config, daily_max_bytes=2_000))
    assert sorted(report.daily_too_large) == [
        f"editions/2026-11-20-{language}.{kind}"
        for language in ("en", "ru")
        for kind in ("epub", "html")
    ]
    assert daily_files(config.edition.output_dir) == []
    assert report.to_json()["daily"]["too_large"] == report.daily_too_large


def test_same_store_same_bytes_and_an_unchanged_day_is_not_written_again(
    config: Config, tmp_path: Path
) -> None:
    build(config)
    out = config.edition.output_dir
    first = {path: (out / path).read_bytes() for path in daily_files(out)}
    again = build(config, NOW + timedelta(hours=2))
    assert not any(path.startswith("editions/2026") for path in again.written)
    other = replace(config, edition=replace(config.edition, output_dir=tmp_path / "other"))
    build(other)  # a fresh folder: rendered again, to the same bytes
    assert {path: (other.edition.output_dir / path).read_bytes() for path in first} == first


def test_a_changed_epub_writer_renders_the_books_again(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    real = builder.epub.make_epub

    def counting(book: builder.epub.Book, *, max_bytes: int) -> bytes:
        made.append(book.language)
        return real(book, max_bytes=max_bytes)

    monkeypatch.setattr(builder.epub, "make_epub", counting)
    build(config)
    assert sorted(made) == ["en", "ru"]
    build(config, NOW + timedelta(hours=1))
    assert sorted(made) == ["en", "ru"]  # unchanged inputs: not made again
    monkeypatch.setattr(builder, "EPUB_WRITER", "another version of mirror/build/epub.py")
    build(config, NOW + timedelta(hours=2))
    assert sorted(made) == ["en", "en", "ru", "ru"]
    monkeypatch.setattr(builder, "epub_footer", lambda *_args: "<p>New words.</p>")
    build(config, NOW + timedelta(hours=3))  # the check page's words changed
    assert sorted(made) == ["en", "en", "en", "ru", "ru", "ru"]


def test_earlier_days_are_kept_for_keep_days_and_listed(config: Config) -> None:
    build(limited(config, daily_keep_days=3))
    out = config.edition.output_dir
    build(limited(config, daily_keep_days=3), NOW + timedelta(days=1))
    assert daily_files(out) == [
        "editions/2026-11-20-en.html",
        "editions/2026-11-20-ru.html",
        "editions/2026-11-21-en.html",
        "editions/2026-11-21-ru.html",
    ]
    listing = (out / "editions/index.html").read_text()
    assert listing.index("2026-11-21-en.html") < listing.index("2026-11-20-en.html")
    assert "русский" in listing and " KB</a></td>" in listing
    index = (out / "index.html").read_text()
    assert 'href="editions/index.html"' in index
    build(limited(config, daily_keep_days=3), NOW + timedelta(days=5))
    assert daily_files(out) == ["editions/2026-11-25-en.html", "editions/2026-11-25-ru.html"]
    assert not (out / "editions/2026-11-20-en.html.minisig").exists()


# --- the digest: a link to the day's file, and the file attached ---------------------


ATTACH_MAX_BYTES = 1_500_000  # README's setting beside attach_edition (1 MB daily files)
ATTACH = f"attach_edition = true\nmax_message_bytes = {ATTACH_MAX_BYTES}\n"


def digest_to_en_and_ru(config: Path, capsys: pytest.CaptureFixture[str], digest: str) -> dict:  # type: ignore[type-arg]
    """Send the digest to an English and a Russian subscriber over a real aiosmtpd."""
    with smtp_server() as server:
        with_smtp(config, server.port)
        text = config.read_text(encoding="utf-8").replace("[digest]\n", f"[digest]\n{digest}")
        config.write_text(text, encoding="utf-8")
        subscribe(config, ("en@example.org", "en"), ("ru@example.org", "ru"))
        capsys.readouterr()
        status, report = send(config, capsys)
        assert status == 0 and report["sent"] == 2, report
        return {r.rcpt_tos[0]: parse(r.content) for r in server.handler.received}


def newest_daily(config: Path, language: str) -> str:
    out = config.parent / "edition"
    return max(p for p in daily_files(out) if p.endswith(f"-{language}.html"))


def test_the_digest_links_the_days_file_on_the_subscribers_mirrors(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    messages = digest_to_en_and_ru(built, capsys, "")
    english, russian = messages["en@example.org"], messages["ru@example.org"]
    assert english.get_content_type() == "text/plain"
    body = english.get_content()
    assert "All of the day's articles in one file" in body
    path = newest_daily(built, "en")
    assert re.search(rf"https://(a\.example\.net/m|hidden\.example\.com)/{path}\r?\n", body)
    assert "attached" not in body
    assert "Все статьи дня одним файлом" in russian.get_content()
    assert newest_daily(built, "ru") in russian.get_content()


def test_attach_edition_attaches_the_signed_file_in_the_readers_language(
    built: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    messages = digest_to_en_and_ru(built, capsys, ATTACH)
    out = built.parent / "edition"
    for address, language in (("en@example.org", "en"), ("ru@example.org", "ru")):
        message = messages[address]
        assert message.get_content_type() == "multipart/mixed"
        text, attachment, signature = list(message.iter_parts())
        assert text.get_content_type() == "text/plain"
        path = newest_daily(built, language)
        assert attachment.get_filename() == path.rsplit("/", 1)[-1]
        assert attachment.get_content_type() == "text/html"
        data = attachment.get_payload(decode=True)
        assert data == (out / path).read_bytes()
        assert len(message.as_bytes()) <= ATTACH_MAX_BYTES
        assert signature.get_filename() == attachment.get_filename() + ".minisig"
        saved = tmp_path / language / attachment.get_filename()
        saved.parent.mkdir()
        saved.write_bytes(data)
        (tmp_path / language / signature.get_filename()).write_bytes(
            signature.get_payload(decode=True)
        )
        checked = subprocess.run(
            [minisign_binary(), "-Vm", str(saved), "-p", str(built.parent / "keys/mirror.pub")],
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0, checked.stderr
    assert "attached to this email" in messages["en@example.org"].get_body().get_content()
    assert "приложен к письму" in messages["ru@example.org"].get_body().get_content()


def test_an_attachment_over_the_message_cap_becomes_a_download_line(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    size = (built.parent / "edition" / newest_daily(built, "en")).stat().st_size
    cap = attachment_message_bytes(10_000)  # the least for a file of 10 000 bytes
    assert size > cap  # built before daily_max_bytes was lowered: too large to attach
    text = built.read_text(encoding="utf-8")
    built.write_text(text.replace("[edition]\n", "[edition]\ndaily_max_bytes = 10_000\n"))
    messages = digest_to_en_and_ru(
        built, capsys, f"attach_edition = true\nmax_message_bytes = {cap}\n"
    )
    english = messages["en@example.org"]
    assert english.get_content_type() == "text/plain"
    assert len(english.as_bytes()) <= cap
    assert "too large to attach" in english.get_content()
    assert newest_daily(built, "en") in english.get_content()


@pytest.fixture
def attaching(built: Path) -> Config:
    """The built edition's config with mail-in on and `digest.attach_edition = true`."""
    text = built.read_text(encoding="utf-8").replace(
        "[digest]\n", f'[digest]\n{ATTACH}unsubscribe_url = "https://n.example/u"\n'
    )
    built.write_text(text + EXTRA_MIRRORS + MAILIN, encoding="utf-8")
    return load_config(built)


async def test_mailin_latest_carries_the_days_file_when_attach_edition_is_on(
    attaching: Config,
) -> None:
    with smtp_server(Recorder()) as server:
        rig = Rig(attaching, server)
        try:
            assert (await rig.mailin.handle(mail("latest"))).kind == "replied"
            (reply,) = rig.replies()
        finally:
            await rig.transport.close()
            rig.store.close()
    assert reply["Auto-Submitted"] == "auto-replied"
    attachment = next(reply.iter_attachments())
    path = newest_daily(attaching.path, "en")
    assert attachment.get_filename() == path.rsplit("/", 1)[-1]
    assert attachment.get_payload(decode=True) == edition_bytes(attaching, path)


def edition_bytes(config: Config, path: str) -> bytes:
    return (config.edition.output_dir / path).read_bytes()
