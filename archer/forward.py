"""The trainer-side forward pass: log-probs and entropy of response tokens.

The source of truth for the loss (docs/design.md): rollout engines only sample. Padding is
trimmed first (prompt columns that are padding in every row, response columns past the
longest response), positions are counted from the first real token like `generate` does,
and only the logits that predict response tokens are computed.
"""

from __future__ import annotations

import inspect
from functools import lru_cache

import torch
from torch import Tensor

from archer import ops


@lru_cache(maxsize=16)
def _accepts_logits_to_keep(model_class: type) -> bool:
    return "logits_to_keep" in inspect.signature(model_class.forward).parameters


@lru_cache(maxsize=16)
def cache_argument(model_class: type) -> str:
    """The forward's key/value cache argument: `cache` (transformers >= 5.x) or `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def activation_checkpointing(model: torch.nn.Module) -> bool:
    """True when the model recomputes activations in backward (transformers' checkpointing)."""
    flag = getattr(model, "is_activation_checkpointing", None)
    if flag is None:
        flag = getattr(model, "is_gradient_checkpointing", False)
    return bool(flag)


def enable_activation_checkpointing(model: torch.nn.Module) -> None:
    """Recompute each decoder layer's activations in backward instead of storing them (the
    update's memory then grows with one layer's activations, not all of them)."""
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def output_cache(output):
    """The key/value cache of a model output, under either name."""
    return output.cache if hasattr(output, "cache") else output.past_key_values


def response_logprobs(
    model: torch.nn.Module,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    response_ids: Tensor,
    response_mask: Tensor,
    temperature: float = 1.0,
    group_ids: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """(logprobs, entropy), float32 [n, T] (zeros on padding), for response tokens.

    Args:
        prompt_ids, prompt_mask: [n, P], left-padded.
        response_ids, response_mask: [n, T], right-padded.
        temperature: logits are divided by the sampling temperature.
        group_ids: [n], rows with the same id share their prompt. When given and it saves
            enough work, each distinct prompt is run once and its key/value cache is shared
            by its group's responses (gradients add up over the group, so the result is the
            same as running every row whole).
    """
    n, width = response_ids.shape
    device = next(model.parameters()).device
    first = int(prompt_mask.any(0).int().argmax()) if prompt_mask.any() else prompt_mask.shape[1]
    length = int(response_mask.sum(-1).max()) if response_mask.any() else 0
    out_lp = torch.zeros(n, width, device=device)
    out_h = torch.zeros(n, width, device=device)
    if length == 0:
        return out_lp, out_h
    # decided on the host copies (rollouts live on the CPU): no GPU synchronisation
    # prompt sharing needs the prompt's key/value cache, which activation checkpointing turns off
    share = group_ids is not None and not (model.training and activation_checkpointing(model))
    shared = _shared_prompts(prompt_ids[:, first:], group_ids, length) if share else None
    # Under causal attention, right padding comes after every real token and never reaches one:
    # without left padding the forward needs no mask, and the model skips building a dense
    # [n, 1, L, L] mask for its attention (the same logits on real tokens, less memory).
    needs_mask = not bool(prompt_mask[:, first:].all())
    prompt_ids, prompt_mask = prompt_ids[:, first:].to(device), prompt_mask[:, first:].to(device)
    responses = response_ids[:, :length].to(device)
    mask = torch.cat([prompt_mask, response_mask[:, :length].to(device)], dim=1)
    # Real tokens count from 0 after the left padding; right padding keeps counting (repeated
    # positions would read as packed sequences, for which transformers builds a dense mask).
    left_pads = (~prompt_mask).sum(-1, keepdim=True)
    positions = (torch.arange(mask.shape[1], device=device)[None] - left_pads).clamp(min=0)
    if shared is not None:
        logits = _logits_sharing_prompts(model, prompt_ids, responses, mask, positions, *(t.to(device) for t in shared))
    else:
        ids = torch.cat([prompt_ids, responses], dim=1)
        kwargs = {"logits_to_keep": length + 1} if _accepts_logits_to_keep(type(model)) else {}
        attention = mask.long() if needs_mask else None
        logits = model(input_ids=ids, attention_mask=attention, position_ids=positions, use_cache=False, **kwargs).logits
        logits = logits[:, -(length + 1) : -1]
    logprobs, entropy = ops.token_logprobs_and_entropy(logits, responses, temperature)
    valid = response_mask[:, :length].to(device)
    # Write into fresh zero tensors (not in place on a leaf) so gradients still flow.
    out_lp = torch.cat([logprobs * valid, out_lp[:, length:]], dim=1)
    out_h = torch.cat([entropy * valid, out_h[:, length:]], dim=1)
    return out_lp, out_h


# Sharing pays when it removes at least this share of the forward's tokens: below that the
# second forward call costs more than the prompt tokens it saves.
MIN_SAVED_SHARE = 0.25


def _shared_prompts(prompt_ids: Tensor, group_ids: Tensor, length: int) -> tuple[Tensor, Tensor] | None:
    """(first row of each distinct prompt, row -> distinct prompt index), or None when
    sharing would not save enough."""
    groups, inverse = torch.unique_consecutive(group_ids.to(prompt_ids.device), return_inverse=True)
    n, prompt_len = prompt_ids.shape
    saved = (n - len(groups)) * prompt_len
    if saved < MIN_SAVED_SHARE * n * (prompt_len + length):
        return None
    firsts = torch.zeros(len(groups), dtype=torch.long, device=prompt_ids.device)
    firsts.scatter_reduce_(0, inverse, torch.arange(n, device=prompt_ids.device), reduce="amin", include_self=False)
    if not torch.equal(prompt_ids[firsts][inverse], prompt_ids):
        return None  # rows of one group id with different prompts: run every row whole
    return firsts, inverse


def _logits_sharing_prompts(model, prompt_ids, responses, mask, positions, firsts, inverse) -> Tensor:
    """Logits [n, L, V] that predict each response token, running each prompt once."""
    prompt_len, length = prompt_ids.shape[1], responses.shape[1]
    prompt_out = model(input_ids=prompt_ids[firsts], attention_mask=mask[firsts, :prompt_len].long(),
                       position_ids=positions[firsts, :prompt_len], use_cache=True, logits_to_keep=1)
    cache = output_cache(prompt_out)
    cache.batch_select_indices(inverse)  # each response row gets its prompt's keys and values
    first_logits = prompt_out.logits[:, -1:][inverse]  # predicts the first response token
    if length == 1:
        return first_logits
    rest = model(input_ids=responses[:, :-1], attention_mask=mask[:, :-1].long(), position_ids=positions[:, prompt_len:-1],
                 use_cache=True, **{cache_argument(type(model)): cache}).logits
    return torch.cat([first_logits, rest], dim=1)
