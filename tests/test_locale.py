"""build/locale: the words in a reader's language that the pages and the digest share."""

from __future__ import annotations

from datetime import UTC, datetime

from mirror.build import locale

MOMENT = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)


def test_base_language_and_wording_fall_back_to_english() -> None:
    assert [locale.base_language(tag) for tag in ("pt-BR", "pt_BR", "RU", "en")] == [
        "pt",
        "pt",
        "ru",
        "en",
    ]
    tables = {"en": "english", "ru": "russian"}
    assert locale.wording(tables, "ru-RU") == "russian"
    assert locale.wording(tables, "xx") == "english"


def test_unknown_locale_and_zone_fall_back() -> None:
    assert str(locale.babel_locale("ru_XX")) == "ru"
    assert str(locale.babel_locale("zz-QQ")) == "en"
    assert locale.time_zone("Not/AZone") is UTC
    assert locale.aware(datetime(2026, 1, 1)).tzinfo is UTC


def test_dates_in_the_readers_language_and_zone() -> None:
    assert locale.date_words(MOMENT, "en", "UTC") == "November 24, 2026"
    assert locale.date_words(MOMENT, "en", "Europe/Moscow") == "November 25, 2026"
    assert locale.date_words(MOMENT, "ru", "UTC").startswith("24 ноября 2026")
    assert locale.date_time_words(MOMENT, "en", "UTC").endswith(" UTC")
    assert locale.month_name("2026-11", "en") == "November 2026"


def test_bylines_and_plural_forms() -> None:
    words = {"by": "Авторы: {names}", "by_one": "Автор: {names}"}
    assert locale.byline(["А", "", "Б"], "ru", words) == "Авторы: А и Б"
    assert locale.byline(["А"], "ru", words) == "Автор: А"
    assert locale.byline(["A"], "en", {"by": "By {names}"}) == "By A"
    assert locale.byline([], "en", words) == ""
    forms = {"one": "{n} статья", "few": "{n} статьи", "many": "{n} статей", "other": "{n}"}
    assert [locale.plural_words(n, forms, "ru") for n in (1, 3, 5)] == [
        "1 статья",
        "3 статьи",
        "5 статей",
    ]
    assert locale.plural_words(2, {"other": "{n} items"}, "ru") == "2 items"
