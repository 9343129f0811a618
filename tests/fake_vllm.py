"""A stand-in for the `vllm` package on CPU that enforces the rules of the real one which the
rollout engine depends on (docs/vllm.md), so that tests fail where vLLM would misbehave.

Installed with `install(monkeypatch)`: `sys.modules["vllm"]` becomes this module, so the
engine's lazy `from vllm import LLM, SamplingParams` finds it. Its model is a real Hugging Face
model loaded from the folder the engine hands it, sampled token by token on CPU.

The rules, as vLLM's V1 executor and worker have them:
- `sleep(level)` while anything is asleep is skipped ("Executor is already sleeping"): the
  fake records a violation, which a test asserts never happens.
- `wake_up(tags)` wakes only the named tags, and the executor reports sleeping until every
  tag is awake; a tag that is not asleep makes the whole call return early; `wake_up()` with
  nothing asleep returns early. A full `wake_up()` while only part sleeps re-maps memory that
  is still mapped: a violation.
- `generate` while anything sleeps raises; `load_weights` while the weights sleep raises;
  `load_weights` with an unknown name or a wrong shape raises (as vLLM's weight loaders do).
- `distributed_executor_backend="external_launcher"` reads RANK and LOCAL_RANK from the
  environment (KeyError without them) and needs in-process execution.
- Log-probs are raw (before temperature) unless `logprobs_mode="processed_logprobs"`; the stop
  string is cut from the text unless `include_stop_str_in_output`; sample i of a seeded request
  uses seed + i; temperature must be in [0, 2].
"""

from __future__ import annotations

import os
import sys
import types
from dataclasses import dataclass

import torch

__version__ = "0.33.0"
INSTANCES: list[LLM] = []  # every LLM built since `install`
BOTH = {"weights", "kv_cache"}


def install(monkeypatch) -> types.ModuleType:
    """Make `import vllm` give this module for the rest of the test; returns it."""
    INSTANCES.clear()
    monkeypatch.setitem(sys.modules, "vllm", sys.modules[__name__])
    # the engine turns multiprocessing off for the process: restore the environment after the test
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    return sys.modules[__name__]


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 16
    stop: list[str] | None = None
    include_stop_str_in_output: bool = False
    logprobs: int | None = None
    seed: int | None = None
    skip_special_tokens: bool = True

    def __post_init__(self):
        if not 0 <= self.temperature <= 2:
            raise ValueError(f"temperature must be in [0, 2], got {self.temperature}")
        if self.top_k < -1:
            raise ValueError(f"top_k must be -1 or 0 (off) or at least 1, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str
    logprobs: list[dict[int, Logprob]] | None


@dataclass
class RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]


class FakeModel:
    """vLLM's model object as the engine reaches it: `load_weights` by Hugging Face name."""

    def __init__(self, llm: LLM, model: torch.nn.Module):
        self.llm, self.model = llm, model

    def load_weights(self, weights) -> set[str]:
        llm = self.llm
        llm.log.append("load_weights")
        if "weights" in llm.sleeping_tags:
            raise RuntimeError("load_weights while the weights sleep: writes into unmapped memory")
        own = dict(self.model.named_parameters())
        loaded = set()
        for name, tensor in weights:
            if name not in own:
                raise KeyError(f"vLLM has no weight named {name!r}")
            if tuple(tensor.shape) != tuple(own[name].shape):
                raise ValueError(f"{name}: loaded weight {tuple(tensor.shape)} does not fit {tuple(own[name].shape)}")
            with torch.no_grad():
                own[name].copy_(tensor)
            loaded.add(name)
        llm.loaded.append(sorted(loaded))
        return loaded


class _Runner:
    def __init__(self, model: FakeModel):
        self.model = model

    def get_model(self) -> FakeModel:
        return self.model


class LLM:
    """`vllm.LLM` with the behaviours listed in the module docstring."""

    def __init__(self, model: str, **kwargs):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.kwargs = dict(kwargs, model=model)
        self.log: list[str] = ["LLM"]
        self.violations: list[str] = []  # what real vLLM would silently get wrong
        self.warnings: list[str] = []  # what real vLLM would log and ignore
        self.loaded: list[list[str]] = []
        self.requests: list[tuple[list[int], SamplingParams]] = []
        self.sleeping_tags: set[str] = set()
        self.environment = {k: os.environ.get(k) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR",
                                                            "MASTER_PORT", "VLLM_ENABLE_V1_MULTIPROCESSING")}
        if kwargs.get("distributed_executor_backend") == "external_launcher":
            rank, local = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])  # as vLLM reads them
            if os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "1") != "0":
                raise AssertionError("To get deterministic execution, please set VLLM_ENABLE_V1_MULTIPROCESSING=0")
            self.device = f"cuda:{local}"
            self.rank = rank
        else:
            self.device, self.rank = "cuda:0", 0
        self.logprobs_mode = kwargs.get("logprobs_mode", "raw_logprobs")
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
        worker = types.SimpleNamespace(model_runner=_Runner(FakeModel(self, self.model)))
        self.llm_engine = types.SimpleNamespace(
            model_executor=types.SimpleNamespace(driver_worker=types.SimpleNamespace(worker=worker)))
        INSTANCES.append(self)

    # -- sleep mode, as vLLM's Executor.sleep / wake_up ---------------------------------------

    @property
    def is_sleeping(self) -> bool:
        return bool(self.sleeping_tags)

    def sleep(self, level: int = 1) -> None:
        self.log.append(f"sleep({level})")
        if not self.kwargs.get("enable_sleep_mode"):
            raise AssertionError("Sleep mode is not enabled in the model config")
        self.reset_prefix_cache(logged=False)  # LLM.sleep resets it first
        if self.is_sleeping:
            self.violations.append(f"sleep while {sorted(self.sleeping_tags)} asleep: vLLM skips it")
            return
        self.sleeping_tags = set(BOTH)

    def wake_up(self, tags: list[str] | None = None) -> None:
        self.log.append(f"wake_up({','.join(tags)})" if tags else "wake_up()")
        if not self.is_sleeping:
            self.warnings.append("Executor is not sleeping.")
            return
        if tags:
            for tag in tags:
                if tag not in self.sleeping_tags:
                    self.warnings.append(f"Tag {tag} is not in sleeping tags {sorted(self.sleeping_tags)}")
                    return
            self.sleeping_tags -= set(tags)
        else:
            if self.sleeping_tags != BOTH:
                self.violations.append(f"wake_up() while only {sorted(self.sleeping_tags)} sleeps: re-maps mapped memory")
            self.sleeping_tags = set()

    def reset_prefix_cache(self, logged: bool = True) -> bool:
        if logged:
            self.log.append("reset_prefix_cache")
        return True

    # -- sampling -------------------------------------------------------------------------------

    def generate(self, prompts, sampling_params, use_tqdm: bool = True) -> list[RequestOutput]:
        self.log.append("generate")
        if self.is_sleeping:
            raise RuntimeError(f"generate while {sorted(self.sleeping_tags)} asleep")
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        if len(params) != len(prompts):
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        out = []
        for prompt, p in zip(prompts, params):
            ids = list(prompt["prompt_token_ids"])
            self.requests.append((ids, p))
            out.append(RequestOutput(ids, [self._sample(ids, p, i) for i in range(p.n)]))
        return out

    @torch.no_grad()
    def _sample(self, prompt: list[int], p: SamplingParams, index: int) -> CompletionOutput:
        generator = torch.Generator().manual_seed(p.seed + index if p.seed is not None else len(self.requests) * 1000 + index)
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}
        tokens, logprobs, reason, text = [], [], "length", ""
        for _ in range(p.max_tokens):
            logits = self.model(torch.tensor([prompt + tokens])).logits[0, -1].float()
            scaled = _filtered(logits / p.temperature, p.top_k, p.top_p)
            probs = scaled.softmax(-1)
            token = int(torch.multinomial(probs, 1, generator=generator))
            tokens.append(token)
            source = scaled if self.logprobs_mode == "processed_logprobs" else logits
            logprobs.append({token: Logprob(float(source.log_softmax(-1)[token]), 1)})
            text = self.tokenizer.decode(tokens, skip_special_tokens=p.skip_special_tokens)
            if token in eos:
                reason = "stop"
                break
            hit = next((s for s in p.stop or [] if s in text), None)
            if hit is not None:
                end = text.index(hit) + (len(hit) if p.include_stop_str_in_output else 0)
                text, reason = text[:end], "stop"
                break
        return CompletionOutput(index, text, tokens, reason, logprobs if p.logprobs is not None else None)


def _filtered(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Logits with top-k and top-p applied (-inf outside), as vLLM's sampler."""
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1:
        ordered, order = logits.sort(descending=True)
        cumulative = ordered.softmax(-1).cumsum(-1)
        drop = cumulative - ordered.softmax(-1) >= top_p
        logits = logits.clone()
        logits[order[drop]] = float("-inf")
    return logits
