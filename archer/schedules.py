"""Schedules of a run: the shape of one RL step (`RLSchedule`, `rl:` in conf/train.yaml) and the
learning-rate schedules, built as `_partial_` configs: `scheduler(optimizer)`.

Each schedule counts in one `unit`, stored on the scheduler and read by the trainer:
`optimizer_step` (stepped after every optimizer step) or `rl_step` (stepped once after each
RL step's updates, as the reference's verl trainer does: with `from_zero`, RL step 0 then
runs at lr 0 and RL step k < warm-up at k / warmup_steps of the base lr).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch.optim.lr_scheduler import LambdaLR

from archer.config_checks import ConfigError, check_choice

UNITS = ("optimizer_step", "rl_step")


def _warmup_factor(step: int, warmup_steps: int, from_zero: bool) -> float:
    done = step if from_zero else step + 1
    return min(1.0, done / max(warmup_steps, 1))


def linear_warmup(optimizer, warmup_steps: int = 10, unit: str = "optimizer_step", from_zero: bool = False) -> LambdaLR:
    """Linear warm-up over `warmup_steps` units, then constant.

    Args:
        unit: `optimizer_step` or `rl_step` (the reference: 10 RL steps).
        from_zero: the first unit runs at lr 0 (the reference), else at 1 / warmup_steps.
    """
    scheduler = LambdaLR(optimizer, lambda step: _warmup_factor(step, warmup_steps, from_zero))
    scheduler.unit = check_choice("scheduler.unit", unit, UNITS)
    return scheduler


def warmup_cosine(optimizer, warmup_steps: int = 10, total_steps: int = 1000, min_ratio: float = 0.1,
                  unit: str = "optimizer_step", from_zero: bool = False) -> LambdaLR:
    """Linear warm-up, then cosine decay to `min_ratio` of the base LR at `total_steps` units."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return _warmup_factor(step, warmup_steps, from_zero)
        progress = min(1.0, (step - warmup_steps) / max(total_steps - warmup_steps, 1))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = LambdaLR(optimizer, factor)
    scheduler.unit = check_choice("scheduler.unit", unit, UNITS)
    return scheduler


@dataclass(frozen=True)
class RLSchedule:
    """The shape of one RL step (docs/paper.md for the paper's values).

    Args:
        steps: RL steps to run (each: one rollout, several optimizer steps).
        prompts_per_step: prompts (groups) per rollout.
        samples_per_prompt: G, responses per prompt.
        ppo_epochs: passes over the rollout (the clip ranges only matter after the first
            optimizer step, when the policy has moved off the rollout policy).
        mini_batch_prompts: prompts per optimizer step; must divide prompts_per_step.
        micro_batch_size: sequences per forward/backward (gradient accumulation).
        micro_batch_tokens: when > 0, micro-batches are packed by tokens instead: as many rows
            (longest first) as keep rows x longest row (prompt + response) within this budget
            (archer/packing.py); `micro_batch_size` is then unused.
        rollout_correction: "none", or "tis": weight each token's policy-gradient term by
            min(pi_old / pi_sampler, `rollout_correction_cap`) with the rollout engine's own
            log-probs (truncated importance sampling; needs an engine that returns them).
        entropy_source: "current" (reference code: recomputed in every micro-batch) or
            "old" (computed once per rollout, before any update).
        grad_clip: max global grad norm.
        log_text_every: every N steps a TensorBoard text sample with classes marked (0: never).
        reuse_update_logprobs: when a step is one on-policy optimizer step (1 PPO epoch, 1
            mini-batch, 1 phase, current entropy), take the old log-probs from the update pass
            (detached) instead of a separate no-grad pass: the same numbers, one forward less.
        share_prompt_forward: run each prompt once per micro-batch and share its key/value
            cache with the group's responses (archer/forward.py; exact, used when it saves
            at least a quarter of the tokens).
        loss_denominator: the response count per-response aggregations divide by: "actual"
            (the responses the mini-batch really holds, across ranks) or "nominal"
            (mini_batch_prompts x samples_per_prompt, as the reference: a mini-batch thinned by
            dynamic sampling then takes a proportionally smaller step).
    """

    steps: int = 40
    prompts_per_step: int = 16
    samples_per_prompt: int = 8
    ppo_epochs: int = 2
    mini_batch_prompts: int = 8
    micro_batch_size: int = 64
    micro_batch_tokens: int = 0
    rollout_correction: str = "none"
    rollout_correction_cap: float = 2.0
    entropy_source: str = "current"
    grad_clip: float = 1.0
    log_text_every: int = 10
    reuse_update_logprobs: bool = True
    share_prompt_forward: bool = True
    loss_denominator: str = "actual"

    def __post_init__(self):
        for key in ("steps", "prompts_per_step", "samples_per_prompt", "ppo_epochs", "mini_batch_prompts", "micro_batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"rl.{key} must be >= 1, got {getattr(self, key)}")
        if self.prompts_per_step % self.mini_batch_prompts:
            raise ConfigError(
                f"rl.mini_batch_prompts ({self.mini_batch_prompts}) must divide rl.prompts_per_step "
                f"({self.prompts_per_step}); e.g. set rl.mini_batch_prompts={_largest_divisor(self.prompts_per_step, self.mini_batch_prompts)}"
            )
        check_choice("rl.entropy_source", self.entropy_source, ("current", "old"))
        check_choice("rl.loss_denominator", self.loss_denominator, ("actual", "nominal"))
        check_choice("rl.rollout_correction", self.rollout_correction, ("none", "tis"))
        if self.rollout_correction_cap <= 0:
            raise ConfigError(f"rl.rollout_correction_cap must be > 0 (TIS uses 2), got {self.rollout_correction_cap}")
        if self.micro_batch_tokens < 0:
            raise ConfigError(f"rl.micro_batch_tokens must be >= 0 (0: micro-batches of rl.micro_batch_size "
                              f"sequences), got {self.micro_batch_tokens}")

    @property
    def nominal_responses(self) -> int:
        """Responses a full mini-batch holds (all ranks together)."""
        return self.mini_batch_prompts * self.samples_per_prompt


def _largest_divisor(n: int, at_most: int) -> int:
    return max(d for d in range(1, min(n, at_most) + 1) if n % d == 0)
