"""The GPU rollout engine: a vLLM `LLM` built inside each training process (`rollout=vllm`).

vLLM is an optional extra (`pip install "archer-rlvr[vllm]"`), imported only by this engine;
without it, construction fails with the install command. docs/vllm.md describes the life
cycle; in short:

- One engine per training process, on that process's own GPU (`cuda:LOCAL_RANK`): vLLM's
  `external_launcher` executor runs the model in this process (no EngineCore subprocess), so
  the weight sync is a plain call of the model's own `load_weights` with the policy's tensors.
- Memory: after every generation the engine sleeps (level 1: weights backed up to CPU, KV cache
  freed); the sync wakes the weights alone, the next generation the KV cache. vLLM skips a
  `sleep` while anything is asleep, so the engine never asks for one then (`SleepCycle`).
- The sync pushes the tensors changed since the last push (all of them when FSDP gathers
  shards), then resets the prefix cache: cached prompt blocks were computed by old weights.
  A policy with LoRA adapters is pushed merged (base + scaling x B @ A) under the base names.
- Every request carries its own seed, keyed by (step or chunk seed, prompt tokens), so the
  samples do not depend on the batch a prompt shares (`per_prompt_seed`).
- The log-prob of every sampled token comes back after temperature, top-k and top-p
  (`processed_logprobs`), comparable with the trainer's (`rollout/logprob_gap`, rollout correction).

Where the engine runs (rank variables, process group, vLLM versions) is in `vllm_launch.py`;
how the policy's weights become vLLM's (names, changed tensors, LoRA merges, FSDP gathers) in
`vllm_weights.py`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import torch
from torch import Tensor

from archer.config_checks import ConfigError, check_positive
from archer.rollout.base import sampling_view
from archer.rollout.hf import left_pad
from archer.rollout.merged_weights import lora_scalings, merge_lora
from archer.rollout.vllm_launch import (
    INSTALL,
    OLDEST_VLLM,
    check_same_world,
    check_vllm_version,
    current_process_group,
    free_port,
    join_process_group,
    rank_environment,
    scoped_environ,
    world_size_now,
)
from archer.rollout.vllm_weights import (
    all_tensors,
    changed_tensors,
    check_whole,
    driver_model,
    fsdp_classes,
    full_parameters,
    is_dtensor,
    outermost_units,
)
from archer.types import RolloutBatch

MAX_TEMPERATURE = 2.0  # vLLM's SamplingParams rejects a higher temperature
BOTH = frozenset({"weights", "kv_cache"})  # what `sleep` puts to sleep


# ------------------------------------------------------------------ pure helpers (tested on CPU)

def check_temperature(temperature: float, key: str = "rollout.temperature") -> float:
    temperature = float(check_positive(key, temperature))
    if temperature > MAX_TEMPERATURE:
        raise ConfigError(f"{key}={temperature}: vLLM rejects temperatures above {MAX_TEMPERATURE}; set {key} "
                          f"to a value in (0, {MAX_TEMPERATURE}] or use rollout=hf")
    return temperature


def sampling_kwargs(temperature: float, top_p: float, top_k: int, max_new_tokens: int, stop_strings: list[str],
                    n: int, seed: int | None) -> dict:
    """`vllm.SamplingParams` arguments for one request, equivalent to the HF engine's settings."""
    check_temperature(temperature, "the sampling temperature (rollout.temperature, heldout.temperature)")
    return {
        "n": n,
        "temperature": temperature,
        "top_p": top_p,
        "top_k": top_k if top_k > 0 else -1,  # every vLLM release accepts -1 for "off" (newer ones also 0)
        "max_tokens": max_new_tokens,
        "stop": list(stop_strings) or None,
        # the HF and lean engines keep the stop string in the response; verifiers see the same text
        "include_stop_str_in_output": True,
        "logprobs": 0,  # the sampled token's log-prob only
        "seed": seed,
        "skip_special_tokens": True,
    }


def llm_options(path: str, *, dtype: str, gpu_memory_utilization: float, max_num_seqs: int,
                max_model_len: int | None, enforce_eager: bool, seed: int, sleep_mode: bool) -> dict:
    """`vllm.LLM` arguments of an engine colocated with one training process."""
    options = dict(
        model=path, dtype=dtype, gpu_memory_utilization=gpu_memory_utilization, tensor_parallel_size=1,
        max_num_seqs=max_num_seqs, enforce_eager=enforce_eager, seed=seed, enable_sleep_mode=sleep_mode,
        # the model lives in this process, on this rank's GPU, reachable for `load_weights`
        distributed_executor_backend="external_launcher",
        # log-probs after temperature / top-k / top-p: what the token was drawn from
        logprobs_mode="processed_logprobs",
    )
    if max_model_len is not None:
        options["max_model_len"] = max_model_len
    return options


def _digest(text: str) -> int:
    """48 bits of a hash: a seed that any torch generator accepts, even after adding a sample index."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:6], "big")


def call_seed(engine_seed: int, rank: int, call: int) -> int:
    """The base seed of an unseeded `generate` call: this rank's `call`-th (ranks differ)."""
    return _digest(f"vllm/{engine_seed}/{rank}/{call}")


def request_seeds(seed: int, prompt_ids: list[list[int]]) -> list[int]:
    """One seed per prompt, keyed by (seed, the prompt's tokens, how many equal prompts came
    before it): a prompt draws the same samples whichever other prompts share its batch, and
    equal prompts in one batch still draw different ones. vLLM gives sample i of a request
    `seed + i`; seeds are 48-bit hashes, so two prompts' ranges practically never meet."""
    seen: Counter = Counter()
    seeds = []
    for ids in prompt_ids:
        key = tuple(ids)
        seeds.append(_digest(f"{seed}/{list(key)}/{seen[key]}"))
        seen[key] += 1
    return seeds


def request_batches(prompt_ids: list[list[int]], n: int, max_sequences: int) -> Iterator[list[int]]:
    """Indices of prompts per `generate` call so that one call holds at most `max_sequences`
    sequences (whole groups: a prompt's n samples are never split)."""
    per_call = max(1, max_sequences // n)
    for first in range(0, len(prompt_ids), per_call):
        yield list(range(first, min(first + per_call, len(prompt_ids))))


class SleepCycle:
    """What of vLLM's memory is asleep, and the calls that wake or sleep it in the order vLLM
    supports (docs/vllm.md). vLLM's executor ignores `sleep` while anything is still asleep
    ("Executor is already sleeping"), and a full `wake_up()` re-maps every allocation, so the
    engine wakes exactly the tags that sleep and sleeps only when fully awake.

    Args:
        llm: the `vllm.LLM`.
        enabled: sleep between generations (`rollout.sleep_between_steps`).
        free_cached_memory: returns the trainer's cached-but-free GPU blocks before vLLM maps its own back.
    """

    def __init__(self, llm, enabled: bool, free_cached_memory: Callable[[], None]):
        self.llm, self.enabled, self.free_cached_memory = llm, enabled, free_cached_memory
        self.asleep: frozenset[str] = frozenset()

    def wake_all(self) -> None:
        """Before generating: everything awake."""
        if not self.asleep:
            return
        self.free_cached_memory()
        if self.asleep == BOTH:
            self.llm.wake_up()
        else:  # after a sync only the KV cache sleeps: waking the weights again would re-map them
            self.llm.wake_up(tags=sorted(self.asleep))
        self.asleep = frozenset()

    def wake_weights(self) -> None:
        """Before loading weights: the weights awake, the KV cache may sleep on."""
        if "weights" in self.asleep:
            self.free_cached_memory()
            self.llm.wake_up(tags=["weights"])
            self.asleep = self.asleep - {"weights"}

    def sleep(self) -> None:
        """After generating: weights to CPU, KV cache freed (level 1 keeps the weights, which
        the sync of changed tensors relies on)."""
        if not self.enabled:
            return
        if self.asleep:
            raise RuntimeError(f"vLLM would ignore this sleep: {sorted(self.asleep)} still asleep")
        self.llm.sleep(level=1)
        self.asleep = BOTH


def _free_cached_memory() -> None:
    torch.cuda.empty_cache()  # a no-op until CUDA is initialised


# ------------------------------------------------------------------ the engine

class VLLMRolloutEngine:
    """Colocated vLLM sampling for Archer (same interface as `HFRolloutEngine`).

    Args:
        model_path: the policy's Hugging Face folder (usually `${model.path}`); None: the
            policy is saved to a temporary folder when the engine starts (the tiny default).
        max_new_tokens, temperature, top_p, top_k, stop_strings: as `HFRolloutEngine`
            (temperature at most 2, vLLM's limit).
        gpu_memory_utilization: vLLM's share of GPU memory (the rest is the trainer's).
        tensor_parallel_size: GPUs per vLLM engine; only 1 (one engine per training process).
        max_num_seqs: sequences vLLM schedules at once.
        max_model_len: prompt + response limit (None: the model's).
        dtype: vLLM weights dtype.
        sleep_between_steps: release vLLM's GPU memory while the trainer updates.
        enforce_eager: skip CUDA graph capture (faster start, slower decode).
        seed: vLLM's engine seed, and the base of unseeded calls' request seeds.
        batch_size: sequences per `generate` call (None: the whole batch in one call, which
            lets vLLM schedule everything).
    """

    # Every request is seeded by (step or chunk seed, prompt tokens): the trainer and the
    # evaluation pass their seed, and samples do not depend on the batch or the rank count.
    per_prompt_seed = True

    def __init__(self, model_path: str | None = None, max_new_tokens: int = 1024, temperature: float = 1.0,
                 top_p: float = 1.0, top_k: int = 0, stop_strings: list[str] | None = None,
                 gpu_memory_utilization: float = 0.5, tensor_parallel_size: int = 1, max_num_seqs: int = 256,
                 max_model_len: int | None = None, dtype: str = "bfloat16", sleep_between_steps: bool = True,
                 enforce_eager: bool = False, seed: int = 0, batch_size: int | None = None):
        try:
            import vllm
        except ImportError as err:
            raise ConfigError(f"rollout=vllm needs vLLM, which is not installed: {INSTALL} (on a CUDA machine)") from err
        note = check_vllm_version(getattr(vllm, "__version__", OLDEST_VLLM))
        if note:
            print(note, flush=True)
        self.max_new_tokens = int(check_positive("rollout.max_new_tokens", max_new_tokens))
        self.temperature = check_temperature(temperature)
        if not 0 < top_p <= 1:
            raise ConfigError(f"rollout.top_p must be in (0, 1], got {top_p}; set rollout.top_p=1.0 to turn it off")
        if not 0 < gpu_memory_utilization < 1:
            raise ConfigError(f"rollout.gpu_memory_utilization must be in (0, 1), got {gpu_memory_utilization}; "
                              "it is vLLM's share of each GPU, e.g. 0.5")
        if tensor_parallel_size != 1:
            raise ConfigError(
                f"rollout.tensor_parallel_size={tensor_parallel_size}: this engine runs one vLLM per training "
                "process on that process's GPU; tensor parallelism would need every rank of a group to sample the "
                "same prompts with the same seeds (docs/vllm.md). Set rollout.tensor_parallel_size=1")
        self.model_path, self.top_p, self.top_k = model_path, float(top_p), int(top_k)
        self.stop_strings = list(stop_strings or [])
        self.options = dict(dtype=dtype, gpu_memory_utilization=gpu_memory_utilization, max_num_seqs=max_num_seqs,
                            max_model_len=max_model_len, enforce_eager=enforce_eager, seed=seed)
        self.batch_size, self.sleep_between_steps, self.seed = batch_size, sleep_between_steps, seed
        self.tokenizer = None
        # the engine itself, shared with the views made by `with_sampling` (one vLLM per process)
        self._s = SimpleNamespace(llm=None, cycle=None, versions={}, shapes={}, folder=None, calls=0, rank=0, world=1)

    def with_sampling(self, **settings) -> VLLMRolloutEngine:
        """A view of this engine (the same vLLM instance) with other sampling settings, e.g.
        the evaluation temperature."""
        return sampling_view(self, **settings)

    def bind(self, tokenizer) -> VLLMRolloutEngine:
        self.tokenizer = tokenizer
        return self

    # -- sampling ---------------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, policy: torch.nn.Module, prompt_ids: list[list[int]], n: int = 1,
                 seed: int | None = None) -> RolloutBatch:
        """`n` responses per prompt (consecutive), with vLLM's log-probs as `engine_logprobs`.
        `seed`: the step's or evaluation chunk's; None: one drawn from (engine seed, rank, call)."""
        from vllm import SamplingParams

        self._ensure_started(policy)
        s = self._s
        s.calls += 1
        seeds = request_seeds(seed if seed is not None else call_seed(self.seed, s.rank, s.calls), prompt_ids)
        s.cycle.wake_all()
        outputs = [None] * len(prompt_ids)
        for indices in request_batches(prompt_ids, n, self.batch_size or len(prompt_ids) * n):
            params = [SamplingParams(**sampling_kwargs(self.temperature, self.top_p, self.top_k, self.max_new_tokens,
                                                       self.stop_strings, n, seeds[i])) for i in indices]
            results = s.llm.generate([{"prompt_token_ids": prompt_ids[i]} for i in indices], params, use_tqdm=False)
            for i, result in zip(indices, results):
                outputs[i] = result
        s.cycle.sleep()
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

    # -- weights ----------------------------------------------------------------------------

    @torch.no_grad()
    def sync_weights(self, policy: torch.nn.Module, root: torch.nn.Module | None = None) -> int:
        """Make vLLM hold the policy's current weights (starting the engine if needed); returns
        how many tensors were pushed. Every rank must call it: FSDP gathers are collectives.

        Args:
            root: the module the training strategy wrapped (under FSDP it holds shards of the
                policy's parameters); None: the policy itself.
        """
        if self._s.llm is None:
            return self._start(policy, root)
        check_same_world(self._s.world, world_size_now())
        return self._sync(policy, root)

    def _sync(self, policy: torch.nn.Module, root: torch.nn.Module | None) -> int:
        scalings, dtype = lora_scalings(policy), self._merge_dtype
        with full_parameters(policy, root) as (named, gathered):
            # gathered tensors are new every time (their versions say nothing): push them all
            weights = all_tensors(named, scalings, dtype) if gathered else \
                changed_tensors(named, self._s.versions, scalings, dtype)
            self._push(weights)
        return len(weights)

    @property
    def _merge_dtype(self) -> torch.dtype | None:
        """LoRA layers are merged straight into vLLM's dtype (vLLM casts to it anyway): the merged
        copies the sync holds take half the memory of float32 ones under bf16."""
        dtype = getattr(torch, str(self.options["dtype"]), None)
        return dtype if isinstance(dtype, torch.dtype) else None

    def _push(self, weights: list[tuple[str, Tensor]]) -> None:
        if not weights:
            return
        if not self._s.shapes:
            self._s.shapes = {name: tuple(t.shape) for name, t in weights}
        check_whole(weights, self._s.shapes)
        self._s.cycle.wake_weights()  # from here until the next generation only the KV cache sleeps
        driver_model(self._s.llm).load_weights(weights)
        # prompt blocks cached before the push were computed by the old weights
        self._s.llm.reset_prefix_cache()

    # -- the engine's start ----------------------------------------------------------------

    def _ensure_started(self, policy: torch.nn.Module) -> None:
        if self._s.llm is None:
            self._start(policy, None)
        else:
            check_same_world(self._s.world, world_size_now())

    def _start(self, policy: torch.nn.Module, root: torch.nn.Module | None) -> int:
        """Build vLLM on this rank's GPU; returns how many tensors were pushed into it."""
        from vllm import LLM

        if self.tokenizer is None:
            raise RuntimeError("VLLMRolloutEngine.bind(tokenizer) must be called before it generates or syncs")
        env = rank_environment(os.environ, current_process_group(), free_port)
        self._s.rank, self._s.world = int(env["RANK"]), int(env["WORLD_SIZE"])
        path = self.model_path or self._save_copy(policy, root)
        # the external launcher requires in-process execution (newer vLLM releases set this themselves)
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        with scoped_environ(env):
            join_process_group(env)
            llm = LLM(**llm_options(path, sleep_mode=self.sleep_between_steps, **self.options))
        self._s.llm, self._s.cycle = llm, SleepCycle(llm, self.sleep_between_steps, _free_cached_memory)
        self._s.versions, self._s.shapes = {}, {}
        if self.model_path is None:  # vLLM read a copy of this very policy
            weights = changed_tensors(policy.named_parameters(), self._s.versions, lora_scalings(policy),
                                      self._merge_dtype)
            self._s.shapes = {name: tuple(t.shape) for name, t in weights}
            return 0
        # vLLM read the files; the policy in memory may differ (a resumed run, fp32 master weights)
        return self._sync(policy, root)

    def _save_copy(self, policy: torch.nn.Module, root: torch.nn.Module | None) -> str:
        if outermost_units(root if root is not None else policy, fsdp_classes()) or \
                any(is_dtensor(p) for p in policy.parameters()):
            raise ConfigError("rollout=vllm starts from the policy's files when its parameters are sharded: "
                              "set model.path (rollout.model_path) to the policy's Hugging Face folder")
        self._s.folder = tempfile.TemporaryDirectory(prefix="archer-vllm-")
        scalings = lora_scalings(policy)
        if scalings:  # vLLM loads a plain model: the adapter merged, under the base names
            policy.save_pretrained(self._s.folder.name, state_dict=dict(merge_lora(policy.state_dict().items(), scalings)))
        else:
            policy.save_pretrained(self._s.folder.name)
        self.tokenizer.save_pretrained(self._s.folder.name)
        return self._s.folder.name
