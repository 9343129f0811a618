"""Code answers: the last fenced python block, run against tests in a sandboxed subprocess.

`sample.answer` is a test spec (dict):
- `{"test_type": "stdin", "tests": [{"input": str, "output": str}, ...]}`: the program
  reads stdin; stripped stdout must equal the stripped expected output;
- `{"test_type": "functional", "func_name": "f", "tests": [...]}`: each input line is one
  JSON argument of `Solution().f` (or a top-level `f`), the output is the JSON result;
- `{"test_code": "def check(candidate): ...\\ncheck(f)"}`: assert-style (HumanEval).

Each run gets a fresh temporary directory as its working directory, an empty environment,
CPU-time, memory and file-size limits, its own process group (killed whole on timeout),
and output capped through a file. The reward is 1 only if every test passes.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from archer.types import Sample
from archer.verifiers.extract import after_think, last_code_block

_FUNCTIONAL_DRIVER = """
import json, sys
exec(compile(open("solution.py").read(), "solution.py", "exec"))
name = {name!r}
fn = getattr(Solution(), name) if "Solution" in globals() else globals()[name]
results = []
for raw in json.load(open("tests.json")):
    results.append(fn(*[json.loads(line) for line in raw.splitlines() if line.strip()]))
print(json.dumps(results))
"""


class CodeVerifier:
    """Run the response's program against its sample's tests.

    Args:
        timeout: wall-clock seconds for one run (all functional tests share one run).
        memory_mb: address-space limit of the program.
        max_tests: test at most this many (a seeded sample per problem; 0: all).
        max_output_bytes: cap on what the program may write.
    """

    def __init__(self, timeout: float = 6.0, memory_mb: int = 1024, max_tests: int = 16,
                 max_output_bytes: int = 1 << 20):
        self.timeout, self.memory_mb, self.max_tests, self.max_output_bytes = timeout, memory_mb, max_tests, max_output_bytes

    def __call__(self, response: str, sample: Sample) -> float:
        program = last_code_block(after_think(response))
        if program is None:
            return 0.0
        spec = sample.answer if isinstance(sample.answer, dict) else json.loads(sample.answer)
        if "test_code" in spec:
            ok, _ = self._run(program + "\n\n" + spec["test_code"], stdin="")
            return float(ok)
        tests = list(spec["tests"])
        if self.max_tests and len(tests) > self.max_tests:
            tests = random.Random(sample.id).sample(tests, self.max_tests)
        if spec.get("test_type") == "functional":
            return float(self._functional(program, spec["func_name"], tests))
        for test in tests:
            ok, out = self._run(program, stdin=test["input"])
            if not ok or _lines(out) != _lines(test["output"]):
                return 0.0
        return 1.0

    def _functional(self, program: str, name: str, tests: list[dict]) -> bool:
        extra = {"solution.py": program, "tests.json": json.dumps([t["input"] for t in tests])}
        ok, out = self._run(_FUNCTIONAL_DRIVER.format(name=name), stdin="", files=extra)
        if not ok:
            return False
        try:
            results = json.loads(out.strip().splitlines()[-1])
            return all(r == json.loads(t["output"]) for r, t in zip(results, tests)) and len(results) == len(tests)
        except (ValueError, IndexError):
            return False

    def _run(self, source: str, stdin: str, files: dict[str, str] | None = None) -> tuple[bool, str]:
        with tempfile.TemporaryDirectory(prefix="archer-code-") as folder:
            work = Path(folder)
            for name, text in {"main.py": source, **(files or {})}.items():
                (work / name).write_text(text)
            out_path = work / "stdout.txt"
            with open(out_path, "wb") as out, open(os.devnull, "wb") as err:
                proc = subprocess.Popen(
                    [sys.executable, "-I", "main.py"], cwd=work, stdin=subprocess.PIPE, stdout=out, stderr=err,
                    env={"PATH": "/usr/bin:/bin", "HOME": folder, "TMPDIR": folder}, preexec_fn=self._limits,
                    start_new_session=True,
                )
                try:
                    proc.communicate(stdin.encode(), timeout=self.timeout)
                except subprocess.TimeoutExpired:
                    return False, ""
                finally:
                    _kill_group(proc)
            return proc.returncode == 0, out_path.read_text(errors="replace")[: self.max_output_bytes]

    def _limits(self) -> None:
        memory = self.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        cpu = int(self.timeout) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.max_output_bytes, self.max_output_bytes))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]
