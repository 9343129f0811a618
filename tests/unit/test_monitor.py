"""Strategy-independent token statistics (archer/monitor.py) on hand-worked numbers."""

from __future__ import annotations

import math

import pytest
import torch

from archer.monitor import class_statistics
from archer.types import WEIGHT


def test_classes_are_the_top_fifth_of_each_response_and_kl_is_k3_per_class():
    # one response of 5 tokens: the 0.8-quantile of (0.1, 0.2, 0.3, 0.4, 2.0) is 0.4 + 0.2 * 1.6 = 0.72,
    # so only the last token is high-entropy; a second response has 3 real tokens and padding
    entropy = torch.tensor([[0.1, 0.2, 0.3, 0.4, 2.0], [1.0, 3.0, 2.0, 9.0, 9.0]])
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    logprobs = torch.zeros(2, 5)
    ref = torch.tensor([[0.0, 0.0, 0.0, math.log(0.5), math.log(2.0)], [0.0, 0.0, 0.0, 5.0, 5.0]])
    stats = class_statistics(entropy, logprobs, ref, mask)
    # second row: (1, 3, 2) -> 0.8-quantile 2 + 0.6 * 1 = 2.6, so the 3.0 token is high
    assert stats["monitor/entropy_high"].item() == pytest.approx((2.0 + 3.0) / 2)
    assert stats["monitor/entropy_low"].item() == pytest.approx((0.1 + 0.2 + 0.3 + 0.4 + 1.0 + 2.0) / 6)
    assert stats[f"monitor/entropy_high{WEIGHT}"].item() == 2 and stats[f"monitor/entropy_low{WEIGHT}"].item() == 6
    k3 = lambda log_ref_over_p: math.exp(log_ref_over_p) - log_ref_over_p - 1  # noqa: E731
    assert stats["monitor/ref_kl_high"].item() == pytest.approx(k3(math.log(2.0)) / 2)
    assert stats["monitor/ref_kl_low"].item() == pytest.approx(k3(math.log(0.5)) / 6)  # padding's 5.0 never counts


def test_without_reference_log_probs_only_entropy_is_reported():
    stats = class_statistics(torch.rand(3, 4), torch.zeros(3, 4), None, torch.ones(3, 4, dtype=torch.bool))
    assert not any("ref_kl" in key for key in stats) and "monitor/entropy_high" in stats
