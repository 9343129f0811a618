"""Acceptance of the verifiers on the shipped benchmarks (counts are asserted exactly)."""

from __future__ import annotations

import pytest

from archer.data import load_benchmark
from archer.data.benchmarks import BENCHMARKS, benchmark_kind
from archer.data.jsonl import DataError
from archer.types import Sample
from archer.verifiers import CodeVerifier, LogicVerifier, MathVerifier, ScoringRunner

MATH_SETS = {"math500": 500, "aime2024": 30, "aime2025": 30, "amc": 83, "amc23": 40, "minerva": 272, "olympiadbench": 675,
             "gsm8k": 1319, "svamp": 1000}
# the same rows as gsm8k / svamp (gold answers checked there)
WORD_PROBLEM_PARTS = {"gsm8k_train": 7473, "svamp_train": 700, "svamp_test": 300, "svamp1_train": 530, "svamp1_test": 232}
# Documented quirks: rows whose neighbour's gold is equal to their own gold in value.
KNOWN_EQUAL_NEIGHBOURS = {("5", "x=5")}


def fence(code: str) -> str:
    return f"Here is my solution.\n```python\n{code}\n```"


@pytest.fixture(scope="module")
def code_runner():
    with ScoringRunner(CodeVerifier(max_tests=0, timeout=30, total_timeout=120), workers=2, timeout=180) as runner:
        yield runner


def test_every_benchmark_loads_with_its_documented_size():
    sizes = {**MATH_SETS, **WORD_PROBLEM_PARTS, "knights_knaves": 700, "knights_knaves_val": 500, "livecodebench": 279,
             "leetcode": 200, "leetcodedataset": 228, "humaneval": 164}
    assert set(sizes) == set(BENCHMARKS)
    for name, size in sizes.items():
        samples = load_benchmark(name)
        assert len(samples) == size and len({s.id for s in samples}) == size, name
        assert all(s.info["kind"] == benchmark_kind(name) for s in samples)
    assert len(load_benchmark("aime2024", limit=5)) == 5
    with pytest.raises(DataError, match="unknown benchmark 'gsm9k'"):
        load_benchmark("gsm9k")


@pytest.mark.parametrize("name", sorted(MATH_SETS))
def test_math_gold_self_consistency(name):
    verifier = MathVerifier()
    samples = load_benchmark(name)
    misses = [s.id for s in samples if verifier(f"So the answer is $\\boxed{{{s.answer}}}$.", s) != 1.0]
    assert misses == []
    # the gold of a different row (the next one with a different spelling) scores 0
    wrong = []
    for i, s in enumerate(samples):
        other = next(o for o in samples[i + 1:] + samples[:i] if o.answer.strip() != s.answer.strip())
        if verifier(f"\\boxed{{{other.answer}}}", s) != 0.0:
            wrong.append((s.answer, other.answer))
    assert set(wrong) <= KNOWN_EQUAL_NEIGHBOURS
    assert len(wrong) <= 0.01 * len(samples)


@pytest.mark.parametrize("name", ["knights_knaves", "knights_knaves_val"])
def test_knights_and_knaves_gold_scores_one_and_every_flip_zero(name):
    verifier = LogicVerifier()
    flips = 0
    for s in load_benchmark(name):
        assert verifier(f"<think>...</think>\n<answer>\n{s.info['solution_text_format']}\n</answer>", s) == 1.0
        assert verifier(s.info["solution_text"], s) == 1.0
        for name_ in s.answer:
            roles = {**s.answer, name_: "knave" if s.answer[name_] == "knight" else "knight"}
            text = "\n".join(f"({i}) {n} is a {r}" for i, (n, r) in enumerate(roles.items(), start=1))
            assert verifier(f"<answer>{text}</answer>", s) == 0.0
            flips += 1
    assert flips == {"knights_knaves": 3500, "knights_knaves_val": 2500}[name]


def test_humaneval_canonical_solutions_pass_and_stubs_fail(code_runner):
    samples = load_benchmark("humaneval")
    solved = [fence(s.info["function_prompt"] + s.info["canonical_solution"]) for s in samples]
    stubs = [fence(s.info["function_prompt"] + "    pass\n") for s in samples]
    scores, metrics = code_runner(solved + stubs, samples + samples)
    assert scores[:164].sum() == 164, [s.id for s, v in zip(samples, scores[:164]) if v != 1]
    assert scores[164:].sum() == 0, [s.id for s, v in zip(samples, scores[164:]) if v != 0]
    assert metrics == {"reward/errors": 0.0, "reward/timeouts": 0.0}
    assert samples[0].id == "HumanEval/0"


@pytest.mark.parametrize("name", ["leetcode", "leetcodedataset"])
def test_leetcode_reference_solutions_pass(name, code_runner):
    samples = load_benchmark(name)
    scores, metrics = code_runner([fence(s.info["reference_solution"]) for s in samples], samples)
    assert scores.sum() == len(samples), [s.id for s, v in zip(samples, scores) if v != 1]
    # a solution that returns nothing fails
    stub = "class Solution:\n    def __getattr__(self, name):\n        return lambda *a, **k: None"
    scores, _ = code_runner([fence(stub)] * 5, samples[:5])
    assert scores.sum() == 0


def test_livecodebench_functional_problems_with_reference_solutions(code_runner):
    """98 LeetCode problems of LCB v5 have a LeetCodeDataset reference solution; they are run the
    LCB way (JSON arguments to Solution().<func_name>). 3682's miss is a harness artefact, as in
    SOURCES.md: the solution's `from math import *` shadows the 3-argument built-in pow."""
    lcb = {s.id: s for s in load_benchmark("livecodebench")}
    by_title = {s.info["title"]: s for s in lcb.values()}
    pairs = [(by_title[r.id], r) for r in load_benchmark("leetcodedataset")
             if r.info.get("in_livecodebench_public_v5") and r.id in by_title]
    assert len(pairs) == 98 and all(p.answer["test_type"] == "functional" for p, _ in pairs)
    texts = [fence(r.info["import_prefix"] + "\n" + r.info["reference_solution"]) for _, r in pairs]
    scores, _ = code_runner(texts, [p for p, _ in pairs])
    assert sorted(p.id for (p, _), v in zip(pairs, scores) if v != 1) == ["3682"]


STDIN_SOLUTIONS = {
    "abc365_a": "y = int(input())\nprint(366 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 365)",
    "abc365_b": "n = int(input())\na = list(map(int, input().split()))\nprint(a.index(sorted(a)[-2]) + 1)",
    "abc366_b": ("n = int(input())\ns = [input() for _ in range(n)]\nm = max(map(len, s))\n"
                 "for j in range(m):\n    t = ''.join(s[i][j] if j < len(s[i]) else '*' for i in reversed(range(n)))\n"
                 "    print(t.rstrip('*'))"),
}


def test_livecodebench_stdin_problems(code_runner):
    lcb = {s.id: s for s in load_benchmark("livecodebench")}
    samples = [lcb[i] for i in STDIN_SOLUTIONS]
    assert all(s.answer["test_type"] == "stdin" for s in samples)
    scores, _ = code_runner([fence(code) for code in STDIN_SOLUTIONS.values()], samples)
    assert scores.tolist() == [1.0, 1.0, 1.0]
    # an off-by-one answer and a program that forgets the trailing-star rule fail
    wrong = [STDIN_SOLUTIONS["abc365_b"].replace("+ 1", ""), STDIN_SOLUTIONS["abc366_b"].replace(".rstrip('*')", "")]
    scores, _ = code_runner([fence(code) for code in wrong], [lcb["abc365_b"], lcb["abc366_b"]])
    assert scores.tolist() == [0.0, 0.0]


def test_training_draws_tests_per_response_and_fraction_reward():
    sample = load_benchmark("leetcodedataset", limit=1)[0]
    right = fence(sample.info["reference_solution"])
    assert sample.info["num_tests"] > 16
    assert CodeVerifier(max_asserts=16)(right, sample) == 1.0
    # a solution that is right on some inputs only: fraction in (0, 1), all-or-nothing 0
    partial = Sample("p", "?", {"test_code": "def check(c):\n    assert c(1) == 1\n    assert c(2) == 4\n"
                                             "    assert c(3) == 9\n    assert c(4) == 17\ncheck(sq)"})
    program = fence("def sq(x):\n    return x * x")
    assert CodeVerifier(reward="fraction")(program, partial) == 0.75
    assert CodeVerifier()(program, partial) == 0.0
    # each response draws its own subset (the reference draws per response, not per problem)
    two = CodeVerifier(max_asserts=2, reward="fraction")
    assert {two(program, partial, draw=f"0/7/0/{i}") for i in range(24)} == {0.5, 1.0}
    assert len({two(program, partial, draw="0/7/0/3") for _ in range(3)}) == 1  # a key draws one subset
