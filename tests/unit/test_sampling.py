"""Dynamic sampling, refill and overlong handling."""

import pytest
import torch

from archer.experience import collect_experience
from archer.group_filters import (
    DropUniformGroups,
    KeepAllGroups,
    NoOverlongHandling,
    OverlongFilter,
    OverlongPenalty,
)
from archer.types import RolloutBatch, Sample


def test_drop_uniform_groups_keeps_only_groups_with_signal():
    rewards = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    groups = torch.tensor([0, 0, 1, 1, 2, 2, 3])
    assert DropUniformGroups().keep(rewards, groups).tolist() == [False, False, True, True, False, False, False]
    assert KeepAllGroups().keep(rewards, groups).all()


def test_overlong_penalty_and_filter_hand_numbers():
    # max 10 tokens, buffer 4: no penalty up to 6, then -(L - 6) / 4, down to -1 at 10
    lengths = torch.tensor([5, 6, 8, 10])
    truncated = torch.tensor([False, False, False, True])
    rewards, keep = OverlongPenalty(buffer_tokens=4, penalty=1.0)(torch.ones(4), lengths, truncated, 10)
    assert rewards.tolist() == pytest.approx([1.0, 1.0, 0.5, 0.0]) and keep.all()
    rewards, keep = OverlongFilter()(torch.ones(4), lengths, truncated, 10)
    assert keep.tolist() == [True, True, True, False] and rewards.tolist() == [1.0] * 4
    assert NoOverlongHandling()(torch.ones(4), lengths, truncated, 10)[1].all()


def _fake_rollout(prompts, n=2):
    rows = len(prompts) * n
    return RolloutBatch(
        prompt_ids=torch.ones(rows, 3, dtype=torch.long), prompt_mask=torch.ones(rows, 3, dtype=torch.bool),
        response_ids=torch.ones(rows, 4, dtype=torch.long), response_mask=torch.ones(rows, 4, dtype=torch.bool),
        truncated=torch.zeros(rows, dtype=torch.bool), group_ids=torch.arange(len(prompts)).repeat_interleave(n),
        texts=[p.problem for p in prompts for _ in range(n)],
    )


def test_refill_generates_more_prompts_until_the_batch_is_full():
    # prompts whose problem starts with "mixed" get one success and one failure per group
    def score(texts, samples):
        flags = [1.0 if (t.startswith("mixed") and i % 2 == 0) else 0.0 for i, t in enumerate(texts)]
        return torch.tensor(flags), {"reward/errors": 0.0}

    first = [Sample("a", "mixed-a", 0), Sample("b", "flat-b", 0), Sample("c", "flat-c", 0)]
    refills = {0: [Sample("d", "mixed-d", 0), Sample("e", "flat-e", 0)], 1: [Sample("f", "mixed-f", 0)]}
    args = dict(generate=_fake_rollout, score=score, overlong=NoOverlongHandling(),
                refill=lambda attempt, count: refills[attempt][:count], max_new_tokens=4, pad_id=0)
    exp, metrics = collect_experience(first, group_filter=DropUniformGroups(refill_tries=2), **args)
    assert [s.problem for s in exp.samples] == ["mixed-a"] * 2 + ["mixed-d"] * 2 + ["mixed-f"] * 2
    assert exp.rollout.group_ids.tolist() == [0, 0, 1, 1, 2, 2]
    assert metrics["train/generation_rounds"] == 3.0
    assert metrics["train/groups_filtered"] == pytest.approx(1 - 3 / 6)
    # the reference code's choice: no refill, a smaller batch
    exp, metrics = collect_experience(first, group_filter=DropUniformGroups(refill_tries=0), **args)
    assert exp.num_groups == 1 and metrics["train/generation_rounds"] == 1.0
    # nothing survives: no experience, but the metrics still say why
    exp, metrics = collect_experience([first[1]], group_filter=DropUniformGroups(), **args)
    assert exp is None and metrics["train/groups_filtered"] == 1.0
