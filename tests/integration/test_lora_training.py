"""LoRA runs through archer-train's `train` (`model.lora.r=4`) on a tiny saved model: only the
adapter trains, nothing holds a second copy of the base, the exports reproduce the trained
policy, and a resumed run equals an uninterrupted one."""

from __future__ import annotations

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from archer.export import export_checkpoint
from archer.lora import LoraSettings, attach_lora

LORA = ["model.lora.r=4", "model.lora.alpha=8", "model.dtype=float32", "filter=keep_all", "optimizer.lr=0.01"]
IDS = torch.tensor([[5, 6, 7, 8, 9, 10, 11], [12, 13, 14, 15, 16, 17, 18]])


def plain(folder) -> torch.nn.Module:
    return AutoModelForCausalLM.from_pretrained(folder).eval()


def checkpoint(run_dir) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


def trained_policy(base_dir, ckpt: dict) -> torch.nn.Module:
    """The run's policy as it trained: the base with an adapter, the checkpoint's weights loaded strictly."""
    policy = plain(base_dir)
    attach_lora(policy, LoraSettings(r=4, alpha=8.0))
    state = {k[len("policy."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("policy.")}
    policy.load_state_dict(state, strict=True)
    return policy.eval()


def logits(model, ids=IDS) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_a_lora_run_trains_only_the_adapter_and_exports_the_merged_policy(run, tiny_model_dir, tmp_path):
    summary, run_dir = run([f"model.path={tiny_model_dir}", *LORA])
    assert summary["rl_steps"] == 2
    ckpt = checkpoint(run_dir)
    state = {k[len("policy."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("policy.")}
    # the base is bit-identical to the files it was loaded from; the adapter moved (B starts at 0)
    base = dict(plain(tiny_model_dir).state_dict())
    for name, tensor in state.items():
        if ".lora_" not in name:
            assert torch.equal(tensor, base[name.replace(".base_layer.", ".")]), name
    assert all(tensor.abs().sum() > 0 for name, tensor in state.items() if ".lora_B." in name)
    # no reference copy anywhere: not in the checkpoint, not beside it; AdamW state for adapters only
    assert not any(k.startswith("reference.") for k in ckpt["state_dict"])
    assert not (run_dir / "checkpoints" / "reference.pt").exists()
    adapters = [n for n in state if ".lora_" in n]
    assert len(ckpt["optimizer_states"][0]["state"]) == len(adapters) == 7 * 2 * 2
    assert ckpt["archer"]["lora"]["r"] == 4 and ckpt["archer"]["lora"]["alpha"] == 8.0
    # hf_model is a plain model with the trained policy's logits; the checkpoint exports the same
    policy, merged = trained_policy(tiny_model_dir, ckpt), plain(run_dir / "hf_model")
    assert not any("lora_" in n or "base_layer" in n for n in merged.state_dict())
    assert torch.allclose(logits(merged), logits(policy), atol=1e-5)
    assert not torch.allclose(logits(merged), logits(plain(tiny_model_dir)), atol=1e-4)  # it learned something
    exported = plain(export_checkpoint(run_dir / "checkpoints" / "last.ckpt", tmp_path / "merged"))
    assert all(torch.equal(v, merged.state_dict()[k]) for k, v in exported.state_dict().items())
    # --adapter: the adapter alone, which peft puts back on the base
    adapter_dir = export_checkpoint(run_dir / "checkpoints" / "last.ckpt", tmp_path / "adapter", adapter_only=True)
    assert (adapter_dir / "adapter_config.json").is_file() and not (adapter_dir / "model.safetensors").exists()
    restored = PeftModel.from_pretrained(plain(tiny_model_dir), adapter_dir).eval()
    assert torch.allclose(logits(restored), logits(policy), atol=1e-5)


def test_a_resumed_lora_run_equals_an_uninterrupted_one(run, tiny_model_dir):
    common = [f"model.path={tiny_model_dir}", *LORA]
    _, whole = run(common + ["rl.steps=3"], name="whole")
    _, first = run(common + ["rl.steps=2"], name="first")
    summary, resumed = run(common + ["rl.steps=3", f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}"], name="resumed")
    assert summary["rl_steps"] == 3
    a, b = plain(whole / "hf_model").state_dict(), plain(resumed / "hf_model").state_dict()
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-6, rtol=0)


def test_the_tiny_default_trains_with_lora(run):
    """The in-process default: LoRA goes on after its warm-up, which trains the base itself."""
    summary, run_dir = run(["model.lora.r=4", "model.warmup.steps=2", "model.warmup.batch_size=4"])
    assert summary["rl_steps"] == 2
    assert any(".lora_A." in k for k in checkpoint(run_dir)["state_dict"])
    assert plain(run_dir / "hf_model") is not None
