"""A miniature ablation sweep through Hydra multirun, then the summarizer's table and plots."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import FAST

ROOT = Path(__file__).resolve().parents[2]


def test_two_strategy_sweep_is_summarized_into_a_table_and_plots(tmp_path):
    sweep = tmp_path / "sweep"
    overrides = [o for o in FAST if not o.startswith(("logger=", "heldout.max_problems"))]
    done = subprocess.run(
        [sys.executable, "-m", "archer.train", "-m", "ablation=grpo,archer", "seed=0", *overrides,
         "heldout.max_problems=4", "heldout.samples_per_problem=2", "validation.every_n_steps=1", "validation.k=2",
         "validation.max_problems=4", "export=false", f"model.warmup_cache={tmp_path / 'cache'}",
         f"hydra.sweep.dir={sweep}"],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list(sweep.rglob("summary.json"))) == 2

    out = tmp_path / "report"
    report = subprocess.run([sys.executable, "-m", "archer.summarize", str(sweep), "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    table = (out / "summary.md").read_text().splitlines()
    assert table[0].startswith("| strategy | seeds | held-out pass@1 (%) | held-out pass@2 (%)")
    assert sorted(line.split("|")[1].strip() for line in table[2:]) == ["archer", "grpo"]
    with (out / "runs.csv").open() as handle:
        runs = list(csv.DictReader(handle))
    assert {r["strategy"] for r in runs} == {"archer", "grpo"} and all(float(r["generated_tokens"]) > 0 for r in runs)
    import matplotlib.image

    for name in ("accuracy.png", "reward.png", "entropy.png", "repetition.png", "response_length.png"):
        image = matplotlib.image.imread(out / name)
        assert image.shape[0] > 100 and image.shape[1] > 100
    from archer.summarize import write_report

    per_seed = write_report([sweep], tmp_path / "per_seed", plots=False, per_seed=True)
    assert sorted(per_seed["strategies"]) == sorted(f"{r['strategy']} seed {r['seed']}" for r in runs)
