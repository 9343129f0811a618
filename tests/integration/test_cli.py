"""The console commands, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def test_smoke_preset_combines_with_any_override_and_reports(tmp_path):
    run_dir = tmp_path / "smoke"
    cmd = [sys.executable, "-m", "archer.train", "debug=smoke", "constraint=lopti", "classifier=low_probability",
           f"hydra.run.dir={run_dir}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "held-out pass@1:" in out.stdout and "TensorBoard logs:" in out.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {"pass1_before", "pass1_after", "seconds", "rl_steps"} <= summary.keys() and summary["rl_steps"] == 2
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/reward", "train/accuracy", "train/groups_filtered", "time/rollout"} <= scalars
    # a text sample with the high-entropy class marked
    assert "sample/response/text_summary" in events.Tags()["tensors"]
    # the checkpoint exports on demand through the second command
    export = subprocess.run([sys.executable, "-m", "archer.export", str(run_dir / "checkpoints" / "last.ckpt"),
                             str(tmp_path / "exported")], capture_output=True, text=True, timeout=300)
    assert export.returncode == 0, export.stderr[-2000:]
    assert (tmp_path / "exported" / "config.json").is_file()


def test_a_config_error_exits_2_with_the_key_and_the_fix(tmp_path):
    cmd = [sys.executable, "-m", "archer.train", "debug=smoke", "rl.prompts_per_step=6", "rl.mini_batch_prompts=4",
           f"hydra.run.dir={tmp_path / 'bad'}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 2
    assert "rl.mini_batch_prompts (4) must divide rl.prompts_per_step (6)" in out.stderr
