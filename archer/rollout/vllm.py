"""The GPU rollout engine: a vLLM `LLM` colocated with the Lightning trainer.

vLLM is an optional extra (`pip install "archer-rlvr[vllm]"`), imported only when this
engine first generates; without it, construction fails with the install command.

- Sampling parameters come from the same keys as the HF engine (temperature, top_p, top_k,
  max_new_tokens, stop_strings) and prompts go in as token ids, so both engines see the
  same prompts.
- `gpu_memory_utilization` bounds vLLM's share of the GPU; with `sleep_between_steps` the
  engine sleeps (weights to CPU, KV cache freed) while the trainer updates, if the installed
  vLLM supports sleep mode.
- After every RL step, `sync_weights` pushes the policy's changed tensors (those whose
  in-place version counter moved since the last push; frozen ones never move) into vLLM's
  model with its own `load_weights`, which maps Hugging Face names to its fused layers.
- vLLM returns the log-prob of every sampled token; the trainer logs its gap to its own
  (`rollout/logprob_gap`), the standard alarm for a silent weight-sync failure.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from types import SimpleNamespace

import torch
from torch import Tensor

from archer.config_checks import ConfigError, check_positive
from archer.rollout.base import sampling_view
from archer.rollout.hf import left_pad
from archer.types import RolloutBatch

INSTALL = 'pip install "archer-rlvr[vllm]"'
# Prefixes that wrappers (Lightning, DDP, FSDP, activation checkpointing) add to parameter names.
_WRAPPER_PREFIXES = ("_forward_module.", "module.", "_fsdp_wrapped_module.", "_checkpoint_wrapped_module.",
                     "_orig_mod.", "policy.")


def vllm_weight_name(name: str) -> str:
    """The Hugging Face name vLLM's `load_weights` expects for a trainer-side parameter name."""
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name, changed = name[len(prefix):], True
        name = name.replace("._fsdp_wrapped_module.", ".").replace("._checkpoint_wrapped_module.", ".")
    return name


def sampling_kwargs(temperature: float, top_p: float, top_k: int, max_new_tokens: int, stop_strings: list[str],
                    n: int, seed: int | None) -> dict:
    """`vllm.SamplingParams` arguments equivalent to the HF engine's settings."""
    return {
        "n": n,
        "temperature": temperature,
        "top_p": top_p,
        "top_k": top_k if top_k > 0 else -1,  # vLLM: -1 disables top-k (the HF engine's 0)
        "max_tokens": max_new_tokens,
        "stop": list(stop_strings) or None,
        "logprobs": 0,  # the sampled token's log-prob only
        "seed": seed,
        "skip_special_tokens": True,
    }


def request_batches(prompt_ids: list[list[int]], n: int, max_sequences: int) -> Iterator[list[int]]:
    """Indices of prompts per `generate` call so that one call holds at most `max_sequences`
    sequences (whole groups: a prompt's n samples are never split)."""
    per_call = max(1, max_sequences // n)
    for first in range(0, len(prompt_ids), per_call):
        yield list(range(first, min(first + per_call, len(prompt_ids))))


def changed_tensors(named: Iterable[tuple[str, Tensor]], last_versions: dict[str, int]) -> list[tuple[str, Tensor]]:
    """The parameters modified in place since the last call (their `_version` moved), with
    vLLM names; `last_versions` is updated. The first call returns every parameter."""
    out = []
    for name, tensor in named:
        version = tensor._version
        if last_versions.get(name) != version:
            last_versions[name] = version
            out.append((vllm_weight_name(name), tensor.detach()))
    return out


class VLLMRolloutEngine:
    """Colocated vLLM sampling for Archer (same interface as `HFRolloutEngine`).

    Args:
        model_path: the policy's Hugging Face folder (usually `${model.path}`); None: the
            policy is saved to a temporary folder at the first generation (the tiny default).
        max_new_tokens, temperature, top_p, top_k, stop_strings: as `HFRolloutEngine`.
        gpu_memory_utilization: vLLM's share of GPU memory (the rest is the trainer's).
        tensor_parallel_size: GPUs per vLLM engine.
        max_num_seqs: sequences vLLM schedules at once (also the size of one generate call).
        max_model_len: prompt + response limit (None: the model's).
        dtype: vLLM weights dtype.
        sleep_between_steps: release vLLM's GPU memory while the trainer updates.
        enforce_eager: skip CUDA graph capture (faster start, slower decode).
        seed: vLLM's sampling seed base.
        batch_size: sequences per `generate` call (None: the whole batch in one call, which
            lets vLLM schedule everything).
    """

    def __init__(self, model_path: str | None = None, max_new_tokens: int = 1024, temperature: float = 1.0,
                 top_p: float = 1.0, top_k: int = 0, stop_strings: list[str] | None = None,
                 gpu_memory_utilization: float = 0.5, tensor_parallel_size: int = 1, max_num_seqs: int = 256,
                 max_model_len: int | None = None, dtype: str = "bfloat16", sleep_between_steps: bool = True,
                 enforce_eager: bool = False, seed: int = 0, batch_size: int | None = None):
        try:
            import vllm  # noqa: F401
        except ImportError as err:
            raise ConfigError(f"rollout=vllm needs vLLM, which is not installed: {INSTALL} (on a CUDA machine)") from err
        self.max_new_tokens = int(check_positive("rollout.max_new_tokens", max_new_tokens))
        self.temperature = float(check_positive("rollout.temperature", temperature))
        if not 0 < top_p <= 1:
            raise ConfigError(f"rollout.top_p must be in (0, 1], got {top_p}")
        if not 0 < gpu_memory_utilization < 1:
            raise ConfigError(f"rollout.gpu_memory_utilization must be in (0, 1), got {gpu_memory_utilization}")
        self.model_path, self.top_p, self.top_k = model_path, float(top_p), int(top_k)
        self.stop_strings = list(stop_strings or [])
        self.options = dict(gpu_memory_utilization=gpu_memory_utilization, tensor_parallel_size=tensor_parallel_size,
                            max_num_seqs=max_num_seqs, max_model_len=max_model_len, dtype=dtype,
                            enforce_eager=enforce_eager, seed=seed)
        self.batch_size, self.sleep_between_steps, self.seed = batch_size, sleep_between_steps, seed
        self.tokenizer = None
        # the engine itself, shared with copies made by `with_sampling` (one vLLM per process)
        self._s = SimpleNamespace(llm=None, versions={}, asleep=False, folder=None, calls=0)

    def with_sampling(self, **settings) -> VLLMRolloutEngine:
        """A view of this engine (the same vLLM instance) with other sampling settings, e.g.
        the evaluation temperature."""
        return sampling_view(self, **settings)

    def bind(self, tokenizer) -> VLLMRolloutEngine:
        self.tokenizer = tokenizer
        return self

    # -- the engine's life cycle ----------------------------------------------------------

    def _start(self, policy: torch.nn.Module) -> None:
        from vllm import LLM

        path = self.model_path
        if path is None:  # an in-process policy: hand vLLM a saved copy
            self._s.folder = tempfile.TemporaryDirectory(prefix="archer-vllm-")
            policy.save_pretrained(self._s.folder.name)
            self.tokenizer.save_pretrained(self._s.folder.name)
            path = self._s.folder.name
        options = {k: v for k, v in self.options.items() if v is not None}
        try:
            self._s.llm = LLM(model=path, enable_sleep_mode=self.sleep_between_steps, **options)
        except TypeError:  # a vLLM without sleep mode
            self.sleep_between_steps = False
            self._s.llm = LLM(model=path, **options)
        self._s.versions = {}
        changed_tensors(policy.named_parameters(), self._s.versions)  # vLLM loaded exactly these weights

    def _wake(self) -> None:
        if self._s.asleep:
            self._s.llm.wake_up()
            self._s.asleep = False

    def _sleep(self) -> None:
        if self.sleep_between_steps and not self._s.asleep and hasattr(self._s.llm, "sleep"):
            self._s.llm.sleep(level=1)
            self._s.asleep = True

    @torch.no_grad()
    def generate(self, policy: torch.nn.Module, prompt_ids: list[list[int]], n: int = 1, seed: int | None = None) -> RolloutBatch:
        from vllm import SamplingParams

        if self.tokenizer is None:
            raise RuntimeError("VLLMRolloutEngine.bind(tokenizer) must be called before generate")
        if self._s.llm is None:
            self._start(policy)
        self._wake()
        self._s.calls += 1
        base = self.seed * 1_000_003 + self._s.calls if seed is None else seed
        outputs = [None] * len(prompt_ids)
        for indices in request_batches(prompt_ids, n, self.batch_size or len(prompt_ids) * n):
            params = SamplingParams(**sampling_kwargs(self.temperature, self.top_p, self.top_k, self.max_new_tokens,
                                                      self.stop_strings, n, base + indices[0]))
            results = self._s.llm.generate([{"prompt_token_ids": prompt_ids[i]} for i in indices], params, use_tqdm=False)
            for i, result in zip(indices, results):
                outputs[i] = result
        self._sleep()
        return self._to_batch(prompt_ids, outputs, n)

    def _to_batch(self, prompt_ids: list[list[int]], outputs, n: int) -> RolloutBatch:
        pad = self.tokenizer.pad_token_id
        rows, texts, truncated, logprobs = [], [], [], []
        for result in outputs:
            for completion in result.outputs:
                ids = list(completion.token_ids)
                rows.append(ids)
                texts.append(completion.text)
                truncated.append(completion.finish_reason == "length")
                logprobs.append([step[token].logprob for step, token in zip(completion.logprobs or [], ids)])
        width = max([len(r) for r in rows] + [1])
        response_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        response_mask = torch.zeros((len(rows), width), dtype=torch.bool)
        engine_logprobs = torch.zeros((len(rows), width))
        for i, (ids, lps) in enumerate(zip(rows, logprobs)):
            response_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            response_mask[i, : len(ids)] = True
            engine_logprobs[i, : len(lps)] = torch.tensor(lps)
        prompts, prompt_mask = left_pad([ids for ids in prompt_ids for _ in range(n)], pad)
        group_ids = torch.arange(len(prompt_ids)).repeat_interleave(n)
        return RolloutBatch(prompts, prompt_mask, response_ids, response_mask, torch.tensor(truncated), group_ids, texts,
                            engine_logprobs=engine_logprobs)

    def sync_weights(self, policy: torch.nn.Module) -> int:
        """Push the policy's changed tensors into vLLM; returns how many were sent."""
        if self._s.llm is None:
            return 0
        with _full_parameters(policy):  # FSDP: gather the shards (every rank takes part)
            weights = changed_tensors(policy.named_parameters(), self._s.versions)
            self._push(weights)
        return len(weights)

    def _push(self, weights: list[tuple[str, Tensor]]) -> None:
        if not weights:
            return
        if self._s.asleep:
            self._s.llm.wake_up(tags=["weights"]) if _accepts_tags(self._s.llm) else self._s.llm.wake_up()
        _load_weights(self._s.llm, weights)
        if self._s.asleep:
            self._s.llm.sleep(level=1)  # keeps the new weights in its CPU backup


def _full_parameters(policy: torch.nn.Module):
    """FSDP's summon_full_params when the policy is sharded, else a no-op context."""
    import contextlib

    try:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    except ImportError:
        return contextlib.nullcontext()
    if any(isinstance(m, FSDP) for m in policy.modules()):
        return FSDP.summon_full_params(policy, writeback=False, recurse=True)
    return contextlib.nullcontext()


def _accepts_tags(llm) -> bool:
    import inspect

    try:
        return "tags" in inspect.signature(llm.wake_up).parameters
    except (TypeError, ValueError):
        return False


def _load_weights(llm, weights: list[tuple[str, Tensor]]) -> None:
    """`model.load_weights(weights)` inside vLLM, across the versions' APIs."""
    if hasattr(llm, "apply_model"):  # vLLM >= 0.9: documented, runs in every worker
        llm.apply_model(lambda model: model.load_weights(weights))
        return
    executor = llm.llm_engine.model_executor
    worker = executor.driver_worker
    runner = getattr(worker, "worker", worker).model_runner
    runner.model.load_weights(weights)
