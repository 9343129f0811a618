"""Code answers: the last fenced python block, run against the sample's tests in the sandbox.

`sample.answer` is a test spec (a dict, or its JSON string), in one of three formats:

- stdin/stdout (AtCoder, Codeforces): `{"test_type": "stdin", "tests": [{"input", "output"}]}`.
  One sandboxed run per test; we feed the input and compare the stripped output lines.
- functional (LeetCode in LiveCodeBench's format): `{"test_type": "functional", "func_name": "f",
  "tests": [...]}`; each input line is one JSON argument of `Solution().f` (or a top-level `f`).
  One sandboxed interpreter per response answers the calls; we compare each result with the
  expected JSON (a tuple counts as a list, as in LiveCodeBench).
- assert-style (HumanEval, LeetCodeDataset): `{"test_code": "def check(candidate): ...\\ncheck(f)"}`.
  The test code runs here, in a trusted process, and calls the candidate through the sandbox
  (archer/verifiers/checks.py).

Whatever the format, the candidate's process receives inputs only and hands back plain data
(archer/verifiers/boundary/plain.py): expected outputs and test code never reach it, so no custom
`__eq__`, patched builtin, tampered harness or read of a file can make a test pass. Time is
measured here, per test and per response. A crash or timeout fails a test; an exit status
never passes one.

Any spec may carry `import_prefix`, source placed before the program (LeetCodeDataset's
imports and ListNode helpers, HumanEval's prompt); it is trusted and also runs in the checker.
The reward is 1 only if every test passes (`reward: fraction`: the share passed, each test
counted once). During training at most `max_tests` stdin/functional tests run per response,
drawn afresh for each response (the reference draws 16 per response); assert-style scripts run
whole (as the reference), or `max_asserts` of their asserts.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import random
import time

from archer.config_checks import ConfigError, check_choice, check_non_negative, check_positive
from archer.types import Sample
from archer.verifiers.checks import AssertPlan, CandidateFailed, OutOfTime, run_check
from archer.verifiers.extract import after_think, last_code_block
from archer.verifiers.sandbox import ISOLATION_CHOICES, CallSession, Limits, bubblewrap, run_program

# What LiveCodeBench-style harnesses make available without an import.
DEFAULT_PREFIX = (
    "import sys, math, heapq, bisect, itertools, functools, collections, string, re\n"
    "from typing import *\nfrom collections import *\nfrom functools import lru_cache, cache, reduce, cmp_to_key\n"
    "from itertools import accumulate, permutations, combinations, product, groupby, pairwise\n"
    "from heapq import heappush, heappop, heapify\nfrom bisect import bisect_left, bisect_right, insort\n"
    "from math import inf, gcd, comb, sqrt, ceil, floor, log2, isqrt\n"
)


class CodeVerifier:
    """Run the response's program against its sample's tests.

    Args:
        timeout: wall-clock seconds per test (one run, or one call of the candidate).
        total_timeout: seconds for all of one response's tests; tests not reached fail.
        memory_mb: address-space limit of the program.
        max_tests: at most this many stdin/functional tests per response (0: all).
        max_asserts: at most this many asserts of an assert-style script (0: all, the reference).
        max_output_bytes: cap on what the program may print, and on one returned value.
        reward: `all` (1 only if every test passes) or `fraction` (share of tests passed).
        think_only_after: grade only the text after the first `</think>`.
        isolation: `bubblewrap` (the OS sandbox) or `none_trusted_code_only` (no sandbox:
            only for code you trust, e.g. reference solutions).
        packages: third-party packages the program may import (bound read-only into the sandbox).
        max_threads: threads the program may start (new processes are always refused).
        disk_mb: size of the program's private working folder.
        seed: the run's seed; each response's test subset is drawn from (seed, its own key).
    """

    # Runs untrusted code: the scoring runner puts it in worker processes.
    isolated = True
    # The scoring runner passes a per-response `draw` key (run seed, step, response).
    draws_tests = True

    def __init__(self, timeout: float = 6.0, total_timeout: float = 30.0, memory_mb: int = 1024, max_tests: int = 16,
                 max_asserts: int = 0, max_output_bytes: int = 1 << 20, reward: str = "all", think_only_after: bool = True,
                 isolation: str = "bubblewrap", packages: list[str] | tuple[str, ...] = ("sortedcontainers",),
                 max_threads: int = 16, disk_mb: int = 64, seed: int = 0):
        check_positive("verifier.timeout", timeout)
        check_positive("verifier.total_timeout", total_timeout)
        check_positive("verifier.memory_mb", memory_mb)
        check_positive("verifier.max_threads", max_threads)
        check_positive("verifier.disk_mb", disk_mb)
        check_choice("verifier.reward", reward, ("all", "fraction"))
        check_choice("verifier.isolation", isolation, ISOLATION_CHOICES)
        check_non_negative("verifier.max_tests", max_tests)
        check_non_negative("verifier.max_asserts", max_asserts)
        if timeout > total_timeout:
            raise ConfigError(f"verifier.timeout ({timeout}) must be <= verifier.total_timeout ({total_timeout})")
        self.timeout, self.total_timeout, self.reward = float(timeout), float(total_timeout), reward
        self.max_tests, self.max_asserts, self.seed = int(max_tests), int(max_asserts), int(seed)
        self.think_only_after, self.isolation, self.packages = think_only_after, isolation, tuple(packages)
        self.memory_mb, self.max_output_bytes, self.max_threads, self.disk_mb = memory_mb, max_output_bytes, max_threads, disk_mb
        if isolation == "bubblewrap":
            bubblewrap()  # fail now, with the fix, rather than score every response 0 later

    def extract(self, response: str, sample: Sample | None = None) -> str | None:
        """The program that is run (the last fenced python block), or None."""
        return last_code_block(after_think(response) if self.think_only_after else response)

    def __call__(self, response: str, sample: Sample, draw: str | None = None) -> float:
        """Score one response; `draw` keys the random choice of tests (default: the response itself)."""
        program = self.extract(response)
        if program is None:
            return 0.0
        spec = sample.answer if isinstance(sample.answer, dict) else json.loads(sample.answer)
        program = spec.get("import_prefix", DEFAULT_PREFIX) + "\n" + program
        rng = random.Random(_draw_seed(self.seed, sample.id, response if draw is None else draw))
        deadline = time.monotonic() + self.total_timeout
        if "test_code" in spec:
            passed, total = self._asserts(program, spec, rng, deadline)
        elif spec.get("test_type") == "functional":
            passed, total = self._functional(program, spec, rng, deadline)
        else:
            passed, total = self._stdin(program, spec, rng, deadline)
        if total == 0:
            return 0.0
        return passed / total if self.reward == "fraction" else float(passed == total)

    # ----------------------------------------------------------------- the three formats

    def _limits(self, timeout: float, cpu_seconds: float) -> Limits:
        return Limits(timeout=timeout, cpu_seconds=int(cpu_seconds) + 1, memory_mb=self.memory_mb,
                      max_output_bytes=self.max_output_bytes, max_threads=self.max_threads, disk_mb=self.disk_mb)

    def _choose(self, tests: list, rng: random.Random, limit: int) -> list:
        if limit and len(tests) > limit:
            return [tests[i] for i in sorted(rng.sample(range(len(tests)), limit))]
        return tests

    def _stdin(self, program: str, spec: dict, rng: random.Random, deadline: float) -> tuple[int, int]:
        tests = self._choose(list(spec["tests"]), rng, self.max_tests)
        passed = 0
        for test in tests:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            run = run_program(program, stdin=test["input"], limits=self._limits(min(self.timeout, left), self.timeout),
                              isolation=self.isolation, packages=self.packages)
            ok = run.exited_cleanly and _lines(run.stdout) == _lines(test["output"])
            passed += ok
            if not ok and self.reward == "all":
                break
        return passed, len(tests)

    def _functional(self, program: str, spec: dict, rng: random.Random, deadline: float) -> tuple[int, int]:
        tests = self._choose(list(spec["tests"]), rng, self.max_tests)
        candidate = _Candidate(self, program, {"class": "Solution", "name": spec["func_name"]}, {}, deadline)
        passed = 0
        try:
            for test in tests:
                try:
                    args = [json.loads(line) for line in test["input"].splitlines() if line.strip()]
                    got = candidate(*args)
                    ok = _as_list(got) == json.loads(test["output"])
                except CandidateFailed:
                    ok = False
                passed += ok
                if not ok and self.reward == "all":
                    break
        except OutOfTime:
            pass
        finally:
            candidate.close()
        return passed, len(tests)

    def _asserts(self, program: str, spec: dict, rng: random.Random, deadline: float) -> tuple[int, int]:
        plan = AssertPlan.parse(spec["test_code"])
        keep = None
        if self.max_asserts and plan.asserts > self.max_asserts:
            keep = set(rng.sample(range(plan.asserts), self.max_asserts))
        total = (len(keep) if keep is not None else plan.asserts) + plan.needs_completion_test
        candidates: list[_Candidate] = []

        def proxy(classes):
            candidates.append(_Candidate(self, program, plan.entry, classes, deadline))
            return candidates[-1]

        try:
            with contextlib.redirect_stdout(io.StringIO()):
                outcomes = run_check(plan, keep, spec.get("import_prefix", ""), proxy)
        finally:
            for candidate in candidates:
                candidate.close()
        return sum(outcomes.values()), total


class _Candidate:
    """The candidate's function as the trusted side sees it: each call crosses the sandbox as
    plain data, under the per-test limit and the response's deadline. After a failed load or a
    timeout, `reward: all` stops (OutOfTime); `fraction` starts a fresh interpreter."""

    def __init__(self, verifier: CodeVerifier, program: str, entry: dict, classes: dict, deadline: float):
        self.verifier, self.program, self.entry, self.classes, self.deadline = verifier, program, entry, classes, deadline
        self.session: CallSession | None = None
        self.failures = 0

    def __call__(self, *args, **kwargs):
        v = self.verifier
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise OutOfTime()
        if self.session is None or not self.session.alive:
            if self.session is not None and v.reward == "all":
                raise OutOfTime()  # it already failed a test: the response scores 0 anyway
            self.close()
            limits = v._limits(min(v.timeout, left), left)
            self.session = CallSession(self.program, self.entry, limits, self.classes, v.isolation, v.packages)
            if self.session.load_error:
                self.session.close()
                raise OutOfTime() if v.reward == "all" else CandidateFailed(self.session.load_error)
            left = self.deadline - time.monotonic()
        status, value, after = self.session.call(list(args), dict(kwargs), timeout=max(min(v.timeout, left), 0.0))
        if status != "ok":
            raise CandidateFailed(status)
        try:
            _write_back(list(args) + list(kwargs.values()), after[0] + list(after[1].values()))
        except (TypeError, IndexError, AttributeError) as err:
            raise CandidateFailed("malformed reply") from err
        return value

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


def _write_back(originals: list, updated: list) -> None:
    """Mirror in-place changes the candidate made to mutable arguments (`nums.sort()` problems)."""
    if len(originals) != len(updated):
        return
    for old, new in zip(originals, updated):
        if type(old) is list and type(new) is list:
            old[:] = new
        elif type(old) is dict and type(new) is dict:
            old.clear()
            old.update(new)
        elif type(old) is set and type(new) is set:
            old.clear()
            old.update(new)


def _as_list(value):
    return list(value) if type(value) is tuple else value


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]


def _draw_seed(seed: int, sample_id: str, key: str) -> int:
    digest = hashlib.sha256(f"{seed}\0{sample_id}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
