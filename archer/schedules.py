"""Learning-rate schedules, built as `_partial_` configs: `scheduler(optimizer)`."""

from __future__ import annotations

import math

from torch.optim.lr_scheduler import LambdaLR


def linear_warmup(optimizer, warmup_steps: int = 10) -> LambdaLR:
    """Linear warm-up from ~0 to the base LR over `warmup_steps` optimizer steps, then
    constant (the reference run: 10 warm-up steps)."""
    return LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / max(warmup_steps, 1)))


def warmup_cosine(optimizer, warmup_steps: int = 10, total_steps: int = 1000, min_ratio: float = 0.1) -> LambdaLR:
    """Linear warm-up, then cosine decay to `min_ratio` of the base LR at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(warmup_steps, 1)
        progress = min(1.0, (step - warmup_steps) / max(total_steps - warmup_steps, 1))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
