"""Test doubles, selected by `_target_` in overrides (never by patching internals)."""

from __future__ import annotations

import torch

from archer.constraints import UniformConstraint
from archer.types import LossOutput, PolicyBatch, Sample


class ParityVerifier:
    """1.0 for responses of even length: rewards vary inside every group, so every step has
    a non-zero policy gradient even for an untrained model."""

    def __call__(self, response: str, sample: Sample) -> float:
        return float(len(response) % 2 == 0)


class NaNConstraint(UniformConstraint):
    """A broken strategy whose loss is NaN."""

    def __call__(self, batch: PolicyBatch) -> LossOutput:
        out = super().__call__(batch)
        return LossOutput(out.loss * torch.tensor(float("nan")), out.metrics)
