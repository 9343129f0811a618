"""The policy's weights as vLLM's `load_weights` takes them: Hugging Face names (wrapper
prefixes removed), the tensors changed since the last push, LoRA layers merged, FSDP shards
gathered whole. Pure functions and context managers, tested on CPU
(tests/unit/test_vllm_engine.py); the engine is archer/rollout/vllm.py."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch
from torch import Tensor

from archer.rollout.merged_weights import merge_lora

# Prefixes that wrappers (Lightning, DDP, FSDP, activation checkpointing) add to parameter names.
# peft's PeftModel adds `base_model.model.` (adapters injected in place add nothing).
_WRAPPER_PREFIXES = ("_forward_module.", "module.", "_fsdp_wrapped_module.", "_checkpoint_wrapped_module.",
                     "_orig_mod.", "policy.", "base_model.model.")


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


def changed_tensors(named: Iterable[tuple[str, Tensor]], last_versions: dict[str, int],
                    scalings: dict[str, dict[str, float]] | None = None,
                    dtype: torch.dtype | None = None) -> list[tuple[str, Tensor]]:
    """The parameters modified in place since the last call (their `_version` moved), with
    vLLM names; `last_versions` is updated. The first call returns every parameter.

    With LoRA (`scalings`: `lora_scalings(policy)`), vLLM holds the plain model: a layer whose
    adapter moved is pushed merged, base + scaling x B @ A in `dtype`, under its base name
    (`...q_proj.base_layer.weight` -> `...q_proj.weight`); adapter tensors never reach vLLM."""
    named, changed = list(named), set()
    for name, tensor in named:
        version = tensor._version
        if last_versions.get(name) != version:
            last_versions[name] = version
            changed.add(name)
    picked = merge_lora(named, scalings, only=changed, dtype=dtype) if scalings else \
        [(n, t) for n, t in named if n in changed]
    return [(vllm_weight_name(name), tensor.detach()) for name, tensor in picked]


def all_tensors(named: Iterable[tuple[str, Tensor]], scalings: dict[str, dict[str, float]] | None = None,
                dtype: torch.dtype | None = None) -> list[tuple[str, Tensor]]:
    """Every parameter with its vLLM name (gathered FSDP tensors), LoRA layers merged."""
    picked = merge_lora(named, scalings, dtype=dtype) if scalings else list(named)
    return [(vllm_weight_name(name), tensor.detach()) for name, tensor in picked]


def fsdp_classes() -> tuple[type, ...]:
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel
    except ImportError:
        return ()
    return (FullyShardedDataParallel,)


def outermost_units(module: torch.nn.Module, classes: tuple[type, ...]) -> list[torch.nn.Module]:
    """The instances of `classes` in `module` (itself included) that no other instance contains."""
    if not classes:
        return []
    if isinstance(module, classes):
        return [module]
    return [unit for child in module.children() for unit in outermost_units(child, classes)]


def is_dtensor(tensor: Tensor) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:
        return False
    return isinstance(tensor, DTensor)


def _summon(unit: torch.nn.Module):
    """FSDP1: the unit's full parameters, gathered from every rank (a collective), read-only."""
    return type(unit).summon_full_params(unit, writeback=False, recurse=True)


@contextlib.contextmanager
def full_parameters(policy: torch.nn.Module, root: torch.nn.Module | None = None,
                    classes: tuple[type, ...] | None = None):
    """Yields (names and whole tensors of the policy's parameters, whether they were gathered).

    FSDP1 shards live in the FSDP units of `root` (the module the strategy wrapped: Lightning's
    FSDP wraps the whole LightningModule, an ancestor of the policy, and keeps the embeddings and
    norms in that outer unit): they are summoned whole for the duration. FSDP2 parameters are
    DTensors and come back as `full_tensor()`. Both are collectives: every rank must call this,
    in the same order.
    """
    units = outermost_units(root if root is not None else policy, fsdp_classes() if classes is None else classes)
    with contextlib.ExitStack() as stack:
        for unit in units:
            stack.enter_context(_summon(unit))
        named, gathered = [], bool(units)
        for name, parameter in policy.named_parameters():
            if is_dtensor(parameter):
                parameter, gathered = parameter.full_tensor(), True
            named.append((name, parameter))
        yield named, gathered


def check_whole(weights: list[tuple[str, Tensor]], shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse shards: every tensor must have its full shape (`shapes`, recorded from the first
    push) and no FSDP flat parameter may pass."""
    for name, tensor in weights:
        expected = shapes.get(name)
        if getattr(tensor, "_is_flat_param", False) or is_dtensor(tensor) or (expected and tuple(tensor.shape) != expected):
            raise RuntimeError(
                f"weight sync: {name} has shape {tuple(tensor.shape)}, not its full {expected}: a shard reached "
                "vLLM. Under FSDP every rank must call sync_weights(policy, root=<the module the strategy "
                "wrapped>), so that the shards are gathered first")


def driver_model(llm) -> torch.nn.Module:
    """vLLM's model object in this process (external launcher: the executor is in-process).
    `driver_worker` is a wrapper holding the GPU worker as `.worker`; `get_model` unwraps
    the CUDA-graph wrapper."""
    worker = llm.llm_engine.model_executor.driver_worker
    runner = getattr(worker, "worker", worker).model_runner
    return runner.get_model() if hasattr(runner, "get_model") else runner.model
