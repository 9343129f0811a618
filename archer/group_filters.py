"""What happens between scoring and advantages: dynamic sampling and overlong handling.

Group filters (docs/paper.md, "Method"):
- `KeepAllGroups`: train on every group.
- `DropUniformGroups`: drop groups whose G rewards are all equal (all 0 or all 1: zero
  advantage, no signal). `refill_tries=0` keeps the smaller batch (the reference code);
  `refill_tries>0` generates more prompts up to that many times to fill the batch (DAPO).

Overlong handling (DAPO, arXiv 2503.14476), applied to the rewards and the loss mask:
- `NoOverlongHandling` (the Archer run), `OverlongFilter` (truncated responses take no
  part in the loss), `OverlongPenalty` (soft length penalty in the last `buffer_tokens`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from archer.advantages import group_statistics
from archer.config_checks import ConfigError, check_non_negative

__all__ = ["DropUniformGroups", "KeepAllGroups", "NoOverlongHandling", "OverlongFilter", "OverlongPenalty"]


class KeepAllGroups:
    refill_tries = 0

    def keep(self, rewards: Tensor, group_ids: Tensor) -> Tensor:
        return torch.ones_like(rewards, dtype=torch.bool)


class DropUniformGroups:
    """Keep only groups whose rewards are not all equal.

    Args:
        refill_tries: extra generation rounds to refill dropped groups (0: no refill).
    """

    def __init__(self, refill_tries: int = 0):
        if refill_tries < 0:
            raise ConfigError(f"filter.refill_tries must be >= 0, got {refill_tries}")
        self.refill_tries = int(refill_tries)

    def keep(self, rewards: Tensor, group_ids: Tensor) -> Tensor:
        _, std, size = group_statistics(rewards, group_ids)
        return (std > 0) & (size > 1)


class NoOverlongHandling:
    def __call__(self, rewards: Tensor, lengths: Tensor, truncated: Tensor, max_tokens: int) -> tuple[Tensor, Tensor]:
        return rewards, torch.ones_like(truncated)


class OverlongFilter:
    """Truncated responses keep their reward (for the group baseline) but get no loss."""

    def __call__(self, rewards: Tensor, lengths: Tensor, truncated: Tensor, max_tokens: int) -> tuple[Tensor, Tensor]:
        return rewards, ~truncated


class OverlongPenalty:
    """DAPO's soft overlong punishment, added to the reward:
    0 up to max - buffer tokens, then linearly down to -penalty at max, -penalty beyond.

    Args:
        buffer_tokens: L_cache, the length of the penalty ramp.
        penalty: the largest penalty (1.0 in DAPO).
    """

    def __init__(self, buffer_tokens: int = 4096, penalty: float = 1.0):
        self.buffer_tokens = int(check_non_negative("overlong.buffer_tokens", buffer_tokens))
        self.penalty = check_non_negative("overlong.penalty", penalty)

    def __call__(self, rewards: Tensor, lengths: Tensor, truncated: Tensor, max_tokens: int) -> tuple[Tensor, Tensor]:
        if self.buffer_tokens >= max_tokens:
            raise ConfigError(
                f"overlong.buffer_tokens ({self.buffer_tokens}) must be < rollout.max_new_tokens ({max_tokens})"
            )
        start = max_tokens - self.buffer_tokens
        ramp = (start - lengths.float()) / max(self.buffer_tokens, 1) * self.penalty
        shaped = torch.where(lengths <= start, torch.zeros_like(ramp), ramp.clamp(min=-self.penalty))
        return rewards + shaped, torch.ones_like(truncated)
