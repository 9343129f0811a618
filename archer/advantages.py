"""Advantage estimators: `advantage(rewards [N], group_ids [N]) -> advantages [N]`.

All are computed within prompt groups (the G responses to one prompt). A group of one
response has no baseline and gets advantage 0.

- `GRPOAdvantage`: (R - mean) / (std + eps), unbiased std (docs/paper.md).
- `DrGRPOAdvantage`: R - mean, no std division (Dr. GRPO, arXiv 2503.20783).
- `RLOOAdvantage`: R - mean of the *other* responses = G/(G-1) (R - mean).
"""

from __future__ import annotations

import torch
from torch import Tensor

from archer.config_checks import check_positive


def group_statistics(rewards: Tensor, group_ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-response (group mean, unbiased group std, group size), each float [N]."""
    _, index = torch.unique(group_ids, return_inverse=True)
    num_groups = int(index.max()) + 1 if index.numel() else 0
    rewards = rewards.to(torch.float32)
    size = torch.zeros(num_groups, device=rewards.device).index_add_(0, index, torch.ones_like(rewards))
    total = torch.zeros(num_groups, device=rewards.device).index_add_(0, index, rewards)
    mean = total / size
    sq_dev = torch.zeros(num_groups, device=rewards.device).index_add_(0, index, (rewards - mean[index]).square())
    std = (sq_dev / (size - 1).clamp(min=1)).sqrt()
    return mean[index], std[index], size[index]


class GRPOAdvantage:
    """A_i = (R_i - mean_j R_j) / (std_j R_j + eps), std unbiased.

    Args:
        eps: added to the std (1e-6 as in the reference code).

    Example:
        >>> GRPOAdvantage()(torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.tensor([0, 0, 0, 0]))
        tensor([ 1.5000, -0.5000, -0.5000, -0.5000])
    """

    def __init__(self, eps: float = 1e-6):
        self.eps = check_positive("advantage.eps", eps)

    def __call__(self, rewards: Tensor, group_ids: Tensor) -> Tensor:
        mean, std, size = group_statistics(rewards, group_ids)
        advantages = (rewards - mean) / (std + self.eps)
        return torch.where(size > 1, advantages, torch.zeros_like(advantages))


class DrGRPOAdvantage:
    """A_i = R_i - mean_j R_j (no division by the std, which biases toward easy groups)."""

    def __call__(self, rewards: Tensor, group_ids: Tensor) -> Tensor:
        mean, _, size = group_statistics(rewards, group_ids)
        return torch.where(size > 1, rewards - mean, torch.zeros_like(mean))


class RLOOAdvantage:
    """A_i = R_i - mean_{j != i} R_j, the leave-one-out baseline."""

    def __call__(self, rewards: Tensor, group_ids: Tensor) -> Tensor:
        mean, _, size = group_statistics(rewards, group_ids)
        scale = size / (size - 1).clamp(min=1)
        return torch.where(size > 1, scale * (rewards - mean), torch.zeros_like(mean))
