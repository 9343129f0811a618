"""Micro-batches: a fixed number of sequences, or as many as fit a token budget.

With responses of very different lengths (a few hundred to 32K tokens), a fixed sequence
count either wastes memory on short batches or runs out of it on long ones. A token budget
packs rows longest first: a micro-batch takes rows while (its rows) x (its longest row,
prompt included) stays within `micro_batch_tokens`, the size of the padded forward, which is
what memory follows. A row longer than the budget gets a micro-batch of its own. Loss
denominators belong to the whole mini-batch, so the packing changes neither the loss nor its
gradient (tests/unit/test_packing.py, tests/integration/test_distributed.py).
"""

from __future__ import annotations

import torch
from torch import Tensor


def row_tokens(prompt_mask: Tensor, response_mask: Tensor) -> Tensor:
    """long [N]: real prompt + response tokens of each row."""
    return prompt_mask.sum(-1) + response_mask.sum(-1)


def fixed_micro_batches(rows: Tensor, size: int) -> list[Tensor]:
    """`rows` in order, `size` at a time."""
    return list(rows.split(size)) if len(rows) else []


def token_budget_micro_batches(rows: Tensor, tokens: Tensor, budget: int) -> list[Tensor]:
    """`rows` (indices into `tokens` [N]) packed longest first under a padded-size budget.

    Each micro-batch's rows are sorted by length, descending, so its padded size is
    `len(micro) * tokens[micro[0]]`, which stays <= `budget` unless a single row exceeds it.
    """
    if not len(rows):
        return []
    lengths = tokens[rows]
    order = torch.argsort(lengths, descending=True, stable=True)
    batches, current, longest = [], [], 0
    for index in order.tolist():
        length = int(lengths[index])
        if current and (len(current) + 1) * max(longest, length) > budget:
            batches.append(rows[torch.tensor(current)])
            current, longest = [], 0
        current.append(index)
        longest = max(longest, length)
    batches.append(rows[torch.tensor(current)])
    return batches
