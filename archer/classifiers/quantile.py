"""Entropy-quantile token classifiers (docs/paper.md; the 80/20 paper's batch variant).

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

from archer.config_checks import ConfigError, check_open_unit
from archer.types import TokenStats


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
    """The 80/20 paper's split: one threshold over every valid token of the mini-batch.

    The threshold belongs to the whole mini-batch, across micro-batches and ranks (as the 80/20
    paper and TRL take it over the batch): the trainer fits it once per mini-batch on the
    old-policy entropies (`thresholds`, `scope = "mini_batch"`) and passes it in
    `TokenStats.thresholds`; tokens are then compared by the entropy of `rl.entropy_source`.
    Called on stats without thresholds, it fits them on those stats alone.

    Args:
        quantile: rho in (0, 1).
    """

    scope = "mini_batch"

    def __init__(self, quantile: float = 0.8):
        self.quantile = check_open_unit("classifier.quantile", quantile)

    def thresholds(self, stats: TokenStats, gather=None) -> Tensor:
        """float [N]: the rho-quantile of every valid entropy in `stats` (and, through `gather`,
        of every rank's: a function from a 1-D tensor to the concatenation over ranks)."""
        valid = stats.entropy[stats.response_mask]
        valid = gather(valid) if gather is not None else valid
        tau = row_quantile(valid.unsqueeze(0), torch.ones_like(valid, dtype=torch.bool).unsqueeze(0), self.quantile)
        return tau.expand(stats.entropy.shape[0])

    def __call__(self, stats: TokenStats) -> Tensor:
        tau = stats.thresholds if stats.thresholds is not None else self.thresholds(stats)
        return (stats.entropy > tau.unsqueeze(-1)) & stats.response_mask


class GroupQuantileClassifier:
    """One threshold per prompt group: over all tokens of the G responses to one prompt.

    Needs `TokenStats.group_ids`. A group's responses may fall in different micro-batches, so
    the trainer fits each group's threshold once per mini-batch on the old-policy entropies
    (`scope = "mini_batch"`; groups never span ranks) and passes it in `TokenStats.thresholds`.

    Args:
        quantile: rho in (0, 1).
    """

    scope = "mini_batch"

    def __init__(self, quantile: float = 0.8):
        self.quantile = check_open_unit("classifier.quantile", quantile)

    def thresholds(self, stats: TokenStats, gather=None) -> Tensor:
        """float [N]: each row's group threshold over these stats (`gather` unused: groups are whole on a rank)."""
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
        return tau

    def __call__(self, stats: TokenStats) -> Tensor:
        tau = stats.thresholds if stats.thresholds is not None else self.thresholds(stats)
        return (stats.entropy > tau.unsqueeze(-1)) & stats.response_mask
