"""Shared machinery of the clipped-policy constraints: validation, KL term, entropy bonus, metrics.

A constraint turns a `PolicyBatch` into a `LossOutput`. Subclasses decide which clip range
and KL coefficient each token gets and which tokens carry gradient; the maths is in
`archer.ops`. A constraint may split its update into phases (Lopti): `phases` lists
callables, and the trainer runs one optimizer step per phase.

Every constraint takes `entropy_coef` (verl's `actor.entropy_coeff`): the loss becomes
loss - entropy_coef x aggregate(entropy), the mean token entropy aggregated like the policy
loss, so a positive coefficient rewards a flatter next-token distribution. It is the entropy
bonus baseline of Cui et al. 2025 (arXiv 2505.22617), and can be added to any strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor

from archer import ops
from archer.config_checks import ConfigError, check_choice, check_non_negative
from archer.types import WEIGHT, LossOutput, PolicyBatch


class ClippedPolicyConstraint:
    """Base of the PPO-clip constraints.

    Args:
        aggregation: how per-token losses become a scalar; one of `ops.AGGREGATIONS`.
        dual_clip: the dual-clip bound c (> 1) for negative advantages, or None.
        kl_estimator: one of `ops.KL_ESTIMATORS`; "k3" is the reference's low_var_kl.
        norm_length: the constant length of `seq_mean_token_sum_norm` (max response tokens).
        entropy_coef: weight of the entropy bonus (0: none); needs `PolicyBatch.entropy` with grad.
    """

    name = "constraint"

    def __init__(
        self,
        aggregation: str = "token_mean",
        dual_clip: float | None = 10.0,
        kl_estimator: str = "k3",
        norm_length: int | None = None,
        entropy_coef: float = 0.0,
    ):
        self.entropy_coef = check_non_negative("constraint.entropy_coef", entropy_coef)
        self.aggregation = check_choice("constraint.aggregation", aggregation, ops.AGGREGATIONS)
        self.kl_estimator = check_choice("constraint.kl_estimator", kl_estimator, ops.KL_ESTIMATORS)
        if dual_clip is not None and dual_clip <= 1.0:
            raise ConfigError(f"constraint.dual_clip must be > 1 (or null for none), got {dual_clip}; the paper uses 10")
        self.dual_clip = dual_clip
        if aggregation == "seq_mean_token_sum_norm" and (norm_length is None or norm_length <= 0):
            raise ConfigError(
                f"constraint.norm_length must be a positive int with aggregation=seq_mean_token_sum_norm, got "
                f"{norm_length}; set it to the max response length (rollout.max_new_tokens)"
            )
        self.norm_length = norm_length

    # -- what the trainer asks -----------------------------------------------------------

    @property
    def phases(self) -> Sequence[Callable[[PolicyBatch], LossOutput]]:
        """The update phases, each run with its own optimizer step; one for most strategies."""
        return (self,)

    @property
    def needs_reference(self) -> bool:
        """Whether the loss uses reference log-probs (False lets the trainer skip that pass)."""
        return False

    @property
    def needs_classes(self) -> bool:
        """Whether the loss reads `PolicyBatch.high_entropy`."""
        return False

    def __call__(self, batch: PolicyBatch) -> LossOutput:
        raise NotImplementedError

    # -- helpers for subclasses -----------------------------------------------------------

    def _aggregate(self, values: Tensor, mask: Tensor, batch: PolicyBatch, mode: str | None = None) -> Tensor:
        return ops.aggregate(
            values, mask, mode or self.aggregation, batch.num_tokens, batch.num_sequences, self.norm_length
        )

    def _policy_tokens(self, loss: Tensor, batch: PolicyBatch) -> Tensor:
        """Per-token policy loss [N, T], weighted by the rollout correction when there is one."""
        return loss if batch.rollout_weights is None else loss * batch.rollout_weights

    def _with_entropy_bonus(self, loss: Tensor, metrics: dict[str, Tensor], batch: PolicyBatch,
                            grad_mask: Tensor | None = None) -> LossOutput:
        """`LossOutput(loss - entropy_coef x aggregate(entropy), metrics)`.

        The entropy is aggregated over `grad_mask` (default: the response mask) with the
        whole mini-batch's denominators, like the policy loss, so phases and masks that split
        the tokens split the bonus the same way (verl: `agg_loss(entropy, mask, loss_agg_mode)`).
        """
        if self.entropy_coef == 0:
            return LossOutput(loss, metrics)
        entropy = batch.entropy
        if entropy is None or (batch.logprobs.requires_grad and not entropy.requires_grad):
            raise ValueError(
                f"{type(self).__name__} has entropy_coef={self.entropy_coef} but PolicyBatch.entropy is "
                f"{'None' if entropy is None else 'detached'}; pass the differentiable entropy of "
                "archer.ops.token_logprobs_and_entropy (or set constraint.entropy_coef=0)"
            )
        mask = batch.response_mask if grad_mask is None else grad_mask
        # `loss/entropy` (the token-weighted mean entropy) is already among the metrics
        bonus = self._aggregate(entropy * mask.to(entropy.dtype), batch.response_mask, batch)
        return LossOutput(loss - self.entropy_coef * bonus, metrics)

    def _kl(self, batch: PolicyBatch) -> Tensor:
        if batch.ref_logprobs is None:
            raise ValueError(
                f"{type(self).__name__} has a KL coefficient > 0 but PolicyBatch.ref_logprobs is None; "
                "the trainer must run the reference pass (or set the KL coefficient to 0)"
            )
        return ops.kl_penalty(batch.logprobs, batch.ref_logprobs, self.kl_estimator)

    def _metrics(self, batch: PolicyBatch, surrogate: dict[str, Tensor], kl: Tensor | None) -> dict[str, Tensor]:
        """Overall and per-class statistics of this micro-batch (detached). Each mean comes with
        `<key>@weight`, the tokens it averages over (archer/distributed.py reduces by it)."""
        mask = batch.response_mask
        classes = {"": mask}
        if batch.high_entropy is not None:
            classes["_high"] = batch.high_entropy & mask
            classes["_low"] = mask & ~batch.high_entropy
        metrics: dict[str, Tensor] = {}
        ratio = surrogate["ratio"]
        count = mask.sum().clamp(min=1)
        clipped = surrogate["clipped_high"] | surrogate["clipped_low"]
        for suffix, cls in classes.items():
            weight = cls.sum().float()  # each class mean weighs by its tokens across micro-batches and ranks
            for key in ("clipfrac", "clipfrac_upper", "clipfrac_lower", "ratio_mean", "kl", "entropy"):
                metrics[f"loss/{key}{suffix}{WEIGHT}"] = weight
            metrics[f"loss/clipfrac{suffix}"] = ops.masked_mean(clipped.float(), cls)
            metrics[f"loss/clipfrac_upper{suffix}"] = ops.masked_mean(surrogate["clipped_high"].float(), cls)
            metrics[f"loss/clipfrac_lower{suffix}"] = ops.masked_mean(surrogate["clipped_low"].float(), cls)
            metrics[f"loss/ratio_mean{suffix}"] = ops.masked_mean(ratio, cls)
            metrics[f"loss/ratio_max{suffix}"] = ratio.masked_fill(~cls, 0.0).max()
            if kl is not None:
                metrics[f"loss/kl{suffix}"] = ops.masked_mean(kl.detach(), cls)
            if batch.entropy is not None:
                metrics[f"loss/entropy{suffix}"] = ops.masked_mean(batch.entropy.detach(), cls)
            if suffix:
                metrics[f"loss/token_share{suffix}"] = cls.sum() / count
                metrics[f"loss/token_share{suffix}{WEIGHT}"] = count.float()
        metrics["loss/clipfrac_dual"] = ops.masked_mean(surrogate["clipped_dual"].float(), mask)
        metrics[f"loss/clipfrac_dual{WEIGHT}"] = mask.sum().float()
        return {k: v.detach().float() for k, v in metrics.items() if not k.endswith(WEIGHT) or k[: -len(WEIGHT)] in metrics}


def check_eps(prefix: str, eps_low: float, eps_high: float) -> tuple[float, float]:
    """Clip ranges must be non-negative and eps_low below 1 (the lower bound 1 - eps_low > 0)."""
    check_non_negative(f"{prefix}.eps_low", eps_low)
    check_non_negative(f"{prefix}.eps_high", eps_high)
    if eps_low >= 1:
        raise ConfigError(f"{prefix}.eps_low must be < 1 (the ratio's lower bound 1 - eps_low > 0), got {eps_low}")
    return float(eps_low), float(eps_high)


def check_ratio(key: str, value: float, hint: str) -> float:
    """A share of tokens must lie in (0, 1]."""
    if not 0 < value <= 1:
        raise ConfigError(f"{key} must be a share of tokens in (0, 1], got {value}; {hint}")
    return float(value)
