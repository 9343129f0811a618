"""`rollout=vllm` through archer-train's real training loop, against the CPU fake of vLLM
(tests/fake_vllm.py): the engine's calls in the order vLLM supports, its weights equal to the
trained policy's, and a log-prob gap near 0 at any temperature."""

from __future__ import annotations

import csv

import pytest
import torch
from transformers import AutoModelForCausalLM

import archer.rollout.vllm as engine_module
from tests import fake_vllm


@pytest.mark.parametrize("temperature, extra", [(1.0, []), (0.8, ["rl.rollout_correction=tis"])])
def test_two_rl_steps_with_rollout_vllm(run, monkeypatch, temperature, extra):
    fake = fake_vllm.install(monkeypatch)
    monkeypatch.setattr(engine_module, "_free_cached_memory", lambda: None)
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    summary, run_dir = run(["rollout=vllm", "rollout.max_new_tokens=8", "filter=keep_all",
                            f"rollout.temperature={temperature}", *extra], name=f"vllm_{temperature}")
    assert summary["rl_steps"] == 2
    [llm] = fake.INSTANCES  # one engine for the whole run
    assert llm.violations == [] and llm.warnings == []
    # the engine starts as training starts (no held-out evaluation here), then step by step:
    rollout = ["wake_up(kv_cache)", "generate", "sleep(1)"]
    sync = ["wake_up(weights)", "load_weights", "reset_prefix_cache"]
    assert llm.log == ["LLM", "generate", "sleep(1)", *sync, *rollout, *sync]
    rows = list(csv.DictReader(open(run_dir / "csv" / "metrics.csv")))
    gaps = [float(r["rollout/logprob_gap"]) for r in rows if r.get("rollout/logprob_gap")]
    assert len(gaps) == 2 and max(gaps) < 1e-4, gaps  # vLLM sampled from the trained weights each step
    trained = AutoModelForCausalLM.from_pretrained(run_dir / "hf_model").state_dict()
    for name, parameter in llm.model.named_parameters():
        torch.testing.assert_close(parameter, trained[name], rtol=0, atol=0)
