"""Reward functions a user might write (`verifier=function`), for the tests."""

from __future__ import annotations

from archer.types import Sample


def signed_parity(response: str, sample: Sample) -> float:
    """A penalty for odd lengths, a small reward for even ones: signed, varied in every group."""
    return 0.5 if len(response) % 2 == 0 else -1.0


def not_a_number(response: str, sample: Sample) -> float:
    return float("nan") if len(response) % 2 else 1.0
