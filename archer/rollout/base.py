"""What every rollout engine shares: sampling views, inference precision, and the weight-sync
alarm `logprob_gap`."""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from archer.config_checks import ConfigError


def sampling_view(engine, **settings):
    """A shallow copy of `engine` with other sampling settings (e.g. the evaluation
    temperature); it shares the engine's model state, so one vLLM instance serves both."""
    view = copy.copy(engine)
    for key, value in settings.items():
        if not hasattr(view, key):
            raise ConfigError(f"rollout has no sampling setting {key!r}")
        setattr(view, key, value)
    return view


def logprob_gap(rollout, trainer_logprobs: Tensor) -> float:
    """Mean |engine log-prob - trainer log-prob| over sampled tokens: ~0 when both hold the
    same weights; a jump means the rollout engine samples from stale weights."""
    mask = rollout.response_mask.to(trainer_logprobs.device)
    engine = rollout.engine_logprobs.to(trainer_logprobs.device, trainer_logprobs.dtype)
    width = min(engine.shape[1], trainer_logprobs.shape[1])
    diff = (engine[:, :width] - trainer_logprobs[:, :width]).abs()
    return (diff * mask[:, :width]).sum().item() / max(int(mask[:, :width].sum()), 1)


def inference_precision(policy: torch.nn.Module, dtype: torch.dtype | None):
    """A context in which the policy's forward computes in `dtype` (the rollout's inference dtype).

    Lower than the parameters' dtype (bf16 over fp32 master weights): autocast to it. Equal to
    them, or None: no autocast at all, so an ambient one (Lightning's bf16-mixed around the
    training step) does not change how rollouts are sampled.
    """
    parameter = next(policy.parameters())
    if dtype is not None and dtype != parameter.dtype and dtype in (torch.bfloat16, torch.float16):
        return torch.autocast(parameter.device.type, dtype=dtype)
    return torch.autocast(parameter.device.type, enabled=False)
