"""Steps 1-3 of an RL step: rollout, verify, filter (with optional refill).

`collect_experience` returns the responses the update will train on: whole prompt groups
whose rewards are not uniform (under `DropUniformGroups`), at most `prompts_per_step`
groups, after overlong shaping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor
from torch.nn.functional import pad

from archer.types import RolloutBatch, Sample


@dataclass
class Experience:
    """Responses to train on. Rows of one prompt group are consecutive.

    Attributes:
        rollout: the responses ([N, ...] tensors, group ids renumbered 0..groups-1).
        samples: the `Sample` each response answers, length N.
        rewards: float [N], shaped rewards (what advantages are computed from).
        scores: float [N], raw verifier scores (accuracy is scores == 1).
        loss_mask: bool [N, T], tokens that take part in the loss.
    """

    rollout: RolloutBatch
    samples: list[Sample]
    rewards: Tensor
    scores: Tensor
    loss_mask: Tensor

    @property
    def num_groups(self) -> int:
        return int(self.rollout.group_ids.max()) + 1 if self.rollout.num_responses else 0


def concat_rollouts(batches: list[RolloutBatch], pad_id: int) -> RolloutBatch:
    """Stack rollouts of different widths (prompts re-left-padded, responses right-padded)."""
    p = max(b.prompt_ids.shape[1] for b in batches)
    t = max(b.response_ids.shape[1] for b in batches)
    groups, total = [], 0
    for b in batches:
        groups.append(b.group_ids + total)
        total += int(b.group_ids.max()) + 1 if b.num_responses else 0

    def lpad(x, width, value):
        return pad(x, (width - x.shape[1], 0), value=value)

    def rpad(x, width, value):
        return pad(x, (0, width - x.shape[1]), value=value)

    return RolloutBatch(
        prompt_ids=torch.cat([lpad(b.prompt_ids, p, pad_id) for b in batches]),
        prompt_mask=torch.cat([lpad(b.prompt_mask, p, False) for b in batches]),
        response_ids=torch.cat([rpad(b.response_ids, t, pad_id) for b in batches]),
        response_mask=torch.cat([rpad(b.response_mask, t, False) for b in batches]),
        truncated=torch.cat([b.truncated for b in batches]),
        group_ids=torch.cat(groups),
        texts=[text for b in batches for text in b.texts],
        engine_logprobs=None if any(b.engine_logprobs is None for b in batches)
        else torch.cat([rpad(b.engine_logprobs, t, 0.0) for b in batches]),
    )


def renumber_groups(group_ids: Tensor) -> Tensor:
    """Map group ids to 0..G-1 in order of first appearance."""
    _, inverse = torch.unique_consecutive(group_ids, return_inverse=True)
    return inverse


def collect_experience(
    prompts: list[Sample],
    generate: Callable[[list[Sample]], RolloutBatch],
    score: Callable[[list[str], list[Sample]], tuple[Tensor, dict[str, float]]],
    group_filter,
    overlong,
    refill: Callable[[int, int], list[Sample]],
    max_new_tokens: int,
    pad_id: int,
) -> tuple[Experience, dict[str, float]]:
    """Generate, score and filter until `len(prompts)` groups survive or refills run out.

    Args:
        prompts: this step's prompts (one group each).
        generate: prompts -> RolloutBatch with G responses per prompt.
        score: (texts, samples) -> (scores [N], metrics).
        group_filter: `KeepAllGroups` / `DropUniformGroups` (its `refill_tries`).
        overlong: overlong handling, (rewards, lengths, truncated, max) -> (rewards, keep [N]).
        refill: (attempt, count) -> more prompts.
    """
    target = len(prompts)
    parts: list[tuple[RolloutBatch, list[Sample], Tensor]] = []
    metrics = {"reward/errors": 0.0, "reward/timeouts": 0.0, "train/generated_tokens": 0.0}
    generated_groups = kept_groups = 0
    all_scores = []
    solved: float | None = None
    part_sums: dict[str, float] = {}
    for attempt in range(1 + group_filter.refill_tries):
        rollout = generate(prompts)
        metrics["train/generated_tokens"] += float(rollout.response_mask.sum())  # the sampling budget, filtered or not
        samples = [prompts[g] for g in rollout.group_ids.tolist()]
        scores, score_metrics = score(rollout.texts, samples)
        for key in ("reward/errors", "reward/timeouts"):
            metrics[key] += score_metrics.get(key, 0.0)
        if "reward/solved" in score_metrics:  # a reward with parts: accuracy is its accuracy part's
            solved = (solved or 0.0) + score_metrics["reward/solved"]
        for key, value in score_metrics.items():  # each part's mean, weighted by responses over rounds
            if key not in ("reward/errors", "reward/timeouts", "reward/solved"):
                part_sums[key] = part_sums.get(key, 0.0) + value * len(scores)
        all_scores.append(scores)
        generated_groups += len(prompts)
        keep = group_filter.keep(scores, rollout.group_ids)
        if keep.any():
            # keep whole groups, at most the number still missing
            kept_ids = torch.unique_consecutive(rollout.group_ids[keep])[: target - kept_groups]
            rows = torch.isin(rollout.group_ids, kept_ids) & keep
            chosen = rollout.select(rows)
            parts.append((chosen, [samples[i] for i in rows.nonzero().flatten().tolist()], scores[rows]))
            kept_groups += len(kept_ids)
        if kept_groups >= target or attempt == group_filter.refill_tries:
            break
        prompts = refill(attempt, target - kept_groups)
    seen = torch.cat(all_scores)
    metrics.update({  # means carry their weights (archer/distributed.py): responses, groups
        "train/reward": seen.mean().item(), "train/reward@weight": float(seen.numel()),
        "train/accuracy": (seen == 1).float().mean().item() if solved is None else solved / seen.numel(),
        "train/accuracy@weight": float(seen.numel()),
        "train/scored_responses": float(seen.numel()),
        "train/groups_filtered": 1.0 - kept_groups / generated_groups, "train/groups_filtered@weight": float(generated_groups),
        "train/generation_rounds": float(attempt + 1),
    })
    metrics.update({key: total / seen.numel() for key, total in part_sums.items()})
    metrics.update({f"{key}@weight": float(seen.numel()) for key in part_sums})
    if not parts:
        return None, metrics
    rollout = concat_rollouts([p[0] for p in parts], pad_id)
    rollout = replace(rollout, group_ids=renumber_groups(rollout.group_ids))
    scores = torch.cat([p[2] for p in parts])
    lengths = rollout.response_mask.sum(-1)
    rewards, keep_loss = overlong(scores, lengths, rollout.truncated, max_new_tokens)
    loss_mask = rollout.response_mask & keep_loss.unsqueeze(-1)
    samples = [s for p in parts for s in p[1]]
    return Experience(rollout, samples, rewards, scores, loss_mask), metrics
