"""A fused decode step for Qwen2 / Llama-style decoders (the lean sampler's fast path).

During sampling, every new token runs the whole model on one position per sequence; for
small models the cost is dominated by the number of kernels and Python calls, not FLOPs.
This step reads the live parameters of a transformers model and runs each layer with one
matmul for q/k/v and one for gate/up (weights concatenated once per rollout, since the
optimizer changes them between rollouts), rotary embeddings from the model's own inverse
frequencies, and a preallocated key/value buffer written in place (no concatenation per
token). Prefill stays with transformers; its cache seeds the buffer. LoRA adapters (peft
layers around q_proj etc.) are read as their effective weights, base + scaling x B @ A, merged
once per rollout like the concatenation (archer/rollout/merged_weights.py): reading
`base_layer.weight` alone would sample the base model. Architectures or
settings it does not cover (sliding windows, q/k norms, scaled rotary variants it cannot
read) make `FastDecoder.supports` False and the sampler keeps calling the model.

Memory: the key/value buffer starts at the prompt plus 256 tokens and doubles when full (at
most to prompt + max_new_tokens), so it follows the responses' real lengths.

Precision: every tensor of the step (weights, cache, rotary tables) is held in one `dtype`,
the rollout's inference dtype, whatever the policy's parameter dtype, and any ambient
autocast is switched off: a bf16 step over an fp32 policy (fp32 master weights), a bf16
policy, or an fp32 one all run the same code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from archer.rollout.merged_weights import effective_linear, readable_linear

SUPPORTED = ("qwen2", "llama", "mistral")
# tokens the key/value buffer holds beyond the prompt at first; it doubles when full
GROWTH_BLOCK = 256


class FastDecoder:
    """One-token-per-sequence forward over a preallocated cache."""

    @staticmethod
    def supports(model: torch.nn.Module) -> bool:
        config = getattr(model, "config", None)
        if config is None or getattr(config, "model_type", None) not in SUPPORTED:
            return False
        if getattr(config, "use_sliding_window", False) or getattr(config, "sliding_window", None) and config.model_type == "mistral":
            return False
        inner = getattr(model, "model", None)
        rotary = getattr(inner, "rotary_emb", None)
        layers = getattr(inner, "layers", None)  # absent behind wrappers (a peft PeftModel): call the model
        layer = layers[0] if layers is not None and len(layers) else None
        return (rotary is not None and hasattr(rotary, "inv_freq") and layer is not None
                and not hasattr(layer.self_attn, "q_norm") and getattr(config, "hidden_act", "silu") == "silu"
                and all(readable_linear(linear) for block in layers for linear in _projections(block))
                and isinstance(getattr(model, "lm_head", None), torch.nn.Linear))

    def __init__(self, model: torch.nn.Module, prompt_cache, batch: int, total_len: int,
                 dtype: torch.dtype | None = None):
        config, inner = model.config, model.model
        self.dtype = dtype = dtype or next(model.parameters()).dtype
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.eps, self.model = config.rms_norm_eps, model
        self.inv_freq = inner.rotary_emb.inv_freq
        self.scaling = float(getattr(inner.rotary_emb, "attention_scaling", 1.0))

        def cast(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.detach().to(dtype)

        self.layers = []
        for layer in inner.layers:
            # effective (weight, bias) of each projection: LoRA deltas merged, in the step's dtype
            (wq, bq), (wk, bk), (wv, bv), (wo, bo), (wg, _), (wu, _), (wd, _) = (
                effective_linear(linear, dtype) for linear in _projections(layer))
            bias = torch.cat([bq, bk, bv]) if bq is not None else None
            self.layers.append(tuple(cast(t) for t in (
                layer.input_layernorm.weight, torch.cat([wq, wk, wv]), bias, wo, bo,
                layer.post_attention_layernorm.weight, torch.cat([wg, wu]), wd)))
        self.embed, self.final_norm = inner.embed_tokens.weight, cast(inner.norm.weight)
        self.lm_head, self.lm_bias = cast(model.lm_head.weight), cast(getattr(model.lm_head, "bias", None))
        keys, values = _cache_tensors(prompt_cache)
        self.length, self.total_len = keys[0].shape[2], total_len
        # the buffer grows as responses do (doubling, up to prompt + max_new_tokens), so memory
        # follows the real lengths rather than the limit: 32K-token budgets with 1K-token answers
        capacity = min(total_len, self.length + GROWTH_BLOCK)
        shape = (batch, self.kv_heads, capacity, self.head_dim)
        self.keys = [k.new_zeros(shape, dtype=dtype) for k in keys]
        self.values = [v.new_zeros(shape, dtype=dtype) for v in values]
        for i, (k, v) in enumerate(zip(keys, values)):
            self.keys[i][:, :, : self.length] = k
            self.values[i][:, :, : self.length] = v

    @property
    def capacity(self) -> int:
        return self.keys[0].shape[2]

    def _grow(self) -> None:
        """Double the buffer (at most to prompt + max_new_tokens), keeping what it holds."""
        capacity = min(self.total_len, max(2 * self.capacity, self.length + 1))
        for buffers in (self.keys, self.values):
            for i, old in enumerate(buffers):
                new = old.new_zeros((*old.shape[:2], capacity, old.shape[3]))
                new[:, :, : self.length] = old[:, :, : self.length]
                buffers[i] = new

    def _rms(self, x: Tensor, weight: Tensor) -> Tensor:
        dtype = x.dtype
        x = x.float()
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)).to(dtype)

    @torch.no_grad()
    def step(self, tokens: Tensor, positions: Tensor, key_mask: Tensor) -> Tensor:
        """Logits [B, V] (float32) of the next token after `tokens` [B] at `positions` [B];
        `key_mask` [B, length + 1] is True on real keys (prompt padding False)."""
        with torch.autocast(tokens.device.type, enabled=False):
            return self._step(tokens, positions, key_mask).float()

    def _step(self, tokens: Tensor, positions: Tensor, key_mask: Tensor) -> Tensor:
        if self.length + 1 > self.capacity:
            self._grow()
        b, h, kv, d = tokens.shape[0], self.heads, self.kv_heads, self.head_dim
        hidden = F.embedding(tokens, self.embed).to(self.dtype)[:, None]  # [B, 1, H]
        freqs = positions[:, None].float() * self.inv_freq[None].float()  # [B, d/2], rotary angles in fp32
        emb = torch.cat([freqs, freqs], dim=-1)
        cos = (emb.cos() * self.scaling).to(self.dtype)[:, None, None]
        sin = (emb.sin() * self.scaling).to(self.dtype)[:, None, None]
        slot, end = self.length, self.length + 1
        mask = key_mask[:, None, None, :end]
        for i, (norm1, wqkv, bqkv, wo, bo, norm2, wgu, wdown) in enumerate(self.layers):
            qkv = F.linear(self._rms(hidden, norm1), wqkv, bqkv)
            q, k, v = qkv.split([h * d, kv * d, kv * d], dim=-1)
            q = q.view(b, 1, h, d).transpose(1, 2)
            k = k.view(b, 1, kv, d).transpose(1, 2)
            q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
            self.keys[i][:, :, slot] = k[:, :, 0]
            self.values[i][:, :, slot] = v.view(b, kv, d)
            keys, values = self.keys[i][:, :, :end], self.values[i][:, :, :end]
            # Grouped-query attention without copying the cache: the h // kv query heads that
            # share a key/value head (heads kv_i * g ... kv_i * g + g - 1, as repeat_interleave
            # pairs them) attend as g query rows of that head. Repeating the cache instead would
            # copy all of it on every layer and token, which dominates decoding after long prompts.
            q = q.reshape(b, kv, h // kv, d)
            attended = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
            hidden = hidden + F.linear(attended.reshape(b, 1, h * d), wo, bo)
            gate, up = F.linear(self._rms(hidden, norm2), wgu).chunk(2, dim=-1)
            hidden = hidden + F.linear(F.silu(gate) * up, wdown)
        self.length = end
        return F.linear(self._rms(hidden, self.final_norm), self.lm_head, self.lm_bias)[:, 0]


def _projections(layer: torch.nn.Module) -> tuple[torch.nn.Module, ...]:
    """q, k, v, o, gate, up, down of a decoder layer (plain Linear or LoRA-wrapped)."""
    a, m = layer.self_attn, layer.mlp
    return a.q_proj, a.k_proj, a.v_proj, a.o_proj, m.gate_proj, m.up_proj, m.down_proj


def _rotate_half(x: Tensor) -> Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def _cache_tensors(cache) -> tuple[list[Tensor], list[Tensor]]:
    """Per-layer keys and values [B, kv_heads, P, d] of a transformers cache (old or new API)."""
    if hasattr(cache, "layers"):
        return [layer.keys for layer in cache.layers], [layer.values for layer in cache.layers]
    return list(cache.key_cache), list(cache.value_cache)
