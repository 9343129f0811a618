"""Pure tensor maths of Clip-Cov and KL-Cov (Cui et al. 2025, "The Entropy Mechanism of
Reinforcement Learning for Reasoning Language Models", arXiv 2505.22617).

The paper shows that the policy's entropy falls where a token's log-probability and its
advantage co-vary: a confident token (high log p) with a positive advantage sharpens the
distribution. Both methods pick a small set of tokens by their centred covariance

    cov_i = (log p_i - mean_j log p_j) * (A_i - mean_j A_j)      (means over the valid tokens)

and restrain only those: Clip-Cov detaches a random few of those with cov in (lb, ub) from the
policy gradient, KL-Cov adds a |log p - log p_old| penalty to the top-k by cov.

Semantics follow verl's `compute_policy_loss_clip_cov` / `compute_policy_loss_kl_cov`
(volcengine/verl, verl/trainer/ppo/core_algos.py, adapted there from PRIME-RL's
Entropy-Mechanism-of-RL), which the paper's numbers come from: the means and token counts are
over the valid tokens of the batch the loss is called on (one micro-batch), the log-probs are
the current policy's, detached. Two choices differ in form, not in distribution or value:
selection is done with tensor ranks instead of `torch.nonzero` + `randperm` / `topk` on the host,
so no host synchronisation is needed, and the ratio's log is clamped to [-20, 20] as everywhere
in `archer.ops` (verl's KL-Cov does not clamp; the clamp never binds in a sane run).

Tensors and floats in, tensors out: no config objects, no `.item()`, no distributed calls.
"""

from __future__ import annotations

import torch
from torch import Tensor

from archer.ops import LOG_RATIO_CLAMP, masked_mean


def centered_covariance(logprobs: Tensor, advantages: Tensor, mask: Tensor) -> Tensor:
    """Per-token centred covariance term cov_i [N, T], detached, 0 outside `mask`.

    Args:
        logprobs: float [N, T], the current policy's log-probs of the sampled tokens (the
            gradient is not used: selection only).
        advantages: float [N] (one per response, broadcast over its tokens) or [N, T].
        mask: bool [N, T], the valid (loss) tokens; both means are over these tokens, so a
            response's advantage weighs by its length, as in verl.
    """
    logprobs = logprobs.detach()
    advantages = _per_token(advantages.detach(), logprobs)
    cov = (logprobs - masked_mean(logprobs, mask)) * (advantages - masked_mean(advantages, mask))
    return cov.masked_fill(~mask, 0.0)


def token_budget(mask: Tensor, ratio: float) -> Tensor:
    """max(floor(ratio x valid tokens), 1), as a tensor (verl: `max(int(ratio * n), 1)`)."""
    return torch.floor(ratio * mask.sum().to(torch.float64)).clamp(min=1)


def clip_cov_detached(
    cov: Tensor,
    eligible: Tensor,
    budget: Tensor | int,
    cov_lb: float,
    cov_ub: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Clip-Cov's tokens: a uniformly random `budget` of the eligible tokens with lb < cov < ub.

    verl excludes padding and the tokens PPO's clip already cut (their cov is set to -inf)
    and takes the first `clip_num` of a random permutation of the candidates; here each
    candidate draws a uniform key and the `budget` smallest keys win, the same distribution
    (every subset of that size equally likely), deterministic given torch's RNG.

    Args:
        cov: float [N, T], from `centered_covariance`.
        eligible: bool [N, T], valid tokens not clipped by PPO's ratio clip.
        budget: how many to pick (all candidates when there are fewer), e.g. `token_budget`.
        cov_lb, cov_ub: the open interval of cov that makes a token a candidate.
        generator: optional torch.Generator on `cov`'s device (default: torch's global RNG).

    Returns:
        bool [N, T], True on the tokens whose policy gradient is detached.
    """
    candidates = eligible & (cov > cov_lb) & (cov < cov_ub)
    keys = torch.rand(cov.shape, generator=generator, device=cov.device)
    keys = keys.masked_fill(~candidates, 2.0)  # keys are in [0, 1): non-candidates rank last
    return candidates & (_ranks(keys.flatten(), descending=False).view_as(cov) < budget)


def kl_cov_penalised(cov: Tensor, mask: Tensor, budget: Tensor | int) -> Tensor:
    """KL-Cov's tokens: the `budget` valid tokens of largest cov (verl's `topk(largest=True)`).

    Returns:
        bool [N, T], True on the tokens that get the |log p - log p_old| penalty; none when
        `mask` is empty (verl skips the selection then).
    """
    scores = cov.masked_fill(~mask, float("-inf"))
    return mask & (_ranks(scores.flatten(), descending=True).view_as(cov) < budget)


def kl_cov_token_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    penalised: Tensor,
    kl_coef: float,
) -> dict[str, Tensor]:
    """KL-Cov's per-token loss: -A r, plus kl_coef |log p - log p_old| on `penalised` tokens.

    No ratio clip (verl's KL-Cov has none: the penalty is its only trust region).

    Args:
        logprobs, old_logprobs: float [N, T] (logprobs with grad).
        advantages: float [N] or [N, T].
        penalised: bool [N, T], from `kl_cov_penalised`.
        kl_coef: the penalty coefficient (verl's `ppo_kl_coef`).

    Returns:
        dict of [N, T]: `loss`, `policy` (the -A r part, for the rollout correction to weigh),
        `abs_kl` |log p - log p_old| (with grad), `ratio` (detached).
    """
    advantages = _per_token(advantages, logprobs)
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))
    policy = -advantages * ratio
    abs_kl = log_ratio.abs()
    loss = policy + kl_coef * abs_kl * penalised.to(abs_kl.dtype)
    return {"loss": loss, "policy": policy, "abs_kl": abs_kl, "ratio": ratio.detach()}


def _per_token(advantages: Tensor, like: Tensor) -> Tensor:
    return (advantages.unsqueeze(-1) if advantages.dim() == 1 else advantages).expand_as(like)


def _ranks(values: Tensor, descending: bool) -> Tensor:
    """Rank of each element of a 1-D tensor in sorted order (0 = first); ties by position."""
    order = torch.sort(values, descending=descending, stable=True).indices
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(values.numel(), device=values.device)
    return ranks
