"""Article paths: ASCII slugs, bounded, never empty or escaping, stable on collisions."""

from __future__ import annotations

import posixpath
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mirror.build.slugs import MAX_SLUG, article_path, slugify

WHEN = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
URL = "https://www.example.org/2026/11/25/story/"
PATH = re.compile(r"articles/(\d{4}/\d{2}|undated)/[a-z0-9]+(-[a-z0-9]+)*\.html")


def assert_safe(path: str) -> None:
    assert PATH.fullmatch(path), path
    assert path.isascii()
    assert ".." not in path.split("/")
    assert not path.startswith("/")
    assert posixpath.normpath(path) == path


def test_latin_title() -> None:
    path = article_path("Hello, World: A Story!", WHEN, URL, set())
    assert path == "articles/2026/11/hello-world-a-story.html"


def test_cyrillic_is_transliterated() -> None:
    path = article_path("В Зареченске закрыли ночную поликлинику", WHEN, URL, set())
    assert path == "articles/2026/11/v-zarechenske-zakryli-nochnuyu-polikliniku.html"
    assert_safe(path)


@pytest.mark.parametrize("title", ["", "   ", "!!!", "…", "../..", "/etc/passwd", "..", "\x00"])
def test_empty_or_hostile_titles_fall_back_to_url_hash(title: str) -> None:
    path = article_path(title, WHEN, URL, set())
    assert_safe(path)
    slug = posixpath.basename(path)
    assert slug.startswith(("article-", "etc-passwd"))


def test_fallback_differs_by_url() -> None:
    first = article_path("", WHEN, URL, set())
    second = article_path("", WHEN, URL + "other", set())
    assert first != second


def test_long_title_is_bounded_and_cut_at_a_word() -> None:
    title = "Очень длинный заголовок статьи " * 20
    slug = slugify(title)
    assert 40 <= len(slug) <= MAX_SLUG
    assert not slug.endswith("-")
    assert slugify(title + "x") == slug  # the cut does not depend on the tail
    assert_safe(article_path("x" * 500, WHEN, URL, set()))
    assert len(posixpath.basename(article_path("x" * 500, WHEN, URL, set()))) <= MAX_SLUG + 5


def test_collisions_are_resolved_stably() -> None:
    taken: set[str] = set()
    first = article_path("Same title", WHEN, URL + "1", taken)
    taken.add(first)
    second = article_path("Same title", WHEN, URL + "2", taken)
    taken.add(second)
    third = article_path("Same title", WHEN, URL + "2", taken)
    assert len({first, second, third}) == 3
    assert second.startswith("articles/2026/11/same-title-") and second.endswith(".html")
    assert third == second.removesuffix(".html") + "-2.html"
    for path in (first, second, third):
        assert_safe(path)
    # the same inputs and the same taken set give the same answer
    assert article_path("Same title", WHEN, URL + "2", {first}) == second
    assert article_path("Same title", WHEN, URL + "2", frozenset({first})) == second


def test_folder_is_the_utc_month() -> None:
    moscow = timezone(timedelta(hours=3))
    assert article_path("t", datetime(2026, 12, 1, 1, 0, tzinfo=moscow), URL, ()).startswith(
        "articles/2026/11/"
    )
    assert article_path("t", datetime(2026, 1, 5), URL, ()).startswith("articles/2026/01/")
    assert article_path("t", None, URL, ()) == "articles/undated/t.html"


@pytest.mark.parametrize(
    "title",
    ["Ünïcödé Çafé", "中文标题", "عنوان عربي", "Emoji 🎉 party", "tab\tand\nnewline", "A" * 81],
)
def test_any_script_gives_a_safe_path(title: str) -> None:
    assert_safe(article_path(title, WHEN, URL, set()))
