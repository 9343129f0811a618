"""The testbed experiment end to end at toy size: Countdown data and verifier, and the monitor
logging the same per-class statistics (with a KL to the reference) for a loss without a KL."""

from __future__ import annotations

import csv

from tests.integration.conftest import FAST, compose_train

BASE = [o for o in FAST if not o.startswith(("verifier.", "data.source."))] + [
    "data.source.train_size=64", "data.source.heldout_size=8", "rollout.max_new_tokens=24"]


def test_testbed_experiment_trains_on_countdown_with_its_verifier(run):
    summary, run_dir = run(["experiment=testbed", "ablation=dapo", "monitor.enabled=true", "rl.steps=2",
                            "heldout.max_problems=4", "heldout.samples_per_problem=3", "validation.every_n_steps=0",
                            "filter=keep_all"], base=BASE)
    assert summary["constraint"].endswith("UniformConstraint") and summary["rl_steps"] == 2
    assert set(summary["heldout_after"]) >= {"pass@1", "pass@3"}
    cfg = compose_train(["experiment=testbed", "ablation=lopti"])
    # the experiment sets the task, never the loss: ablation= keeps its own classifier and constraint
    assert cfg.verifier._target_.endswith("CountdownVerifier") and cfg.data.source._target_.endswith("CountdownTask")
    assert cfg.constraint._target_.endswith("LoptiConstraint") and cfg.classifier._target_.endswith("LowProbabilityClassifier")


def test_the_monitor_reports_kl_to_the_reference_for_a_loss_without_kl(run):
    # the parity reward of FAST varies inside every group, so the first update moves the policy
    summary, run_dir = run(["ablation=dapo", "monitor.enabled=true", "rl.steps=2", "filter=keep_all"])
    with open(run_dir / "csv" / "metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("monitor/ref_kl_low")]
    assert len(rows) == 2 and not any(k.startswith("loss/kl") and v for k, v in rows[1].items())  # DAPO has no KL
    first, second = (float(rows[i]["monitor/ref_kl_low"]) + float(rows[i]["monitor/ref_kl_high"]) for i in (0, 1))
    assert abs(first) < 1e-6  # step 0 samples from the reference itself
    assert second > 0  # one update later the policy has moved
    assert all(float(r["monitor/entropy_high"]) >= float(r["monitor/entropy_low"]) for r in rows)
