"""A lean autoregressive sampler: prefill once, then one cached forward per new token.

`transformers.generate` is general (beam search, logits processors, stopping criteria,
streamers, cache classes); for RL rollouts of a plain causal LM most of that is per-token
Python overhead, which dominates small models and short responses. This loop does only
what sampling needs, with the same distribution as `generate(do_sample=True)`: logits
divided by the temperature, then top-k, then top-p (HF's warper order), then a draw.
"""

from __future__ import annotations

import torch
from torch import Tensor

from archer.forward import cache_argument, output_cache
from archer.rollout.base import inference_precision
from archer.rollout.fast_decode import FastDecoder


def filter_logits(logits: Tensor, temperature: float, top_k: int, top_p: float) -> Tensor:
    """Temperature, top-k and nucleus filtering of next-token logits [B, V] (-inf = removed)."""
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # drop a token when the tokens before it already reach top_p (the first always stays)
        drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def draw(probs: Tensor) -> Tensor:
    """One index per row with probability `probs` [B, V]: argmax of p / Exp(1) noise (the
    exponential race, as vLLM samples), cheaper than `torch.multinomial` and exact."""
    return (probs / torch.empty_like(probs).exponential_(1)).argmax(dim=-1)


@torch.no_grad()
def sample(policy: torch.nn.Module, ids: Tensor, mask: Tensor, max_new_tokens: int, eos_ids: list[int], pad_id: int,
           temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, check_every: int = 8, repeats: int = 1,
           dtype: torch.dtype | None = None, return_logprobs: bool = False):
    """Sampled continuations long [B * repeats, <= max_new_tokens] of left-padded prompts `ids`
    [B, P] (`mask` True on real tokens), `repeats` consecutive samples per prompt: each prompt
    is run once and its key/value cache copied to its samples. After a sequence emits an EOS id
    it is padded with `pad_id`. Stops early once every sequence has finished (checked every
    `check_every` tokens, since the check synchronises with the GPU). The model computes in
    `dtype` (None: its parameters' dtype), whatever autocast surrounds the call. With
    `return_logprobs`, also the sampler's own log-probs of the drawn tokens, float [B * repeats, T],
    under the distribution it drew from (after temperature, top-k and top-p: vLLM's
    "processed" log-probs), for rollout correction."""
    with inference_precision(policy, dtype):
        tokens, logprobs = _sample(policy, ids, mask, max_new_tokens, eos_ids, pad_id, temperature, top_k, top_p,
                                   check_every, repeats, dtype or next(policy.parameters()).dtype)
    return (tokens, logprobs) if return_logprobs else tokens


def _sample(policy, ids, mask, max_new_tokens, eos_ids, pad_id, temperature, top_k, top_p, check_every, repeats,
            dtype) -> tuple[Tensor, Tensor]:
    device = ids.device
    eos = torch.tensor(eos_ids, device=device)
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    out = policy(input_ids=ids, attention_mask=mask.long(), position_ids=positions, use_cache=True, logits_to_keep=1)
    cache, attention, logits = output_cache(out), mask.long(), out.logits
    if repeats > 1:
        cache.batch_repeat_interleave(repeats)
        attention, positions, logits = (t.repeat_interleave(repeats, dim=0) for t in (attention, positions, logits))
    prompt_len = attention.shape[1]
    # the mask of every step at once (future columns are sliced in as the sequence grows)
    attention = torch.cat([attention, torch.ones_like(attention[:, :1]).expand(-1, max_new_tokens)], dim=1)
    cache_kw = cache_argument(type(policy))
    fast = FastDecoder(policy, cache, attention.shape[0], attention.shape[1], dtype) if FastDecoder.supports(policy) else None
    key_mask = attention.bool()
    next_position = positions[:, -1:] + 1
    finished = torch.zeros(attention.shape[0], dtype=torch.bool, device=device)
    tokens, logprobs = [], []
    for step in range(max_new_tokens):
        probs = filter_logits(logits[:, -1].float(), temperature, top_k, top_p).softmax(-1)
        token = draw(probs)
        logprobs.append(probs.gather(-1, token[:, None])[:, 0].log())
        token = token.masked_fill(finished, pad_id)
        tokens.append(token)
        finished |= torch.isin(token, eos)
        last = step == max_new_tokens - 1
        if last or ((step + 1) % check_every == 0 and bool(finished.all())):
            break
        if fast is not None:  # fused layers over a preallocated cache
            logits = fast.step(token, next_position[:, 0], key_mask)[:, None]
        else:
            out = policy(input_ids=token[:, None], attention_mask=attention[:, : prompt_len + step + 1],
                         position_ids=next_position, use_cache=True, **{cache_kw: cache})
            cache, logits = output_cache(out), out.logits
        next_position = next_position + 1
    return torch.stack(tokens, dim=1), torch.stack(logprobs, dim=1)
