"""archer-eval end to end, interrupt-and-resume, and validation during training."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from archer.evaluate import evaluate
from archer.train import config_dir


def compose_eval(overrides: list[str]):
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        return compose(config_name="eval", overrides=overrides)


def test_smoke_suite_writes_results_table_and_samples(tmp_path):
    out = tmp_path / "eval"
    done = subprocess.run([sys.executable, "-m", "archer.evaluate", "suite=smoke", f"out_dir={out}"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert list(results["benchmarks"]) == ["math500", "aime2024", "knights_knaves", "humaneval", "livecodebench"]
    assert results["benchmarks"]["math500"]["problems"] == 3 and results["benchmarks"]["math500"]["k"] == 2
    table = (out / "results.md").read_text()
    assert "| math500 | 3 | 2 |" in table and "**average**" in table
    lines = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 3 * 2 + 4 * (2 * 2)
    assert {"prompt", "response", "answer", "score", "finish_reason"} <= set(lines[0])
    assert {line["finish_reason"] for line in lines} <= {"stop", "length"}
    assert lines[0]["prompt"].startswith("Question: ")  # the tiny tokenizer has no chat template


def test_interrupted_evaluation_resumes_to_the_same_results(tmp_path):
    overrides = ["suite=smoke", "suite.sampling.max_new_tokens=12", "problems_per_chunk=1", "model.tiny.hidden_size=32",
                 "model.tiny.num_layers=1", "model.tiny.num_heads=2", "model.tiny.intermediate_size=64"]
    whole = evaluate(compose_eval(overrides), tmp_path / "whole")

    class Killed(Exception):
        pass

    chunks = []

    def kill_after_three(chunk: int) -> None:
        chunks.append(chunk)
        if len(chunks) == 3:
            raise Killed

    cut = tmp_path / "cut"
    with pytest.raises(Killed):
        evaluate(compose_eval(overrides), cut, on_chunk=kill_after_three)
    with (cut / "samples.jsonl").open("a") as handle:  # and the kill came in the middle of a write
        handle.write('{"benchmark": "math500", "problem_id": "test/alg')
    lines_before = len((cut / "samples.jsonl").read_text().splitlines())
    resumed = evaluate(compose_eval(overrides), cut, on_chunk=chunks.append)
    assert resumed == whole
    assert (cut / "results.json").read_text() == (tmp_path / "whole" / "results.json").read_text()
    # only the missing chunks were generated: 11 chunks in all, 3 done before the kill
    assert len(chunks) == 3 + (11 - 3) and lines_before == 3 * 2 + 1
    assert sorted((cut / "samples.jsonl").read_text().splitlines()) == sorted(
        (tmp_path / "whole" / "samples.jsonl").read_text().splitlines())


def test_resuming_with_other_settings_is_refused(tmp_path):
    overrides = ["suite=smoke", "only=[aime2024]", "suite.benchmarks.aime2024.limit=1", "suite.sampling.max_new_tokens=4"]
    evaluate(compose_eval(overrides), tmp_path)
    from archer.config_checks import ConfigError

    with pytest.raises(ConfigError, match="changed: seed"):
        evaluate(compose_eval([*overrides, "seed=1"]), tmp_path)


def test_saved_model_and_bad_config(tmp_path, tiny_model_dir):
    results = evaluate(compose_eval(["suite=smoke", "only=[math500]", "suite.benchmarks.math500.limit=2",
                                     f"model.path={tiny_model_dir}", "model.dtype=float32"]), tmp_path / "m")
    assert results["model"] == str(tiny_model_dir) and list(results["benchmarks"]) == ["math500"]
    assert results["benchmarks"]["math500"]["problems"] == 2
    bad = subprocess.run([sys.executable, "-m", "archer.evaluate", "+suite.benchmarks.gsm9k.k=1",
                          f"out_dir={tmp_path / 'bad'}"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "unknown benchmark 'gsm9k'" in bad.stderr


def test_validation_during_training_logs_val_metrics(run):
    summary, run_dir = run(["heldout.max_problems=4", "validation.every_n_steps=1", "validation.k=2",
                            "validation.max_problems=4", "logger=tensorboard"])
    assert [entry["rl_step"] for entry in summary["validation"]] == [0, 1, 2]
    assert {"val/heldout/avg@2", "val/heldout/pass@2", "val/heldout/repetition@20"} <= set(summary["validation"][0])
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(summary["tensorboard"])
    events.Reload()
    assert {"val/heldout/avg@2", "val/heldout/pass@2"} <= set(events.Tags()["scalars"])
    assert len(events.Scalars("val/heldout/avg@2")) == 3


def test_own_files_evaluate_like_a_benchmark_and_no_interval_still_writes_results(tmp_path):
    held_out = tmp_path / "held_out.jsonl"
    held_out.write_text('{"id": "a", "problem": "1+1?", "answer": "2"}\n{"id": "b", "problem": "2+2?", "answer": "4"}\n')
    verl = tmp_path / "verl_rows.jsonl"
    verl.write_text(json.dumps({"prompt": [{"role": "user", "content": "3+3?"}], "reward_model": {"ground_truth": "6"}}) + "\n")
    overrides = ["suite=files", f"suite.paths=[{held_out},{verl}]", "suite.k=2", "suite.sampling.max_new_tokens=6",
                 "bootstrap_samples=0", "model.tiny.hidden_size=32", "model.tiny.num_layers=1",
                 "model.tiny.num_heads=2", "model.tiny.intermediate_size=64"]
    results = evaluate(compose_eval(overrides), tmp_path / "out")
    assert list(results["benchmarks"]) == ["held_out", "verl_rows"]
    assert results["benchmarks"]["held_out"]["problems"] == 2 and results["benchmarks"]["verl_rows"]["problems"] == 1
    assert results["benchmarks"]["held_out"]["avg@2_ci95"] == [None, None]
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == json.loads(json.dumps(results))
    assert "| held_out | 2 | 2 |" in (tmp_path / "out" / "results.md").read_text()
    lines = [json.loads(line) for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert {line["benchmark"] for line in lines} == {"held_out", "verl_rows"} and len(lines) == 3 * 2
    from archer.config_checks import ConfigError

    with pytest.raises(ConfigError, match="bootstrap_samples must be >= 0"):
        evaluate(compose_eval([*overrides, "bootstrap_samples=-1"]), tmp_path / "neg")
    with pytest.raises(ConfigError, match="named 'held_out'"):
        evaluate(compose_eval([*overrides[:1], f"suite.paths=[{held_out},{held_out}]"]), tmp_path / "dup")
