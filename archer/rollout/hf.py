"""The reference rollout engine: transformers `generate`, on CPU or GPU (`rollout=hf`).

Prompts are left-padded and each is repeated n times (responses of one prompt stay
consecutive). Generation runs in sub-batches of `batch_size` sequences to bound memory.
The engine only samples; the trainer's own forward pass computes log-probs and entropy.

Sampling is exactly temperature / top-k / top-p as configured: the model's own
`generation_config` (Qwen-Instruct models ship a repetition penalty, others top-k, min
lengths, suppressed tokens) is set aside during `generate`, since the loss assumes samples
from the policy's plain softmax. A response's length comes from where it stopped (its first
sampled EOS, or the step its stop string completed), never from padding, so a pad id equal
to the EOS id cannot put a never-sampled EOS into the loss.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList
from transformers.generation.stopping_criteria import StopStringCriteria

from archer.config_checks import ConfigError, check_positive
from archer.rollout.base import inference_precision, sampling_view
from archer.types import RolloutBatch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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


def response_lengths(response_ids: Tensor, eos_ids: list[int], stop_lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(lengths [N], stopped_by_eos [N]): tokens up to and including the first EOS; else up to
    where a stop string ended the response (`stop_lengths`, tokens generated when it stopped);
    else every generated column (the response ran to the length limit)."""
    n, t = response_ids.shape
    is_eos = torch.isin(response_ids, torch.tensor(eos_ids, device=response_ids.device))
    has_eos = is_eos.any(-1)
    first_eos = torch.where(has_eos, is_eos.int().argmax(-1) + 1, torch.full((n,), t, device=response_ids.device))
    lengths = first_eos if stop_lengths is None else torch.minimum(first_eos, stop_lengths.to(first_eos.device))
    stopped_by_eos = has_eos & (lengths == first_eos)
    return lengths, stopped_by_eos


@dataclass
class SampledChunk:
    """What a sampler returns for a chunk of rows (rows in prompt order, n per prompt).

    Attributes:
        tokens: long [rows, <= max_new_tokens], padded after each row stops.
        stop_lengths: long [rows], tokens generated when a stop string completed, or None.
        logprobs: float [rows, same width], the sampler's log-probs of the drawn tokens after
            temperature / top-k / top-p, or None when not asked for.
    """

    tokens: Tensor
    stop_lengths: Tensor | None = None
    logprobs: Tensor | None = None


class _StopPositions(StoppingCriteria):
    """Wraps transformers' stop-string criterion and records, per row, how many tokens had been
    generated when its stop string completed (`generate` pads the rest)."""

    def __init__(self, tokenizer, stop_strings: list[str], prompt_width: int, rows: int):
        self.inner = StopStringCriteria(tokenizer, stop_strings)
        self.prompt_width = prompt_width
        self.lengths = torch.full((rows,), torch.iinfo(torch.long).max, dtype=torch.long)

    def __call__(self, input_ids: Tensor, scores: Tensor, **kwargs) -> Tensor:
        done = self.inner(input_ids, scores, **kwargs)
        fresh = done.cpu() & (self.lengths == torch.iinfo(torch.long).max)
        self.lengths[fresh] = input_ids.shape[1] - self.prompt_width
        return done


class HFRolloutEngine:
    """Batched sampling with `model.generate`.

    Args:
        max_new_tokens: response length limit; longer responses are truncated.
        temperature: sampling temperature T (also divides the trainer's logits).
        top_p, top_k: nucleus / top-k sampling (1.0 / 0 disable them).
        stop_strings: extra strings that end a response (besides EOS).
        batch_size: sequences generated at once (memory bound).
        cache_memory_gb: a bound on the key/value cache of one generation call: fewer rows go
            in at once when rows x (longest prompt + max_new_tokens) would hold more (a group's
            samples may then be split across calls). None: 70% of the GPU memory free when the
            call starts, and no bound on the CPU.
        dtype: the dtype the policy computes in while sampling (float32, bfloat16, float16; None:
            its parameters' dtype): bf16 sampling over fp32 master weights, whatever autocast
            surrounds the call.
        logprobs: also return the sampler's own log-probs of the drawn tokens (after
            temperature, top-k, top-p) as `RolloutBatch.engine_logprobs`, for rollout correction.
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
        dtype: str | None = None,
        logprobs: bool = False,
        cache_memory_gb: float | None = None,
    ):
        self.max_new_tokens = int(check_positive("rollout.max_new_tokens", max_new_tokens))
        self.temperature = float(check_positive("rollout.temperature", temperature))
        if not 0 < top_p <= 1:
            raise ValueError(f"rollout.top_p must be in (0, 1], got {top_p}")
        self.top_p, self.top_k = float(top_p), int(top_k)
        self.stop_strings = list(stop_strings or [])
        self.batch_size = int(check_positive("rollout.batch_size", batch_size))
        self.per_prompt_seed = bool(per_prompt_seed)
        if dtype is not None and dtype not in DTYPES:
            raise ConfigError(f"rollout.dtype must be one of {list(DTYPES)} or null, got {dtype!r}")
        self.dtype = dtype
        self.logprobs = bool(logprobs)
        self.cache_memory_gb = None if cache_memory_gb is None else float(
            check_positive("rollout.cache_memory_gb", cache_memory_gb))
        self.tokenizer = None

    @property
    def torch_dtype(self) -> torch.dtype | None:
        return DTYPES[self.dtype] if self.dtype else None

    def bind(self, tokenizer) -> HFRolloutEngine:
        """Attach the tokenizer (decoding, padding, stop strings)."""
        self.tokenizer = tokenizer
        return self

    def with_sampling(self, **settings) -> HFRolloutEngine:
        """A copy with other sampling settings (e.g. the evaluation temperature)."""
        return sampling_view(self, **settings)

    def sync_weights(self, policy: torch.nn.Module, root: torch.nn.Module | None = None) -> None:
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
        width = max(chunk.tokens.shape[1] for chunk in chunks)
        lengths, stopped_by_eos = zip(*(response_lengths(c.tokens, eos_ids, c.stop_lengths) for c in chunks))
        lengths, stopped_by_eos = torch.cat(lengths), torch.cat(stopped_by_eos)
        response_ids = torch.cat(
            [torch.nn.functional.pad(c.tokens, (0, width - c.tokens.shape[1]), value=tok.pad_token_id) for c in chunks]
        )
        response_mask = torch.arange(width) < lengths.unsqueeze(-1)
        engine_logprobs = None
        if self.logprobs:
            engine_logprobs = torch.cat([torch.nn.functional.pad(c.logprobs.float(), (0, width - c.logprobs.shape[1]))
                                         for c in chunks]).masked_fill(~response_mask, 0.0)
        response_ids = response_ids.masked_fill(~response_mask, tok.pad_token_id)
        texts = tok.batch_decode(
            [r[: int(length)] for r, length in zip(response_ids, lengths)], skip_special_tokens=True
        )
        truncated = ~stopped_by_eos & (lengths >= self.max_new_tokens)
        if self.stop_strings:  # the stop string may complete on the very last token
            truncated &= ~torch.tensor([any(t.endswith(s) for s in self.stop_strings) for t in texts])
        return RolloutBatch(prompt_ids_t, prompt_mask, response_ids, response_mask, truncated, group_ids, texts,
                            engine_logprobs)

    def _sample(self, policy: torch.nn.Module, prompt_ids: list[list[int]], n: int,
                eos_ids: list[int]) -> list[SampledChunk]:
        """The sampled chunks, rows in prompt order, n per prompt."""
        rows = [ids for ids in prompt_ids for _ in range(n)]
        per_call = self.rows_per_call(policy, prompt_ids)
        return [self._generate_chunk(policy, rows[start : start + per_call], eos_ids)
                for start in range(0, len(rows), per_call)]

    def rows_per_call(self, policy: torch.nn.Module, prompt_ids: list[list[int]]) -> int:
        """Sequences one generation call may hold: `batch_size`, fewer when their key/value
        cache at full length would exceed `cache_memory_gb` (or, on a GPU, 70% of free memory)."""
        budget = self.cache_memory_gb * 2**30 if self.cache_memory_gb is not None else _free_accelerator_bytes(policy)
        if budget is None:
            return self.batch_size
        longest = max((len(ids) for ids in prompt_ids), default=0) + self.max_new_tokens
        return max(1, min(self.batch_size, int(budget // (kv_bytes_per_token(policy, self.torch_dtype) * longest))))

    def _generate_chunk(self, policy: torch.nn.Module, rows: list[list[int]], eos_ids: list[int]) -> SampledChunk:
        device = next(policy.parameters()).device
        ids, mask = left_pad(rows, self.tokenizer.pad_token_id)
        config = GenerationConfig(do_sample=True, num_beams=1, temperature=self.temperature, top_p=self.top_p,
                                  top_k=self.top_k, max_new_tokens=self.max_new_tokens,
                                  pad_token_id=self.tokenizer.pad_token_id, eos_token_id=eos_ids)
        stops = _StopPositions(self.tokenizer, self.stop_strings, ids.shape[1], len(rows)) if self.stop_strings else None
        criteria = StoppingCriteriaList([stops] if stops else [])
        # the model's own generation_config would add its processors to every field we leave unset
        own, policy.generation_config = policy.generation_config, GenerationConfig()
        try:
            with inference_precision(policy, self.torch_dtype):
                out = policy.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config,
                                      stopping_criteria=criteria, output_scores=self.logprobs,
                                      return_dict_in_generate=True)
        finally:
            policy.generation_config = own
        tokens = out.sequences[:, ids.shape[1] :]
        logprobs = None
        if self.logprobs:  # `scores` are the processed logits each token was drawn from
            scores = torch.stack(out.scores, dim=1).float().log_softmax(-1)
            logprobs = scores.gather(-1, tokens[:, : scores.shape[1], None])[..., 0].cpu()
        return SampledChunk(tokens.cpu(), stops.lengths if stops else None, logprobs)


# share of the free GPU memory the key/value cache of one call may take when no budget is set:
# the rest covers the step's logits, the prefill's activations and allocator slack
FREE_MEMORY_SHARE = 0.7


def kv_bytes_per_token(model: torch.nn.Module, dtype: torch.dtype | None = None) -> int:
    """Bytes of key/value cache one token of one sequence takes: layers x (keys + values) x
    key/value heads x head size x the element size of `dtype` (default: the parameters')."""
    config = model.config
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    itemsize = (dtype or next(model.parameters()).dtype).itemsize
    return config.num_hidden_layers * 2 * kv_heads * head_dim * itemsize


def _free_accelerator_bytes(policy: torch.nn.Module) -> float | None:
    device = next(policy.parameters()).device
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return FREE_MEMORY_SHARE * free


def _eos_ids(policy: torch.nn.Module, tokenizer) -> list[int]:
    configured = getattr(getattr(policy, "generation_config", None), "eos_token_id", None)
    ids = configured if isinstance(configured, list) else [configured] if configured is not None else []
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids
