"""Evaluation and diagnostic metrics (docs/paper.md).

- `pass_at_k`: the unbiased estimator of Chen et al. (2021), numerically stable.
- `avg_at_k`: mean score over a problem's k samples (the paper's avg@K).
- `majority_correct`: whether the most common answer among a problem's samples is right.
- `bootstrap_ci`: a confidence interval of a mean over problems (resampling problems).
- `repetition_ratio`: share of repeated n-grams in a response (the paper's 20-gram
  repetition diagnostic of entropy collapse).
- `length_stats`: mean / median / max of response lengths.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from collections.abc import Hashable, Sequence


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


def avg_at_k(scores: Sequence[float]) -> float:
    """Mean score of one problem's samples."""
    if not scores:
        raise ValueError("avg_at_k needs at least one score")
    return sum(scores) / len(scores)


def majority_correct(answers: Sequence[Hashable | None], scores: Sequence[float]) -> float:
    """1.0 when the most frequent answer (None answers do not vote) scored 1; ties go to the
    answer seen first. 0.0 when no sample gave an answer."""
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return 0.0
    top = max(votes.values())
    winner = next(a for a in answers if a is not None and votes[a] == top)
    return float(next(s for a, s in zip(answers, scores) if a == winner) == 1.0)


def bootstrap_ci(values: Sequence[float], samples: int = 1000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (one value per problem)."""
    if not values:
        raise ValueError("bootstrap_ci needs at least one value")
    rng, n = random.Random(seed), len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(samples))
    low = means[int((1 - confidence) / 2 * (samples - 1))]
    high = means[int((1 + confidence) / 2 * (samples - 1))]
    return low, high


def length_stats(lengths: Sequence[int]) -> dict[str, float]:
    """mean, median and max of response lengths (tokens)."""
    if not lengths:
        return {"mean": 0.0, "median": 0.0, "max": 0.0}
    return {"mean": sum(lengths) / len(lengths), "median": float(statistics.median(lengths)), "max": float(max(lengths))}
