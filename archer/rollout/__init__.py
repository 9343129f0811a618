"""Rollout engines: sample responses for prompt token ids (hf here; vllm on GPUs)."""

from archer.rollout.hf import HFRolloutEngine

__all__ = ["HFRolloutEngine"]
