"""The real LightningModule through archer-train's `train`, on a tiny model."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from archer.config_checks import ConfigError
from archer.data import DataError
from archer.export import export_checkpoint
from tests.integration.conftest import FAST


def weights(folder) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(folder).state_dict().items()}


def test_rl_steps_change_every_parameter_keep_the_reference_and_round_trip_through_model_path(run, tiny_model_dir):
    summary, run_dir = run([f"model.path={tiny_model_dir}", "model.dtype=float32", "filter=keep_all"])
    assert summary["rl_steps"] == 2
    before, after = weights(tiny_model_dir), weights(run_dir / "hf_model")
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, f"parameters not updated: {unchanged}"
    # the frozen reference is stored once beside the checkpoints, and is still the starting model
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert not any(k.startswith("reference.") for k in ckpt["state_dict"])
    reference = torch.load(run_dir / "checkpoints" / "reference.pt", map_location="cpu", weights_only=True)
    assert reference and all(torch.equal(v, before[k]) for k, v in reference.items())
    # every logged loss is finite
    rows = list(csv.DictReader(open(run_dir / "csv" / "metrics.csv")))
    losses = [float(r["loss/policy"]) for r in rows if r.get("loss/policy")]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    # the export trains again through model.path, and a checkpoint exports on demand
    again, _ = run([f"model.path={run_dir / 'hf_model'}", "model.dtype=float32", "rl.steps=1"], name="again")
    assert again["rl_steps"] == 1
    exported = export_checkpoint(run_dir / "checkpoints" / "last.ckpt", run_dir / "from_ckpt")
    assert all(torch.equal(v, after[k]) for k, v in weights(exported).items())


def test_resume_equals_uninterrupted_training(run, tiny_model_dir):
    common = [f"model.path={tiny_model_dir}", "model.dtype=float32", "filter=keep_all", "rl.ppo_epochs=2"]
    _, whole = run(common + ["rl.steps=4"], name="whole")
    _, first = run(common + ["rl.steps=2"], name="first")
    resumed_summary, resumed = run(common + ["rl.steps=4", f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}"],
                                   name="resumed")
    assert resumed_summary["rl_steps"] == 4
    a, b = weights(whole / "hf_model"), weights(resumed / "hf_model")
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-6, rtol=0)


def test_on_policy_steps_reuse_update_logprobs_with_the_same_result(run, tiny_model_dir):
    """One PPO epoch and one mini-batch: skipping the old-policy pass changes nothing."""
    common = [f"model.path={tiny_model_dir}", "model.dtype=float32", "filter=keep_all", "rl.ppo_epochs=1",
              "rl.mini_batch_prompts=4", "rl.micro_batch_size=4", "rl.steps=2"]
    _, reused = run(common, name="reused")
    _, separate = run([*common, "rl.reuse_update_logprobs=false"], name="separate")
    a, b = weights(reused / "hf_model"), weights(separate / "hf_model")
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)


def test_a_nan_loss_stops_the_run_naming_step_component_and_cause(run, tiny_model_dir):
    with pytest.raises(FloatingPointError, match=r"RL step 0 .*NaNConstraint.*all inputs finite"):
        run([f"model.path={tiny_model_dir}", "model.dtype=float32", "filter=keep_all",
             "constraint=uniform", "constraint._target_=tests.doubles.NaNConstraint"])


def test_bad_input_fails_before_training_naming_file_and_key(run, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"problem": "1+1", "answer": 2}\n{"problem": "2+2", "answer": 4\n')
    with pytest.raises(DataError, match=r"train\.jsonl:2: not valid JSON"):
        run(["data=jsonl", f"data.source.train_path={data}"], base=[k for k in FAST if not k.startswith("data.")])
    with pytest.raises(ConfigError, match=r"model\.path is required"):
        run(["model=hf"], base=[k for k in FAST if not k.startswith("model.")])
    with pytest.raises(ConfigError, match=r"model\.path=.*does not exist"):
        run(["model.path=/no/such/model"])
    with pytest.raises(ConfigError, match=r"rl\.mini_batch_prompts \(4\) must divide rl\.prompts_per_step \(6\).*rl\.mini_batch_prompts=3"):
        run(["rl.prompts_per_step=6", "rl.mini_batch_prompts=4"])
    with pytest.raises(ConfigError, match=r"classifier\.quantile must be in \(0, 1\), got 1\.5"):
        run(["classifier.quantile=1.5"])
    with pytest.raises(ConfigError, match=r"ckpt_path=.*does not exist"):
        run(["ckpt_path=/no/such.ckpt"])


def test_a_killed_run_resumes_with_its_record_and_the_same_weights(run, tiny_model_dir, tmp_path):
    """SIGKILL after the step-2 checkpoint, resume: the summary reports the original before-RL
    figures and the whole run's time, no evaluation or warm-up of the replaced model happens,
    and the weights equal an uninterrupted run's."""
    import json
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    common = [f"model.path={tiny_model_dir}", "model.dtype=float32", "filter=keep_all", "rl.steps=8",
              "heldout.max_problems=8", "checkpoint.every_n_steps=1", "logger=csv"]
    whole_summary, whole = run(common, name="whole")
    killed = tmp_path / "killed"
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen([sys.executable, "-m", "archer.train", *FAST, *common, f"hydra.run.dir={killed}"],
                               cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = killed / "checkpoints" / "step-000002.ckpt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL and checkpoint.exists()
    resumed_summary, resumed = run([*common, f"ckpt_path={checkpoint}"], name="resumed")
    assert resumed_summary["rl_steps"] == 8
    assert resumed_summary["heldout_before"] == whole_summary["heldout_before"]
    assert resumed_summary["pass1_before"] == whole_summary["pass1_before"] is not None
    assert resumed_summary["resumed_from"] == str(checkpoint)
    assert resumed_summary["seconds"] > resumed_summary["seconds_this_process"] > 0
    saved_seconds = torch.load(checkpoint, map_location="cpu", weights_only=False)["archer"]["record"]["seconds"]
    assert resumed_summary["seconds"] == pytest.approx(saved_seconds + resumed_summary["seconds_this_process"], abs=0.2)
    # the validation curve keeps its points from before the checkpoint
    assert [v["rl_step"] for v in resumed_summary["validation"]] == [v["rl_step"] for v in whole_summary["validation"]]
    a, b = weights(whole / "hf_model"), weights(resumed / "hf_model")
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-6, rtol=0)
    assert json.loads((resumed / "summary.json").read_text())["pass1_before"] == whole_summary["pass1_before"]


def test_checkpoints_keep_the_last_k_and_link_last(run, tiny_model_dir):
    _, run_dir = run([f"model.path={tiny_model_dir}", "model.dtype=float32", "filter=keep_all", "rl.steps=5",
                      "checkpoint.every_n_steps=1", "checkpoint.keep_last=2"])
    folder = run_dir / "checkpoints"
    assert sorted(p.name for p in folder.glob("step-*.ckpt")) == ["step-000004.ckpt", "step-000005.ckpt"]
    assert (folder / "last.ckpt").stat().st_ino == (folder / "step-000005.ckpt").stat().st_ino  # a link, not a copy
    assert not list(folder.glob(".*partial"))


def test_sigterm_saves_a_checkpoint_and_ends_the_run(tmp_path, tiny_model_dir):
    import json
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    run_dir = tmp_path / "terminated"
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen([sys.executable, "-m", "archer.train", *FAST, f"model.path={tiny_model_dir}",
                                "model.dtype=float32", "filter=keep_all", "rl.steps=200", "checkpoint.every_n_steps=1",
                                f"hydra.run.dir={run_dir}"], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = run_dir / "checkpoints" / "step-000001.ckpt"
    deadline = time.monotonic() + 300
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    assert process.wait(timeout=120) == 143, process.stderr.read()[-2000:]
    assert time.monotonic() - sent < 60
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped_by"].startswith("SIGTERM") and summary["rl_steps"] < 200
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["archer"]["rl_step"] == summary["rl_steps"]  # the step it stopped after is saved


def test_token_budget_micro_batches_train_the_same_weights_as_fixed_ones(run, tiny_model_dir):
    """Packing changes which rows share a forward, never the loss or its gradient."""
    common = [f"model.path={tiny_model_dir}", "model.dtype=float32", "filter=keep_all", "rl.ppo_epochs=2",
              "rollout.max_new_tokens=12", "rl.steps=2"]
    _, fixed = run([*common, "rl.micro_batch_size=8"], name="fixed")
    _, packed = run([*common, "rl.micro_batch_tokens=40"], name="packed")  # 1-3 rows of ~15-20 tokens each
    a, b = weights(fixed / "hf_model"), weights(packed / "hf_model")
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=2e-6, rtol=1e-5)


def test_activation_checkpointing_trains_the_same_weights(run, tiny_model_dir):
    common = [f"model.path={tiny_model_dir}", "model.dtype=float32", "filter=keep_all", "rl.steps=1"]
    _, plain = run(common, name="plain")
    _, checkpointed = run([*common, "++model.gradient_checkpointing=true"], name="checkpointed")
    a, b = weights(plain / "hf_model"), weights(checkpointed / "hf_model")
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=2e-6, rtol=1e-5)


def test_tis_rollout_correction_trains_with_bf16_sampling_and_logs_its_weights(run, tiny_model_dir):
    summary, run_dir = run([f"model.path={tiny_model_dir}", "model.dtype=float32", "filter=keep_all",
                            "rl.rollout_correction=tis", "rollout.logprobs=true", "rollout.dtype=bfloat16"])
    assert summary["rl_steps"] == 2
    rows = [r for r in csv.DictReader(open(run_dir / "csv" / "metrics.csv")) if r.get("rollout/tis_weight_mean")]
    assert len(rows) == 2
    for row in rows:
        assert 0.9 < float(row["rollout/tis_weight_mean"]) < 1.1 and float(row["rollout/tis_weight_max"]) <= 2.0
        assert float(row["rollout/logprob_gap"]) > 0  # bf16 sampling vs the fp32 trainer
    with pytest.raises(ConfigError, match="rollout.logprobs=true"):
        run([f"model.path={tiny_model_dir}", "model.dtype=float32", "filter=keep_all", "rl.rollout_correction=tis"],
            name="no_logprobs")
