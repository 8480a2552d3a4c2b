"""Edition paths for articles: `articles/YYYY/MM/<slug>.html`, safe and stable.

`article_path(title, published, url, taken)` makes the path once; the build stores it
and never asks again, so an article keeps its address forever. A slug is ASCII only
(any script transliterated with anyascii), lowercase `[a-z0-9-]`, at most `MAX_SLUG`
characters, never empty (a hash of the URL stands in), so a path can never hold `..`,
a slash of its own, or start with `/`. Collisions are resolved stably: the same title,
date, URL and taken set always give the same path.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Collection, Iterator
from datetime import UTC, datetime

from anyascii import anyascii

MAX_SLUG = 80  # characters, before any collision suffix
MIN_CUT = 40  # a long title is cut at a hyphen when one falls past this many characters
HASH_CHARS = 8  # hex digits of the URL's SHA-256 used for empty titles and collisions
UNDATED = "undated"  # folder for articles with no date at all (YYYY/MM otherwise)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def article_path(title: str, published: datetime | None, url: str, taken: Collection[str]) -> str:
    """A path `articles/YYYY/MM/<slug>.html` that is not in `taken`.

    `published` gives the folder (in UTC; pass the first-seen time when the date is
    unknown, else the folder is `articles/undated/`). On a collision the slug gets a
    short hash of `url`, then `-2`, `-3`, ... if that is taken too.
    """
    folder = f"articles/{_folder(published)}"
    slug = slugify(title) or f"article-{url_hash(url)}"
    for candidate in _candidates(slug, url):
        path = f"{folder}/{candidate}.html"
        if path not in taken:
            return path
    raise AssertionError("unreachable: the candidates never run out")


def slugify(text: str) -> str:
    """`text` as lowercase ASCII words joined by `-`, at most `MAX_SLUG` long; may be ""."""
    words = _NOT_SLUG.sub("-", anyascii(text).lower()).strip("-")
    if len(words) <= MAX_SLUG:
        return words
    cut = words[: MAX_SLUG + 1].rfind("-")
    return words[: cut if cut >= MIN_CUT else MAX_SLUG].strip("-")


def url_hash(url: str) -> str:
    """A short, stable hex tag for `url`."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]


def _folder(published: datetime | None) -> str:
    if published is None:
        return UNDATED
    moment = published.astimezone(UTC) if published.tzinfo else published
    return f"{moment.year:04d}/{moment.month:02d}"


def _candidates(slug: str, url: str) -> Iterator[str]:
    """slug, slug-<hash>, slug-<hash>-2, slug-<hash>-3, ... without end."""
    yield slug
    tagged = f"{slug}-{url_hash(url)}"
    yield tagged
    for n in itertools.count(2):
        yield f"{tagged}-{n}"
