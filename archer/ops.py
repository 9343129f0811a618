"""Pure tensor maths of the Archer loss family (docs/paper.md).

Tensors and floats in, tensors out: no config objects, no `.item()`, no distributed calls.

- `token_logprobs_and_entropy`: log-prob of the sampled token and the entropy of the
  next-token distribution, both differentiable, in float32 chunks of rows so that no
  full-vocabulary float32 copy of the whole batch is ever materialised (forward or backward).
- `kl_penalty`: the k1, k2, k3 ("low_var_kl") and abs estimators of KL(pi || ref).
- `clipped_surrogate`: PPO clip with per-token lower/upper ranges and the dual clip.
- `aggregate`: the four loss-aggregation modes, with global denominators.
"""

from __future__ import annotations

import torch
from torch import Tensor

LOG_RATIO_CLAMP = 20.0  # clamp on log pi/pi_old and log ref/pi before exp (reference code)
K3_CLAMP = 10.0  # clamp on the k3 KL value (verl's low_var_kl)
# float32 bytes of one chunk of rows: peak extra memory stays a few times this, whatever the batch
CHUNK_BYTES = 64 * 2**20

KL_ESTIMATORS = ("k1", "k2", "k3", "abs")
AGGREGATIONS = ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm")


# --------------------------------------------------------------------------------------
# log-probs and entropy


def _forward_chunks(logits: Tensor, tokens: Tensor, temperature: float, chunk_rows: int) -> tuple[Tensor, Tensor]:
    rows = logits.shape[0]
    logprobs = torch.empty(rows, dtype=torch.float32, device=logits.device)
    entropy = torch.empty(rows, dtype=torch.float32, device=logits.device)
    for start in range(0, rows, chunk_rows):
        end = min(start + chunk_rows, rows)
        logprobs[start:end], entropy[start:end] = _chunk_stats(logits[start:end], tokens[start:end], temperature)
    return logprobs, entropy


def _chunk_stats(logits: Tensor, tokens: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """float32 (logprob of token, entropy) for a [R, V] chunk of rows."""
    x = logits.float()
    if temperature != 1.0:
        x = x / temperature
    lse = torch.logsumexp(x, dim=-1)
    token_logit = x.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    # H = lse - sum_v p_v x_v
    entropy = lse - (torch.softmax(x, dim=-1) * x).sum(-1)
    return token_logit - lse, entropy


class _ChunkedTokenLogprob(torch.autograd.Function):
    """log p(token) and entropy over [R, V] logits, chunk by chunk.

    Backward recomputes each chunk's softmax instead of saving it, so the only full-size
    tensor is the logits' own gradient:
        d logp / d logits = (onehot - p) / T
        d H / d logits = -p * (log p + H) / T      (H = -sum_v p_v log p_v)
    The entropy term is only computed when a loss uses the entropy (the entropy bonus,
    `constraint.entropy_coef`); otherwise its gradient arrives as None and costs nothing.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, tokens: Tensor, temperature: float, chunk_rows: int):
        logprobs, entropy = _forward_chunks(logits, tokens, temperature, chunk_rows)
        ctx.save_for_backward(logits, tokens)
        ctx.temperature = temperature
        ctx.chunk_rows = chunk_rows
        # unused outputs get None (not zeros) in backward: the entropy's gradient is skipped
        ctx.set_materialize_grads(False)
        return logprobs, entropy

    @staticmethod
    def backward(ctx, grad_logprobs: Tensor | None, grad_entropy: Tensor | None):
        logits, tokens = ctx.saved_tensors
        temperature, chunk_rows = ctx.temperature, ctx.chunk_rows
        if grad_logprobs is None and grad_entropy is None:
            return None, None, None, None
        grad = torch.empty_like(logits)
        for start in range(0, logits.shape[0], chunk_rows):
            end = min(start + chunk_rows, logits.shape[0])
            x = logits[start:end].float()
            if temperature != 1.0:
                x = x / temperature
            chunk_grad = None
            if grad_logprobs is not None:
                g = grad_logprobs[start:end].float()
                chunk_grad = torch.softmax(x, dim=-1).mul_(-g.unsqueeze(-1))
                chunk_grad.scatter_add_(-1, tokens[start:end].unsqueeze(-1), g.unsqueeze(-1))
            if grad_entropy is not None:
                entropy_grad = _entropy_grad(x, grad_entropy[start:end].float())
                chunk_grad = entropy_grad if chunk_grad is None else chunk_grad.add_(entropy_grad)
            if temperature != 1.0:
                chunk_grad.div_(temperature)
            grad[start:end] = chunk_grad.to(grad.dtype)
        return grad, None, None, None


def _entropy_grad(x: Tensor, grad_entropy: Tensor) -> Tensor:
    """g * dH/dx for temperature-scaled logits x [R, V]: -g * p * (log p + H)."""
    logp = torch.log_softmax(x, dim=-1)
    p = logp.exp()
    entropy = -(p * logp).sum(-1, keepdim=True)
    return p.mul_(logp.add_(entropy)).mul_(-grad_entropy.unsqueeze(-1))


def token_logprobs_and_entropy(
    logits: Tensor,
    tokens: Tensor,
    temperature: float = 1.0,
    chunk_rows: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Log-prob of each sampled token and the entropy of each next-token distribution.

    Args:
        logits: [..., V] in any float dtype; the logits that predict `tokens`.
        tokens: long [...], the sampled tokens.
        temperature: the sampling temperature T; logits are divided by it (docs/paper.md).
        chunk_rows: rows processed at once in float32 (default: as many as fit in
            `CHUNK_BYTES`); peak extra memory is a few chunks, independent of the batch size.

    Returns:
        (logprobs, entropy), float32 [...], both with grad to `logits`. Classifiers read the
        entropy detached (it only selects tokens, as in the reference code); the entropy bonus
        (`constraint.entropy_coef`) backpropagates through it.
    """
    if logits.shape[:-1] != tokens.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match tokens {tuple(tokens.shape)}")
    lead = tokens.shape
    chunk_rows = chunk_rows or max(1, CHUNK_BYTES // (4 * logits.shape[-1]))
    flat_logits = logits.reshape(-1, logits.shape[-1])
    flat_tokens = tokens.reshape(-1)
    if torch.is_grad_enabled() and logits.requires_grad:
        logprobs, entropy = _ChunkedTokenLogprob.apply(flat_logits, flat_tokens, temperature, chunk_rows)
    else:
        with torch.no_grad():
            logprobs, entropy = _forward_chunks(flat_logits, flat_tokens, temperature, chunk_rows)
    return logprobs.reshape(lead), entropy.reshape(lead)


def naive_logprobs_and_entropy(logits: Tensor, tokens: Tensor, temperature: float = 1.0) -> tuple[Tensor, Tensor]:
    """Unchunked full-softmax reference of `token_logprobs_and_entropy` (tests, benchmarks);
    autograd differentiates both outputs."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1), entropy


# --------------------------------------------------------------------------------------
# KL estimators


def kl_penalty(logprobs: Tensor, ref_logprobs: Tensor, estimator: str = "k3") -> Tensor:
    """Per-token estimate of KL(pi_theta || pi_ref) from sampled-token log-probs.

    k1 = log pi - log ref; k2 = (log pi - log ref)^2 / 2; abs = |log pi - log ref|;
    k3 ("low_var_kl", Schulman): x = log ref - log pi clamped to [-20, 20],
    k3 = exp(x) - x - 1, clamped to [-10, 10] as in the reference code.
    """
    diff = logprobs - ref_logprobs
    if estimator == "k1":
        return diff
    if estimator == "k2":
        return 0.5 * diff.square()
    if estimator == "abs":
        return diff.abs()
    if estimator == "k3":
        x = (-diff).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
        return (x.exp() - x - 1).clamp(-K3_CLAMP, K3_CLAMP)
    raise ValueError(f"unknown KL estimator {estimator!r}; choose one of {KL_ESTIMATORS}")


# --------------------------------------------------------------------------------------
# clipped surrogate


def clipped_surrogate(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    eps_low: Tensor | float,
    eps_high: Tensor | float,
    dual_clip: float | None = 10.0,
) -> dict[str, Tensor]:
    """PPO's clipped surrogate with per-token ranges and the dual clip (docs/paper.md).

        r = exp(clamp(log pi - log pi_old, -20, 20))
        l = max(-A r, -A clip(r, 1 - eps_low, 1 + eps_high))
        if A < 0: l = min(l, -A c)

    Args:
        logprobs, old_logprobs: float [N, T].
        advantages: float [N] (broadcast over tokens) or [N, T].
        eps_low, eps_high: floats or float [N, T] (per-token ranges, e.g. by token class).
        dual_clip: c > 1, or None for no dual clip.

    Returns:
        dict of [N, T] tensors: `loss` (lower is better), `ratio`, and bool masks
        `clipped_high` (A > 0 and r > 1 + eps_high: the upper clip removed the gradient),
        `clipped_low` (A < 0 and r < 1 - eps_low), `clipped_dual` (the dual clip bound).
    """
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1)
    advantages = advantages.expand_as(logprobs)
    ratio = torch.exp((logprobs - old_logprobs).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))
    unclipped = -advantages * ratio
    # torch.clamp takes both bounds as numbers or both as tensors, never one of each.
    lower, upper = 1 - eps_low, 1 + eps_high
    if isinstance(lower, Tensor) != isinstance(upper, Tensor):
        lower, upper = torch.as_tensor(lower).to(ratio), torch.as_tensor(upper).to(ratio)
    clipped = -advantages * torch.clamp(ratio, lower, upper)
    loss = torch.maximum(unclipped, clipped)
    clip_active = clipped > unclipped
    clipped_dual = torch.zeros_like(clip_active)
    if dual_clip is not None:
        bound = -advantages * dual_clip
        clipped_dual = (advantages < 0) & (loss > bound)
        loss = torch.where(advantages < 0, torch.minimum(loss, bound), loss)
    return {
        "loss": loss,
        "ratio": ratio.detach(),
        "clipped_high": clip_active & (advantages > 0),
        "clipped_low": clip_active & (advantages < 0),
        "clipped_dual": clipped_dual,
    }


# --------------------------------------------------------------------------------------
# rollout correction


def truncated_importance_weights(old_logprobs: Tensor, sampler_logprobs: Tensor, cap: float) -> Tensor:
    """Truncated importance sampling (TIS) weights [N, T], detached: min(pi_old / pi_sampler, C).

    The sampler (vLLM, a bf16 copy) and the trainer compute slightly different probabilities
    for the same tokens; weighting each token's policy-gradient term by this ratio corrects
    for sampling from the former while training the latter, and the cap `C` bounds the variance.

    Args:
        old_logprobs: float [N, T], the trainer's log-probs of the sampled tokens under the old policy.
        sampler_logprobs: float [N, T], the rollout engine's own (temperature-processed) log-probs.
        cap: C > 0.
    """
    ratio = torch.exp((old_logprobs - sampler_logprobs).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))
    return ratio.clamp(max=cap).detach()


# --------------------------------------------------------------------------------------
# aggregation


def aggregate(
    values: Tensor,
    mask: Tensor,
    mode: str = "token_mean",
    num_tokens: int | float | Tensor | None = None,
    num_sequences: int | float | Tensor | None = None,
    norm_length: int | None = None,
) -> Tensor:
    """Reduce per-token values [N, T] to a scalar over `mask`, with global denominators.

    Each mode is a sum over this batch divided by a denominator that belongs to the whole
    mini-batch (`num_tokens`, `num_sequences`; None: this batch's own), so summing the
    results of any micro-batch split gives exactly the mini-batch value and gradient.

    - token_mean: sum of all tokens / number of tokens (DAPO, the paper's description).
    - seq_mean_token_mean: mean over sequences of each sequence's token mean (GRPO; what
      the reference code computes with micro-batch size 1).
    - seq_mean_token_sum: mean over sequences of each sequence's token sum.
    - seq_mean_token_sum_norm: sum of all tokens / (sequences * norm_length) (Dr.GRPO: a
      constant length normaliser instead of each response's own length).
    """
    maskf = mask.to(values.dtype)
    masked = values * maskf
    if mode == "token_mean":
        denom = maskf.sum() if num_tokens is None else num_tokens
        return masked.sum() / _at_least_one(denom)
    n_seq = mask.shape[0] if num_sequences is None else num_sequences
    if mode == "seq_mean_token_mean":
        per_seq = masked.sum(-1) / maskf.sum(-1).clamp(min=1)
        return per_seq.sum() / _at_least_one(n_seq)
    if mode == "seq_mean_token_sum":
        return masked.sum() / _at_least_one(n_seq)
    if mode == "seq_mean_token_sum_norm":
        if norm_length is None:
            raise ValueError("seq_mean_token_sum_norm needs norm_length (the max response length)")
        return masked.sum() / (_at_least_one(n_seq) * norm_length)
    raise ValueError(f"unknown aggregation {mode!r}; choose one of {AGGREGATIONS}")


def _at_least_one(denominator: int | float | Tensor) -> int | float | Tensor:
    # An empty batch contributes 0, never NaN.
    if isinstance(denominator, Tensor):
        return denominator.clamp(min=1)
    return max(denominator, 1)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of `values` over `mask` (0 when the mask is empty); for metrics."""
    maskf = mask.to(values.dtype)
    return (values * maskf).sum() / maskf.sum().clamp(min=1)
