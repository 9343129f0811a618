"""The pretrained-model path keeps the reference's training semantics: float32 master weights
under bf16 autocast, and the learning-rate warm-up in RL steps."""

from __future__ import annotations

import csv

import pytest
import torch
from transformers import AutoModelForCausalLM

from tests.integration.conftest import FAST

NO_MODEL = [k for k in FAST if not k.startswith("model.")]


def moved_share(before_dir, after_dir) -> float:
    before = AutoModelForCausalLM.from_pretrained(before_dir, dtype="auto").state_dict()
    after = AutoModelForCausalLM.from_pretrained(after_dir, dtype="auto").state_dict()
    # compared in the trained weights' own dtype: loading in bf16 rounds, which is not a move
    changed = sum((before[k].to(after[k].dtype) != after[k]).sum().item() for k in before)
    return changed / sum(v.numel() for v in before.values())


@pytest.mark.parametrize("engine", ["lean", "hf"])
def test_bf16_mixed_at_the_papers_lr_moves_float32_master_weights(run, tiny_model_dir, engine):
    summary, run_dir = run(["model=hf", f"model.path={tiny_model_dir}", "++trainer.precision=bf16-mixed",
                            "optimizer.lr=1e-6", "filter=keep_all", f"rollout={engine}", "checkpoint.every_n_steps=1"],
                           name=engine, base=NO_MODEL)
    assert summary["rl_steps"] == 2
    assert moved_share(tiny_model_dir, run_dir / "hf_model") > 0.9
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    policy = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("policy.")}
    reference = torch.load(run_dir / "checkpoints" / "reference.pt", map_location="cpu", weights_only=True)
    assert policy and {v.dtype for v in policy.values()} == {torch.float32}
    assert {v.dtype for v in reference.values()} == {torch.bfloat16}  # model.dtype: the inference-only copy
    optimizer_state = ckpt["optimizer_states"][0]["state"]
    assert {t.dtype for s in optimizer_state.values() for t in s.values() if t.dim()} == {torch.float32}


def test_pure_bf16_weights_are_an_opt_in_that_loses_small_updates(run, tiny_model_dir):
    """What float32 master weights prevent: in bf16, lr 1e-6 steps mostly round away."""
    _, run_dir = run(["model=hf", f"model.path={tiny_model_dir}", "model.master_dtype=bfloat16",
                      "++trainer.precision=bf16-mixed", "optimizer.lr=1e-6", "filter=keep_all"],
                     name="pure_bf16", base=NO_MODEL)
    assert moved_share(tiny_model_dir, run_dir / "hf_model") < 0.1


def test_lr_warmup_counts_rl_steps_from_zero_like_the_reference(run, tiny_model_dir):
    summary, run_dir = run([f"model.path={tiny_model_dir}", "model.dtype=float32", "filter=keep_all", "rl.steps=5",
                            "scheduler.unit=rl_step", "scheduler.from_zero=true", "scheduler.warmup_steps=3",
                            "optimizer.lr=0.01", "checkpoint.every_n_steps=1", "checkpoint.keep_last=0"])
    rows = [r for r in csv.DictReader(open(run_dir / "csv" / "metrics.csv")) if r.get("train/lr")]
    assert [round(float(r["train/lr"]), 6) for r in rows] == [0.0, 0.003333, 0.006667, 0.01, 0.01]
    # RL step 0 ran at lr 0: every optimizer step of it left the weights as they were
    first = torch.load(run_dir / "checkpoints" / "step-000001.ckpt", map_location="cpu", weights_only=False)
    start = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    after_step_0 = {k[len("policy."):]: v for k, v in first["state_dict"].items() if k.startswith("policy.")}
    assert all(torch.equal(after_step_0[k], start[k]) for k in after_step_0)
