"""The results table from fabricated samples, and samples.jsonl's resume bookkeeping."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from archer.evaluation import Record, SamplesLog, chunk_seed, summarize
from archer.report import rebuild_results, results_table
from archer.verifiers import MathVerifier


def record(benchmark, problem, index, score, answer=None, chunk=0, tokens=10, finish="stop"):
    return Record(benchmark, problem, index, chunk, "prompt" if index == 0 else "", "response", answer, score,
                  finish, tokens, 0.0)


def test_report_from_fabricated_samples(tmp_path):
    # aime: 2 problems x 4 samples. p1: 1 of 4 right, p2: 0 of 4.
    #   avg@4 = (0.25 + 0) / 2 = 12.5%; pass@4 = (1 + 0) / 2 = 50%;
    #   maj@4: p1's answers 5,5,7,7 -> tie, first seen (5, wrong) wins -> 0; p2 -> 0.
    # math500: 1 problem x 2 samples, both right: avg@2 = pass@2 = maj@2 = 100%.
    # average row: avg (12.5 + 100) / 2 = 56.2 (56.25 rounded half to even), pass (50 + 100) / 2 = 75.0
    rows = [record("aime", "p1", 0, 0.0, "5"), record("aime", "p1", 1, 0.0, "5"),
            record("aime", "p1", 2, 1.0, "7", tokens=30, finish="length"), record("aime", "p1", 3, 0.0, "7"),
            *[record("aime", "p2", i, 0.0, None) for i in range(4)],
            record("math500", "q", 0, 1.0, "\\frac{1}{2}"), record("math500", "q", 1, 1.0, "0.5")]
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps(asdict(r)) + "\n" for r in rows))
    results = rebuild_results(path, verifiers={"aime": MathVerifier(), "math500": MathVerifier()})
    aime, math500 = results["benchmarks"]["aime"], results["benchmarks"]["math500"]
    assert aime["avg@4"] == pytest.approx(0.125) and aime["pass@4"] == pytest.approx(0.5) and aime["maj@4"] == 0.0
    assert aime["truncated"] == pytest.approx(1 / 8) and aime["response_tokens"]["max"] == 30
    assert math500["avg@2"] == math500["pass@2"] == 1.0 and math500["maj@2"] == 1.0  # 1/2 and 0.5 vote together
    assert results_table(results) == (
        "| benchmark | problems | K | avg@K | 95% CI | pass@K | maj@K | tokens | truncated |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        "| aime | 2 | 4 | 12.5 | 0.0-25.0 | 50.0 | 0.0 | 12 | 12.5 |\n"
        "| math500 | 1 | 2 | 100.0 | 100.0-100.0 | 100.0 | 100.0 | 10 | 0.0 |\n"
        "| **average** | | | 56.2 | | 75.0 | | | |\n"
    )


def test_summary_uses_the_unbiased_estimator_for_k_below_n():
    rows = [record("b", "p", i, float(i < 2)) for i in range(8)]  # 2 of 8 right
    assert summarize(rows, k=8)["pass@8"] == 1.0
    assert summarize(rows, k=2)["pass@2"] == pytest.approx(1 - (6 * 5) / (8 * 7))


def test_samples_log_keeps_complete_chunks_only(tmp_path):
    log = SamplesLog(tmp_path / "samples.jsonl")
    log.append([record("b", "p0", i, 1.0, chunk=0) for i in range(2)] + [record("b", "p1", i, 0.0, chunk=0) for i in range(2)])
    log.append([record("b", "p2", 0, 1.0, chunk=1)])  # chunk 1 was cut short: 1 of its 2 lines
    with log.path.open("a") as handle:
        handle.write('{"benchmark": "b", "problem_id": "p2", "samp')  # killed mid-line
    done = log.load(lambda benchmark, chunk: 4 if chunk == 0 else 2)
    assert list(done) == [("b", 0)] and len(done[("b", 0)]) == 4
    # the file now holds exactly the complete chunk, ready for appending
    assert len(log.path.read_text().splitlines()) == 4


def test_chunk_seeds_depend_only_on_their_coordinates():
    assert chunk_seed(0, "aime", 3) == chunk_seed(0, "aime", 3)
    assert len({chunk_seed(0, "aime", 3), chunk_seed(1, "aime", 3), chunk_seed(0, "amc", 3), chunk_seed(0, "aime", 4)}) == 4
