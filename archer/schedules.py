"""Learning-rate schedules, built as `_partial_` configs: `scheduler(optimizer)`.

Each schedule counts in one `unit`, stored on the scheduler and read by the trainer:
`optimizer_step` (stepped after every optimizer step) or `rl_step` (stepped once after each
RL step's updates, as the reference's verl trainer does: with `from_zero`, RL step 0 then
runs at lr 0 and RL step k < warm-up at k / warmup_steps of the base lr).
"""

from __future__ import annotations

import math

from torch.optim.lr_scheduler import LambdaLR

from archer.validation import check_choice

UNITS = ("optimizer_step", "rl_step")


def _warmup_factor(step: int, warmup_steps: int, from_zero: bool) -> float:
    done = step if from_zero else step + 1
    return min(1.0, done / max(warmup_steps, 1))


def linear_warmup(optimizer, warmup_steps: int = 10, unit: str = "optimizer_step", from_zero: bool = False) -> LambdaLR:
    """Linear warm-up over `warmup_steps` units, then constant.

    Args:
        unit: `optimizer_step` or `rl_step` (the reference: 10 RL steps).
        from_zero: the first unit runs at lr 0 (the reference), else at 1 / warmup_steps.
    """
    scheduler = LambdaLR(optimizer, lambda step: _warmup_factor(step, warmup_steps, from_zero))
    scheduler.unit = check_choice("scheduler.unit", unit, UNITS)
    return scheduler


def warmup_cosine(optimizer, warmup_steps: int = 10, total_steps: int = 1000, min_ratio: float = 0.1,
                  unit: str = "optimizer_step", from_zero: bool = False) -> LambdaLR:
    """Linear warm-up, then cosine decay to `min_ratio` of the base LR at `total_steps` units."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return _warmup_factor(step, warmup_steps, from_zero)
        progress = min(1.0, (step - warmup_steps) / max(total_steps - warmup_steps, 1))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = LambdaLR(optimizer, factor)
    scheduler.unit = check_choice("scheduler.unit", unit, UNITS)
    return scheduler
