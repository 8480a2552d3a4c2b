"""Byline and date lines are never repeated inside the body."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mirror.fetch.bylines import byline_names, is_meta_line, strip_meta_lines
from mirror.fetch.extract import extract_article

WHEN = datetime(2026, 3, 12, 10, 15, tzinfo=UTC)
PARAGRAPHS = "".join(
    f"<p>Paragraph {n}: the council met again and talked about the budget at length.</p>"
    for n in range(5)
)


@pytest.mark.parametrize(
    "line",
    ["By Ann Smith", "Автор: Иван Петров", "Ann Smith and Bob Jones", "12 March 2026, 10:15",
     "Published: March 12, 2026 10:15 am", "12.03.2026 10:15", "Опубликовано 12 марта 2026 г.",
     "By Ann Smith, March 12, 2026"],
)  # fmt: skip
def test_byline_and_date_lines_are_meta(line: str) -> None:
    assert is_meta_line(line, frozenset({"ann", "smith", "bob", "jones"}))


@pytest.mark.parametrize(
    "line",
    ["The council met on 12 March.", "By Tuesday the bridge will be closed for repairs.", "2026",
     "Ann Smith said the council had failed."],
)  # fmt: skip
def test_prose_is_not_meta(line: str) -> None:
    assert not is_meta_line(line, frozenset({"ann", "smith"}))


def test_names_of_a_by_line() -> None:
    assert byline_names("By Ann Smith, Bob Jones and Carol White") == (
        "Ann Smith", "Bob Jones", "Carol White",
    )  # fmt: skip
    assert byline_names("Автор: Иван Петров") == ("Иван Петров",)
    assert byline_names("by the river the town sleeps") == ()


def test_leading_byline_date_and_trailing_byline_are_dropped() -> None:
    body = f"<p>By Ann Smith</p><p><time>12 March 2026</time></p>{PARAGRAPHS}<p>Ann Smith</p>"
    stripped = strip_meta_lines(body, ("Ann Smith",), WHEN)
    assert stripped.body_html == PARAGRAPHS
    assert stripped.names == ("Ann Smith",)


def test_a_body_that_is_only_a_byline_is_left_alone() -> None:
    assert strip_meta_lines("<p>By Ann Smith</p>", (), None).body_html == "<p>By Ann Smith</p>"


@pytest.mark.parametrize("selector", ["", "div.text"])
def test_byline_inside_the_article_element_is_not_in_the_body(selector: str) -> None:
    page = (
        "<html lang='ru'><head><title>Мост</title>"
        "<meta property='article:published_time' content='2026-03-12T10:15:00Z'></head><body>"
        "<article><h1>Мост</h1><div class='text'><div class='byline'>Автор: Иван Петров</div>"
        "<p class='date'>12 марта 2026, 13:15</p>"
        + "".join(
            f"<p>Абзац {n}: городской совет снова обсуждал ремонт моста.</p>" for n in range(6)
        )
        + "</div></article></body></html>"
    )
    article = extract_article(page, "http://127.0.0.1/most.html", selector=selector)
    assert "Иван Петров" not in article.body_html
    assert "12 марта" not in article.body_html
    assert "Абзац 0" in article.body_html and "Абзац 5" in article.body_html
    if selector:  # the page shows the name from metadata; here the dropped line gave it
        assert article.authors == ("Иван Петров",)
