"""The extraction benchmark's metric (bench/extract_metric.py) on hand-made texts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from extract_metric import page_counts, score, shingles

TEXT = "The river rose overnight and the mayor closed the old bridge."


def test_identical_texts_score_one() -> None:
    result = score([(TEXT, TEXT)])
    assert (result.precision, result.recall, result.f1) == (1.0, 1.0, 1.0)


def test_disjoint_texts_score_zero() -> None:
    counts = page_counts("alpha beta gamma delta epsilon", "one two three four five six")
    assert (counts.tp, counts.fp, counts.fn) == (0.0, 0.4, 0.6)
    result = score([("alpha beta gamma delta epsilon", "one two three four five six")])
    assert (result.precision, result.recall, result.f1) == (0.0, 0.0, 0.0)


def test_shingles_are_four_word_tokens_over_unicode_words() -> None:
    found = shingles("Мэр закрыл, старый мост; ночью!")
    assert found == {
        ("Мэр", "закрыл", "старый", "мост"): 1,
        ("закрыл", "старый", "мост", "ночью"): 1,
    }


def test_a_text_shorter_than_four_tokens_is_one_shingle() -> None:
    assert shingles("Bridge closed") == {("Bridge", "closed"): 1}
    assert shingles("  ... ") == {}
    assert page_counts("Bridge closed", "Bridge closed").precision == 1.0
    assert page_counts("Bridge closed", "Bridge shut").recall == 0.0


def test_repeated_shingles_count_as_a_multiset() -> None:
    # a b c d a b c d: shingles abcd×2, bcda, cdab, dabc; the truth has abcd once
    counts = page_counts("a b c d a b c d", "a b c d")
    assert (counts.tp, counts.fp, counts.fn) == pytest.approx((1 / 5, 4 / 5, 0.0))


def test_counts_are_normalised_per_page_so_long_pages_weigh_the_same() -> None:
    truth = "w1 w2 w3 w4 w5 w6 w7"  # 4 shingles
    half = "w1 w2 w3 w4 w5"  # its first 2
    counts = page_counts(half, truth)
    assert (counts.tp, counts.fp, counts.fn) == (0.5, 0.0, 0.5)
    long_truth = " ".join(f"w{i}" for i in range(1, 1004))  # 1000 shingles
    perfect_long = page_counts(long_truth, long_truth)
    assert (perfect_long.tp, perfect_long.fp, perfect_long.fn) == (1.0, 0.0, 0.0)
    result = score([(half, truth), (long_truth, long_truth)])
    assert result.recall == pytest.approx((0.5 + 1.0) / 2)  # not weighted by 4 vs 1000
    assert result.precision == 1.0


def test_f1_is_of_the_means_not_the_mean_of_f1s() -> None:
    truth = "w1 w2 w3 w4 w5 w6 w7"
    precise_half = ("w1 w2 w3 w4 w5", truth)  # P 1, R 0.5
    noisy_full = (truth + " x1 x2 x3 x4 x5 x6 x7", truth)  # 4 TP, 7 FP: P 4/11, R 1
    result = score([precise_half, noisy_full])
    p, r = (1 + 4 / 11) / 2, (0.5 + 1) / 2
    assert result.precision == pytest.approx(p)
    assert result.recall == pytest.approx(r)
    assert result.f1 == pytest.approx(2 * p * r / (p + r))


def test_empty_pages() -> None:
    nothing_either = page_counts("", "")
    assert (nothing_either.precision, nothing_either.recall) == (1.0, 1.0)
    missed = page_counts("", TEXT)
    assert (missed.precision, missed.recall) == (0.0, 0.0)
    invented = page_counts(TEXT, "")
    assert (invented.precision, invented.recall) == (0.0, 0.0)
    assert score([("", ""), ("", TEXT)]).precision == 0.5
    with pytest.raises(ValueError):
        score([])
