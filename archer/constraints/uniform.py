"""GRPO / DAPO: every token gets the same clip range and KL coefficient (docs/paper.md).

`conf/constraint/grpo.yaml` (clip 0.2, KL 0.001) and `dapo.yaml` (clip-higher 0.2/0.28, no
KL) are two configs of this one class.
"""

from __future__ import annotations

from archer import ops
from archer.config_checks import check_non_negative
from archer.constraints.base import ClippedPolicyConstraint, check_eps
from archer.types import LossOutput, PolicyBatch


class UniformConstraint(ClippedPolicyConstraint):
    """loss = aggregate(clip loss) + kl_coef * aggregate(KL), the same for all tokens.

    Args:
        eps_low, eps_high: the clip range 1 - eps_low .. 1 + eps_high.
        kl_coef: beta, the weight of KL(pi || ref); 0 skips the reference pass.
        kl_estimator, dual_clip, aggregation, norm_length, entropy_coef: see `ClippedPolicyConstraint`.
    """

    name = "uniform"

    def __init__(
        self,
        eps_low: float = 0.2,
        eps_high: float = 0.2,
        kl_coef: float = 0.001,
        kl_estimator: str = "k3",
        dual_clip: float | None = 10.0,
        aggregation: str = "token_mean",
        norm_length: int | None = None,
        entropy_coef: float = 0.0,
    ):
        super().__init__(aggregation, dual_clip, kl_estimator, norm_length, entropy_coef)
        self.eps_low, self.eps_high = check_eps("constraint", eps_low, eps_high)
        self.kl_coef = check_non_negative("constraint.kl_coef", kl_coef)

    @property
    def needs_reference(self) -> bool:
        return self.kl_coef > 0

    def __call__(self, batch: PolicyBatch) -> LossOutput:
        return self._loss(batch, batch.response_mask)

    def _loss(self, batch: PolicyBatch, grad_mask) -> LossOutput:
        """Clip + KL loss whose gradient flows only through `grad_mask` tokens, with the
        denominators of the whole response mask (so masked tokens still count)."""
        surrogate = ops.clipped_surrogate(
            batch.logprobs, batch.old_logprobs, batch.advantages, self.eps_low, self.eps_high, self.dual_clip
        )
        keep = grad_mask.to(surrogate["loss"].dtype)
        policy_loss = self._aggregate(self._policy_tokens(surrogate["loss"], batch) * keep, batch.response_mask, batch)
        loss, kl = policy_loss, None
        if self.kl_coef > 0:
            kl = self._kl(batch)
            loss = loss + self.kl_coef * self._aggregate(kl * keep, batch.response_mask, batch)
        metrics = self._metrics(batch, surrogate, kl)
        metrics["loss/policy"] = policy_loss.detach()
        return self._with_entropy_bonus(loss, metrics, batch, grad_mask)
