"""Advantage estimators: hand-worked group statistics."""

import math

import pytest
import torch

from archer.advantages import DrGRPOAdvantage, GRPOAdvantage, RLOOAdvantage
from archer.config_checks import ConfigError

# group 0: one success in four; group 1: all equal; group 2: a single response
REWARDS = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0])
GROUPS = torch.tensor([5, 5, 5, 5, 2, 2, 9])


def test_grpo_uses_the_unbiased_std_and_zeroes_degenerate_groups():
    # group 0: mean 0.25; unbiased var = (0.5625 + 3 * 0.0625) / 3 = 0.25 -> std 0.5
    adv = GRPOAdvantage(eps=1e-6)(REWARDS, GROUPS)
    assert adv[:4].tolist() == pytest.approx([0.75 / 0.500001, -0.25 / 0.500001, -0.25 / 0.500001, -0.25 / 0.500001])
    assert adv[4:6].tolist() == [0.0, 0.0]  # std 0: (1 - 1) / (0 + eps) = 0
    assert adv[6].item() == 0.0  # a group of one has no baseline


def test_dr_grpo_and_rloo():
    assert DrGRPOAdvantage()(REWARDS, GROUPS).tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25, 0, 0, 0])
    # RLOO: 1 - mean(0, 0, 0) = 1; 0 - mean(1, 0, 0) = -1/3
    assert RLOOAdvantage()(REWARDS, GROUPS).tolist() == pytest.approx([1, -1 / 3, -1 / 3, -1 / 3, 0, 0, 0])


def test_group_ids_need_not_be_contiguous_or_sorted():
    shuffled = torch.tensor([3, 0, 6, 1, 4, 5, 2])
    adv = GRPOAdvantage()(REWARDS[shuffled], GROUPS[shuffled])
    assert adv.tolist() == pytest.approx(GRPOAdvantage()(REWARDS, GROUPS)[shuffled].tolist())
    assert not any(math.isnan(a) for a in adv.tolist())


def test_eps_must_be_positive():
    with pytest.raises(ConfigError, match="advantage.eps"):
        GRPOAdvantage(eps=0)
