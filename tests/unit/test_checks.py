"""Assert-style test plans: which asserts are tests, which function is tested, outcomes per test."""

from __future__ import annotations

import pytest

from archer.verifiers.checks import AssertPlan, CandidateFailed, run_check

HUMANEVAL_STYLE = '''
METADATA = {}

def check(candidate):
    assert candidate(1) == 2
    assert True, "This prints if this assert fails (good for debugging!)"
    assert candidate(2) == 3
    assert abs(candidate(3) - 4) < 1e-6
'''


def test_counted_asserts_are_those_that_call_the_candidate():
    plan = AssertPlan.parse(HUMANEVAL_STYLE + "\ncheck(inc)\n")
    assert plan.entry == {"name": "inc"} and plan.asserts == 3 and not plan.needs_completion_test
    plan = AssertPlan.parse("def check(candidate):\n    assert candidate(x=1) == 2\n\ncheck(Solution().inc)\n")
    assert plan.entry == {"class": "Solution", "name": "inc"}


def test_loops_of_asserts_and_checks_without_asserts_count_as_one_completion_test():
    loop = "def check(c):\n    assert c(0) == 1\n    for i in range(5):\n        assert c(i) == i + 1\n\ncheck(inc)\n"
    plan = AssertPlan.parse(loop)
    assert (plan.asserts, plan.needs_completion_test, plan.total) == (1, True, 2)
    none = AssertPlan.parse("def check(c):\n    if c(1) != 2:\n        raise ValueError\n\ncheck(inc)\n")
    assert (none.asserts, none.total) == (0, 1)


@pytest.mark.parametrize("code", ["x = 1", "def check(c):\n    assert c(1)\n", "def check(c):\n    pass\ncheck(1 + 2)\n"])
def test_test_code_without_a_recognisable_check_is_refused(code):
    with pytest.raises(ValueError):
        AssertPlan.parse(code)


def _candidate(fn):
    def factory(classes):
        def call(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as err:
                raise CandidateFailed(str(err)) from err
        return call
    return factory


def test_outcomes_per_test_and_a_failed_call_fails_only_its_assert():
    plan = AssertPlan.parse(HUMANEVAL_STYLE + "\ncheck(inc)\n")
    assert run_check(plan, None, "", _candidate(lambda x: x + 1)) == {0: True, 1: True, 2: True}
    outcomes = run_check(plan, None, "", _candidate(lambda x: x + 1 if x != 2 else 1 / 0))
    assert outcomes == {0: True, 1: False, 2: True}
    assert run_check(plan, {2}, "", _candidate(lambda x: 0)) == {2: False}  # only the kept assert runs


def test_the_tested_name_is_the_candidate_inside_the_tests():
    """HumanEval/33 compares with `sort_third(...)` itself: that name must be the candidate too."""
    code = "def check(candidate):\n    assert candidate(3) == f(3)\n\ncheck(f)\n"
    plan = AssertPlan.parse(code)
    assert run_check(plan, None, "def f(x):\n    pass\n", _candidate(lambda x: x * 2)) == {0: True}


def test_a_check_that_stops_early_fails_its_completion_test():
    code = "def check(c):\n    assert c(1) == 2\n    for i in range(3):\n        assert c(i) == i + 1\n\ncheck(inc)\n"
    plan = AssertPlan.parse(code)
    assert run_check(plan, None, "", _candidate(lambda x: x + 1)) == {0: True, -1: True}
    assert run_check(plan, None, "", _candidate(lambda x: 2)) == {0: True, -1: False}
