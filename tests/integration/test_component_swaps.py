"""Every config of the constraint, classifier and advantage groups runs an RL step."""

from __future__ import annotations

from pathlib import Path

import pytest

from archer.train import config_dir

GROUPS = ("constraint", "classifier", "advantage")
CASES = [(g, p.stem) for g in GROUPS for p in sorted((Path(config_dir()) / g).glob("*.yaml"))]


@pytest.mark.parametrize("group, name", CASES, ids=[f"{g}={n}" for g, n in CASES])
def test_swapping_a_component_from_the_command_line_runs_a_step(run, tiny_model_dir, group, name):
    summary, run_dir = run([f"{group}={name}", f"model.path={tiny_model_dir}", "model.dtype=float32",
                            "filter=keep_all", "rl.steps=1", "export=false"], name=f"{group}-{name}")
    assert summary["rl_steps"] == 1
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
