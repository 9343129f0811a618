"""Code answers: the last fenced python block, run against the sample's tests in the sandbox.

`sample.answer` is a test spec (a dict, or its JSON string), in one of three formats:

- stdin/stdout (AtCoder, Codeforces): `{"test_type": "stdin", "tests": [{"input", "output"}]}`.
  One run per test; stripped output lines must equal the expected ones.
- functional (LeetCode in LiveCodeBench's format): `{"test_type": "functional", "func_name": "f",
  "tests": [...]}`; each input line is one JSON argument of `Solution().f` (or a top-level `f`),
  the output is the JSON result. All tests share one run, each with its own time limit.
- assert-style (HumanEval, LeetCodeDataset): `{"test_code": "def check(candidate): ...\\ncheck(f)"}`.
  The top-level asserts of `check` are the tests (sampled or counted one by one when asked).

Any spec may carry `import_prefix`, source prepended to the program (LeetCodeDataset's imports,
HumanEval's prompt). The reward is 1 only if every test passes (`reward: fraction` gives the
passed share). At most `max_tests` tests run per sample during training (the reference: 16),
chosen by a seed from the sample id, so every response of a group meets the same tests.
"""

from __future__ import annotations

import ast
import json
import random
import secrets
import time

from archer.types import Sample
from archer.validation import check_choice, check_non_negative, check_positive
from archer.verifiers.extract import after_think, last_code_block
from archer.verifiers.sandbox import Limits, run_python

# What LiveCodeBench-style harnesses make available without an import.
DEFAULT_PREFIX = (
    "import sys, math, heapq, bisect, itertools, functools, collections, string, re\n"
    "from typing import *\nfrom collections import *\nfrom functools import lru_cache, cache, reduce, cmp_to_key\n"
    "from itertools import accumulate, permutations, combinations, product, groupby, pairwise\n"
    "from heapq import heappush, heappop, heapify\nfrom bisect import bisect_left, bisect_right, insort\n"
    "from math import inf, gcd, comb, sqrt, ceil, floor, log2, isqrt\n"
)

# Runs the functional tests inside the sandbox; only lines carrying the nonce (read from stdin
# before the program runs) count, so a program cannot print its way to a pass.
_FUNCTIONAL_DRIVER = """
import json, signal, sys
_nonce = sys.stdin.readline().strip()
_tests = json.load(open("tests.json"))
_per_test = {per_test!r}
exec(compile(open("solution.py").read(), "solution.py", "exec"))
class _Late(BaseException):
    pass
def _alarm(signum, frame):
    raise _Late()
signal.signal(signal.SIGALRM, _alarm)
_name = {name!r}
_fn = getattr(Solution(), _name) if "Solution" in globals() else globals()[_name]
for _raw, _expected in _tests:
    try:
        signal.setitimer(signal.ITIMER_REAL, _per_test)
        _got = _fn(*[json.loads(line) for line in _raw.splitlines() if line.strip()])
        signal.setitimer(signal.ITIMER_REAL, 0)
        if isinstance(_got, tuple):
            _got = list(_got)
        _ok = _got == json.loads(_expected)
    except BaseException:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _ok = False
    print(_nonce, int(_ok), flush=True)
"""

_ASSERT_RESULTS = """
_archer_results = []
"""


class CodeVerifier:
    """Run the response's program against its sample's tests.

    Args:
        timeout: wall-clock seconds per test (per run for assert-style tests).
        total_timeout: seconds for all of one response's tests together; tests not reached fail.
        memory_mb: address-space limit of the program.
        max_tests: test at most this many per sample (0: all).
        max_output_bytes: cap on what the program may print.
        reward: `all` (1 only if every test passes) or `fraction` (share of tests passed).
        think_only_after: grade only the text after the first `</think>`.
    """

    # Runs untrusted code: the scoring runner puts it in worker processes.
    isolated = True

    def __init__(self, timeout: float = 6.0, total_timeout: float = 30.0, memory_mb: int = 1024, max_tests: int = 16,
                 max_output_bytes: int = 1 << 20, reward: str = "all", think_only_after: bool = True):
        check_positive("verifier.timeout", timeout)
        check_positive("verifier.total_timeout", total_timeout)
        check_positive("verifier.memory_mb", memory_mb)
        check_choice("verifier.reward", reward, ("all", "fraction"))
        check_non_negative("verifier.max_tests", max_tests)
        self.timeout, self.total_timeout, self.max_tests, self.reward = timeout, total_timeout, max_tests, reward
        self.limits = Limits(timeout=timeout, memory_mb=memory_mb, max_output_bytes=max_output_bytes)
        self.think_only_after = think_only_after

    def extract(self, response: str, sample: Sample | None = None) -> str | None:
        """The program that is run (the last fenced python block), or None."""
        return last_code_block(after_think(response) if self.think_only_after else response)

    def __call__(self, response: str, sample: Sample) -> float:
        program = self.extract(response)
        if program is None:
            return 0.0
        spec = sample.answer if isinstance(sample.answer, dict) else json.loads(sample.answer)
        program = spec.get("import_prefix", DEFAULT_PREFIX) + "\n" + program
        if "test_code" in spec:
            return self._asserts(program, spec["test_code"], sample.id)
        tests = self._choose(list(spec["tests"]), sample.id)
        if spec.get("test_type") == "functional":
            return self._functional(program, spec["func_name"], tests)
        return self._stdin(program, tests)

    def _choose(self, tests: list, sample_id: str) -> list:
        if self.max_tests and len(tests) > self.max_tests:
            keep = sorted(random.Random(sample_id).sample(range(len(tests)), self.max_tests))
            tests = [tests[i] for i in keep]
        return tests

    def _score(self, passed: int, total: int) -> float:
        if total == 0:
            return 0.0
        return passed / total if self.reward == "fraction" else float(passed == total)

    def _stdin(self, program: str, tests: list[dict]) -> float:
        passed, deadline = 0, time.monotonic() + self.total_timeout
        for test in tests:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            limits = Limits(min(self.timeout, left), self.limits.memory_mb, self.limits.max_output_bytes)
            result = run_python(program, stdin=test["input"], limits=limits)
            ok = result.ok and _lines(result.stdout) == _lines(test["output"])
            passed += ok
            if not ok and self.reward == "all":
                break
        return self._score(passed, len(tests))

    def _functional(self, program: str, name: str, tests: list[dict]) -> float:
        nonce = secrets.token_hex(16)
        files = {"solution.py": program, "tests.json": json.dumps([[t["input"], t["output"]] for t in tests])}
        driver = _FUNCTIONAL_DRIVER.format(name=name, per_test=float(self.timeout))
        limits = Limits(self.total_timeout, self.limits.memory_mb, self.limits.max_output_bytes)
        result = run_python(driver, stdin=nonce + "\n", files=files, limits=limits)
        return self._score(_count_passes(result.stdout, nonce), len(tests))

    def _asserts(self, program: str, test_code: str, sample_id: str) -> float:
        nonce = secrets.token_hex(16)
        rewritten = _rewrite_check(test_code, self.max_tests, sample_id, nonce)
        limits = Limits(self.total_timeout, self.limits.memory_mb, self.limits.max_output_bytes)
        if rewritten is None:  # no recognisable check(): all or nothing on the exit status
            return float(run_python(program + "\n\n" + test_code, limits=limits).ok)
        source, total = rewritten
        result = run_python(program + "\n\n" + source, stdin=nonce + "\n", limits=limits)
        return self._score(_count_passes(result.stdout, nonce), total)


def _count_passes(stdout: str, nonce: str) -> int:
    return sum(line.split()[1] == "1" for line in stdout.splitlines() if line.startswith(nonce) and len(line.split()) == 2)


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]


def _rewrite_check(test_code: str, max_tests: int, sample_id: str, nonce: str) -> tuple[str, int] | None:
    """`test_code` with each top-level assert of `check` reporting pass/fail on its own line.

    Keeps at most `max_tests` asserts (seeded by the sample id) and every other statement, so
    setup code still runs. Returns (source, number of asserts), or None when there is no
    `def check` with top-level asserts.
    """
    try:
        tree = ast.parse(test_code)
    except SyntaxError:
        return None
    check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
    if check is None:
        return None
    positions = [i for i, node in enumerate(check.body) if isinstance(node, ast.Assert)]
    if not positions:
        return None
    if max_tests and len(positions) > max_tests:
        positions = sorted(random.Random(sample_id).sample(positions, max_tests))
    keep = set(positions)
    body = []
    for i, node in enumerate(check.body):
        if isinstance(node, ast.Assert) and i not in keep:
            continue
        if isinstance(node, ast.Assert):
            node = ast.parse(
                f"try:\n    _archer_ok = bool({ast.unparse(node.test)})\nexcept BaseException:\n    _archer_ok = False\n"
                f"print(_archer_nonce, int(_archer_ok), flush=True)"
            ).body
        body.extend(node if isinstance(node, list) else [node])
    check.body = body
    header = "import sys as _archer_sys\n_archer_nonce = _archer_sys.stdin.readline().strip()\n"
    return header + ast.unparse(tree), len(positions)
