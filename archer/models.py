"""Load a policy and its tokenizer from a path, or build the tiny default in-process.

Real models go through `from_pretrained` on a local folder or hub id (`model.path=...`).
The tiny default is a real transformers model class (Qwen2ForCausalLM) built from a config
with a character-level tokenizer, so the same code path loads it again once saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from archer.config_checks import ConfigError

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with no merges: one token per byte, plus pad/bos/eos/unk.

    It is the same kind of tokenizer as Qwen2's (byte-level BPE), only without merges, so
    `AutoTokenizer` reloads it (as Qwen2Tokenizer) with identical behaviour.
    """
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {tok: i for i, tok in enumerate([PAD, BOS, EOS, UNK, *alphabet])}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK, padding_side="left"
    )


@dataclass(frozen=True)
class TinyModelConfig:
    """Sizes of the in-process default policy (a Qwen2-style decoder).

    Args:
        hidden_size, num_layers, num_heads, intermediate_size: the usual transformer sizes.
        max_positions: longest prompt + response the model handles.
    """

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 384
    max_positions: int = 256


def build_tiny_model(tokenizer: PreTrainedTokenizerFast, sizes: TinyModelConfig) -> Qwen2ForCausalLM:
    if sizes.hidden_size % sizes.num_heads:
        raise ConfigError(
            f"model.tiny.hidden_size ({sizes.hidden_size}) must be divisible by model.tiny.num_heads ({sizes.num_heads})"
        )
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=sizes.hidden_size,
        intermediate_size=sizes.intermediate_size,
        num_hidden_layers=sizes.num_layers,
        num_attention_heads=sizes.num_heads,
        num_key_value_heads=sizes.num_heads,
        max_position_embeddings=sizes.max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        use_sliding_window=False,
    )
    return Qwen2ForCausalLM(config)


def load_pretrained(path: str, dtype: str = "float32", key: str = "model.dtype") -> tuple[torch.nn.Module, PreTrainedTokenizerFast]:
    """Load any causal LM and its tokenizer with `from_pretrained` (local folder or hub id), in
    `dtype` (`key` names the setting in errors)."""
    if dtype not in DTYPES:
        raise ConfigError(f"{key} must be one of {list(DTYPES)}, got {dtype!r}")
    local = Path(path).expanduser()
    if not local.exists() and (path.startswith((".", "/", "~")) or path.count("/") != 1):
        raise ConfigError(
            f"model.path={path!r} does not exist; give a folder holding a Hugging Face model "
            "(config.json, weights, tokenizer files) or a hub id such as Qwen/Qwen2.5-0.5B"
        )
    source = str(local) if local.exists() else path
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=DTYPES[dtype])
    except (OSError, ValueError) as err:
        raise ConfigError(f"model.path={path!r} could not be loaded as a causal LM: {err}") from err
    if tokenizer.pad_token_id is None:
        # Padding is masked everywhere; any id works, EOS is the usual choice.
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model, tokenizer


def decoder_layer_classes(model: torch.nn.Module) -> set[type]:
    """The classes of the model's transformer blocks (its `_no_split_modules`, e.g.
    Qwen2DecoderLayer, LlamaDecoderLayer): the units FSDP wraps one by one."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    found = {type(m) for m in model.modules() if type(m).__name__ in names}
    if not found:
        raise ConfigError(
            f"trainer.strategy.auto_wrap_policy=decoder_layers: {type(model).__name__} names no decoder layer "
            "class (_no_split_modules); give the classes yourself, e.g. auto_wrap_policy=[module.path.MyBlock]"
        )
    return found


def save_pretrained(model: torch.nn.Module, tokenizer, folder: str | Path) -> Path:
    """Write the policy and tokenizer in Hugging Face format (loadable by `model.path`). A policy
    with LoRA adapters is written merged (base + scaling x B @ A under the plain names): a plain
    model folder that `AutoModelForCausalLM.from_pretrained` loads without peft."""
    from archer.lora import has_lora, merged_state_dict

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if has_lora(model):
        model.save_pretrained(folder, state_dict=merged_state_dict(model))
    else:
        model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
