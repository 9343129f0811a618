"""experiments/answer_prior.py: the split by gold answer and the guessing baseline are computed exactly."""

import importlib.util
import json
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "answer_prior.py"
_spec = importlib.util.spec_from_file_location("answer_prior", _SCRIPT)
answer_prior_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(answer_prior_module)


def _row(problem_id: str, answer: str | None, score: float) -> dict:
    return {"benchmark": "b", "problem_id": problem_id, "answer": answer, "score": score}


def test_split_by_gold_and_guessing_from_the_policys_own_answers():
    gold = {"p1": "1", "p2": "2", "p3": "40", "p4": "40"}
    rows = [_row("p1", "1", 1.0), _row("p1", "1.0", 1.0), _row("p2", "1", 0.0), _row("p2", None, 0.0),
            _row("p3", "40", 1.0), _row("p3", "1", 0.0), _row("p4", "7", 0.0), _row("p4", "2", 0.0)]
    r = answer_prior_module.answer_prior(rows, gold, small={1.0, 2.0, 3.0})
    assert r["pass@1"] == pytest.approx(3 / 8)
    assert r["answer_small_share"] == pytest.approx(5 / 8)  # "1", "1.0", "1", "1", "2"
    assert r["no_answer_share"] == pytest.approx(1 / 8)
    assert (r["problems_gold_small"], r["pass@1_gold_small"]) == (2, pytest.approx(2 / 4))
    assert (r["problems_gold_other"], r["pass@1_gold_other"]) == (2, pytest.approx(1 / 4))
    # answer 1 (4/8) is right on 1 of 4 problems, 40 (1/8) on 2 of 4, 2 (1/8) on 1 of 4, 7 on none
    assert r["guessing_own_distribution"] == pytest.approx(4 / 8 * 1 / 4 + 1 / 8 * 2 / 4 + 1 / 8 * 1 / 4)
    assert (r["commonest_gold"], r["commonest_gold_score"]) == (40.0, 0.5)


def test_a_folder_without_samples_is_named(tmp_path):
    with pytest.raises(SystemExit, match="no samples.jsonl"):
        answer_prior_module.read_samples(tmp_path)
    (tmp_path / "samples.jsonl").write_text(json.dumps(_row("p1", "1", 1.0)) + "\n\n")
    assert answer_prior_module.read_samples(tmp_path) == [_row("p1", "1", 1.0)]
    (tmp_path / "samples.jsonl").write_text(json.dumps(_row("p1", "1", 1.0)) + '\n{"benchmark": "b", "probl\n')
    with pytest.raises(SystemExit, match=r"samples.jsonl:2: not valid JSON"):
        answer_prior_module.read_samples(tmp_path)
