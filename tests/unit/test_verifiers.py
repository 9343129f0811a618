"""Answer extraction and the code verifier's three test formats."""

import pytest

from archer.types import Sample
from archer.verifiers import CodeVerifier, MathVerifier
from archer.verifiers.extract import after_think, last_boxed, last_code_block


def test_extraction():
    assert last_boxed(r"a \boxed{1} then \boxed{\frac{1}{\sqrt{2}}}") == r"\frac{1}{\sqrt{2}}"
    assert last_boxed(r"\fbox{7}") == "7" and last_boxed(r"so \boxed 42.") == "42"
    assert last_boxed(r"\boxed{unbalanced") is None and last_boxed("none") is None
    assert after_think("draft \\boxed{1}</think> final \\boxed{2}") == " final \\boxed{2}"
    assert last_code_block("```python\na=1\n```\ntext\n```python\nb=2\n```") == "b=2\n"


@pytest.mark.parametrize(
    "predicted, gold, expected",
    [
        (r"\frac{1}{2}", "0.5", 1.0),
        (r"\dfrac{3}{4}", r"\frac{3}{4}", 1.0),
        (r"\left( 3, \frac{\pi}{2} \right)", r"\left( 3, \frac{\pi}{2} \right)", 1.0),
        ("(x+1)^2", "x^2+2x+1", 1.0),
        ("025", "25", 1.0),
        ("24", "25", 0.0),
        (r"\frac{1}{3}", "0.33", 0.0),
    ],
)
def test_math_verifier_pairs(predicted, gold, expected):
    assert MathVerifier()(f"work </think> answer \\boxed{{{predicted}}}", Sample("a", "?", gold)) == expected


def test_math_verifier_grades_only_after_think_and_rejects_huge_answers():
    sample = Sample("a", "?", "7")
    assert MathVerifier()("\\boxed{7}</think> \\boxed{8}", sample) == 0.0
    assert MathVerifier()("\\boxed{" + "1" * 5000 + "}", sample) == 0.0


def test_code_verifier_stdin_functional_and_assert_styles():
    verify = CodeVerifier(timeout=5)
    stdin = Sample("s", "?", {"test_type": "stdin", "tests": [{"input": "2 3\n", "output": "5\n"}]})
    assert verify("```python\na, b = map(int, input().split())\nprint(a + b)\n```", stdin) == 1.0
    assert verify("```python\nprint(6)\n```", stdin) == 0.0
    functional = Sample("f", "?", {"test_type": "functional", "func_name": "add",
                                   "tests": [{"input": "1\n2", "output": "3"}, {"input": "[1]\n[2]", "output": "[1, 2]"}]})
    assert verify("```python\nclass Solution:\n    def add(self, a, b):\n        return a + b\n```", functional) == 1.0
    assert verify("```python\nclass Solution:\n    def add(self, a, b):\n        pass\n```", functional) == 0.0
    asserts = Sample("h", "?", {"test_code": "def check(c):\n    assert c(2) == 4\ncheck(sq)"})
    assert verify("```python\ndef sq(x):\n    return x * x\n```", asserts) == 1.0
    assert verify("no code", asserts) == 0.0


def test_code_verifier_survives_hostile_programs(monkeypatch):
    verify = CodeVerifier(timeout=2, memory_mb=256)
    sample = Sample("s", "?", {"test_type": "stdin", "tests": [{"input": "", "output": "1"}]})
    hostile = [
        "while True: pass",
        "import time; time.sleep(60)",
        "x = bytearray(10**10)",
        "print('x' * 10**9)",
        "def f(): return f()\nf()",
    ]
    for program in hostile:
        assert verify(f"```python\n{program}\n```", sample) == 0.0, program


def test_code_runs_without_the_parents_environment(monkeypatch):
    monkeypatch.setenv("ARCHER_SECRET", "hunter2")
    sample = Sample("s", "?", {"test_type": "stdin", "tests": [{"input": "", "output": "clean"}]})
    program = "import os\nprint('leak' if 'ARCHER_SECRET' in os.environ else 'clean')"
    assert CodeVerifier()(f"```python\n{program}\n```", sample) == 1.0


def test_stdin_tests_are_drawn_per_response_and_rewards_stay_in_range():
    tests = [{"input": f"{i}\n", "output": f"{i * i}\n"} for i in range(6)]
    sample = Sample("sq", "?", {"test_type": "stdin", "tests": tests})
    wrong_on_5 = "```python\nx = int(input())\nprint(x * x if x != 5 else 0)\n```"
    verify = CodeVerifier(max_tests=3, reward="fraction", timeout=5)
    seen = {verify(wrong_on_5, sample, draw=str(i)) for i in range(12)}
    assert seen == {2 / 3, 1.0}
    # a test repeated in the script counts once per assert and never lifts the reward above 1
    repeated = Sample("r", "?", {"test_code": "def check(c):\n" + "    assert c(2) == 4\n" * 5 + "check(sq)"})
    assert CodeVerifier(reward="fraction")("```python\ndef sq(x):\n    return x * x\n```", repeated) == 1.0


def test_the_runner_passes_draw_keys_to_the_workers():
    from archer.verifiers import ScoringRunner

    tests = [{"input": f"{i}\n", "output": f"{i * i}\n"} for i in range(6)]
    sample = Sample("sq", "?", {"test_type": "stdin", "tests": tests})
    wrong_on_5 = "```python\nx = int(input())\nprint(x * x if x != 5 else 0)\n```"
    verify = CodeVerifier(max_tests=3, reward="fraction", timeout=5)
    draws = [str(i) for i in range(8)]
    expected = [verify(wrong_on_5, sample, draw=d) for d in draws]
    with ScoringRunner(verify, workers=2) as runner:
        scores, _ = runner([wrong_on_5] * 8, [sample] * 8, draws)
    assert scores.tolist() == pytest.approx(expected)
