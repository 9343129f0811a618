"""What a verifier's score may be: the checks shared by the scoring runner and its workers
(kept free of torch and of the verifiers, which workers import only when they unpickle one)."""

from __future__ import annotations

import math

from archer.types import Sample

UNIT_RANGE = (0.0, 1.0)


def reward_range(verifier) -> tuple[float, float] | None:
    """The range a verifier's scores are clipped to: its `reward_range`, (0, 1) by default."""
    return getattr(verifier, "reward_range", UNIT_RANGE)


def clip_reward(value: float, bounds: tuple[float, float] | None) -> float:
    if not math.isfinite(value):
        raise ValueError(f"reward {value} is not finite")
    return value if bounds is None else min(max(value, bounds[0]), bounds[1])


def evaluate(verifier, response: str, sample: Sample, draw: str | None):
    """One response's score: a float, or each part's by name for verifiers with parts."""
    kwargs = {} if draw is None else {"draw": draw}
    components = getattr(verifier, "components", None)
    if components is not None:
        return {name: float(v) for name, v in components(response, sample, **kwargs).items()}
    return float(verifier(response, sample, **kwargs))


def checked(value):
    """`value` (a float or a dict of floats) if every number is finite; else ValueError."""
    numbers = value.values() if isinstance(value, dict) else [value]
    if not all(isinstance(v, float) and math.isfinite(v) for v in numbers):
        raise ValueError(f"verifier returned a value that is not a finite number: {value!r}")
    return value
