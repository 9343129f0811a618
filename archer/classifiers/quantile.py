"""Entropy-quantile token classifiers (PAPER.md section 2; the 80/20 paper's batch variant).

A token is high-entropy (reasoning) when its entropy is strictly above the rho-quantile of
its reference set; ties go to the low-entropy (knowledge) class. The quantile uses linear
interpolation like `torch.quantile`, computed with `torch.sort` so that it works on any
number of elements (torch.quantile refuses inputs above 2^24).

Edge cases: an empty row has no tokens to classify; a one-token row's threshold is its own
entropy, so the token is knowledge; equal entropies are all knowledge; padding is never
classified.
"""

from __future__ import annotations

import torch
from torch import Tensor

from archer.types import TokenStats
from archer.validation import ConfigError, check_open_unit


def _interpolated_quantile(sorted_values: Tensor, counts: Tensor, quantile: float) -> Tensor:
    """Per-row quantile of the first `counts[i]` entries of each sorted row.

    Args:
        sorted_values: float [R, M], each row ascending over its valid prefix.
        counts: long [R], valid entries per row (rows with 0 get +inf: nothing is above).
        quantile: rho in (0, 1).
    """
    position = (counts - 1).clamp(min=0).to(torch.float64) * quantile
    lower = position.floor().long()
    upper = position.ceil().long()
    weight = (position - lower).to(sorted_values.dtype)
    low_val = sorted_values.gather(-1, lower.unsqueeze(-1)).squeeze(-1)
    high_val = sorted_values.gather(-1, upper.unsqueeze(-1)).squeeze(-1)
    threshold = low_val + (high_val - low_val) * weight
    return torch.where(counts > 0, threshold, torch.full_like(threshold, float("inf")))


def row_quantile(values: Tensor, mask: Tensor, quantile: float) -> Tensor:
    """rho-quantile of each row's masked values: float [R]; +inf for rows with no values."""
    filled = values.masked_fill(~mask, float("inf"))
    sorted_values, _ = torch.sort(filled, dim=-1)
    return _interpolated_quantile(sorted_values, mask.sum(-1), quantile)


class ResponseQuantileClassifier:
    """Archer's split: high-entropy = above the rho-quantile of the token's own response.

    Args:
        quantile: rho in (0, 1); 0.8 marks about the top 20% of each response.
    """

    def __init__(self, quantile: float = 0.8):
        self.quantile = check_open_unit("classifier.quantile", quantile)

    def __call__(self, stats: TokenStats) -> Tensor:
        tau = row_quantile(stats.entropy, stats.response_mask, self.quantile)
        return (stats.entropy > tau.unsqueeze(-1)) & stats.response_mask


class BatchQuantileClassifier:
    """The 80/20 paper's split: one threshold over every valid token of the batch.

    Args:
        quantile: rho in (0, 1).
    """

    def __init__(self, quantile: float = 0.8):
        self.quantile = check_open_unit("classifier.quantile", quantile)

    def __call__(self, stats: TokenStats) -> Tensor:
        valid = stats.entropy[stats.response_mask]
        tau = row_quantile(valid.unsqueeze(0), torch.ones_like(valid, dtype=torch.bool).unsqueeze(0), self.quantile)
        return (stats.entropy > tau) & stats.response_mask


class GroupQuantileClassifier:
    """One threshold per prompt group: over all tokens of the G responses to one prompt.

    Needs `TokenStats.group_ids`.

    Args:
        quantile: rho in (0, 1).
    """

    def __init__(self, quantile: float = 0.8):
        self.quantile = check_open_unit("classifier.quantile", quantile)

    def __call__(self, stats: TokenStats) -> Tensor:
        if stats.group_ids is None:
            raise ConfigError(
                "classifier=group_quantile needs TokenStats.group_ids; the caller passed none "
                "(use classifier=response_quantile or pass group ids)"
            )
        tau = torch.full_like(stats.entropy[:, 0], float("inf"))
        # Groups are few (prompts per batch), so a loop over them stays cheap.
        for group in torch.unique(stats.group_ids):
            rows = stats.group_ids == group
            values = stats.entropy[rows][stats.response_mask[rows]].unsqueeze(0)
            tau[rows] = row_quantile(values, torch.ones_like(values, dtype=torch.bool), self.quantile)
        return (stats.entropy > tau.unsqueeze(-1)) & stats.response_mask
