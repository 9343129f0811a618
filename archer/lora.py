"""LoRA adapters on the policy (`model.lora.r > 0`), through peft.

The adapter is injected into the policy in place (`peft.inject_adapter_in_model`): the policy
stays the transformers class it was (Qwen2ForCausalLM, LlamaForCausalLM), so every code path
that calls or inspects it (the forward's `logits_to_keep` and cache arguments, `generate` and
its generation config, FSDP's decoder-layer classes, the checkpoint's model config) works
unchanged. A `PeftModel` wrapper would change the forward's signature and attribute paths.

- Only adapter weights train: peft freezes the base, and the optimizer gets the parameters
  that require grad (`ArcherModule.configure_optimizers`). Adapters are float32 whatever
  `model.master_dtype` holds the frozen base in.
- The reference model is the same object with its adapter disabled (`adapters_disabled`):
  no second copy in memory or in checkpoints.
- Samplers, the vLLM sync and export read the merged weights (archer/rollout/merged_weights.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from archer.config_checks import ConfigError
from archer.rollout.merged_weights import is_lora_layer, lora_scalings, merge_lora

INSTALL = 'pip install "archer-rlvr[lora]"'
# the attention and MLP projections of Llama / Qwen2 / Mistral decoder layers
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ADAPTER = "default"  # peft's name for the one adapter a run trains


@dataclass(frozen=True)
class LoraSettings:
    """`model.lora`: the adapter's shape.

    Args:
        r: the adapter's rank; 0 turns LoRA off (full fine-tuning).
        alpha: the update is scaled by alpha / r.
        dropout: dropout on the adapter's input while training, in [0, 1).
        target_modules: names of the Linear layers that get an adapter (the last part of
            their module path, e.g. q_proj), or full module paths.
    """

    r: int = 0
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = field(default=DEFAULT_TARGETS)

    def __post_init__(self):
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 0:
            raise ConfigError(f"model.lora.r must be an integer >= 0 (0: no LoRA), got {self.r!r}; "
                              "set model.lora.r=16 for example")
        if not self.enabled:
            return
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not self.alpha > 0:
            raise ConfigError(f"model.lora.alpha must be > 0, got {self.alpha!r}; the update is scaled by alpha / r, "
                              f"e.g. model.lora.alpha={2 * self.r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ConfigError(f"model.lora.dropout must be in [0, 1), got {self.dropout!r}; set model.lora.dropout=0.05 "
                              "or 0.0 for none")
        targets = self.target_modules
        if isinstance(targets, str) or not targets or not all(isinstance(t, str) and t for t in targets):
            raise ConfigError(f"model.lora.target_modules must be a non-empty list of module names, got {targets!r}; "
                              f"e.g. model.lora.target_modules=[{','.join(DEFAULT_TARGETS)}]")
        object.__setattr__(self, "target_modules", tuple(targets))

    @property
    def enabled(self) -> bool:
        return self.r > 0

    @property
    def scaling(self) -> float:
        return self.alpha / self.r

    @classmethod
    def from_config(cls, node) -> LoraSettings:
        """From the `model.lora` config node (a DictConfig or a dict; None: LoRA off)."""
        if node is None:
            return cls()
        values = dict(node)
        unknown = set(values) - {"r", "alpha", "dropout", "target_modules"}
        if unknown:
            raise ConfigError(f"model.lora has unknown keys {sorted(unknown)}; the keys are r, alpha, dropout, "
                              "target_modules")
        if values.get("target_modules") is not None:
            targets = values["target_modules"]
            values["target_modules"] = targets if isinstance(targets, str) else tuple(targets)
        return cls(**{k: v for k, v in values.items() if v is not None})

    def as_dict(self) -> dict:
        return {"r": self.r, "alpha": self.alpha, "dropout": self.dropout, "target_modules": list(self.target_modules)}


def require_peft():
    """The peft module, or a ConfigError with the install command."""
    try:
        import peft
    except ImportError as err:
        raise ConfigError(f"model.lora.r > 0 needs peft, which is not installed: {INSTALL}") from err
    return peft


def check_targets(model: torch.nn.Module, settings: LoraSettings) -> None:
    """Every target names at least one Linear layer of `model`; the missing ones are named."""
    linear = {name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    missing = [t for t in settings.target_modules if not any(n == t or n.endswith(f".{t}") for n in linear)]
    if missing:
        seen = sorted({n.rsplit(".", 1)[-1] for n in linear})
        raise ConfigError(f"model.lora.target_modules: {missing} name no Linear layer of {type(model).__name__} "
                          f"(its Linear layers: {seen}); drop them or pick from that list")
    config = getattr(model, "config", None)
    head = [t for t in settings.target_modules if t == "lm_head" or t.endswith(".lm_head")]
    if head and getattr(config, "tie_word_embeddings", False):
        raise ConfigError("model.lora.target_modules: lm_head shares its weight with the input embeddings "
                          "(tie_word_embeddings); an adapter on it would untie them. Leave lm_head out")


def attach_lora(model: torch.nn.Module, settings: LoraSettings, base_model: str | None = None) -> torch.nn.Module:
    """Inject a fresh LoRA adapter into `model` in place (B = 0: the policy starts as the base);
    only adapter weights require grad afterwards, in float32. Returns `model`."""
    if not settings.enabled:
        return model
    if has_lora(model):
        raise ConfigError("the policy already carries LoRA adapters; build it without them (model.lora.r adds one)")
    peft = require_peft()
    check_targets(model, settings)
    config = peft.LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                             target_modules=list(settings.target_modules), base_model_name_or_path=base_model)
    peft.inject_adapter_in_model(config, model, adapter_name=ADAPTER)
    for name, parameter in model.named_parameters():
        if ".lora_" in name:
            parameter.data = parameter.data.float()  # trained weights stay float32 over a bf16 base
        else:
            parameter.requires_grad_(False)
    return model


def has_lora(model: torch.nn.Module) -> bool:
    """True when `model` carries LoRA layers."""
    return any(is_lora_layer(module) for module in model.modules())


@contextlib.contextmanager
def adapters_disabled(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """`model` computes as its base while inside (every LoRA layer bypassed), as before after."""
    layers = [m for m in model.modules() if is_lora_layer(m)]
    before = [m.disable_adapters for m in layers]
    try:
        for layer in layers:
            layer.enable_adapters(False)
        yield model
    finally:
        for layer, was_disabled in zip(layers, before):
            layer.enable_adapters(not was_disabled)


def merged_state_dict(model: torch.nn.Module) -> dict[str, Tensor]:
    """The state dict of the plain model `model` computes now (LoRA merged, plain names)."""
    return dict(merge_lora(model.state_dict().items(), lora_scalings(model)))


def lora_metadata(model: torch.nn.Module) -> dict | None:
    """What a checkpoint stores to merge its adapter later (`archer-export`): the adapter's
    settings and base, or None without LoRA."""
    config = (getattr(model, "peft_config", None) or {}).get(ADAPTER)
    if config is None or not has_lora(model):
        return None
    return {"r": int(config.r), "alpha": float(config.lora_alpha), "dropout": float(config.lora_dropout),
            "target_modules": sorted(config.target_modules), "base_model": config.base_model_name_or_path}


def checkpoint_scalings(state: dict[str, Tensor], meta: dict) -> dict[str, dict[str, float]]:
    """module name -> {adapter: scaling} of a LoRA checkpoint's policy state dict."""
    modules = {name.rsplit(".lora_A.", 1)[0] for name in state if ".lora_A." in name}
    return {module: {ADAPTER: meta["alpha"] / meta["r"]} for module in modules}


def adapter_tensors(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The adapter's tensors under peft's saved names (`PeftModel.from_pretrained` reads them)."""
    suffix = f".{ADAPTER}.weight"
    return {f"base_model.model.{name[: -len(suffix)]}.weight": tensor.detach().contiguous()
            for name, tensor in state.items() if ".lora_" in name and name.endswith(suffix)}


def save_adapter(state: dict[str, Tensor], meta: dict, folder: str | Path) -> Path:
    """Write the adapter alone in peft's format (adapter_config.json, adapter_model.safetensors):
    `PeftModel.from_pretrained(base, folder)` puts it back on the base model."""
    from safetensors.torch import save_file

    peft = require_peft()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = peft.LoraConfig(r=meta["r"], lora_alpha=meta["alpha"], lora_dropout=meta["dropout"],
                             target_modules=list(meta["target_modules"]), base_model_name_or_path=meta.get("base_model"),
                             task_type="CAUSAL_LM")
    config.save_pretrained(folder)
    save_file(adapter_tensors(state), folder / "adapter_model.safetensors", metadata={"format": "pt"})
    return folder
