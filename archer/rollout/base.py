"""What every rollout engine shares: sampling views, and the weight-sync alarm `logprob_gap`."""

from __future__ import annotations

import copy

from torch import Tensor

from archer.validation import ConfigError


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
