"""The newsroom's articles: the `Article` record and its deterministic generation.

Ids alternate languages (even: English, odd: Russian). The first sixteen articles are
the hand-written drafts; later ones are combined, seeded by (seed, id), from the
paragraph pools plus one paragraph unique to the id, so no two texts are equal.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mirror.newsroom import corpus
from mirror.newsroom.corpus_en import DRAFTS_EN
from mirror.newsroom.corpus_ru import DRAFTS_RU

DRAFTS = {"en": DRAFTS_EN, "ru": DRAFTS_RU}
MAIN_STYLES = ("wordpress", "drupal", "newsapp")
SPAN = timedelta(days=120)  # published dates spread over this long before the reference

_LATIN = "a b v g d e e zh z i i k l m n o p r s t u f kh ts ch sh shch _ y _ e iu ia"
_TRANSLIT = {
    cyr: lat.strip("_")
    for cyr, lat in zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя", _LATIN.split(), strict=True)
}


@dataclass(frozen=True)
class Article:
    """One article as the newsroom publishes it."""

    id: int
    lang: str  # "en" | "ru"
    title: str
    lead: str
    paragraphs: tuple[str, ...]
    authors: tuple[str, ...]
    section: str
    slug: str
    published: datetime  # UTC
    modified: datetime  # UTC, >= published
    style: str  # one of pages.STYLES
    image: str = ""  # media name without extension; "" for no image
    revision: int = 0

    @property
    def path(self) -> str:
        """The URL path, e.g. /2026/11/24/city-council-passes-2027-budget/."""
        prefix = "/ru" if self.lang == "ru" else ""
        return f"{prefix}{self.published:/%Y/%m/%d}/{self.slug}/"

    @property
    def text(self) -> str:
        """All paragraphs, joined by blank lines."""
        return "\n\n".join(self.paragraphs)


def slugify(title: str, max_words: int = 6) -> str:
    """An ASCII URL slug; Cyrillic is transliterated."""
    latin = "".join(_TRANSLIT.get(ch, ch) for ch in title.lower()).replace("-", " ")
    words = re.findall(r"[a-z0-9]+", latin)
    return "-".join(words[:max_words]) or "article"


def style_for(article_id: int, lang: str) -> str:
    """The page template of an article: round-robin, with 'legacy' for some Russian ones."""
    if lang == "ru" and article_id % 8 == 7:
        return "legacy"
    return MAIN_STYLES[article_id % len(MAIN_STYLES)]


def lang_for(article_id: int) -> str:
    """Even ids are English, odd ids Russian."""
    return "en" if article_id % 2 == 0 else "ru"


def published_at(article_id: int, count: int, reference: datetime) -> datetime:
    """Spread `count` articles evenly over SPAN, the last one at `reference`."""
    steps = max(count - 1, 1)
    minutes = int(SPAN.total_seconds() // 60 * (count - 1 - article_id) / steps)
    return reference - timedelta(minutes=minutes)


def build_articles(count: int, seed: int, reference: datetime) -> tuple[Article, ...]:
    """The first `count` articles of a newsroom, oldest first."""
    return tuple(
        make_article(i, seed, published_at(i, count, reference), reference) for i in range(count)
    )


def make_article(
    article_id: int,
    seed: int,
    published: datetime,
    latest: datetime | None = None,
    lang: str | None = None,
) -> Article:
    """Article `article_id`: a hand-written draft if there is one, else a generated one."""
    lang = lang or lang_for(article_id)
    rng = random.Random(f"{seed}:{article_id}")
    drafts = DRAFTS[lang]
    index = article_id // 2
    handwritten = index < len(drafts) and lang == lang_for(article_id)
    draft = drafts[index] if handwritten else _generated_draft(article_id, lang, rng)
    slug = slugify(draft.title) + ("" if handwritten else f"-{article_id}")
    edited = rng.random() < 0.35
    modified = published + timedelta(hours=rng.randint(1, 30)) if edited else published
    if latest is not None:
        modified = max(published, min(modified, latest))
    return Article(
        id=article_id,
        lang=lang,
        title=draft.title,
        lead=draft.lead,
        paragraphs=draft.paragraphs,
        authors=draft.authors,
        section=draft.section,
        slug=slug,
        published=published,
        modified=modified,
        style=style_for(article_id, lang),
        image=f"a{article_id:05d}-{slug[:40].rstrip('-')}",
    )


def _generated_draft(article_id: int, lang: str, rng: random.Random) -> corpus.Draft:
    """A follow-up to a random draft: pool paragraphs plus one unique paragraph."""
    base = rng.choice(DRAFTS[lang])
    angle = rng.choice(corpus.ANGLES[lang])
    district = rng.choice(corpus.DISTRICTS[lang])
    pool = [p for d in DRAFTS[lang] if d is not base for p in d.paragraphs]
    chosen = list(rng.sample(base.paragraphs, 2)) + rng.sample(pool, rng.randint(2, 4))
    chosen.insert(rng.randint(0, len(chosen)), _unique_paragraph(article_id, lang, district, rng))
    return corpus.Draft(
        title=f"{base.topic}: {angle}",
        lead=corpus.LEADS[lang].format(topic=base.topic, angle=angle, district=district),
        section=base.section,
        topic=base.topic,
        authors=base.authors[:1] if rng.random() < 0.5 else base.authors,
        paragraphs=tuple(chosen),
    )


def _unique_paragraph(article_id: int, lang: str, district: str, rng: random.Random) -> str:
    """A paragraph that contains the id, so every generated article's text differs."""
    name, role, verb = rng.choice(corpus.PEOPLE[lang])
    return corpus.UNIQUE_PARAGRAPH[lang].format(
        name=name,
        role=role,
        verb=verb,
        district=district,
        weekday=rng.choice(corpus.WEEKDAYS[lang]),
        claim=rng.choice(corpus.CLAIMS[lang]),
        count=rng.randint(12, 480),
        ref=article_id,
    )


def revised(article: Article, when: datetime) -> Article:
    """The article after one more revision: a note paragraph appended, `modified` = when."""
    n = article.revision + 1
    note = corpus.REVISION_NOTE[article.lang].format(n=n)
    return replace(
        article,
        paragraphs=(*article.paragraphs, note),
        modified=max(when, article.modified + timedelta(seconds=1)),
        revision=n,
    )
