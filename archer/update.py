"""Step 7 of the RL step: PPO epochs x mini-batches x constraint phases, micro-batch accumulation.

Every rank makes the same collective calls in the same order, whatever its data: the same
number of optimizer steps (the most mini-batches any rank has), and in each of them the same
number of backward passes (the most micro-batches any rank has; a rank with fewer runs
zero-loss backwards). Under DDP only the last backward of an optimizer step synchronises
gradients (`block_backward_sync` around the others), so the gradient is all-reduced once per
optimizer step, not once per micro-batch. Gradients are clipped through FSDP's own
`clip_grad_norm_` when the policy is sharded (a local norm would see one shard), and freed
(`set_to_none`) after the last optimizer step, before the next rollout.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import Tensor

from archer import ops
from archer.config_checks import ConfigError
from archer.distributed import Collectives, accumulate, finish, reduction
from archer.experience import Experience
from archer.types import LossOutput, PolicyBatch


@dataclass
class StepInputs:
    """What the update of one RL step works on (this rank's rows; all None on a rank whose
    groups were all filtered out, which still takes part in every collective)."""

    exp: Experience | None
    advantages: Tensor | None
    old_logprobs: Tensor | None
    ref_logprobs: Tensor | None
    fixed_classes: Tensor | None
    thresholds: Tensor | None
    mini_batches: list[Tensor]


def clip_gradients(strategy_model, parameters, max_norm: float) -> Tensor:
    """The global gradient norm before clipping, clipped to `max_norm`: FSDP's own
    `clip_grad_norm_` on a sharded model (it reduces the norm over shards), else torch's."""
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    except ImportError:  # pragma: no cover - torch without distributed
        FSDP = ()  # noqa: N806
    if FSDP and isinstance(strategy_model, FSDP):
        return strategy_model.clip_grad_norm_(max_norm)
    return torch.nn.utils.clip_grad_norm_(list(parameters), max_norm)


class PolicyUpdate:
    """Runs the optimizer steps of one RL step for an `ArcherModule` (its policy, constraint,
    schedule, optimizer and strategy)."""

    def __init__(self, module, collectives: Collectives):
        self.m, self.c = module, collectives

    def __call__(self, step: int, inputs: StepInputs) -> dict[str, float]:
        m, s = self.m, self.m.schedule
        optimizer, scheduler = m.optimizers(), m.lr_schedulers()
        totals: dict[str, list[float]] = {}
        for epoch in range(s.ppo_epochs):
            for rows in inputs.mini_batches:
                denominators = self._denominators(inputs.exp, rows)
                micro = m._micro_batches(rows, inputs.exp) if inputs.exp is not None else []
                # the same number of backward passes on every rank (each DDP/FSDP backward is a collective)
                count = int(self.c.max(torch.tensor(float(len(micro))), "micro-batch count").item())
                for phase in m.constraint.phases:
                    optimizer.zero_grad(set_to_none=True)
                    outputs = []
                    for i in range(max(count, 1)):
                        last = i == max(count, 1) - 1
                        with contextlib.nullcontext() if last or self.c.world == 1 else m.trainer.strategy.block_backward_sync():
                            if i < len(micro):
                                out, batch = self._micro_loss(phase, inputs, micro[i], denominators)
                                # DDP/FSDP average gradients over ranks; the loss already has global denominators
                                m.manual_backward(out.loss * self.c.world)
                                outputs.append((out, batch))
                                accumulate(totals, self._scaled(out.metrics, len(inputs.mini_batches)))
                            else:  # nothing (more) on this rank: join the others' gradient sync
                                m.manual_backward(sum(p.sum() for p in m.policy.parameters() if p.requires_grad) * 0.0)
                    self._check_finite(outputs, step, epoch, rows, inputs, phase)
                    grad_norm = clip_gradients(m.trainer.strategy.model, m.policy.parameters(), s.grad_clip)
                    accumulate(totals, {"train/grad_norm": grad_norm.detach()})
                    optimizer.step()
                    if scheduler is not None and m._lr_unit == "optimizer_step":
                        scheduler.step()
        optimizer.zero_grad(set_to_none=True)  # no gradient memory held through the next rollout
        metrics = finish(totals)
        metrics["train/lr"] = optimizer.param_groups[0]["lr"]
        return metrics

    def _scaled(self, metrics: dict, mini_batches: int) -> dict:
        """Loss terms divided by the optimizer steps their phase makes, so that summing them over
        micro-batches, steps and ranks gives the mean loss of one optimizer step."""
        steps = self.m.schedule.ppo_epochs * max(mini_batches, 1)
        return {k: v / steps if reduction(k) == "partial" else v for k, v in metrics.items()}

    def _denominators(self, exp: Experience | None, rows: Tensor) -> tuple[Tensor, Tensor]:
        """Loss tokens and responses of the whole mini-batch, across micro-batches and ranks."""
        mask = exp.loss_mask[rows] if exp is not None else torch.zeros(0, 1, dtype=torch.bool)
        num_tokens = self.c.sum(mask.sum().float().to(self.m.device), "loss denominators")
        num_sequences = self.c.sum(mask.any(-1).sum().float().to(self.m.device), "loss denominators")
        if self.m.schedule.loss_denominator == "nominal":  # the reference: a thinned mini-batch steps less
            num_sequences = torch.full_like(num_sequences, float(self.m.schedule.nominal_responses))
        return num_tokens, num_sequences

    def _micro_loss(self, phase, inputs: StepInputs, micro: Tensor, denominators) -> tuple[LossOutput, PolicyBatch]:
        m, exp = self.m, inputs.exp
        loss_mask = exp.loss_mask[micro].to(m.device)
        groups = exp.rollout.group_ids[micro]
        logprobs, entropy = m._forward(m.policy, exp, micro)
        if inputs.fixed_classes is not None:
            classes = inputs.fixed_classes[micro]
        else:
            thresholds = None if inputs.thresholds is None else inputs.thresholds[micro.to(inputs.thresholds.device)]
            classes = m._classify(entropy, logprobs, loss_mask, groups, thresholds)
        old = logprobs.detach() if inputs.old_logprobs is None else inputs.old_logprobs[micro]
        ref = None if inputs.ref_logprobs is None else inputs.ref_logprobs[micro]
        weights = self._rollout_weights(exp, micro, old, loss_mask)
        batch = PolicyBatch(logprobs, old, ref, inputs.advantages[micro], loss_mask, classes, *denominators, entropy,
                            rollout_weights=weights)
        out = phase(batch)
        if weights is not None:  # how far the sampler was from the trainer, and how often the cap bit
            tokens = loss_mask.sum().float()
            out.metrics.update({
                "rollout/tis_weight_mean": ops.masked_mean(weights, loss_mask), "rollout/tis_weight_mean@weight": tokens,
                "rollout/tis_weight_max": weights.masked_fill(~loss_mask, 0.0).max(),
                "rollout/tis_capped_share": ops.masked_mean((weights >= self.m.schedule.rollout_correction_cap).float(),
                                                            loss_mask),
                "rollout/tis_capped_share@weight": tokens,
            })
        return out, batch

    def _rollout_weights(self, exp: Experience, micro: Tensor, old: Tensor, mask: Tensor) -> Tensor | None:
        """Truncated importance weights min(pi_old / pi_sampler, C) of the micro-batch, or None."""
        s = self.m.schedule
        if s.rollout_correction == "none":
            return None
        if exp.rollout.engine_logprobs is None:
            raise ConfigError("rl.rollout_correction=tis needs the rollout engine's own log-probs: set "
                              "rollout.logprobs=true (lean, hf) or use rollout=vllm")
        sampler = exp.rollout.engine_logprobs[micro].to(old.device, old.dtype)[:, : old.shape[1]]
        if sampler.shape[1] < old.shape[1]:
            sampler = torch.nn.functional.pad(sampler, (0, old.shape[1] - sampler.shape[1]))
        return ops.truncated_importance_weights(old, sampler, s.rollout_correction_cap) * mask

    def _check_finite(self, outputs, step, epoch, rows, inputs, phase) -> None:
        """One host sync per optimizer step; on a NaN, name the first bad micro-batch before any weight changes."""
        if not outputs or bool(torch.isfinite(torch.stack([o.loss.detach() for o, _ in outputs])).all()):
            return
        first = int(inputs.exp.rollout.group_ids[rows[0]]) if len(rows) else -1
        for out, batch in outputs:
            if torch.isfinite(out.loss):
                continue
            bad = [name for name in ("logprobs", "old_logprobs", "ref_logprobs", "advantages")
                   if getattr(batch, name) is not None and not torch.isfinite(getattr(batch, name)).all()]
            cause = (f"non-finite inputs: {', '.join(bad)}" if bad
                     else "all inputs finite: the constraint's arithmetic overflowed")
            raise FloatingPointError(
                f"loss is {out.loss.item()} at RL step {step} (PPO epoch {epoch}, mini-batch from group {first}, "
                f"phase {getattr(phase, 'name', 'main')}) in {type(self.m.constraint).__name__}; {cause}. Stopping "
                "before the optimizer step so the weights stay finite; the last checkpoint is intact."
            )
