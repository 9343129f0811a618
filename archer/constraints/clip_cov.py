"""Clip-Cov (Cui et al. 2025, arXiv 2505.22617): PPO clip, plus a random few high-covariance
tokens taken out of the policy gradient (docs/paper.md, "The entropy-mechanism baselines").

Entropy collapses where confident tokens get positive advantages; the covariance
cov_i = (log p_i - mean log p)(A_i - mean A) measures that push per token. Among the valid
tokens that PPO's clip has not already cut and whose cov lies in (clip_cov_lb, clip_cov_ub),
clip_cov_ratio x (valid tokens) are drawn at random and their policy-gradient term is zeroed
(verl multiplies the token's loss by 0; it still counts in the denominators). The maths is in
`archer.cov_ops`; the selection follows verl's `compute_policy_loss_clip_cov` (see there).
"""

from __future__ import annotations

import torch

from archer import cov_ops, ops
from archer.config_checks import ConfigError
from archer.constraints.base import check_ratio
from archer.constraints.uniform import UniformConstraint
from archer.types import WEIGHT, LossOutput, PolicyBatch


class ClipCovConstraint(UniformConstraint):
    """PPO clip loss with Clip-Cov's covariance-selected tokens detached.

    Args:
        clip_cov_ratio: share of the micro-batch's valid tokens to detach, in (0, 1]
            (paper and verl: 2e-4); at least one token whenever a candidate exists.
        clip_cov_lb, clip_cov_ub: a token is a candidate when lb < cov < ub (paper: 1, 5).
        eps_low, eps_high, kl_coef, kl_estimator, dual_clip, aggregation, norm_length,
            entropy_coef: see `UniformConstraint` (verl's Clip-Cov has no dual clip: null).
        generator: optional torch.Generator for the random draw (tests); default torch's RNG.
    """

    name = "clip_cov"

    def __init__(
        self,
        clip_cov_ratio: float = 2e-4,
        clip_cov_lb: float = 1.0,
        clip_cov_ub: float = 5.0,
        eps_low: float = 0.2,
        eps_high: float = 0.2,
        kl_coef: float = 0.0,
        kl_estimator: str = "k3",
        dual_clip: float | None = None,
        aggregation: str = "token_mean",
        norm_length: int | None = None,
        entropy_coef: float = 0.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__(eps_low, eps_high, kl_coef, kl_estimator, dual_clip, aggregation, norm_length, entropy_coef)
        self.clip_cov_ratio = check_ratio("constraint.clip_cov_ratio", clip_cov_ratio, "the paper uses 2e-4")
        if not clip_cov_lb < clip_cov_ub:
            raise ConfigError(
                f"constraint.clip_cov_lb ({clip_cov_lb}) must be below constraint.clip_cov_ub ({clip_cov_ub}); "
                "the paper uses 1 and 5"
            )
        self.clip_cov_lb, self.clip_cov_ub = float(clip_cov_lb), float(clip_cov_ub)
        self.generator = generator

    def __call__(self, batch: PolicyBatch) -> LossOutput:
        mask = batch.response_mask
        surrogate = ops.clipped_surrogate(
            batch.logprobs, batch.old_logprobs, batch.advantages, self.eps_low, self.eps_high, self.dual_clip
        )
        detached = self.detached_tokens(batch, surrogate["clipped_high"] | surrogate["clipped_low"])
        keep = (~detached).to(surrogate["loss"].dtype)
        policy_loss = self._aggregate(self._policy_tokens(surrogate["loss"], batch) * keep, mask, batch)
        loss, kl = policy_loss, None
        if self.kl_coef > 0:  # verl adds its KL loss outside the policy loss: Clip-Cov leaves it alone
            kl = self._kl(batch)
            loss = loss + self.kl_coef * self._aggregate(kl, mask, batch)
        metrics = self._metrics(batch, surrogate, kl)
        metrics["loss/policy"] = policy_loss.detach()
        metrics["loss/cov_detached_share"] = ops.masked_mean(detached.float(), mask)
        metrics[f"loss/cov_detached_share{WEIGHT}"] = mask.sum().float()
        return self._with_entropy_bonus(loss, metrics, batch)

    def detached_tokens(self, batch: PolicyBatch, clipped: torch.Tensor) -> torch.Tensor:
        """bool [N, T]: the tokens Clip-Cov takes out of the policy gradient in this batch.

        Args:
            clipped: bool [N, T], tokens PPO's ratio clip already cut (never chosen, as in verl).
        """
        mask = batch.response_mask
        cov = cov_ops.centered_covariance(batch.logprobs, batch.advantages, mask)
        budget = cov_ops.token_budget(mask, self.clip_cov_ratio)
        return cov_ops.clip_cov_detached(cov, mask & ~clipped, budget, self.clip_cov_lb, self.clip_cov_ub,
                                         self.generator)

