"""archer-train on data=files: a verl-form Parquet file trains with the math verifier; data=jsonl still works."""

from __future__ import annotations

import csv
import json

from hydra.utils import instantiate

from archer.types import Sample
from archer.verifiers import MathVerifier
from archer.verifiers.runner import ScoringRunner
from tests.integration.conftest import FAST, compose_train

# The tiny settings without the synthetic task's data keys and the parity verifier double.
BASE = [k for k in FAST if not k.startswith(("data.", "verifier."))]


class GoldOnEvenLengths(MathVerifier):
    """The math verifier, shown a correct `\\boxed{}` answer for responses of even length: an
    untrained tiny model never solves a problem, so this is how a smoke run proves that the rows'
    ground truths reach the verifier through training (reward > 0 only if they do)."""

    isolated = False

    def __call__(self, response: str, sample: Sample) -> float:
        return super().__call__(f"\\boxed{{{sample.answer}}}" if len(response) % 2 == 0 else response, sample)


def write_verl_parquet(path, count: int = 12) -> list[dict]:
    """Math rows as verl's preprocessing scripts write them: chat messages, ground truth, index."""
    import datasets

    rows = [{"data_source": "synthetic/products", "ability": "math",
             "prompt": [{"role": "user", "content": f"What is {i} times 3? Put the answer in \\boxed{{}}."}],
             "reward_model": {"style": "rule", "ground_truth": str(3 * i)},
             "extra_info": {"split": "train", "index": i}} for i in range(count)]
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    return rows


def test_a_verl_parquet_file_trains_with_the_math_verifier(run, tmp_path):
    path = tmp_path / "train.parquet"
    write_verl_parquet(path)
    overrides = ["data=files", f"data.source.train_path={path}", "data.source.heldout_size=4", "verifier=math",
                 "filter=keep_all", "heldout.max_problems=4", "heldout.samples_per_problem=1"]
    summary, run_dir = run(overrides, base=BASE)
    assert summary["rl_steps"] == 2 and summary["heldout_problems"] == 4
    assert summary["heldout_after"]["errors"] == 0.0  # the math verifier graded every held-out response
    gold, _ = run(overrides + [f"verifier._target_={__name__}.GoldOnEvenLengths"], name="gold", base=BASE)
    rows = [r for r in csv.DictReader(open(gold["metrics_csv"])) if r.get("train/reward")]
    assert len(rows) == 2 and all(float(r["reward/errors"]) == 0.0 for r in rows)
    assert sum(float(r["train/reward"]) for r in rows) > 0  # the rows' ground truths reached the verifier

    # The same config's data and verifier: a correct \boxed{} answer scores 1 against each ground truth.
    cfg = compose_train(BASE + overrides)
    data = instantiate(cfg.data.source)
    samples = data.train + data.heldout
    assert [s.id for s in samples] == [f"synthetic/products-{i}" for i in range(12)]
    scorer = ScoringRunner(instantiate(cfg.verifier), workers=1)
    try:
        right, _ = scorer([f"So the product is \\boxed{{{s.answer}}}." for s in samples], samples)
        wrong, _ = scorer([f"So the product is \\boxed{{{int(s.answer) + 1}}}." for s in samples], samples)
    finally:
        scorer.close()
    assert right.tolist() == [1.0] * 12 and wrong.tolist() == [0.0] * 12


def test_data_jsonl_is_still_an_alias_of_the_same_loader(run, tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "problem": f"{i}+{i}", "answer": str(2 * i)}) + "\n"
                            for i in range(10)))
    cfg = compose_train(BASE + ["data=jsonl", f"data.source.train_path={path}", "data.source.heldout_size=2"])
    data = instantiate(cfg.data.source)
    assert [s.id for s in data.train] == [f"p{i}" for i in range(8)] and data.heldout[0].problem == "8+8"
    summary, _ = run(["data=jsonl", f"data.source.train_path={path}", "data.source.heldout_size=2",
                      "verifier._target_=tests.doubles.ParityVerifier"], base=BASE)
    assert summary["rl_steps"] == 2
