"""Rewards with several parts and signed user rewards through archer-train's real loop."""

from __future__ import annotations

import csv

import pytest

from tests.integration.conftest import FAST

BASE = [o for o in FAST if not o.startswith("verifier.")]


def _rows(run_dir):
    return [r for r in csv.DictReader(open(run_dir / "csv" / "metrics.csv")) if r.get("train/reward")]


def test_weighted_reward_logs_each_part_and_trains_on_their_weighted_sum(run):
    summary, run_dir = run([
        "verifier=weighted", "verifier.parts.correct.verifier._target_=tests.doubles.ParityVerifier",
        "verifier.parts.format.weight=-0.5",  # a penalty part: ends with a "#<number>" line
        "heldout.max_problems=4",
    ], name="weighted", base=BASE)
    assert summary["rl_steps"] == 2 and summary["pass1_before"] is not None
    rows = _rows(run_dir)
    assert len(rows) == 2
    for r in rows:
        correct, fmt, reward = float(r["reward/correct"]), float(r["reward/format"]), float(r["train/reward"])
        assert reward == pytest.approx(correct - 0.5 * fmt, abs=1e-5)
        assert float(r["train/accuracy"]) == pytest.approx(correct, abs=1e-5)  # accuracy is the correct part's


def test_signed_user_function_rewards_train(run):
    summary, run_dir = run(["verifier=function", "verifier.function=tests.reward_functions.signed_parity"],
                           name="signed", base=BASE)
    assert summary["rl_steps"] == 2
    rewards = [float(r["train/reward"]) for r in _rows(run_dir)]
    assert all(-1.0 <= x <= 0.5 for x in rewards) and min(rewards) < 0  # negative rewards reached training
