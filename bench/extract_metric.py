"""The article-extraction benchmark's published metric, pure: texts in, scores out.

As /work/shared/extraction-benchmark/README.md (Scrapinghub's article-extraction-benchmark)
describes it:

- a text's tokens are its `\\w+` runs (Unicode, case kept);
- its shingles are the overlapping runs of SHINGLE_TOKENS tokens, as a multiset; a text
  with fewer tokens is one shingle (all of them); a text with none has no shingle;
- per page, TP/FP/FN count shingles over the two multisets (a shingle twice in the
  prediction and once in the truth is one TP and one FP), normalised to sum to 1;
- a page's precision is TP/(TP+FP), its recall TP/(TP+FN); a page with nothing
  predicted and nothing expected scores 1 for both, a page with nothing predicted (or
  nothing expected) scores 0 for precision (recall);
- precision and recall are the means over pages; F1 = 2PR/(P+R) of those means.

Used by bench/extract_bench.py; tested by tests/test_extract_metric.py.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

SHINGLE_TOKENS = 4
_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> list[str]:
    """The word tokens of `text`: its `\\w+` runs, in order."""
    return _TOKEN.findall(text)


def shingles(text: str, size: int = SHINGLE_TOKENS) -> Counter[tuple[str, ...]]:
    """The multiset of `size`-token shingles of `text` (one if it is shorter, none if empty)."""
    words = tokens(text)
    if not words:
        return Counter()
    last_start = max(1, len(words) - size + 1)
    return Counter(tuple(words[i : i + size]) for i in range(last_start))


@dataclass(frozen=True)
class PageCounts:
    """A page's shingle TP/FP/FN, normalised to sum to 1 (all 0 when both texts are empty)."""

    tp: float
    fp: float
    fn: float

    @property
    def precision(self) -> float:
        if self.fp == self.fn == 0:
            return 1.0
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        if self.fp == self.fn == 0:
            return 1.0
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0


def page_counts(predicted: str, expected: str) -> PageCounts:
    """TP/FP/FN of `predicted` against `expected`, over shingle multisets, normalised."""
    got, want = shingles(predicted), shingles(expected)
    tp = sum((got & want).values())
    fp = sum((got - want).values())
    fn = sum((want - got).values())
    total = tp + fp + fn
    if total == 0:
        return PageCounts(0.0, 0.0, 0.0)
    return PageCounts(tp / total, fp / total, fn / total)


@dataclass(frozen=True)
class Score:
    """Mean precision and recall over pages, and the F1 of those means."""

    precision: float
    recall: float
    pages: int

    @property
    def f1(self) -> float:
        both = self.precision + self.recall
        return 2 * self.precision * self.recall / both if both else 0.0


def score(pairs: Iterable[tuple[str, str]]) -> Score:
    """The score of (predicted, expected) text pairs, one per page; ValueError if none."""
    counts = [page_counts(predicted, expected) for predicted, expected in pairs]
    if not counts:
        raise ValueError("no page to score")
    precision = sum(c.precision for c in counts) / len(counts)
    recall = sum(c.recall for c in counts) / len(counts)
    return Score(precision, recall, len(counts))
