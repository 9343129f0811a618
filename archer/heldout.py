"""Held-out accuracy of a policy: pass@1 (mean over samples) and pass@k per problem."""

from __future__ import annotations

import torch

from archer.metrics import pass_at_k
from archer.types import Sample
from archer.verifiers.runner import ScoringRunner


def evaluate_heldout(policy, tokenizer, template, samples: list[Sample], verifier, engine,
                     samples_per_problem: int = 4, seed: int = 0) -> dict[str, float]:
    """Sample `samples_per_problem` responses per problem and score them.

    Returns:
        `pass@1` (= avg@k: mean score), `pass@k`, `response_length`, `errors`.
    """
    torch.manual_seed(seed)
    k = samples_per_problem
    rollout = engine.generate(policy, [template.encode(s, tokenizer) for s in samples], n=k)
    per_row = [samples[g] for g in rollout.group_ids.tolist()]
    scorer = verifier if isinstance(verifier, ScoringRunner) else ScoringRunner(verifier)
    scores, extra = scorer(rollout.texts, per_row)
    correct = (scores == 1).view(len(samples), k).sum(-1).tolist()
    return {
        "pass@1": scores.mean().item(),
        f"pass@{k}": sum(pass_at_k(k, c, k) for c in correct) / len(samples),
        "response_length": rollout.response_mask.sum(-1).float().mean().item(),
        "errors": extra["reward/errors"],
        "timeouts": extra["reward/timeouts"],
    }
