"""Example reward functions of the form users write (`verifier=function`): plain
`(response, sample) -> float` functions, signed rewards allowed."""

from __future__ import annotations

from archer.types import Sample

BUDGET_CHARS = 200


def length_penalty(response: str, sample: Sample) -> float:
    """A penalty in [-1, 0]: 0 up to 200 characters, then -1/200 per character beyond, at
    most -1. A shaping term to weigh beside a correctness reward, never alone."""
    over = max(0, len(response) - BUDGET_CHARS)
    return -min(1.0, over / BUDGET_CHARS) if over else 0.0
