"""Entropy thresholds fitted on whole mini-batches (batch- and group-level quantile classifiers).

The 80/20 split takes its quantile over the whole batch; a micro-batch (8 sequences in the
paper configs) on one rank is not that batch. Classifiers with `scope = "mini_batch"` are
fitted here, once per rollout, on each mini-batch's old-policy entropies, gathered across
ranks; the trainer then passes each row's threshold in `TokenStats.thresholds`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from archer.types import TokenStats


def fits_mini_batches(classifier) -> bool:
    """True for classifiers whose threshold belongs to the whole mini-batch."""
    return getattr(classifier, "scope", None) == "mini_batch"


def mini_batch_thresholds(classifier, entropy: Tensor, logprobs: Tensor, mask: Tensor, group_ids: Tensor,
                          mini_batches: list[Tensor], gather: Callable[[Tensor], Tensor]) -> Tensor:
    """float [N]: each row's threshold, fitted on the rows of its mini-batch.

    Args:
        entropy, logprobs: float [N, T], old-policy statistics of this rank's rows.
        mask: bool [N, T], loss tokens.
        group_ids: long [N].
        mini_batches: row indices of each mini-batch on this rank (possibly empty); every rank
            passes the same number, since `gather` is a collective.
        gather: 1-D tensor -> the concatenation of every rank's (identity on one process).
    """
    thresholds = torch.full((entropy.shape[0],), float("inf"), device=entropy.device)
    for rows in mini_batches:
        stats = TokenStats(entropy[rows], logprobs[rows], mask[rows], group_ids[rows].to(entropy.device))
        fitted = classifier.thresholds(stats, gather)
        if len(rows):
            thresholds[rows] = fitted
    return thresholds
