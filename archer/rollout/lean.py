"""The default rollout engine (`rollout=lean`): `HFRolloutEngine` with the lean sampler.

Instead of transformers `generate`, each prompt group is sampled by
`archer/rollout/sampling.py`: the prompt runs once and its key/value cache is copied to its
n samples, then one cached forward per token (a fused decode step for Qwen2/Llama-style
models). The draws are the same as `generate`'s (temperature, top-k, top-p, then the same
exponential race `torch.multinomial` uses), without its per-token overhead. Stop strings
need transformers' stopping criteria, so with them it samples through `generate`.
"""

from __future__ import annotations

import torch

from archer.rollout.hf import HFRolloutEngine, SampledChunk, left_pad
from archer.rollout.sampling import sample


class LeanRolloutEngine(HFRolloutEngine):
    """`HFRolloutEngine` (same arguments, same outputs) with a faster sampling loop."""

    def _sample(self, policy: torch.nn.Module, prompt_ids: list[list[int]], n: int,
                eos_ids: list[int]) -> list[SampledChunk]:
        if self.stop_strings:
            return super()._sample(policy, prompt_ids, n, eos_ids)
        device = next(policy.parameters()).device
        chunks = []
        for prompts, repeats in call_plan(len(prompt_ids), n, self.rows_per_call(policy, prompt_ids)):
            ids, mask = left_pad([prompt_ids[i] for i in prompts], self.tokenizer.pad_token_id)
            tokens, logprobs = sample(policy, ids.to(device), mask.to(device), self.max_new_tokens, eos_ids,
                                      self.tokenizer.pad_token_id, self.temperature, self.top_k, self.top_p,
                                      repeats=repeats, dtype=self.torch_dtype, return_logprobs=True)
            chunks.append(SampledChunk(tokens.cpu(), None, logprobs.cpu() if self.logprobs else None))
        return chunks


def call_plan(prompts: int, n: int, rows_per_call: int) -> list[tuple[list[int], int]]:
    """(prompt indices, samples of each) per sampler call, rows in prompt order, at most
    `rows_per_call` rows a call: whole groups while a group fits, else one prompt's samples
    split over several calls."""
    if rows_per_call >= n:
        per_call = rows_per_call // n
        return [(list(range(first, min(first + per_call, prompts))), n) for first in range(0, prompts, per_call)]
    return [([prompt], min(rows_per_call, n - done)) for prompt in range(prompts) for done in range(0, n, rows_per_call)]
