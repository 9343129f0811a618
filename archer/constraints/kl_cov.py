"""KL-Cov (Cui et al. 2025, arXiv 2505.22617): an unclipped policy gradient, plus a
|log p - log p_old| penalty on the tokens of largest covariance
(docs/paper.md, "The entropy-mechanism baselines").

The top kl_cov_ratio x (valid tokens) by cov_i = (log p_i - mean log p)(A_i - mean A) get
loss -A r + ppo_kl_coef |log p - log p_old|; every other token gets -A r. As in verl's
`compute_policy_loss_kl_cov`, there is no ratio clip: the penalty on the tokens that drive
entropy down is the method's only trust region. The maths is in `archer.cov_ops`.
"""

from __future__ import annotations

import torch

from archer import cov_ops, ops
from archer.config_checks import check_non_negative
from archer.constraints.base import ClippedPolicyConstraint, check_ratio
from archer.types import WEIGHT, LossOutput, PolicyBatch


class KLCovConstraint(ClippedPolicyConstraint):
    """loss = aggregate(-A r + ppo_kl_coef |log r| on the top-cov tokens) [+ kl_coef KL to the reference].

    Args:
        kl_cov_ratio: share of the micro-batch's valid tokens penalised, in (0, 1] (paper:
            2e-3 for Qwen2.5-7B; verl's default 2e-4); at least one token.
        ppo_kl_coef: weight of |log p - log p_old| on those tokens (paper: 1; verl's config
            default 0.1, its function's fallback 1).
        kl_coef: weight of a KL to the reference on every token (0 in the paper; 0 skips the pass).
        kl_estimator, aggregation, norm_length, entropy_coef: see `ClippedPolicyConstraint`.
    """

    name = "kl_cov"

    def __init__(
        self,
        kl_cov_ratio: float = 2e-3,
        ppo_kl_coef: float = 1.0,
        kl_coef: float = 0.0,
        kl_estimator: str = "k3",
        aggregation: str = "token_mean",
        norm_length: int | None = None,
        entropy_coef: float = 0.0,
    ):
        super().__init__(aggregation, None, kl_estimator, norm_length, entropy_coef)
        self.kl_cov_ratio = check_ratio("constraint.kl_cov_ratio", kl_cov_ratio, "the paper uses 2e-3, verl 2e-4")
        self.ppo_kl_coef = check_non_negative("constraint.ppo_kl_coef", ppo_kl_coef)
        self.kl_coef = check_non_negative("constraint.kl_coef", kl_coef)

    @property
    def needs_reference(self) -> bool:
        return self.kl_coef > 0

    def __call__(self, batch: PolicyBatch) -> LossOutput:
        mask = batch.response_mask
        penalised = self.penalised_tokens(batch)
        terms = cov_ops.kl_cov_token_loss(batch.logprobs, batch.old_logprobs, batch.advantages, penalised,
                                          self.ppo_kl_coef)
        # the rollout correction weighs the policy-gradient part only, not the penalty
        per_token = self._policy_tokens(terms["policy"], batch) + (terms["loss"] - terms["policy"])
        policy_loss = self._aggregate(per_token, mask, batch)
        loss, kl = policy_loss, None
        if self.kl_coef > 0:
            kl = self._kl(batch)
            loss = loss + self.kl_coef * self._aggregate(kl, mask, batch)
        never = torch.zeros_like(mask)
        surrogate = {"ratio": terms["ratio"], "clipped_high": never, "clipped_low": never, "clipped_dual": never}
        metrics = self._metrics(batch, surrogate, kl)
        tokens = mask.sum().float()
        metrics.update({
            "loss/policy": policy_loss.detach(),
            "loss/cov_penalised_share": ops.masked_mean(penalised.float(), mask),
            f"loss/cov_penalised_share{WEIGHT}": tokens,
            # verl's `ppo_kl` of KL-Cov: the mean |log p - log p_old| over all valid tokens
            "loss/abs_log_ratio": ops.masked_mean(terms["abs_kl"].detach(), mask),
            f"loss/abs_log_ratio{WEIGHT}": tokens,
        })
        return self._with_entropy_bonus(loss, metrics, batch)

    def penalised_tokens(self, batch: PolicyBatch) -> torch.Tensor:
        """bool [N, T]: the tokens that get the |log p - log p_old| penalty in this batch."""
        mask = batch.response_mask
        cov = cov_ops.centered_covariance(batch.logprobs, batch.advantages, mask)
        return cov_ops.kl_cov_penalised(cov, mask, cov_ops.token_budget(mask, self.kl_cov_ratio))
