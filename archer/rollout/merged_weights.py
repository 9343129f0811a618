"""The effective weights of a policy carrying LoRA adapters: base + scaling x B @ A, under the
plain Hugging Face names.

peft's LoRA layers wrap a Linear: its weight moves to `<module>.base_layer.weight` and the
adapter adds `<module>.lora_A.<adapter>.weight` [r, in] and `<module>.lora_B.<adapter>.weight`
[out, r]; the layer computes `base(x) + scaling * B(A(x))`. Anything that reads weights instead
of calling the model (the lean sampler's fused decoder, the vLLM weight sync, export) must read
`W + scaling * B @ A` under the name `<module>.weight`, or it would silently sample the base.

Duck-typed on peft's layer attributes (`base_layer`, `lora_A`, `lora_B`, `scaling`), so the
rollout engines do not import peft (an optional extra). Only plain LoRA on Linear layers is
read: DoRA, LoRA biases and transposed (fan_in_fan_out) layers are refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch
from torch import Tensor

# `<module>.lora_A.<adapter>.weight`, `<module>.lora_B.<adapter>.weight`
_LORA_PARAMETER = re.compile(r"^(?P<module>.+)\.lora_(?P<side>[AB])\.(?P<adapter>[^.]+)\.weight$")
# `<module>.base_layer.weight` / `.bias`: the wrapped Linear's own tensors
_BASE_PARAMETER = re.compile(r"^(?P<module>.+)\.base_layer\.(?P<kind>weight|bias)$")


def is_lora_layer(module: torch.nn.Module) -> bool:
    """True for a peft LoRA layer (a wrapped Linear with `lora_A` / `lora_B`)."""
    return hasattr(module, "base_layer") and hasattr(module, "lora_A") and hasattr(module, "lora_B")


def active_scalings(module: torch.nn.Module) -> dict[str, float]:
    """adapter name -> scaling of the adapters a LoRA layer adds to its output now: none while its
    adapters are disabled (the reference pass) or already merged into the base weight."""
    if getattr(module, "disable_adapters", False) or getattr(module, "merged", False):
        return {}
    active = getattr(module, "active_adapters", None) or []
    active = [active] if isinstance(active, str) else list(active)
    scalings = {}
    for adapter in active:
        if adapter not in module.lora_A:
            continue
        _refuse_unsupported(module, adapter)
        scalings[adapter] = float(module.scaling[adapter])
    return scalings


def _refuse_unsupported(module: torch.nn.Module, adapter: str) -> None:
    """Only `W + scaling * B @ A` is computed here; other LoRA variants would be read wrong."""
    if getattr(module, "use_dora", {}).get(adapter, False):
        raise NotImplementedError(f"LoRA adapter {adapter!r} uses DoRA, whose merged weight is not W + s * B @ A; "
                                  "Archer's samplers and export read plain LoRA only")
    if getattr(module, "lora_bias", {}).get(adapter, False):
        raise NotImplementedError(f"LoRA adapter {adapter!r} has a bias (lora_bias=True); Archer reads plain LoRA only")
    if getattr(module, "fan_in_fan_out", False):
        raise NotImplementedError("LoRA on a transposed (fan_in_fan_out) layer; Archer reads Linear layers only")


def lora_scalings(model: torch.nn.Module) -> dict[str, dict[str, float]]:
    """module name -> {adapter: scaling} for every LoRA layer of `model` (names as in
    `model.named_modules()`, so they prefix `model.named_parameters()`); empty without LoRA."""
    return {name: active_scalings(module) for name, module in model.named_modules() if is_lora_layer(module)}


def lora_delta(lora_a: Tensor, lora_b: Tensor, scaling: float) -> Tensor:
    """float32 [out, in]: what one adapter adds to the base weight."""
    return scaling * (lora_b.detach().float() @ lora_a.detach().float())


def merged_weight(base: Tensor, deltas: Iterable[Tensor], dtype: torch.dtype | None = None) -> Tensor:
    """base + every delta, summed in float32, in `dtype` (None: the base's)."""
    total = base.detach().float()
    for delta in deltas:
        if delta.shape != total.shape:
            raise ValueError(f"LoRA delta of shape {tuple(delta.shape)} does not fit a base weight of {tuple(total.shape)}")
        total = total + delta
    return total.to(dtype or base.dtype)


def effective_linear(module: torch.nn.Module, dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor | None]:
    """(weight, bias) a Linear applies now, LoRA deltas included (in `dtype`; None: the base's)."""
    if not is_lora_layer(module):
        weight, bias = module.weight.detach(), module.bias
        return (weight if dtype is None else weight.to(dtype)), (None if bias is None else bias.detach())
    base = module.base_layer
    deltas = [lora_delta(module.lora_A[a].weight, module.lora_B[a].weight, s) for a, s in active_scalings(module).items()]
    bias = None if base.bias is None else base.bias.detach()
    if not deltas:
        return (base.weight.detach() if dtype is None else base.weight.detach().to(dtype)), bias
    return merged_weight(base.weight, deltas, dtype), bias


def readable_linear(module: torch.nn.Module) -> bool:
    """True when `effective_linear` can read `module`: a Linear, or plain LoRA around one."""
    if is_lora_layer(module):
        try:
            active_scalings(module)
        except NotImplementedError:
            return False
        return isinstance(module.base_layer, torch.nn.Linear)
    return isinstance(module, torch.nn.Linear)


def merge_lora(named: Iterable[tuple[str, Tensor]], scalings: dict[str, dict[str, float]],
               only: set[str] | None = None, dtype: torch.dtype | None = None) -> list[tuple[str, Tensor]]:
    """Parameters under plain names with every LoRA layer merged, adapter tensors dropped.

    Args:
        named: (name, tensor) pairs as `model.named_parameters()` gives them (peft names).
        scalings: `lora_scalings(model)` of the same model (module name -> adapter -> scaling).
        only: return just the tensors these parameter names change (a LoRA layer's merged
            weight when its base weight or an adapter tensor is named); None: everything.
        dtype: the dtype of the merged weights (None: the base's), e.g. the sampler's.

    Returns:
        (name, tensor): `<m>.base_layer.weight` becomes `<m>.weight` = base + sum of scaling x B @ A
        (a new tensor), `<m>.base_layer.bias` becomes `<m>.bias`; other
        tensors pass through unchanged (the same tensor objects).
    """
    named = list(named)
    adapters: dict[str, dict[str, dict[str, Tensor]]] = {}  # module -> adapter -> {"A": ..., "B": ...}
    touched: set[str] = set()  # LoRA modules with a parameter in `only`
    for name, tensor in named:
        lora, base = _LORA_PARAMETER.match(name), _BASE_PARAMETER.match(name)
        if lora:
            adapters.setdefault(lora["module"], {}).setdefault(lora["adapter"], {})[lora["side"]] = tensor
        weight_part = lora or (base if base and base["kind"] == "weight" else None)  # what the merged weight reads
        if only is not None and name in only and weight_part:
            touched.add(weight_part["module"])
    out: list[tuple[str, Tensor]] = []
    for name, tensor in named:
        if _LORA_PARAMETER.match(name):
            continue
        base = _BASE_PARAMETER.match(name)
        if base is None or base["kind"] == "bias":  # as it is (a base bias under its plain name)
            if only is None or name in only:
                out.append((name if base is None else f"{base['module']}.bias", tensor))
            continue
        module = base["module"]
        if only is not None and module not in touched:
            continue
        plain = f"{module}.weight"
        pairs = adapters.get(module, {})
        deltas = [lora_delta(pairs[a]["A"], pairs[a]["B"], s) for a, s in scalings.get(module, {}).items() if a in pairs]
        out.append((plain, merged_weight(tensor, deltas, dtype)))
    return out
