"""Score a batch of responses with a verifier; failures score 0 and are counted.

This is the in-process runner; a verifier that can hang (code execution) runs its own
subprocess with limits, so one bad response never stops training.
"""

from __future__ import annotations

import logging
import math

import torch

from archer.types import Sample

log = logging.getLogger(__name__)


class ScoringRunner:
    """Apply `verifier(response, sample)` to each pair, clamping to [0, 1].

    Args:
        verifier: any `Verifier`.
    """

    def __init__(self, verifier):
        self.verifier = verifier

    def __call__(self, responses: list[str], samples: list[Sample]) -> tuple[torch.Tensor, dict[str, float]]:
        rewards, errors = [], 0
        for response, sample in zip(responses, samples):
            try:
                value = float(self.verifier(response, sample))
                if math.isnan(value):
                    raise ValueError("verifier returned NaN")
            except Exception as err:  # a verifier bug must not stop training: score 0, count it
                errors += 1
                log.debug("verifier failed on sample %s: %r", sample.id, err)
                value = 0.0
            rewards.append(min(max(value, 0.0), 1.0))
        return torch.tensor(rewards, dtype=torch.float32), {"reward/errors": float(errors)}
