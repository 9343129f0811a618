"""The reference rollout engine: transformers `generate`, on CPU or GPU (`rollout=hf`).

Prompts are left-padded and each is repeated n times (responses of one prompt stay
consecutive). Generation runs in sub-batches of `batch_size` sequences to bound memory.
The engine only samples; the trainer's own forward pass computes log-probs and entropy.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor

from archer.rollout.base import sampling_view
from archer.types import RolloutBatch
from archer.validation import check_positive


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """long [B, L] left-padded ids and bool [B, L] mask."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = True
    return ids, mask


def response_lengths(response_ids: Tensor, eos_ids: list[int], pad_id: int) -> tuple[Tensor, Tensor]:
    """(lengths [N], stopped [N]): tokens up to and including the first EOS; without an
    EOS, up to the trailing run of padding that `generate` writes after a stop string."""
    n, t = response_ids.shape
    is_eos = torch.isin(response_ids, torch.tensor(eos_ids, device=response_ids.device))
    has_eos = is_eos.any(-1)
    first_eos = torch.where(has_eos, is_eos.int().argmax(-1), torch.full((n,), t, device=response_ids.device))
    not_pad = response_ids != pad_id
    # index after the last non-pad token
    last_real = torch.where(not_pad.any(-1), t - not_pad.flip(-1).int().argmax(-1), torch.zeros_like(first_eos))
    lengths = torch.where(has_eos, first_eos + 1, last_real)
    return lengths, has_eos


class HFRolloutEngine:
    """Batched sampling with `model.generate`.

    Args:
        max_new_tokens: response length limit; longer responses are truncated.
        temperature: sampling temperature T (also divides the trainer's logits).
        top_p, top_k: nucleus / top-k sampling (1.0 / 0 disable them).
        stop_strings: extra strings that end a response (besides EOS).
        batch_size: sequences generated at once (memory bound).
        per_prompt_seed: sample each prompt's group in its own call, seeded by (step seed,
            prompt tokens): the responses then do not depend on which other prompts share the
            batch, so 1 and N processes train on the same rollouts (slower; for equivalence
            checks and exact reproducibility across cluster sizes).
    """

    def __init__(
        self,
        max_new_tokens: int = 32,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        stop_strings: list[str] | None = None,
        batch_size: int = 256,
        per_prompt_seed: bool = False,
    ):
        self.max_new_tokens = int(check_positive("rollout.max_new_tokens", max_new_tokens))
        self.temperature = float(check_positive("rollout.temperature", temperature))
        if not 0 < top_p <= 1:
            raise ValueError(f"rollout.top_p must be in (0, 1], got {top_p}")
        self.top_p, self.top_k = float(top_p), int(top_k)
        self.stop_strings = list(stop_strings or [])
        self.batch_size = int(check_positive("rollout.batch_size", batch_size))
        self.per_prompt_seed = bool(per_prompt_seed)
        self.tokenizer = None

    def bind(self, tokenizer) -> HFRolloutEngine:
        """Attach the tokenizer (decoding, padding, stop strings)."""
        self.tokenizer = tokenizer
        return self

    def with_sampling(self, **settings) -> HFRolloutEngine:
        """A copy with other sampling settings (e.g. the evaluation temperature)."""
        return sampling_view(self, **settings)

    def sync_weights(self, policy: torch.nn.Module) -> None:
        """Nothing to do: this engine samples from the training policy object itself."""

    @torch.no_grad()
    def generate(self, policy: torch.nn.Module, prompt_ids: list[list[int]], n: int = 1, seed: int | None = None) -> RolloutBatch:
        """`n` responses per prompt, each prompt's responses consecutive; `seed` is used when
        `per_prompt_seed` is on (else sampling follows the global torch RNG)."""
        if self.per_prompt_seed and seed is not None:
            from archer.experience import concat_rollouts

            parts = []
            for ids in prompt_ids:
                digest = hashlib.sha256(f"{seed}/{ids}".encode()).digest()
                torch.manual_seed(int.from_bytes(digest[:6], "big"))
                parts.append(self.generate(policy, [ids], n))
            return concat_rollouts(parts, self.tokenizer.pad_token_id)
        tok = self.tokenizer
        if tok is None:
            raise RuntimeError("HFRolloutEngine.bind(tokenizer) must be called before generate")
        rows = [ids for ids in prompt_ids for _ in range(n)]
        group_ids = torch.arange(len(prompt_ids)).repeat_interleave(n)
        eos_ids = _eos_ids(policy, tok)
        was_training = policy.training
        policy.eval()
        try:
            chunks = self._sample(policy, prompt_ids, n, eos_ids)
        finally:
            policy.train(was_training)
        prompt_ids_t, prompt_mask = left_pad(rows, tok.pad_token_id)
        width = max(c.shape[1] for c in chunks)
        response_ids = torch.cat(
            [torch.nn.functional.pad(c, (0, width - c.shape[1]), value=tok.pad_token_id) for c in chunks]
        )
        lengths, stopped_by_eos = response_lengths(response_ids, eos_ids, tok.pad_token_id)
        response_mask = torch.arange(width) < lengths.unsqueeze(-1)
        response_ids = response_ids.masked_fill(~response_mask, tok.pad_token_id)
        texts = tok.batch_decode(
            [r[: int(length)] for r, length in zip(response_ids, lengths)], skip_special_tokens=True
        )
        stopped_by_string = torch.tensor([any(t.endswith(s) for s in self.stop_strings) for t in texts])
        truncated = ~stopped_by_eos & ~stopped_by_string & (lengths >= self.max_new_tokens)
        return RolloutBatch(prompt_ids_t, prompt_mask, response_ids, response_mask, truncated, group_ids, texts)

    def _sample(self, policy: torch.nn.Module, prompt_ids: list[list[int]], n: int, eos_ids: list[int]) -> list[Tensor]:
        """Response token chunks [rows, <= max_new_tokens], rows in prompt order, n per prompt."""
        rows = [ids for ids in prompt_ids for _ in range(n)]
        return [self._generate_chunk(policy, rows[start : start + self.batch_size], eos_ids)
                for start in range(0, len(rows), self.batch_size)]

    def _generate_chunk(self, policy: torch.nn.Module, rows: list[list[int]], eos_ids: list[int]) -> Tensor:
        device = next(policy.parameters()).device
        ids, mask = left_pad(rows, self.tokenizer.pad_token_id)
        kwargs = dict(
            do_sample=True,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_new_tokens=self.max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=eos_ids,
        )
        if self.stop_strings:
            kwargs.update(stop_strings=self.stop_strings, tokenizer=self.tokenizer)
        out = policy.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
        return out[:, ids.shape[1] :].cpu()


def _eos_ids(policy: torch.nn.Module, tokenizer) -> list[int]:
    configured = getattr(getattr(policy, "generation_config", None), "eos_token_id", None)
    ids = configured if isinstance(configured, list) else [configured] if configured is not None else []
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids
