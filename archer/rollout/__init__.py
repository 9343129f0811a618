"""Rollout engines: sample responses for prompt token ids (lean and hf here; vllm on GPUs)."""

from archer.rollout.hf import HFRolloutEngine
from archer.rollout.lean import LeanRolloutEngine

__all__ = ["HFRolloutEngine", "LeanRolloutEngine"]
