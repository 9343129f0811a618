"""Interval and paired-difference maths for sweeps over seeds (archer-summarize).

A sweep has few seeds (3-5), so each strategy's mean comes with two 95% intervals:

- the percentile bootstrap of the mean (seeds resampled), the usual choice in RL papers and
  the one `archer-compare` uses; with 5 values it is too narrow (it ignores that the spread
  itself is estimated from 5 values), so
- the Student-t interval, mean +- t(0.975, n-1) x s / sqrt(n), which is the one to read a
  claim from at n = 5 (2.78 standard errors where the bootstrap gives about 1.75).

Paired differences compare two strategies seed by seed (the same seed shares its warm-up,
data order and held-out set), which removes the between-seed spread from the comparison.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

# t(0.975, df) for df = 1..30; beyond 30 the normal 1.96 is within 4%
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t_quantile_975(df: int) -> float:
    if df < 1:
        raise ValueError("a t interval needs at least 2 values")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def bootstrap_interval(values: Sequence[float], samples: int = 10_000, seed: int = 0,
                       confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (values resampled with replacement)."""
    if not values:
        raise ValueError("bootstrap_interval needs at least one value")
    rng, n = random.Random(seed), len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(samples))
    return means[int((1 - confidence) / 2 * (samples - 1))], means[int((1 + confidence) / 2 * (samples - 1))]


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """mean +- t(0.975, n-1) s / sqrt(n); (nan, nan) for fewer than 2 values."""
    if len(values) < 2:
        return float("nan"), float("nan")
    mean, half = statistics.fmean(values), t_quantile_975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean - half, mean + half


def describe(values: Sequence[float | None]) -> dict:
    """n, mean, std and both 95% intervals of the values that are not None."""
    kept = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not kept:
        return {"n": 0, "mean": float("nan"), "std": float("nan"), "boot95": (float("nan"),) * 2, "t95": (float("nan"),) * 2}
    return {"n": len(kept), "mean": statistics.fmean(kept), "std": statistics.stdev(kept) if len(kept) > 1 else 0.0,
            "boot95": bootstrap_interval(kept), "t95": t_interval(kept)}


def paired_by_seed(treatment: dict[int, float | None], baseline: dict[int, float | None]) -> dict:
    """`treatment - baseline` over the seeds both have a value for (seed -> value maps)."""
    seeds = sorted(s for s in treatment.keys() & baseline.keys() if treatment[s] is not None and baseline[s] is not None)
    diffs = [treatment[s] - baseline[s] for s in seeds]
    return {"seeds": seeds, "diffs": diffs, **describe(diffs)}


def verdict(paired: dict, expected_sign: int, margin: float = 0.0) -> str:
    """supported / contradicted / inconclusive, read from the paired 95% t interval.

    The prediction is `difference > -margin` (expected_sign +1: the treatment is higher, or with a
    margin, not lower by more than it) or `difference < margin` (-1). Supported when the whole
    interval satisfies it, contradicted when none of it does, inconclusive otherwise.
    """
    low, high = paired["t95"]
    if paired["n"] < 2 or math.isnan(low):
        return "inconclusive"
    bound = -margin if expected_sign > 0 else margin
    if (expected_sign > 0 and low > bound) or (expected_sign < 0 and high < bound):
        return "supported"
    if (expected_sign > 0 and high < bound) or (expected_sign < 0 and low > bound):
        return "contradicted"
    return "inconclusive"


def area_under_curve(steps: Sequence[int], values: Sequence[float]) -> float | None:
    """Trapezoid area of a curve divided by its step span: its mean level over the run."""
    if len(steps) < 2:
        return None
    pairs = sorted(zip(steps, values))
    area = sum((s1 - s0) * (v0 + v1) / 2 for (s0, v0), (s1, v1) in zip(pairs, pairs[1:]))
    return area / (pairs[-1][0] - pairs[0][0])
