"""archer-compare: paired per-problem differences between two evaluation folders."""

from __future__ import annotations

import json

import pytest

from archer.compare import compare, paired_difference


def test_paired_difference_on_hand_worked_numbers():
    result = paired_difference([0.0, 0.5, 1.0, 0.25], [0.5, 0.5, 1.0, 0.75], samples=2000)
    assert result["n"] == 4 and result["difference"] == pytest.approx(0.25)
    assert (result["before"], result["after"]) == (pytest.approx(0.4375), pytest.approx(0.6875))
    low, high = result["ci95"]
    # the paired differences are 0.5, 0, 0, 0.5: a resampled mean lies in [0, 0.5]
    assert 0.0 <= low < 0.25 < high <= 0.5
    same = paired_difference([0.1, 0.9], [0.1, 0.9], samples=100)
    assert same["difference"] == 0 and same["ci95"] == [0, 0]  # a constant shift has no spread
    with pytest.raises(ValueError):
        paired_difference([0.1], [0.1, 0.2])


def _write(folder, scores: dict[str, list[float]]):
    folder.mkdir()
    lines = [json.dumps({"benchmark": "svamp1_test", "problem_id": pid, "score": s}) for pid, ss in scores.items() for s in ss]
    (folder / "samples.jsonl").write_text("\n".join(lines) + '\n{"benchmark": "svamp1_te')  # a cut last line


def test_compare_pairs_problems_by_id_and_ignores_problems_only_one_side_has(tmp_path):
    _write(tmp_path / "a", {"p1": [0, 0, 0, 1], "p2": [0, 0, 0, 0], "only_a": [1, 1, 1, 1]})
    _write(tmp_path / "b", {"p2": [1, 1, 0, 0], "p1": [1, 1, 1, 1]})
    result = compare(tmp_path / "a", tmp_path / "b", samples=500)["svamp1_test"]
    assert result["n"] == 2 and result["before"] == pytest.approx(0.125) and result["after"] == pytest.approx(0.75)
    assert result["difference"] == pytest.approx(0.625)


def test_a_broken_line_inside_the_file_is_named(tmp_path):
    _write(tmp_path / "a", {"p1": [1]})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "samples.jsonl").write_text('{"benchmark": "x", "problem_id": "p1", "score": 1}\nnot json\n{}\n')
    with pytest.raises(SystemExit, match="samples.jsonl:2: not valid JSON"):
        compare(tmp_path / "a", tmp_path / "b")
