"""Words in a reader's language, for the pages and the digest alike: dates, month names,
bylines, plural forms, and the choice of a wording table by base language.

Pure: a language tag ("ru", "pt-BR", "en_GB") and plain values in, text out. An unknown
language falls back to its base language, then to English; an unknown time zone to UTC.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton, format_time
from babel.lists import format_list

FALLBACK_LANGUAGE = "en"
Wording = TypeVar("Wording")


def base_language(language: str) -> str:
    """The language without its region or script: "pt-BR" and "pt_BR" give "pt"."""
    return language.replace("_", "-").split("-")[0].lower()


def wording(tables: Mapping[str, Wording], language: str) -> Wording:
    """The table of `tables` for the base of `language`; English when there is none."""
    return tables.get(base_language(language), tables[FALLBACK_LANGUAGE])


@functools.lru_cache(maxsize=64)
def babel_locale(language: str) -> Locale:
    """babel's locale for `language`, else for its base language, else English."""
    for candidate in (language.replace("-", "_"), base_language(language), FALLBACK_LANGUAGE):
        try:
            return Locale.parse(candidate)
        except (ValueError, TypeError, UnknownLocaleError):
            continue
    return Locale(FALLBACK_LANGUAGE)


@functools.lru_cache(maxsize=16)
def time_zone(name: str) -> tzinfo:
    """The IANA zone `name`; UTC for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def aware(moment: datetime) -> datetime:
    """`moment` with a time zone: a naive one is taken as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def date_words(moment: datetime, language: str, zone: str) -> str:
    """The day in words ("25 ноября 2026 г."), in `language`, in the zone `zone`."""
    local = aware(moment).astimezone(time_zone(zone))
    return str(format_date(local, "long", locale=babel_locale(language)))


def date_time_words(moment: datetime, language: str, zone: str) -> str:
    """The day and time in words, with the zone's abbreviation ("…, 14:05 CET")."""
    local = aware(moment).astimezone(time_zone(zone))
    locale = babel_locale(language)
    words = f"{format_date(local, 'long', locale=locale)}, "
    return words + f"{format_time(local, 'short', locale=locale)} {local.tzname() or 'UTC'}"


def month_name(month: str, language: str) -> str:
    """A "2026-11" month in words, with its year ("November 2026")."""
    year, number = (int(part) for part in month.split("-"))
    return str(format_skeleton("yMMMM", datetime(year, number, 1), locale=babel_locale(language)))


def byline(names: Sequence[str], language: str, words: Mapping[str, Any]) -> str:
    """The names listed in `language` ("A, B and C") in `words["by"]`, or in
    `words["by_one"]` (when there is one) for a single name; "" for no names."""
    names = [name for name in names if name]
    if not names:
        return ""
    key = "by_one" if len(names) == 1 and "by_one" in words else "by"
    return str(words[key]).format(names=format_list(names, locale=babel_locale(language)))


def plural_words(count: int, forms: Mapping[str, str], language: str) -> str:
    """`count` in the plural form `language` uses for it ("one", "few", "many", …), or
    in `forms["other"]` when `forms` lacks that form."""
    form = babel_locale(language).plural_form(count)
    return forms.get(form, forms["other"]).format(n=count)
