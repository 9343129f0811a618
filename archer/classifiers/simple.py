"""Token classifiers that do not use an entropy quantile.

- `LowProbabilityClassifier`: Lopti's split (arXiv 2505.12929) by sampled-token probability.
- `RandomFractionClassifier`: a random control split with the same expected share.
- `NoTokenClassifier`: every token in the low-entropy class (one class, e.g. for uniform).
"""

from __future__ import annotations

import torch
from torch import Tensor

from archer.config_checks import check_open_unit
from archer.types import TokenStats


class LowProbabilityClassifier:
    """True on low-probability tokens: p(token) < threshold (Lopti's first update group).

    Args:
        threshold: probability below which a sampled token is "low-probability" (0.5).
    """

    def __init__(self, threshold: float = 0.5):
        self.threshold = check_open_unit("classifier.threshold", threshold)

    def __call__(self, stats: TokenStats) -> Tensor:
        return (stats.logprobs.exp() < self.threshold) & stats.response_mask


class RandomFractionClassifier:
    """True on a random `fraction` of response tokens, independent of entropy (a control).

    Draws from torch's global generator, which the trainer seeds per step, so a run is
    reproducible and resumes exactly.

    Args:
        fraction: expected share of tokens put in the high-entropy class (0.2).
    """

    def __init__(self, fraction: float = 0.2):
        self.fraction = check_open_unit("classifier.fraction", fraction)

    def __call__(self, stats: TokenStats) -> Tensor:
        draws = torch.rand(stats.response_mask.shape, device=stats.response_mask.device)
        return (draws < self.fraction) & stats.response_mask


class NoTokenClassifier:
    """No token is high-entropy: every response token is in the low-entropy class."""

    def __call__(self, stats: TokenStats) -> Tensor:
        return torch.zeros_like(stats.response_mask)
