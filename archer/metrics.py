"""Evaluation and diagnostic metrics (PAPER.md sections 4 and 6).

- `pass_at_k`: the unbiased estimator of Chen et al. (2021), numerically stable.
- `repetition_ratio`: share of repeated n-grams in a response (the paper's 20-gram
  repetition diagnostic of entropy collapse).
"""

from __future__ import annotations

from collections.abc import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n
    samples (c of them correct) is correct: 1 - C(n-c, k) / C(n, k).

    Computed as a running product, so it stays finite for n in the thousands.
    """
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    fail = 1.0
    for i in range(n - c + 1, n + 1):
        fail *= 1.0 - k / i
    return 1.0 - fail


def repetition_ratio(tokens: Sequence[int], n: int = 20) -> float:
    """Fraction of a sequence's n-grams that already occurred earlier in it (0 if shorter)."""
    total = len(tokens) - n + 1
    if total <= 0:
        return 0.0
    seen, repeated = set(), 0
    for i in range(total):
        gram = tuple(tokens[i : i + n])
        repeated += gram in seen
        seen.add(gram)
    return repeated / total
