"""The trainer-side forward pass: log-probs and entropy of response tokens.

The source of truth for the loss (DESIGN.md): rollout engines only sample. Padding is
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


def response_logprobs(
    model: torch.nn.Module,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    response_ids: Tensor,
    response_mask: Tensor,
    temperature: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """(logprobs, entropy), float32 [n, T] (zeros on padding), for response tokens.

    Args:
        prompt_ids, prompt_mask: [n, P], left-padded.
        response_ids, response_mask: [n, T], right-padded.
        temperature: logits are divided by the sampling temperature.
    """
    n, width = response_ids.shape
    device = next(model.parameters()).device
    first = int(prompt_mask.any(0).int().argmax()) if prompt_mask.any() else prompt_mask.shape[1]
    length = int(response_mask.sum(-1).max()) if response_mask.any() else 0
    out_lp = torch.zeros(n, width, device=device)
    out_h = torch.zeros(n, width, device=device)
    if length == 0:
        return out_lp, out_h
    ids = torch.cat([prompt_ids[:, first:], response_ids[:, :length]], dim=1).to(device)
    mask = torch.cat([prompt_mask[:, first:], response_mask[:, :length]], dim=1).to(device)
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    kwargs = {"logits_to_keep": length + 1} if _accepts_logits_to_keep(type(model)) else {}
    logits = model(input_ids=ids, attention_mask=mask.long(), position_ids=positions, use_cache=False, **kwargs).logits
    logits = logits[:, -(length + 1) : -1]
    logprobs, entropy = ops.token_logprobs_and_entropy(logits, ids[:, -length:], temperature)
    valid = response_mask[:, :length].to(device)
    # Write into fresh zero tensors (not in place on a leaf) so gradients still flow.
    out_lp = torch.cat([logprobs * valid, out_lp[:, length:]], dim=1)
    out_h = torch.cat([entropy * valid, out_h[:, length:]], dim=1)
    return out_lp, out_h
