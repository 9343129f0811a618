"""Export a trained policy in Hugging Face format, from a live module or a checkpoint.

Archer checkpoints carry the policy's config and the tokenizer files, so a checkpoint
alone rebuilds a folder that `model.path=...` (or any transformers user) loads. The policy of
a LoRA run is written merged (base + scaling x B @ A, a plain model); `--adapter` writes the
adapter alone instead, in peft's format (`PeftModel.from_pretrained(base, folder)`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from archer.config_checks import ConfigError
from archer.lora import checkpoint_scalings, save_adapter
from archer.rollout.merged_weights import merge_lora


def tokenizer_snapshot(tokenizer) -> dict[str, bytes]:
    """The files `save_pretrained` writes for this tokenizer, as bytes."""
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        return {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()}


def export_checkpoint(ckpt_path: str | Path, out_dir: str | Path, adapter_only: bool = False) -> Path:
    """Write the policy of an Archer checkpoint as a Hugging Face folder (LoRA merged), or with
    `adapter_only` the LoRA adapter alone in peft's format (plus the tokenizer)."""
    if adapter_only:
        return export_adapter(ckpt_path, out_dir)
    model, tokenizer_files = policy_from_checkpoint(ckpt_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    for name, data in tokenizer_files.items():
        (out_dir / name).write_bytes(data)
    AutoTokenizer.from_pretrained(out_dir)  # fail now, not at the next load, if something is off
    return out_dir


def export_adapter(ckpt_path: str | Path, out_dir: str | Path) -> Path:
    """Write the LoRA adapter of a checkpoint alone (adapter_config.json, adapter_model.safetensors)
    and the tokenizer; its config names the base model the run started from (`model.path`)."""
    checkpoint = _read_checkpoint(ckpt_path)
    meta = checkpoint["archer"]
    if not meta.get("lora"):
        raise ConfigError(f"{ckpt_path}: this run trained every weight (no LoRA adapter, model.lora.r=0); "
                          "export it without --adapter")
    out_dir = save_adapter(_policy_state(checkpoint), meta["lora"], out_dir)
    for name, data in meta["tokenizer_files"].items():
        (out_dir / name).write_bytes(data)
    return out_dir


def load_checkpoint(ckpt_path: str | Path):
    """(policy, tokenizer) of an Archer training checkpoint, ready to generate."""
    model, tokenizer_files = policy_from_checkpoint(ckpt_path)
    with tempfile.TemporaryDirectory() as folder:
        for name, data in tokenizer_files.items():
            (Path(folder) / name).write_bytes(data)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    return model, tokenizer


def policy_from_checkpoint(ckpt_path: str | Path):
    """(policy model, tokenizer files) stored in an Archer checkpoint; a LoRA run's policy comes
    back as a plain model with its adapter merged."""
    checkpoint = _read_checkpoint(ckpt_path)
    meta = checkpoint["archer"]
    config_dict = dict(meta["policy_config"])
    config = AutoConfig.for_model(config_dict.pop("model_type"), **config_dict)
    state = _policy_state(checkpoint)
    if meta.get("lora"):  # base + scaling x B @ A under the plain names
        state = dict(merge_lora(state.items(), checkpoint_scalings(state, meta["lora"])))
    # the stored dtype (float32 master weights), whatever dtype the original config names
    dtype = next((v.dtype for v in state.values() if v.is_floating_point()), torch.float32)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # tied embeddings legitimately appear only once in the state dict
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise ConfigError(f"{ckpt_path}: policy weights do not match its config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model, meta["tokenizer_files"]


def _policy_state(checkpoint: dict) -> dict:
    return {k[len("policy."):]: v for k, v in checkpoint["state_dict"].items() if k.startswith("policy.")}


def _read_checkpoint(ckpt_path: str | Path) -> dict:
    """An Archer training checkpoint, or a ConfigError saying what the file is instead."""
    ckpt_path = Path(ckpt_path)
    if not ckpt_path.is_file():
        raise ConfigError(f"{ckpt_path}: no such checkpoint; point at a run's checkpoints/last.ckpt")
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise ConfigError(f"{ckpt_path}: not a readable checkpoint ({err}); pick another file from the run's checkpoints/") from err
    if "archer" not in checkpoint:
        raise ConfigError(f"{ckpt_path}: a checkpoint without an 'archer' entry; was it written by archer-train?")
    return checkpoint


def main(argv: list[str] | None = None) -> None:
    """`archer-export CKPT OUT_DIR [--adapter]`: write a checkpoint's policy as a Hugging Face folder
    (a LoRA run's merged), or its LoRA adapter alone."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="archer-export", description=main.__doc__)
    parser.add_argument("ckpt_path")
    parser.add_argument("out_dir")
    parser.add_argument("--adapter", action="store_true",
                        help="LoRA runs: write the adapter alone in peft's format instead of merged weights")
    args = parser.parse_args(argv)
    try:
        print(f"[archer] exported to {export_checkpoint(args.ckpt_path, args.out_dir, adapter_only=args.adapter)}")
    except ConfigError as err:
        print(f"[archer] error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
