"""Interval and paired-difference maths of archer-summarize, on hand-worked numbers."""

from __future__ import annotations

import csv
import json
import math

import pytest

from archer.summarize import write_report
from archer.sweep_stats import (
    area_under_curve,
    bootstrap_interval,
    describe,
    paired_by_seed,
    t_interval,
    verdict,
)


def test_t_interval_is_mean_plus_minus_t_times_the_standard_error():
    # mean 3, s = sqrt(2.5), t(0.975, 4) = 2.776: half-width 2.776 * 1.5811 / sqrt(5) = 1.9629
    low, high = t_interval([1, 2, 3, 4, 5])
    assert (low, high) == pytest.approx((3 - 1.9629, 3 + 1.9629), abs=1e-3)
    assert all(math.isnan(v) for v in t_interval([1.0]))


def test_bootstrap_interval_is_narrower_than_t_at_five_seeds_and_degenerate_for_a_constant():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    boot, t = bootstrap_interval(values), t_interval(values)
    assert t[0] < boot[0] < 3 < boot[1] < t[1]  # why claims are read from the t interval
    assert 1.0 <= boot[0] and boot[1] <= 5.0
    assert bootstrap_interval([0.4] * 5) == pytest.approx((0.4, 0.4))
    assert describe([None, 2.0, 4.0])["n"] == 2 and describe([None])["n"] == 0


def test_paired_differences_use_only_seeds_both_strategies_ran():
    treatment = {0: 0.5, 1: 0.6, 2: 0.7, 4: None}
    baseline = {0: 0.4, 1: 0.4, 2: 0.6, 3: 0.9, 4: 0.1}
    paired = paired_by_seed(treatment, baseline)
    assert paired["seeds"] == [0, 1, 2] and paired["diffs"] == pytest.approx([0.1, 0.2, 0.1])
    assert paired["mean"] == pytest.approx(0.4 / 3)
    # s = 0.057735, t(0.975, 2) = 4.303: half-width 0.14343, so zero is inside
    assert paired["t95"] == pytest.approx((0.4 / 3 - 0.14343, 0.4 / 3 + 0.14343), abs=1e-4)
    assert verdict(paired, +1) == "inconclusive"


def test_verdicts_follow_the_predicted_direction():
    up = paired_by_seed({s: 0.6 + 0.01 * (s % 2) for s in range(5)}, {s: 0.5 for s in range(5)})
    assert verdict(up, +1) == "supported" and verdict(up, -1) == "contradicted"
    assert verdict(paired_by_seed({0: 1.0}, {0: 0.0}), +1) == "inconclusive"  # one seed carries no interval
    # non-inferiority: "not lower by more than 3 points"; diffs -1, -2, -1, -2, -1 points: t interval -2.1 to -0.7
    slightly_lower = paired_by_seed({s: 0.5 - 0.01 * (1 + s % 2) for s in range(5)}, {s: 0.5 for s in range(5)})
    assert slightly_lower["t95"] == pytest.approx((-0.014 - 0.0068, -0.014 + 0.0068), abs=2e-4)
    assert verdict(slightly_lower, +1, margin=0.03) == "supported" and verdict(slightly_lower, +1) == "contradicted"
    assert verdict(slightly_lower, +1, margin=0.015) == "inconclusive"


def test_area_under_curve_is_the_mean_level_over_the_steps():
    assert area_under_curve([0, 10, 20], [0.0, 1.0, 1.0]) == pytest.approx(0.75)
    assert area_under_curve([20, 0, 10], [1.0, 0.0, 1.0]) == pytest.approx(0.75)  # order does not matter
    assert area_under_curve([0], [0.5]) is None


def _fake_run(root, strategy, seed, pass1, kl_low):
    run = root / f"{strategy}_seed{seed}"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(f"- ablation={strategy}\n- seed={seed}\n")
    (run / "csv").mkdir()
    with (run / "csv" / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "monitor/ref_kl_low", "monitor/entropy_high"])
        writer.writerows([[step, kl_low, 0.5] for step in range(6)])
    validation = [{"rl_step": 0, "val/heldout/avg@4": 0.2, "val/heldout/pass@4": 0.4},
                  {"rl_step": 10, "val/heldout/avg@4": pass1, "val/heldout/pass@4": 0.6}]
    (run / "summary.json").write_text(json.dumps({
        "seed": seed, "heldout_before": {"pass@1": 0.2, "pass@16": 0.5}, "heldout_after": {"pass@1": pass1, "pass@16": 0.7},
        "validation": validation, "metrics_csv": str(run / "csv" / "metrics.csv")}))


def test_summarize_writes_intervals_and_differences_paired_by_seed(tmp_path):
    sweep = tmp_path / "sweep"
    for seed, (grpo, archer) in enumerate([(0.50, 0.55), (0.40, 0.50), (0.60, 0.62)]):
        _fake_run(sweep, "grpo", seed, grpo, 0.01)
        _fake_run(sweep, "archer", seed, archer, 0.002)
    write_report([sweep], tmp_path / "out", plots=False, paired_against=["grpo"])
    with (tmp_path / "out" / "paired.csv").open() as handle:
        rows = {r["metric"]: r for r in csv.DictReader(handle)}
    # archer - grpo by seed: +5, +10, +2 points; mean 5.667
    assert [float(d) for d in rows["pass@1"]["diffs"].split()] == pytest.approx([0.05, 0.10, 0.02])
    assert float(rows["pass@1"]["mean"]) == pytest.approx(0.17 / 3)
    assert float(rows["ref_kl_low_final"]["mean"]) == pytest.approx(-0.008)
    # the validation area: (0.2 + pass1) / 2, so its difference is half the final one's
    assert float(rows["val_auc"]["mean"]) == pytest.approx(0.17 / 6)
    paired_md = (tmp_path / "out" / "paired.md").read_text()
    assert "## Paired against grpo" in paired_md and "| archer | 3 | 5.7 |" in paired_md
    intervals = (tmp_path / "out" / "intervals.md").read_text()
    assert "| grpo | 3 | 50.0 |" in intervals and "held-out pass@16 (%)" in intervals
    # the wide table: mean (t interval) per metric, archer first (higher pass@1)
    wide = intervals.split("\n\n")[0].splitlines()
    assert wide[2].startswith("| archer | 3 | 55.7 (") and wide[3].startswith("| grpo | 3 | 50.0 (")
    with (tmp_path / "out" / "runs.csv").open() as handle:
        assert {float(r["pass@k_before"]) for r in csv.DictReader(handle)} == {0.5}  # pass@16 before RL, per run
    with pytest.raises(SystemExit, match="dapo"):
        write_report([sweep], tmp_path / "out2", plots=False, paired_against=["dapo"])
