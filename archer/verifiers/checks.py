"""Assert-style tests (HumanEval's `check(candidate)`, LeetCodeDataset's asserts), run by us.

The test code is trusted data; the candidate is not. `AssertPlan` reads the test code once:
which function the final `check(...)` line tests, and which top-level asserts of `check`
are tests (those that mention the candidate; `assert True, "..."` lines are not). The
rewritten `check` reports each test's outcome to the caller and runs every other statement
as written. When `check` also holds statements that test the candidate with asserts of their
own (a loop of random cases), or no counted assert at all, one more test stands for "check
ran to the end".

The checker process calls the candidate through a `CandidateProxy`, so each call crosses the
sandbox boundary as plain data (`boundary/plain.py`) and the test source never reaches the candidate.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

# Names the rewritten check uses; unusual enough not to collide with test code.
REPORT = "_archer_report_"
_COMPLETED = -1  # the test "check ran to the end"


@dataclass(frozen=True)
class AssertPlan:
    """What one test script tests.

    Attributes:
        entry: `{"name": f}` or `{"class": "Solution", "name": f}`: the tested function.
        setup: the test code without its final `check(...)` line.
        asserts: number of counted top-level asserts.
        needs_completion_test: True when "check ran to the end" is a test of its own.
    """

    entry: dict
    setup: ast.Module
    asserts: int
    needs_completion_test: bool

    @classmethod
    def parse(cls, test_code: str) -> AssertPlan:
        """Raises ValueError when the code has no `def check(candidate)` and final `check(...)` call."""
        tree = ast.parse(test_code)
        check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
        last = tree.body[-1] if tree.body else None
        if check is None or not check.args.args or not (
                isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
                and isinstance(last.value.func, ast.Name) and last.value.func.id == "check" and len(last.value.args) == 1):
            raise ValueError("test code must define check(candidate) and end with a check(<function>) line")
        entry = _entry(last.value.args[0])
        names = {check.args.args[0].arg, entry["name"]}
        counted = [i for i, node in enumerate(check.body) if isinstance(node, ast.Assert) and _mentions(node, names)]
        others = [node for i, node in enumerate(check.body) if i not in counted]
        nested = any(_mentions(node, names) and any(isinstance(sub, (ast.Assert, ast.Raise)) for sub in ast.walk(node))
                     for node in others)
        setup = ast.Module(body=tree.body[:-1], type_ignores=[])
        return cls(entry, setup, len(counted), nested or not counted)

    @property
    def total(self) -> int:
        return self.asserts + self.needs_completion_test

    def rewritten(self, keep: set[int] | None = None) -> ast.Module:
        """The setup code with `check` rewritten: counted assert k (0-based) becomes
        `_archer_report_(k, <its test>)`, counted asserts not in `keep` are dropped."""
        tree = ast.parse(ast.unparse(self.setup))  # a fresh copy to edit
        check = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check")
        names = {check.args.args[0].arg, self.entry["name"]}
        body, k = [], 0
        for node in check.body:
            if isinstance(node, ast.Assert) and _mentions(node, names):
                if keep is None or k in keep:
                    body.extend(ast.parse(f"{REPORT}({k}, lambda: ({ast.unparse(node.test)}))").body)
                k += 1
            else:
                body.append(node)
        check.body = body or [ast.Pass()]
        return ast.fix_missing_locations(tree)


def _entry(node: ast.expr) -> dict:
    if isinstance(node, ast.Name):
        return {"name": node.id}
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
            and not node.value.args and not node.value.keywords):
        return {"class": node.value.func.id, "name": node.attr}
    raise ValueError(f"cannot tell which function `check({ast.unparse(node)})` tests")


def _mentions(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(sub, ast.Name) and sub.id in names for sub in ast.walk(node))


class CandidateFailed(Exception):
    """A call of the candidate raised, timed out or returned something that is not plain data."""


class OutOfTime(BaseException):
    """The response's time budget is spent: no more tests run (not caught by test code)."""


def run_check(plan: AssertPlan, keep: set[int] | None, prefix: str, proxy_factory) -> dict[int, bool]:
    """Run the rewritten check in a fresh namespace; returns test index -> passed.

    Args:
        keep: the counted asserts to run (None: all).
        prefix: trusted code the tests rely on (HumanEval's prompt, LeetCode's ListNode helpers).
        proxy_factory: `classes -> callable` standing for the candidate.
    """
    outcomes: dict[int, bool] = {}

    def report(index: int, test) -> None:
        try:
            outcomes[index] = bool(test())
        except OutOfTime:
            raise
        except Exception:  # the candidate raised or returned junk: this test fails
            outcomes[index] = False

    namespace = {"__name__": "archer_check", REPORT: report}
    exec(compile(prefix, "prefix.py", "exec"), namespace)
    classes = {k: v for k, v in namespace.items() if isinstance(v, type) and v.__module__ == "archer_check"}
    proxy = proxy_factory(classes)
    exec(compile(plan.rewritten(keep), "tests.py", "exec"), namespace)
    if "class" not in plan.entry:
        namespace[plan.entry["name"]] = proxy  # tests may call the function by name (HumanEval/33)
    try:
        namespace["check"](proxy)
        completed = True
    except OutOfTime:
        completed = False
    except Exception:
        completed = False
    if plan.needs_completion_test:
        outcomes[_COMPLETED] = completed
    return outcomes
