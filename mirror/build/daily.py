"""The daily single-file edition: which articles a day's file holds, where it lives, and
how it is cut down to its byte limit. Pure: summaries and dates in, lists and names out.

    editions/YYYY-MM-DD-<lang>.html   the day's articles in one self-contained file
    editions/YYYY-MM-DD-<lang>.epub   the same as EPUB 3 (`mirror.build.epub`)
    editions/index.html               every day's file kept, by date and language
    editions/index-<lang>.html        the same list in one page language's words

A day's file holds the articles in its language published that day (in the site's time
zone), topped up with the newest earlier ones to `edition.daily_articles`. When it is
over `edition.daily_max_bytes` with its images shrunk, then with them left out, the
oldest articles are dropped (`fit_articles`) until it fits; a file that cannot fit at
all is an `EditionTooLargeError`, never a file over the limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol, TypeVar

from mirror.build.locale import aware, base_language, time_zone
from mirror.errors import EditionTooLargeError

EDITIONS_FOLDER = "editions"
EDITIONS_INDEX = f"{EDITIONS_FOLDER}/index.html"
_DAILY_FILE = re.compile(
    rf"{EDITIONS_FOLDER}/([0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})-([a-z]{{2,3}}(?:-[a-z0-9]{{2,8}})*)"
    r"\.(html|epub)"
)
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})*")


class Dated(Protocol):
    """What the day's selection reads of an article (an `ArticleSummary` or a view)."""

    @property
    def path(self) -> str: ...
    @property
    def published(self) -> datetime | None: ...
    @property
    def language(self) -> str: ...


D = TypeVar("D", bound=Dated)
T = TypeVar("T")


@dataclass(frozen=True)
class DailyFile:
    """A daily edition file as its path names it."""

    path: str
    day: date
    language: str
    kind: str  # "html" | "epub"


# --- paths ---------------------------------------------------------------------------


def daily_path(day: date, language: str) -> str:
    """`editions/YYYY-MM-DD-<lang>.html`: the day's single-file edition in `language`."""
    return f"{EDITIONS_FOLDER}/{day.isoformat()}-{_path_language(language)}.html"


def editions_index_path(language: str | None = None) -> str:
    """`editions/index.html`, or `editions/index-<lang>.html` in one language's words."""
    if language is None:
        return EDITIONS_INDEX
    return f"{EDITIONS_FOLDER}/index-{_path_language(language)}.html"


def daily_epub_path(day: date, language: str) -> str:
    """`editions/YYYY-MM-DD-<lang>.epub`: the same day's articles as EPUB 3."""
    return f"{EDITIONS_FOLDER}/{day.isoformat()}-{_path_language(language)}.epub"


def parse_daily_path(path: str) -> DailyFile | None:
    """The day, language and kind a daily file's path names; None for any other path."""
    found = _DAILY_FILE.fullmatch(path)
    if found is None:
        return None
    try:
        day = date.fromisoformat(found[1])
    except ValueError:
        return None
    return DailyFile(path, day, found[2], found[3])


def is_daily_file(path: str) -> bool:
    """Whether `path` is a daily edition file (HTML or EPUB; not its signature)."""
    return parse_daily_path(path) is not None


def section_id(path: str) -> str:
    """The id of an article's section in a daily file, from its edition path
    (`articles/2026/11/slug.html` -> `a-2026-11-slug`): stable and unique."""
    stem = path.removeprefix("articles/").removesuffix(".html")
    return "a-" + re.sub(r"[^A-Za-z0-9_-]", "-", stem)


def _path_language(language: str) -> str:
    tag = language.replace("_", "-").lower()
    if not _LANGUAGE.fullmatch(tag):
        raise ValueError(f"not a language tag: {language!r}")
    return tag


# --- which articles, which days ------------------------------------------------------


def local_day(moment: datetime, zone: str) -> date:
    """The calendar day of `moment` in the IANA zone `zone`."""
    return aware(moment).astimezone(time_zone(zone)).date()


def daily_articles(
    summaries: Iterable[D], day: date, language: str, limit: int, zone: str = "UTC"
) -> list[D]:
    """The articles of `day`'s file in `language`, newest first: every one published that
    day (in `zone`), then the newest earlier ones until there are `limit` in all.
    Undated articles and those published after `day` are left out."""
    wanted = base_language(language)
    dated = [
        (aware(s.published), s)
        for s in summaries
        if s.published is not None and base_language(s.language) == wanted
    ]
    dated.sort(key=lambda item: (item[0], item[1].path), reverse=True)
    today = [s for moment, s in dated if local_day(moment, zone) == day]
    earlier = [s for moment, s in dated if local_day(moment, zone) < day]
    return today + earlier[: max(0, limit - len(today))]


def kept_daily_files(paths: Iterable[str], today: date, keep_days: int) -> list[str]:
    """The daily files (and their signatures) among `paths` that are at most
    `keep_days` days older than `today`, and not from a later day; sorted."""
    oldest = today - timedelta(days=keep_days)
    kept = []
    for path in paths:
        found = parse_daily_path(path.removesuffix(".minisig"))
        if found is not None and oldest <= found.day <= today:
            kept.append(path)
    return sorted(kept)


def fit_articles(
    render: Callable[[Sequence[T]], bytes], articles: Sequence[T], max_bytes: int
) -> tuple[bytes, int]:
    """The rendered file with as many of `articles` (newest first) as fit in `max_bytes`,
    the oldest dropped first; and how many were dropped. EditionTooLargeError when not
    even the file with none of them fits."""
    low, high = 0, len(articles)  # the largest count that fits: a binary search
    page = render(articles)
    if len(page) <= max_bytes:
        return page, 0
    high -= 1
    while low < high:
        middle = (low + high + 1) // 2
        if len(render(articles[:middle])) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    page = render(articles[:low])
    if len(page) > max_bytes:
        raise EditionTooLargeError(f"over {max_bytes} bytes even with no article in it")
    return page, len(articles) - low
