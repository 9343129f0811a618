"""Data parallelism on CPU (DDP over gloo): results do not depend on the number of processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.integration.conftest import FAST

ROOT = Path(__file__).resolve().parents[2]
# The same global batch for every process count: rollouts seeded per prompt, no group filter.
SAME_BATCH = [*FAST, "logger=csv", "filter=keep_all", "rollout.per_prompt_seed=true", "export=true",
              "rl.prompts_per_step=4", "rl.mini_batch_prompts=2", "rl.micro_batch_size=4", "rl.ppo_epochs=2"]


def _train(run_dir: Path, overrides: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-m", "archer.train", *SAME_BATCH, *overrides, f"hydra.run.dir={run_dir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.parametrize("strategy", [
    [],
    # 80/20: the entropy threshold belongs to the whole mini-batch across ranks (one process sees
    # both groups in one micro-batch, two processes one group each)
    ["constraint=entropy_mask", "classifier=batch_quantile", "rl.micro_batch_size=8"],
    # micro-batches packed by a token budget: their number and makeup differ between 1 and 2 processes
    ["rl.micro_batch_tokens=40", "rollout.max_new_tokens=12"],
], ids=["archer", "batch_quantile", "token_budget"])
def test_two_processes_train_the_same_weights_as_one(tmp_path, strategy):
    one = _train(tmp_path / "one", ["trainer=cpu", *strategy])
    two = _train(tmp_path / "two", ["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", *strategy])
    assert one["rl_steps"] == two["rl_steps"] == 2
    single = load_file(tmp_path / "one" / "hf_model" / "model.safetensors")
    double = load_file(tmp_path / "two" / "hf_model" / "model.safetensors")
    assert single.keys() == double.keys()
    worst = max((single[k].float() - double[k].float()).abs().max().item() for k in single)
    print(f"largest weight difference between 1 and 2 processes: {worst:.2e}")
    assert worst < 1e-5, f"largest weight difference {worst}"
    # and training did move the weights away from the seeded initial model
    import lightning as L

    from archer.models import TinyModelConfig, build_char_tokenizer, build_tiny_model

    L.seed_everything(0, verbose=False)
    initial = build_tiny_model(build_char_tokenizer(), TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2,
                                                                      intermediate_size=64)).state_dict()
    assert max((single[k].float() - initial[k].float()).abs().max().item() for k in single) > 1e-4


def _csv_metrics(run_dir: Path) -> list[dict[str, float]]:
    import csv

    rows = list(csv.DictReader(open(next(run_dir.glob("csv/**/metrics.csv")))))
    return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in rows]


def test_ranks_with_unequal_micro_batch_counts_finish_and_match_one_process(tmp_path):
    """Dynamic sampling leaves the ranks with different numbers of groups, and micro-batches of
    one sequence give them different numbers of backward passes: the run must neither hang nor
    drift. Same weights as one process; the same max, sum, mean, gradient norm and monitor
    statistics (archer/monitor.py, token-weighted across ranks) logged."""
    filtered = ["filter=drop_uniform", "verifier._target_=tests.doubles.GroupFilteringVerifier",
                "rl.micro_batch_size=1", "rl.steps=3", "monitor.enabled=true"]
    one = _train(tmp_path / "one", ["trainer=cpu", *filtered])
    two = _train(tmp_path / "two", ["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", *filtered])
    assert one["rl_steps"] == two["rl_steps"] == 3
    single = load_file(tmp_path / "one" / "hf_model" / "model.safetensors")
    double = load_file(tmp_path / "two" / "hf_model" / "model.safetensors")
    worst = max((single[k].float() - double[k].float()).abs().max().item() for k in single)
    assert worst < 1e-5, f"largest weight difference {worst}"
    rows_one, rows_two = _csv_metrics(tmp_path / "one"), _csv_metrics(tmp_path / "two")
    assert len(rows_one) == len(rows_two) == 3
    kept = [r.get("train/trained_responses", 0.0) for r in rows_one]
    assert any(0 < k < 16 for k in kept), kept  # some groups were filtered: the ranks' shares differ
    for a, b in zip(rows_one, rows_two):
        assert a.keys() == b.keys()
        for key in ("train/response_length_max", "train/generated_tokens", "train/trained_responses",
                    "train/reward", "train/accuracy", "train/response_length", "train/grad_norm", "loss/policy",
                    "monitor/entropy_high", "monitor/entropy_low", "monitor/ref_kl_high", "monitor/ref_kl_low"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key


def test_ddp_end_to_end_with_filtering_and_resume_on_another_process_count(tmp_path):
    """Dynamic sampling may leave ranks with different numbers of groups (or none); training
    goes on, and its checkpoint resumes on one process."""
    first = _train(tmp_path / "ddp", ["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu",
                                      "filter=drop_uniform", "checkpoint.every_n_steps=1"])
    assert first["rl_steps"] == 2
    ckpt = tmp_path / "ddp" / "checkpoints" / "last.ckpt"
    resumed = _train(tmp_path / "resumed", ["trainer=cpu", "rl.steps=3", f"ckpt_path={ckpt}"])
    assert resumed["rl_steps"] == 3
    assert torch.load(ckpt, weights_only=False)["archer"]["rl_step"] == 2
