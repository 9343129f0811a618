"""Metrics: pass@k and the n-gram repetition ratio."""

import itertools

import pytest

from archer.metrics import pass_at_k, repetition_ratio


def test_pass_at_k_matches_brute_force_enumeration():
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                outcomes = [1] * c + [0] * (n - c)
                subsets = list(itertools.combinations(outcomes, k))
                assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets), abs=1e-12)
    assert 0.0 <= pass_at_k(1024, 3, 512) <= 1.0


def test_repetition_ratio_hand_numbers():
    assert repetition_ratio([1, 2, 3], n=20) == 0.0
    # bigrams of 1 2 1 2 1: (1,2) (2,1) (1,2)* (2,1)* -> 2 of 4 repeated
    assert repetition_ratio([1, 2, 1, 2, 1], n=2) == 0.5
