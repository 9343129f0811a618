"""Metrics: pass@k, avg@k, majority vote, bootstrap intervals and the n-gram repetition ratio."""

import itertools
import math

import pytest

from archer.metrics import avg_at_k, bootstrap_ci, length_stats, majority_correct, pass_at_k, repetition_ratio


def test_pass_at_k_matches_brute_force_enumeration_up_to_n_12():
    for n in range(1, 13):
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(range(n), k))
            for c in range(n + 1):
                # samples 0..c-1 are the correct ones; pass@k = share of k-subsets holding one
                hits = sum(subset[0] < c for subset in subsets)  # subsets are sorted: the smallest index decides
                assert pass_at_k(n, c, k) == pytest.approx(hits / len(subsets), abs=1e-12), (n, c, k)


@pytest.mark.parametrize("c", [0, 1, 2, 17, 512, 1023, 1024])
@pytest.mark.parametrize("k", [1, 2, 64, 512, 1024])
def test_pass_at_k_is_finite_in_unit_interval_for_n_1024(c, k):
    value = pass_at_k(1024, c, k)
    assert math.isfinite(value) and 0.0 <= value <= 1.0
    assert value == pytest.approx(c / 1024) if k == 1 else True
    assert (value == 0.0) == (c == 0)


def test_pass_at_k_rejects_impossible_arguments():
    for n, c, k in [(4, 5, 1), (4, 1, 5), (4, 1, 0), (4, -1, 1)]:
        with pytest.raises(ValueError, match="pass_at_k"):
            pass_at_k(n, c, k)


def test_avg_majority_bootstrap_and_lengths():
    assert avg_at_k([1, 0, 1, 1]) == 0.75
    # "12" gets 2 votes against 1 ("None" does not vote): the majority answer is right
    assert majority_correct(["12", "13", "12", None], [1, 0, 1, 0]) == 1.0
    assert majority_correct(["13", "13", "12"], [0, 0, 1]) == 0.0
    assert majority_correct([None, None], [0, 0]) == 0.0
    # a tie goes to the answer seen first
    assert majority_correct(["7", "8"], [0, 1]) == 0.0
    low, high = bootstrap_ci([0.0] * 50 + [1.0] * 50, samples=2000, seed=1)
    assert 0.38 < low < 0.5 < high < 0.62
    assert bootstrap_ci([0.3] * 10) == (pytest.approx(0.3), pytest.approx(0.3))
    assert length_stats([1, 2, 3, 10]) == {"mean": 4.0, "median": 2.5, "max": 10.0}


def test_repetition_ratio_hand_numbers():
    assert repetition_ratio([1, 2, 3], n=20) == 0.0
    # bigrams of 1 2 1 2 1: (1,2) (2,1) (1,2)* (2,1)* -> 2 of 4 repeated
    assert repetition_ratio([1, 2, 1, 2, 1], n=2) == 0.5
