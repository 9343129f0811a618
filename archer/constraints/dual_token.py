"""Archer: one joint loss, two constraints by token class (docs/paper.md).

High-entropy (reasoning) tokens get a wide clip and no KL so they can explore; low-entropy
(knowledge) tokens get a tight clip and a KL pull toward the reference so they stay stable.
Defaults are the released run's (docs/paper.md): 0.5/0.5 and beta 0 for reasoning
tokens, 0.2/0.2 and beta 0.001 for knowledge tokens, dual clip 10, k3 KL, and the
reference's effective aggregation: each response's token mean, averaged over responses
(every response weighs the same whatever its length; the paper's text says token mean).

KL normalisation:
- `per_class` (reference code): each class's KL is averaged over that class's tokens
  within each response, then over responses; the two class means are weighted by their
  own beta. This is what the reference computes with micro-batch size 1.
- `global`: beta_t * KL_t aggregated over all tokens like the policy loss. With equal
  settings for both classes this equals `UniformConstraint` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from archer import ops
from archer.config_checks import ConfigError, check_choice, check_non_negative
from archer.constraints.base import ClippedPolicyConstraint, check_eps
from archer.types import LossOutput, PolicyBatch

KL_NORMALIZATIONS = ("per_class", "global")


@dataclass(frozen=True)
class TokenClassConstraint:
    """The constraint one token class gets.

    Args:
        eps_low, eps_high: clip range 1 - eps_low .. 1 + eps_high (docs/paper.md's epsilon).
        kl_coef: beta_it, the weight of this class's KL to the reference.
    """

    eps_low: float
    eps_high: float
    kl_coef: float

    def validated(self, prefix: str) -> TokenClassConstraint:
        check_eps(prefix, self.eps_low, self.eps_high)
        check_non_negative(f"{prefix}.kl_coef", self.kl_coef)
        return self


def _as_class(value, prefix: str) -> TokenClassConstraint:
    if isinstance(value, TokenClassConstraint):
        return value.validated(prefix)
    try:
        return TokenClassConstraint(**dict(value)).validated(prefix)
    except TypeError as err:
        raise ConfigError(f"{prefix} must have exactly eps_low, eps_high, kl_coef; got {dict(value)}") from err


class DualTokenConstraint(ClippedPolicyConstraint):
    """Per-class clip ranges and KL coefficients in one loss (Archer).

    Args:
        high_entropy: constraint of the high-entropy (reasoning) class.
        low_entropy: constraint of the low-entropy (knowledge) class.
        kl_normalization: "per_class" (reference) or "global"; see the module docstring.
        kl_estimator, dual_clip, aggregation, norm_length, entropy_coef: see `ClippedPolicyConstraint`.
    """

    name = "dual_token"

    def __init__(
        self,
        high_entropy: TokenClassConstraint | dict = TokenClassConstraint(0.5, 0.5, 0.0),
        low_entropy: TokenClassConstraint | dict = TokenClassConstraint(0.2, 0.2, 0.001),
        kl_normalization: str = "per_class",
        kl_estimator: str = "k3",
        dual_clip: float | None = 10.0,
        aggregation: str = "seq_mean_token_mean",
        norm_length: int | None = None,
        entropy_coef: float = 0.0,
    ):
        super().__init__(aggregation, dual_clip, kl_estimator, norm_length, entropy_coef)
        self.high = _as_class(high_entropy, "constraint.high_entropy")
        self.low = _as_class(low_entropy, "constraint.low_entropy")
        self.kl_normalization = check_choice("constraint.kl_normalization", kl_normalization, KL_NORMALIZATIONS)

    @property
    def needs_reference(self) -> bool:
        return self.high.kl_coef > 0 or self.low.kl_coef > 0

    @property
    def needs_classes(self) -> bool:
        return True

    def __call__(self, batch: PolicyBatch) -> LossOutput:
        if batch.high_entropy is None:
            raise ValueError("DualTokenConstraint needs PolicyBatch.high_entropy; configure a token classifier")
        high = batch.high_entropy & batch.response_mask

        def per_token(high_value: float, low_value: float) -> torch.Tensor:
            return torch.where(high, high_value, low_value).to(batch.logprobs.dtype)

        surrogate = ops.clipped_surrogate(
            batch.logprobs,
            batch.old_logprobs,
            batch.advantages,
            per_token(self.high.eps_low, self.low.eps_low),
            per_token(self.high.eps_high, self.low.eps_high),
            self.dual_clip,
        )
        policy_loss = self._aggregate(self._policy_tokens(surrogate["loss"], batch), batch.response_mask, batch)
        loss, kl = policy_loss, None
        if self.needs_reference:
            kl = self._kl(batch)
            loss = loss + self._kl_loss(kl, high, batch)
        metrics = self._metrics(batch, surrogate, kl)
        metrics["loss/policy"] = policy_loss.detach()
        return self._with_entropy_bonus(loss, metrics, batch)

    def _kl_loss(self, kl: torch.Tensor, high: torch.Tensor, batch: PolicyBatch) -> torch.Tensor:
        if self.kl_normalization == "global":
            beta = torch.where(high, self.high.kl_coef, self.low.kl_coef).to(kl.dtype)
            return self._aggregate(beta * kl, batch.response_mask, batch)
        low = batch.response_mask & ~high
        total = kl.new_zeros(())
        for cls, coef in ((high, self.high.kl_coef), (low, self.low.kl_coef)):
            if coef > 0:
                total = total + coef * self._aggregate(kl, cls, batch, mode="seq_mean_token_mean")
        return total
